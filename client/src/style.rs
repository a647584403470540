//! How a server line looks on screen.
//!
//! The reader sanitises every line before it gets here, even though our server already cleans
//! relayed text: the client may be talking to another server, and a line is the one thing a
//! remote party controls on this terminal. Colour is plain ANSI SGR, chosen by the line's prefix
//! ([`ServerLine::parse`]): notices dimmed, errors red, each user name in a colour of its own
//! (the same colour for the same name in every client and every run), private messages bold.
//! Colour is off when `NO_COLOR` is set to anything, when `TERM` is `dumb`, or when stdout is
//! not a terminal.

use std::io::IsTerminal;

use chat_common::wire::ServerLine;

use crate::mention;

const RESET: &str = "\x1b[0m";
const DIM: &str = "2";
const BOLD: &str = "1";
const RED: &str = "31";

/// Colours for names: the readable ones, without red (errors) and plain blue (dark on dark).
const NAME_COLOURS: [&str; 9] = ["32", "33", "35", "36", "92", "93", "94", "95", "96"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    colour: bool,
}

impl Style {
    pub fn new(colour: bool) -> Self {
        Self { colour }
    }

    /// Colour on stdout unless the environment or a pipe says no.
    pub fn detect() -> Self {
        let env = |key| std::env::var_os(key).unwrap_or_default();
        Self::new(colour_wanted(
            &env("NO_COLOR"),
            &env("TERM"),
            std::io::stdout().is_terminal(),
        ))
    }

    /// Colours one sanitised server line (given without its line ending).
    pub fn render(&self, line: &str) -> String {
        if !self.colour {
            return line.to_owned();
        }
        match ServerLine::parse(line) {
            ServerLine::Notice(_) => paint(DIM, line),
            ServerLine::Error(_) => paint(RED, line),
            ServerLine::Message { from, text } => {
                format!("[{}] {text}", paint(name_colour(from), from))
            }
            ServerLine::PrivateReceived { from, text } => format!(
                "{} {}",
                paint(BOLD, &format!("[{} -> you]", paint_bold_name(from))),
                paint(BOLD, text)
            ),
            ServerLine::PrivateSent { to, text } => format!(
                "{} {}",
                paint(BOLD, &format!("[you -> {}]", paint_bold_name(to))),
                paint(BOLD, text)
            ),
            ServerLine::Other(_) => line.to_owned(),
        }
    }
}

/// A server line ready for the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    /// Someone else's message names the user (see [`crate::mention`]).
    pub mentions_me: bool,
}

impl Style {
    /// [`Style::render`], with mentions of `me` in other people's messages highlighted.
    pub fn render_for(&self, line: &str, me: Option<&str>) -> Rendered {
        let plain = || Rendered {
            text: self.render(line),
            mentions_me: false,
        };
        let Some(me) = me.filter(|me| !me.is_empty()) else {
            return plain();
        };
        let (from, text, private) = match ServerLine::parse(line) {
            ServerLine::Message { from, text } => (from, text, false),
            ServerLine::PrivateReceived { from, text } => (from, text, true),
            _ => return plain(),
        };
        let ranges = mention::mentions(text, me);
        if ranges.is_empty() || from.to_lowercase() == me.to_lowercase() {
            return plain();
        }
        let text = if !self.colour {
            line.to_owned()
        } else if private {
            format!(
                "{} {}",
                paint(BOLD, &format!("[{} -> you]", paint_bold_name(from))),
                paint(BOLD, &mention::highlight(text, &ranges))
            )
        } else {
            format!(
                "[{}] {}",
                paint(name_colour(from), from),
                mention::highlight(text, &ranges)
            )
        };
        Rendered {
            text,
            mentions_me: true,
        }
    }
}

/// The decision behind [`Style::detect`], apart from the process environment.
fn colour_wanted(no_color: &std::ffi::OsStr, term: &std::ffi::OsStr, stdout_tty: bool) -> bool {
    no_color.is_empty() && term != "dumb" && stdout_tty
}

fn paint(sgr: &str, text: &str) -> String {
    format!("\x1b[{sgr}m{text}{RESET}")
}

/// A name inside a bold span: the reset after the name must turn bold back on.
fn paint_bold_name(name: &str) -> String {
    format!("\x1b[{}m{name}{RESET}\x1b[{BOLD}m", name_colour(name))
}

