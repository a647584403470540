//! Progress bars on stderr, only when stderr is a terminal: piped or captured output (CI,
//! scripts, `--json | jq`) gets no bar codes, just the notes.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Clone, Copy)]
pub struct Progress {
    on: bool,
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            on: std::io::stderr().is_terminal(),
        }
    }

    /// A bar counting up to `len`, labelled `what` (hidden when stderr is not a terminal).
    pub fn bar(&self, len: u64, what: &str) -> ProgressBar {
        if !self.on {
            return ProgressBar::hidden();
        }
        let style = ProgressStyle::with_template(
            "{prefix:>10} [{bar:32}] {human_pos}/{human_len} ({percent}%) {elapsed}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let b = ProgressBar::new(len)
            .with_style(style)
            .with_prefix(what.to_owned());
        b.enable_steady_tick(Duration::from_millis(200));
        b
    }

    /// A line on stderr that stays (not overwritten by a bar).
    pub fn note(&self, what: &str) {
        eprintln!("chat-bench: {what}");
    }
}
