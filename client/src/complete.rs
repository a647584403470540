//! Tab completion and the rustyline helper that carries it.
//!
//! A word starting with `/` at the start of the line completes to a command name; any other
//! word completes to the name of a user in the room ([`crate::roster`]), so `/msg al<Tab>`
//! gives `/msg alice `. Matching ignores case, as the server does for names.
//!
//! While the server waits for a password the helper hides the line: rustyline has no password
//! mode, so the highlighter draws blanks as wide as the text (rustyline's own
//! `examples/read_password.rs`), and Tab completes nothing.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, GraphemeClusterMode, Helper};

use crate::session::Session;

/// The server's commands (PROTOCOL.md section 4).
pub const COMMANDS: [&str; 9] = [
    "/exit", "/help", "/join", "/me", "/msg", "/nick", "/quit", "/rooms", "/who",
];

/// Where the word being completed starts, and what it can become (each with a trailing space).
pub fn complete(line: &str, pos: usize, names: &[String]) -> (usize, Vec<String>) {
    let before = &line[..pos];
    let start = before.rfind([' ', '\t']).map_or(0, |space| space + 1);
    let word = &before[start..];
    let is_first_word = before[..start].trim().is_empty();
    let candidates: Vec<String> = if is_first_word && word.starts_with('/') {
        COMMANDS
            .iter()
            .filter(|command| starts_with_ignoring_case(command, word))
            .map(|command| format!("{command} "))
            .collect()
    } else {
        names
            .iter()
            .filter(|name| starts_with_ignoring_case(name, word))
            .map(|name| format!("{name} "))
            .collect()
    };
    (start, candidates)
}

fn starts_with_ignoring_case(text: &str, prefix: &str) -> bool {
    let text = text.to_lowercase();
    text.starts_with(&prefix.to_lowercase())
}

/// What a password line looks like on screen: blanks as wide as rustyline lays the text out,
/// so that its cursor arithmetic still holds.
pub fn mask(line: &str, widths: GraphemeClusterMode) -> String {
    " ".repeat(usize::from(widths.width(line)))
}

/// The editor's helper: completion from the shared roster, a note of whether the line being
/// edited is empty (so a closed connection can tidy an empty prompt away), and the password
/// mask.
pub struct ChatHelper {
    session: Arc<Session>,
    line_empty: Arc<AtomicBool>,
    /// How rustyline measures text: the editor's default, read the same way.
    widths: GraphemeClusterMode,
}

impl ChatHelper {
    pub fn new(session: Arc<Session>, line_empty: Arc<AtomicBool>) -> Self {
        Self {
            session,
            line_empty,
            widths: GraphemeClusterMode::from_env(),
        }
    }
}

impl Completer for ChatHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        if self.session.password_pending() {
            return Ok((pos, Vec::new()));
        }
        let names = self.session.roster().others();
        let (start, candidates) = complete(line, pos, &names);
        let pairs = candidates
            .into_iter()
            .map(|replacement| Pair {
                display: replacement.trim_end().to_owned(),
                replacement,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for ChatHelper {
    type Hint = String;

    /// Called on every redraw: the cheapest place to learn what the line holds.
    fn hint(&self, line: &str, _pos: usize, _ctx: &Context<'_>) -> Option<String> {
        self.line_empty.store(line.is_empty(), Ordering::SeqCst);
        None
    }
}

impl Highlighter for ChatHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if self.session.password_pending() {
            Cow::Owned(mask(line, self.widths))
        } else {
            Cow::Borrowed(line)
        }
    }

    /// Without a full redraw rustyline writes a typed character straight to the terminal, past
    /// the highlighter: a password line is redrawn on every change.
    fn highlight_char(&self, _line: &str, _pos: usize, kind: CmdKind) -> bool {
        kind != CmdKind::MoveCursor && self.session.password_pending()
    }
}

impl Validator for ChatHelper {}

impl Helper for ChatHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["alice", "Alan", "bob", "민수"].map(str::to_owned).to_vec()
    }

    #[test]
    fn commands_at_the_start_of_the_line() {
        assert_eq!(complete("/jo", 3, &names()), (0, vec!["/join ".to_owned()]));
        assert_eq!(
            complete("/m", 2, &names()).1,
            ["/me ", "/msg "].map(str::to_owned)
        );
        assert_eq!(complete("/QU", 3, &names()).1, ["/quit "]);
        // A slash word later in the line is not a command.
        assert!(complete("see /jo", 7, &names()).1.is_empty());
    }

    #[test]
    fn names_after_msg_and_anywhere_else() {
        assert_eq!(
            complete("/msg al", 7, &names()),
            (5, vec!["alice ".to_owned(), "Alan ".to_owned()])
        );
        assert_eq!(complete("/msg ali", 8, &names()).1, ["alice "]);
        assert_eq!(complete("hi B", 4, &names()), (3, vec!["bob ".to_owned()]));
        assert_eq!(complete("민", 3, &names()), (0, vec!["민수 ".to_owned()]));
        assert!(complete("hi zed", 6, &names()).1.is_empty());
    }

    #[test]
    fn a_password_is_drawn_as_blanks_of_its_width() {
        for widths in [GraphemeClusterMode::Unicode, GraphemeClusterMode::WcWidth] {
            assert_eq!(mask("s3cret pass", widths), " ".repeat(11));
            assert_eq!(mask("비밀pw", widths), " ".repeat(6));
            assert_eq!(mask("", widths), "");
        }
    }

    #[test]
    fn while_a_password_is_asked_the_helper_hides_and_completes_nothing() {
        let session = Arc::new(Session::default());
        let helper = ChatHelper::new(Arc::clone(&session), Arc::new(AtomicBool::new(true)));
        assert_eq!(helper.highlight("/msg hunter2", 0), "/msg hunter2");
        assert!(!helper.highlight_char("/msg hunter2", 12, CmdKind::Other));
        session.ask_password();
        assert_eq!(helper.highlight("/msg hunter2", 0), " ".repeat(12));
        assert!(helper.highlight_char("/msg hunter2", 12, CmdKind::Other));
        assert!(helper.highlight_char("/msg hunter2", 12, CmdKind::ForcedRefresh));
        let history = rustyline::history::DefaultHistory::new();
        let ctx = Context::new(&history);
        let (_, found) = helper.complete("/m", 2, &ctx).expect("complete");
        assert!(found.is_empty());
        assert!(session.take_password_pending());
        assert_eq!(helper.highlight("/msg hunter2", 0), "/msg hunter2");
    }

    #[test]
    fn completes_the_word_at_the_cursor_not_the_line_end() {
        // Cursor after "b", text after it stays.
        assert_eq!(
            complete("hi b there", 4, &names()),
            (3, vec!["bob ".to_owned()])
        );
    }
}