/// The SGR colour of a user name. Names are case-insensitive on the server, so `Alice` and
/// `alice` get one colour. FNV-1a rather than std's hasher, whose seed changes every run.
pub fn name_colour(name: &str) -> &'static str {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.to_lowercase().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    // Fold the well-mixed high bits into the low ones the modulo looks at.
    hash ^= hash >> 16;
    NAME_COLOURS[hash as usize % NAME_COLOURS.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_common::sanitize;
    use std::ffi::OsStr;

    const ON: Style = Style { colour: true };
    const OFF: Style = Style { colour: false };

    #[test]
    fn without_colour_lines_are_unchanged() {
        for line in [
            "* bob joined",
            "! slow down",
            "[bob] hi",
            "[bob -> you] psst",
            "plain",
        ] {
            assert_eq!(OFF.render(line), line);
        }
    }

    #[test]
    fn notices_are_dimmed_and_errors_red() {
        assert_eq!(ON.render("* bob joined"), "\x1b[2m* bob joined\x1b[0m");
        assert_eq!(ON.render("! slow down"), "\x1b[31m! slow down\x1b[0m");
    }

    #[test]
    fn message_names_are_coloured_and_text_is_not() {
        let colour = name_colour("bob");
        assert_eq!(
            ON.render("[bob] hi [there]"),
            format!("[\x1b[{colour}mbob\x1b[0m] hi [there]")
        );
    }

    #[test]
    fn private_messages_are_bold_with_the_name_coloured() {
        let rendered = ON.render("[bob -> you] psst");
        let colour = name_colour("bob");
        assert_eq!(
            rendered,
            format!("\x1b[1m[\x1b[{colour}mbob\x1b[0m\x1b[1m -> you]\x1b[0m \x1b[1mpsst\x1b[0m")
        );
        assert!(ON
            .render("[you -> bob] psst")
            .starts_with("\x1b[1m[you -> "));
    }

    #[test]
    fn other_lines_are_left_plain() {
        assert_eq!(ON.render("hello"), "hello");
        assert_eq!(ON.render("[no closing bracket"), "[no closing bracket");
    }

    #[test]
    fn escape_sequences_from_the_server_never_reach_the_terminal() {
        // Coloured or not, the only ESC bytes in the output are our own SGR codes.
        let hostile = "[m\u{1b}[31mallory] \u{1b}]0;title\u{7}text\u{9b}2J\u{0}\u{7f}";
        for style in [ON, OFF] {
            let out = style.render(&sanitize(hostile));
            let stripped = out.replace("\x1b[0m", "").replace("\x1b[1m", "");
            let stripped = NAME_COLOURS
                .iter()
                .fold(stripped, |s, c| s.replace(&format!("\x1b[{c}m"), ""));
            assert!(!stripped.chars().any(|c| c.is_control()), "{out:?}");
            assert_eq!(stripped, "[mallory] text");
        }
    }

    #[test]
    fn name_colour_is_stable_and_case_insensitive() {
        // Fixed values: the colour of a name must not change between runs or releases lightly.
        assert_eq!(name_colour("alice"), name_colour("alice"));
        assert_eq!(name_colour("Alice"), name_colour("aLICE"));
        assert_eq!(name_colour("alice"), "33");
        assert_eq!(name_colour("bob"), "95");
        assert_eq!(name_colour("carol"), "94");
        assert!(NAME_COLOURS.contains(&name_colour("민수")));
    }

    #[test]
    fn names_spread_over_the_palette() {
        let names = [
            "alice", "bob", "carol", "dave", "eve", "frank", "grace", "heidi",
        ];
        let mut used: Vec<&str> = names.iter().map(|n| name_colour(n)).collect();
        used.sort_unstable();
        used.dedup();
        assert!(used.len() >= 4, "{used:?}");
    }

    #[test]
    fn mentions_by_others_are_highlighted() {
        let rendered = ON.render_for("[bob] hi ALICE", Some("alice"));
        assert!(rendered.mentions_me);
        let colour = name_colour("bob");
        assert_eq!(
            rendered.text,
            format!("[\x1b[{colour}mbob\x1b[0m] hi \x1b[7mALICE\x1b[27m")
        );
        let private = ON.render_for("[bob -> you] alice?", Some("alice"));
        assert!(private.mentions_me);
        assert!(private.text.contains("\x1b[7malice\x1b[27m"), "{private:?}");
        // Without colour the line stays as it came, but it still counts (for the bell).
        let plain = OFF.render_for("[bob] hi alice", Some("alice"));
        assert_eq!(
            (plain.text.as_str(), plain.mentions_me),
            ("[bob] hi alice", true)
        );
    }

    #[test]
    fn what_is_not_a_mention() {
        for (line, me) in [
            ("[bob] hi malice", Some("alice")),
            ("[alice] I am alice", Some("alice")),
            ("[you -> bob] alice here", Some("alice")),
            ("* alice joined", Some("alice")),
            ("[bob] hi alice", None),
        ] {
            let rendered = ON.render_for(line, me);
            assert!(!rendered.mentions_me, "{line}");
            assert_eq!(rendered.text, ON.render(line), "{line}");
        }
    }

    #[test]
    fn colour_follows_no_color_term_and_tty() {
        let none = OsStr::new("");
        assert!(colour_wanted(none, OsStr::new("xterm"), true));
        assert!(!colour_wanted(OsStr::new("1"), OsStr::new("xterm"), true));
        assert!(!colour_wanted(none, OsStr::new("dumb"), true));
        assert!(!colour_wanted(none, OsStr::new("xterm"), false));
        // NO_COLOR set but empty does not count (no-color.org).
        assert!(colour_wanted(none, none, true));
    }
}
