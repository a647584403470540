//! What the socket reader and the main thread share: the login state, whether `/quit` was sent,
//! whether the connection is closed, and the events the main thread waits for.
//!
//! Login is worked out from the server's lines alone, because piped input sends names without
//! waiting for answers. Each prompt of the server, `Username: ` or `Password: `, is answered by
//! the next line sent, in order; a name is answered by a new prompt (refused), by `Password: `
//! (a registered name), or by a `* ` welcome line holding the name (accepted). So the line
//! answering the latest `Username: ` is the name being tried, and a notice that contains it
//! completes the login. A line answering `Password: ` is never kept.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::roster::Roster;

/// What the main thread waits for.
#[derive(Debug)]
pub enum Event {
    /// The server asks for a name; the text is the prompt to show.
    Prompt(String),
    /// The server asks for the password of a registered name (at login or after `/nick`).
    PasswordPrompt,
    /// The server accepted a name.
    LoggedIn,
    /// The connection ended; the reader has printed everything that came before.
    Closed(Closed),
    /// The server's replies put us in another room (the prompt shows it).
    RoomChanged,
    /// The server renamed us (`/nick` went through).
    Renamed,
    /// An error line (`! ...`) after login: the answer to a command that was refused.
    Refused,
    /// A line from piped standard input.
    Input(String),
    /// Piped standard input ended.
    InputEnd,
}

/// How the connection ended.
#[derive(Debug)]
pub struct Closed {
    /// `/quit` had been sent, so the close was expected.
    pub after_quit: bool,
    /// A read error, when the connection did not end with a clean EOF.
    pub error: Option<std::io::Error>,
}

impl Closed {
    /// Exit status and, for an unexpected end, the one line that says so.
    pub fn outcome(&self) -> (u8, Option<String>) {
        match (&self.error, self.after_quit) {
            (_, true) => (0, None),
            (None, false) => (1, Some("connection closed by server".into())),
            (Some(e), false) => (1, Some(format!("connection lost: {}", describe(e)))),
        }
    }

    /// Prints the closing line of an unexpected close to stderr; returns the exit status.
    pub fn report(&self) -> u8 {
        let (code, line) = self.outcome();
        if let Some(line) = line {
            eprintln!("chat-client: {line}");
        }
        code
    }
}

