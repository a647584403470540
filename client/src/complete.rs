//! Tab completion and the rustyline helper that carries it.
//!
//! A word starting with `/` at the start of the line completes to a command name; any other
//! word completes to the name of a user in the room ([`crate::roster`]), so `/msg al<Tab>`
//! gives `/msg alice `. Matching ignores case, as the server does for names.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

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

/// The editor's helper: completion from the shared roster, and a note of whether the line
/// being edited is empty (so a closed connection can tidy an empty prompt away).
pub struct ChatHelper {
    session: Arc<Session>,
    line_empty: Arc<AtomicBool>,
}

impl ChatHelper {
    pub fn new(session: Arc<Session>, line_empty: Arc<AtomicBool>) -> Self {
        Self {
            session,
            line_empty,
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
        Cow::Borrowed(line)
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
    fn completes_the_word_at_the_cursor_not_the_line_end() {
        // Cursor after "b", text after it stays.
        assert_eq!(
            complete("hi b there", 4, &names()),
            (3, vec!["bob ".to_owned()])
        );
    }
}
