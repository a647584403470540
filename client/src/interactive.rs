//! Interactive mode: a person at a terminal.
//!
//! The main thread runs rustyline (editing, history on the arrow keys, Tab completion) and the
//! reader thread prints server lines through rustyline's `ExternalPrinter`, which clears the
//! line being typed, prints the message, and draws the prompt and the half-typed text again
//! below it. Nothing else writes to the terminal while an edit is in progress, so typing is
//! never garbled.
//!
//! Lines that reach the terminal in one read (fast typing, a paste without bracketed paste) are
//! all kept: rustyline drops what it read past the first Enter unless its `buffer-redux`
//! feature hands it to the next `readline`, and the workspace turns that feature on.
//!
//! Two threads, one of them stuck in `readline`, raise one hard question: how does a closed
//! connection end the program while the terminal is in raw mode? The reader raises SIGINT;
//! while rustyline edits it has its own SIGINT handler and returns `Interrupted`, restoring the
//! terminal on the way out. Outside an edit our own handler (signal-hook) just sets a flag, so
//! the signal never kills the process, and the raise is repeated until the main thread, which
//! checks the flag and the closed state before each edit, has seen it. The Ctrl-C key is not a
//! signal in raw mode: a binding clears a half-typed line and interrupts only an empty one.
//!
//! Login: until the server accepts a name, the readline prompt is the server's own prompt
//! (`Username: `), so the user types on it as with `nc`; afterwards it is `#ROOM> `, the room
//! taken from the server's replies ([`crate::roster`]).
//!
//! Passwords (PROTOCOL.md section 12): when the server asks `Password: ` (a registered name at
//! login, or `/nick` to one), that is the next prompt, and the line typed on it is neither shown
//! (the helper draws blanks and the cursor is hidden, as ssh and sudo show nothing) nor put in
//! the history. Neither are `/register`, `/password` and `/unregister` ([`history::keeps`]).
//! Ctrl-C on that prompt after login cancels the `/nick` (an empty answer, which the server
//! refuses) instead of quitting.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use chat_common::wire::PASSWORD_PROMPT;
use rustyline::error::ReadlineError;
use signal_hook::consts::SIGINT;

use crate::complete::ChatHelper;
use crate::connection::{Connection, Output, Reader};
use crate::editor::{ChatEditor, Terminal};
use crate::history::{self, HistoryFile};
use crate::session::{is_quit, Closed, Event, Session};
use crate::style::Style;
use crate::transport::Transport;

/// How often waits look at the Ctrl-C flag.
const POLL: Duration = Duration::from_millis(50);
/// A server that has not prompted by then is taken to need no login.
const FIRST_PROMPT_WAIT: Duration = Duration::from_secs(5);
/// Time for the server to answer a name.
const LOGIN_REPLY_WAIT: Duration = Duration::from_secs(10);
/// Time for the server to answer `/join`, so the next prompt shows the new room.
const JOIN_REPLY_WAIT: Duration = Duration::from_secs(1);
/// Time for the server to answer `/nick`, so that a `Password: ` it asks is the next prompt.
const NICK_REPLY_WAIT: Duration = Duration::from_secs(2);
/// Time for the server to close after `/quit`.
const QUIT_WAIT: Duration = Duration::from_secs(3);

/// What the user asked for on the command line, beyond where to connect.
pub struct Options {
    pub name: Option<String>,
    pub bell: bool,
    pub history_file: bool,
}