/// An I/O error as a short lower-case phrase, without the `(os error N)` tail.
pub fn describe(err: &std::io::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error") {
        Some(at) => &text[..at],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Login bookkeeping: pure, so it can be tested without sockets.
#[derive(Debug, Default)]
pub struct Login {
    /// Lines sent before the login was known to succeed, in order; a password as "".
    sent: Vec<String>,
    /// Lines the server's prompts have asked for: prompt k is answered by `sent[k - 1]`.
    asked: usize,
    /// The line answering the latest `Username: `.
    answering: Option<usize>,
    /// A `Password: ` whose answer is not sent yet: its index in `sent`.
    secret_next: Option<usize>,
    name: Option<String>,
}

impl Login {
    /// Records a line sent to the server (a name attempt unless the login already succeeded).
    pub fn attempt(&mut self, line: &str) {
        if self.name.is_some() {
            return;
        }
        if self.secret_next.take() == Some(self.sent.len()) {
            self.sent.push(String::new());
        } else {
            // The server ignores surrounding spaces and tabs in a name.
            self.sent.push(line.trim_matches([' ', '\t']).to_owned());
        }
    }

    /// `Username: `: the next line answers it.
    pub fn on_prompt(&mut self) {
        if self.name.is_none() {
            self.answering = Some(self.asked);
            self.asked += 1;
        }
    }

    /// `Password: `: the next line is a password, forgotten here even if already sent.
    pub fn on_password_prompt(&mut self) {
        if self.name.is_some() {
            return;
        }
        match self.sent.get_mut(self.asked) {
            Some(line) => line.clear(),
            None => self.secret_next = Some(self.asked),
        }
        self.asked += 1;
    }

    /// Looks at a notice's text (after `* `); returns the name when it completes the login.
    pub fn on_notice(&mut self, text: &str) -> Option<String> {
        if self.name.is_some() {
            return None;
        }
        let name = self.sent.get(self.answering?)?;
        if name.is_empty() || !text.contains(name.as_str()) {
            return None;
        }
        self.name = Some(name.clone());
        self.sent.clear();
        self.name.clone()
    }

    /// Logged in without a login exchange (a server that never prompted).
    pub fn assume(&mut self) {
        self.name.get_or_insert_with(String::new);
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The server is waiting for a name (or a password) and every line we sent was answered.
    pub fn out_of_names(&self) -> bool {
        self.name.is_none() && self.asked > self.sent.len()
    }
}

/// State shared between the reader thread and the main thread.
#[derive(Debug, Default)]
pub struct Session {
    login: Mutex<Login>,
    roster: Mutex<Roster>,
    quit_sent: AtomicBool,
    closed: AtomicBool,
    /// The server's last prompt was `Password: ` and its answer is not sent yet.
    password_pending: AtomicBool,
}

impl Session {
    pub fn login(&self) -> MutexGuard<'_, Login> {
        // Login holds no invariant a panic could break halfway.
        self.login.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn roster(&self) -> MutexGuard<'_, Roster> {
        // Like the login: every update is complete before the next one starts.
        self.roster.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn logged_in(&self) -> bool {
        self.login().name().is_some()
    }

    /// Call before sending `/quit`, so a close racing with it counts as expected.
    pub fn mark_quit(&self) {
        self.quit_sent.store(true, Ordering::SeqCst);
    }

    pub fn quit_sent(&self) -> bool {
        self.quit_sent.load(Ordering::SeqCst)
    }

    pub fn mark_closed(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// The reader saw `Password: `: the next line the user types is secret.
    pub fn ask_password(&self) {
        self.password_pending.store(true, Ordering::SeqCst);
    }

    /// What is being typed now answers `Password: `, so it must not be shown.
    pub fn password_pending(&self) -> bool {
        self.password_pending.load(Ordering::SeqCst)
    }

    /// Call just before sending a typed line: true if it answers `Password: `.
    pub fn take_password_pending(&self) -> bool {
        self.password_pending.swap(false, Ordering::SeqCst)
    }
}

/// `/quit` or `/exit`, with or without a reason, in any case (the server matches commands
/// case-insensitively).
pub fn is_quit(line: &str) -> bool {
    let word = line.trim_start().split([' ', '\t']).next().unwrap_or("");
    word.eq_ignore_ascii_case("/quit") || word.eq_ignore_ascii_case("/exit")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_first_name() {
        let mut login = Login::default();
        // Banner before any prompt: ignored even if it happens to hold the name.
        login.attempt("chat");
        assert_eq!(login.on_notice("welcome to chat-server"), None);
        login.on_prompt();
        assert_eq!(
            login.on_notice("welcome, chat! you are in lobby with 1 users"),
            Some("chat".into())
        );
        assert_eq!(login.name(), Some("chat"));
        // Later notices do not log in again.
        assert_eq!(login.on_notice("chat joined"), None);
    }

    #[test]
    fn names_sent_ahead_are_matched_to_the_right_answer() {
        // Piped input: `bob` (taken), then `alice`, then a message, all sent at once.
        let mut login = Login::default();
        for line in ["bob", " alice\t", "hi bob"] {
            login.attempt(line);
        }
        login.on_prompt();
        assert_eq!(
            login.on_notice("alice joined"),
            None,
            "answers bob, not alice"
        );
        login.on_prompt(); // bob refused
        assert!(!login.out_of_names());
        assert_eq!(login.on_notice("welcome, alice! ..."), Some("alice".into()));
        login.attempt("ignored after login");
        assert!(login.sent.is_empty());
    }

    #[test]
    fn a_registered_name_typed_at_the_prompts() {
        // Interactive: each prompt comes before the line that answers it.
        let mut login = Login::default();
        login.on_prompt();
        login.attempt("alice");
        login.on_password_prompt();
        login.attempt("wrong pass");
        assert_eq!(login.sent, ["alice", ""], "the password is not kept");
        // `! wrong password`, then the name prompt again.
        assert_eq!(login.on_notice("anything"), None);
        login.on_prompt();
        assert!(login.out_of_names());
        login.attempt("alice");
        login.on_password_prompt();
        assert!(login.out_of_names(), "the password is awaited");
        login.attempt("s3cretpass");
        assert!(!login.out_of_names());
        assert!(login.sent.iter().all(|line| !line.contains("pass")));
        assert_eq!(
            login.on_notice("welcome, alice! you are in lobby with 1 users"),
            Some("alice".into())
        );
    }

    #[test]
    fn passwords_sent_ahead_are_matched_and_forgotten() {
        // Piped: `alice`, a wrong password, `alice`, the right one, a message, all at once.
        let mut login = Login::default();
        for line in ["alice", "nope nope", "alice", "s3cretpass", "hi"] {
            login.attempt(line);
        }
        login.on_prompt();
        login.on_password_prompt();
        assert_eq!(login.sent[1], "");
        login.on_prompt(); // wrong password
        assert_eq!(login.on_notice("alice joined"), Some("alice".into()));
        assert!(login.sent.is_empty());
    }

    #[test]
    fn prompts_after_login_change_nothing() {
        let mut login = Login::default();
        login.on_prompt();
        login.attempt("alice");
        login.on_notice("welcome, alice!");
        // `/nick bob` to a registered name: the password prompt comes mid-session.
        login.on_password_prompt();
        login.attempt("bobs password");
        assert_eq!(login.name(), Some("alice"));
        assert!(!login.out_of_names());
        assert!(login.sent.is_empty());
    }

    #[test]
    fn running_out_of_names() {
        let mut login = Login::default();
        login.on_prompt();
        assert!(login.out_of_names());
        login.attempt("bob");
        assert!(!login.out_of_names());
        login.on_prompt();
        assert!(login.out_of_names());
    }

    #[test]
    fn an_empty_attempt_never_matches() {
        let mut login = Login::default();
        login.attempt("   ");
        login.on_prompt();
        assert_eq!(login.on_notice("anything"), None);
    }

    #[test]
    fn quit_words() {
        for line in [
            "/quit",
            "/QUIT",
            "/exit",
            "/quit gone fishing",
            "  /Exit\tnow",
        ] {
            assert!(is_quit(line), "{line}");
        }
        for line in ["/quitter", "quit", "//quit", "/who", ""] {
            assert!(!is_quit(line), "{line}");
        }
    }

    #[test]
    fn outcomes() {
        let closed = |after_quit, error| Closed { after_quit, error };
        assert_eq!(closed(true, None).outcome(), (0, None));
        assert_eq!(
            closed(false, None).outcome(),
            (1, Some("connection closed by server".into()))
        );
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(closed(false, Some(reset)).outcome().0, 1);
    }

    #[test]
    fn describe_drops_the_errno() {
        let err = std::io::Error::from_raw_os_error(111);
        assert_eq!(describe(&err), "connection refused");
    }
}