/// Runs the session; returns the exit status.
pub fn run(
    mut terminal: Terminal,
    transport: Transport,
    options: Options,
    style: Style,
) -> anyhow::Result<u8> {
    let interrupted = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGINT, Arc::clone(&interrupted))?;
    let session = Arc::new(Session::default());
    let line_empty = Arc::new(AtomicBool::new(true));
    terminal.editor.set_helper(Some(ChatHelper::new(
        Arc::clone(&session),
        Arc::clone(&line_empty),
    )));
    let history = match history::default_path() {
        Some(path) if options.history_file => HistoryFile::open(path, &mut terminal.editor),
        _ => HistoryFile::disabled(),
    };
    let (events_tx, events) = mpsc::channel();
    Reader {
        transport: transport.clone(),
        output: Output::Printer(terminal.printer),
        style,
        session: Arc::clone(&session),
        events: events_tx,
        bell: options.bell,
        on_close: Box::new(wake_editor),
    }
    .spawn()?;
    let mut client = Interactive {
        editor: terminal.editor,
        history,
        conn: Connection::new(transport),
        session,
        events,
        interrupted,
        line_empty,
        closed: None,
    };
    match client.login(options.name)? {
        Some(code) => Ok(code),
        None => client.chat(),
    }
}

/// Interrupts `readline` so that it restores the terminal (see the module docs).
fn wake_editor() {
    // First let the editor print what the reader handed it last.
    thread::sleep(Duration::from_millis(50));
    for _ in 0..100 {
        let _ = signal_hook::low_level::raise(SIGINT);
        thread::sleep(Duration::from_millis(100));
    }
}

/// What a wait ended with.
enum Wait {
    Prompt(String),
    Password,
    LoggedIn,
    Closed(Closed),
    Interrupted,
    TimedOut,
}

struct Interactive {
    editor: ChatEditor,
    history: HistoryFile,
    conn: Connection,
    session: Arc<Session>,
    events: Receiver<Event>,
    interrupted: Arc<AtomicBool>,
    /// The line being edited is empty (kept by the helper on every redraw).
    line_empty: Arc<AtomicBool>,
    /// The close, when a wait other than [`Interactive::finish_closed`] received it.
    closed: Option<Closed>,
}

impl Interactive {
    /// Logs in; `Some(status)` when the program should end instead of chatting.
    fn login(&mut self, mut auto_name: Option<String>) -> anyhow::Result<Option<u8>> {
        // The prompt to type on: the server's name prompt, or `Password: ` when it is None.
        let mut prompt = match self.wait(FIRST_PROMPT_WAIT) {
            Wait::Prompt(prompt) => Some(prompt),
            Wait::Password => None,
            Wait::LoggedIn => return Ok(self.logged_in()),
            Wait::TimedOut => {
                self.session.login().assume();
                return Ok(None);
            }
            Wait::Closed(closed) => return Ok(Some(closed.report())),
            Wait::Interrupted => return Ok(Some(self.leave())),
        };
        loop {
            let secret = prompt.is_none();
            let given = if secret { None } else { auto_name.take() };
            let line = match given {
                Some(name) => name,
                None => {
                    match self.read_line(prompt.as_deref().unwrap_or(PASSWORD_PROMPT), secret) {
                        Ok(line) => line,
                        Err(ReadlineError::Interrupted) if self.session.is_closed() => {
                            if self.line_empty.load(Ordering::SeqCst) {
                                erase_empty_prompt();
                            }
                            return Ok(Some(self.finish_closed()));
                        }
                        Err(ReadlineError::Interrupted | ReadlineError::Eof) => {
                            return Ok(Some(self.leave()));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            if secret {
                // Whatever it looks like, it is the password: sent as it is.
                self.session.take_password_pending();
            } else if is_quit(&line) {
                return Ok(Some(self.leave()));
            }
            self.session.login().attempt(&line);
            if self.conn.send(&line).is_err() {
                return Ok(Some(self.finish_closed()));
            }
            match self.wait(LOGIN_REPLY_WAIT) {
                Wait::Prompt(again) => prompt = Some(again),
                Wait::Password => prompt = None,
                Wait::LoggedIn => return Ok(self.logged_in()),
                Wait::TimedOut => {
                    // An answer this client does not know: let the user carry on.
                    self.session.login().assume();
                    return Ok(None);
                }
                Wait::Closed(closed) => return Ok(Some(closed.report())),
                Wait::Interrupted => return Ok(Some(self.leave())),
            }
        }
    }

    /// Just logged in: asks who is in the room. The welcome gives only a count, and the names
    /// are what Tab completes; the user sees the answer, as IRC clients show who is there.
    fn logged_in(&mut self) -> Option<u8> {
        // A failed send shows up as the close, on the next read.
        let _ = self.conn.send("/who");
        None
    }

    /// Reads and sends lines until the user quits or the server goes away.
    fn chat(&mut self) -> anyhow::Result<u8> {
        loop {
            if self.session.is_closed() {
                return Ok(self.finish_closed());
            }
            if self.interrupted.swap(false, Ordering::SeqCst) {
                return Ok(self.quit("/quit"));
            }
            let secret = self.session.password_pending();
            let prompt = match secret {
                true => PASSWORD_PROMPT.to_owned(),
                false => self.session.roster().prompt(),
            };
            match self.read_line(&prompt, secret) {
                // Also when the prompt came while a normal line was being typed (a server slower
                // than NICK_REPLY_WAIT): the helper hid that line from then on, and the server
                // takes it as the password.
                Ok(line) if self.session.take_password_pending() => {
                    if self.conn.send(&line).is_err() {
                        return Ok(self.finish_closed());
                    }
                }
                Ok(line) => {
                    if line.trim().is_empty() {
                        continue;
                    }
                    if history::keeps(&line)
                        && self
                            .editor
                            .add_history_entry(line.as_str())
                            .unwrap_or(false)
                    {
                        self.history.save(&mut self.editor);
                    }
                    if is_quit(&line) {
                        return Ok(self.quit(&line));
                    }
                    let joining = is_command(&line, "/join");
                    let renaming = is_command(&line, "/nick");
                    if joining || renaming {
                        self.forget_stale_replies();
                    }
                    if self.conn.send(&line).is_err() {
                        return Ok(self.finish_closed());
                    }
                    if joining {
                        self.await_reply(JOIN_REPLY_WAIT, |event| {
                            matches!(event, Event::RoomChanged | Event::Refused)
                        });
                    }
                    if renaming {
                        self.await_reply(NICK_REPLY_WAIT, |event| {
                            matches!(
                                event,
                                Event::PasswordPrompt | Event::Renamed | Event::Refused
                            )
                        });
                    }
                }
                Err(ReadlineError::Interrupted) if self.session.is_closed() => {
                    if self.line_empty.load(Ordering::SeqCst) {
                        erase_empty_prompt();
                    }
                    return Ok(self.finish_closed());
                }
                // Ctrl-C on `Password: `: never mind the `/nick`.
                Err(ReadlineError::Interrupted) if self.session.take_password_pending() => {
                    if self.conn.send("").is_err() {
                        return Ok(self.finish_closed());
                    }
                }
                Err(ReadlineError::Interrupted | ReadlineError::Eof) => {
                    return Ok(self.quit("/quit"));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// One line from the user. A `secret` one is typed with the cursor hidden as well, so that
    /// nothing on the screen moves (the helper already draws it as blanks).
    fn read_line(&mut self, prompt: &str, secret: bool) -> rustyline::Result<String> {
        let _cursor = match secret {
            // A terminal that cannot hide its cursor still gets the blanks.
            true => self.editor.set_cursor_visibility(false).ok().flatten(),
            false => None,
        };
        self.editor.readline(prompt)
    }

    /// Drops replies to earlier commands, so that only the answer to the next one counts.
    fn forget_stale_replies(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            if let Event::Closed(closed) = event {
                self.closed = Some(closed);
            }
        }
    }

    /// Waits briefly for the event that answers a command (`done`), so that the next prompt
    /// fits: the room `/join` entered, or the `Password: ` that `/nick` asked. Keys typed
    /// meanwhile wait in the terminal.
    fn await_reply(&mut self, limit: Duration, done: impl Fn(&Event) -> bool) {
        let deadline = Instant::now() + limit;
        while self.closed.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::Closed(closed)) => self.closed = Some(closed),
                Ok(event) if done(&event) => return,
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }

    /// Sends `line` (a `/quit` or `/exit`) and waits for the server to close.
    fn quit(&mut self, line: &str) -> u8 {
        // A `Password: ` still waiting would take the `/quit` as its answer: answer it first
        // (with nothing, which the server refuses).
        let answered = match self.session.take_password_pending() {
            true => self.conn.send(""),
            false => Ok(()),
        };
        self.session.mark_quit();
        if answered.is_ok() && self.conn.send(line).is_ok() {
            let deadline = Instant::now() + QUIT_WAIT;
            loop {
                match self.wait(deadline.saturating_duration_since(Instant::now())) {
                    // Stale news from before the quit.
                    Wait::Prompt(_) | Wait::Password | Wait::LoggedIn => {}
                    Wait::Closed(_) | Wait::Interrupted => break,
                    Wait::TimedOut => {
                        eprintln!("chat-client: the server did not close the connection");
                        break;
                    }
                }
            }
        }
        self.conn.close();
        0
    }

    /// Leaves during login: the server drops a connection that never logged in silently.
    fn leave(&mut self) -> u8 {
        self.conn.close();
        0
    }

    /// The connection is closed: report how, and give the exit status.
    fn finish_closed(&mut self) -> u8 {
        if let Some(closed) = self.closed.take() {
            return closed.report();
        }
        loop {
            match self.events.recv_timeout(Duration::from_secs(2)) {
                Ok(Event::Closed(closed)) => return closed.report(),
                Ok(_) => {}
                Err(_) => {
                    let closed = Closed {
                        after_quit: self.session.quit_sent(),
                        error: None,
                    };
                    return closed.report();
                }
            }
        }
    }

    /// Waits for the next event that matters, Ctrl-C, or the time limit.
    fn wait(&mut self, limit: Duration) -> Wait {
        let deadline = Instant::now() + limit;
        loop {
            match self.events.recv_timeout(POLL) {
                Ok(Event::Prompt(prompt)) => return Wait::Prompt(prompt),
                Ok(Event::PasswordPrompt) => return Wait::Password,
                Ok(Event::LoggedIn) => return Wait::LoggedIn,
                Ok(Event::Closed(closed)) => return Wait::Closed(closed),
                Ok(
                    Event::Input(_)
                    | Event::InputEnd
                    | Event::RoomChanged
                    | Event::Renamed
                    | Event::Refused,
                )
                | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Wait::Closed(Closed {
                        after_quit: self.session.quit_sent(),
                        error: None,
                    })
                }
            }
            // The reader raises SIGINT itself once closed; that is not the user's Ctrl-C.
            if !self.session.is_closed() && self.interrupted.swap(false, Ordering::SeqCst) {
                return Wait::Interrupted;
            }
            if Instant::now() >= deadline {
                return Wait::TimedOut;
            }
        }
    }
}

/// `line` is the command `command` (`/join`, `/nick`) in any case (the server matches commands
/// case-insensitively).
fn is_command(line: &str, command: &str) -> bool {
    let word = line.trim_start().split([' ', '\t']).next().unwrap_or("");
    word.eq_ignore_ascii_case(command)
}

/// rustyline ends an interrupted edit with a line feed, which leaves an empty prompt above the
/// closing message: move up and clear that row.
fn erase_empty_prompt() {
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_all(b"\x1b[1A\r\x1b[2K")
        .and_then(|()| out.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_words() {
        assert!(is_command("/join dev", "/join"));
        assert!(is_command("  /JOIN #dev", "/join"));
        assert!(!is_command("/joined", "/join"));
        assert!(!is_command("join dev", "/join"));
        assert!(is_command("/Nick\tbob", "/nick"));
        assert!(!is_command("/nickname bob", "/nick"));
    }
}
