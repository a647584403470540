//! Interactive mode: a person at a terminal.
//!
//! The main thread runs rustyline (editing, history on the arrow keys) and the reader thread
//! prints server lines through rustyline's `ExternalPrinter`, which clears the line being typed,
//! prints the message, and draws the prompt and the half-typed text again below it. Nothing
//! else writes to the terminal while an edit is in progress, so typing is never garbled.
//!
//! Two threads, one of them stuck in `readline`, raise one hard question: how does a closed
//! connection end the program while the terminal is in raw mode? The reader raises SIGINT;
//! while rustyline edits it has its own SIGINT handler and returns `Interrupted`, restoring the
//! terminal on the way out. Outside an edit our own handler (signal-hook) just sets a flag, so
//! the signal never kills the process, and the raise is repeated until the main thread, which
//! checks the flag and the closed state before each edit, has seen it.
//!
//! Login: until the server accepts a name, the readline prompt is the server's own prompt
//! (`Username: `), so the user types on it as with `nc`; afterwards it is [`CHAT_PROMPT`].

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use rustyline::error::ReadlineError;
use rustyline::{Config, DefaultEditor};
use signal_hook::consts::SIGINT;

use crate::connection::{Connection, Output, Reader};
use crate::session::{is_quit, Closed, Event, Session};
use crate::style::Style;

/// The prompt once logged in.
pub const CHAT_PROMPT: &str = "> ";

/// How often waits look at the Ctrl-C flag.
const POLL: Duration = Duration::from_millis(50);
/// A server that has not prompted by then is taken to need no login.
const FIRST_PROMPT_WAIT: Duration = Duration::from_secs(5);
/// Time for the server to answer a name.
const LOGIN_REPLY_WAIT: Duration = Duration::from_secs(10);
/// Time for the server to close after `/quit`.
const QUIT_WAIT: Duration = Duration::from_secs(3);

/// The terminal, ready for editing: made before connecting so that a terminal rustyline cannot
/// drive (say `TERM=dumb`) falls back to piped mode.
pub struct Terminal {
    editor: DefaultEditor,
    printer: Box<dyn rustyline::ExternalPrinter + Send>,
}

impl Terminal {
    pub fn open() -> anyhow::Result<Self> {
        let config = Config::builder()
            .max_history_size(1000)
            .context("history size")?
            .auto_add_history(false)
            .build();
        let mut editor = DefaultEditor::with_config(config)?;
        let printer = Box::new(editor.create_external_printer()?);
        Ok(Self { editor, printer })
    }
}

/// Runs the session; returns the exit status.
pub fn run(
    terminal: Terminal,
    stream: TcpStream,
    name: Option<String>,
    style: Style,
) -> anyhow::Result<u8> {
    let interrupted = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGINT, Arc::clone(&interrupted))?;
    let session = Arc::new(Session::default());
    let (events_tx, events) = mpsc::channel();
    Reader {
        stream: stream.try_clone()?,
        output: Output::Printer(terminal.printer),
        style,
        session: Arc::clone(&session),
        events: events_tx,
        on_close: Box::new(wake_editor),
    }
    .spawn()?;
    let mut client = Interactive {
        editor: terminal.editor,
        conn: Connection::new(stream),
        session,
        events,
        interrupted,
    };
    match client.login(name)? {
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
    LoggedIn,
    Closed(Closed),
    Interrupted,
    TimedOut,
}

struct Interactive {
    editor: DefaultEditor,
    conn: Connection,
    session: Arc<Session>,
    events: Receiver<Event>,
    interrupted: Arc<AtomicBool>,
}

impl Interactive {
    /// Logs in; `Some(status)` when the program should end instead of chatting.
    fn login(&mut self, mut auto_name: Option<String>) -> anyhow::Result<Option<u8>> {
        let mut prompt = match self.wait(FIRST_PROMPT_WAIT) {
            Wait::Prompt(prompt) => prompt,
            Wait::LoggedIn => return Ok(None),
            Wait::TimedOut => {
                self.session.login().assume();
                return Ok(None);
            }
            Wait::Closed(closed) => return Ok(Some(closed.report())),
            Wait::Interrupted => return Ok(Some(self.leave())),
        };
        loop {
            let name = match auto_name.take() {
                Some(name) => name,
                None => match self.editor.readline(&prompt) {
                    Ok(line) => line,
                    Err(ReadlineError::Interrupted) if self.session.is_closed() => {
                        return Ok(Some(self.finish_closed()));
                    }
                    Err(ReadlineError::Interrupted | ReadlineError::Eof) => {
                        return Ok(Some(self.leave()));
                    }
                    Err(e) => return Err(e.into()),
                },
            };
            if is_quit(&name) {
                return Ok(Some(self.leave()));
            }
            self.session.login().attempt(&name);
            if self.conn.send(&name).is_err() {
                return Ok(Some(self.finish_closed()));
            }
            match self.wait(LOGIN_REPLY_WAIT) {
                Wait::Prompt(again) => prompt = again,
                Wait::LoggedIn => return Ok(None),
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

    /// Reads and sends lines until the user quits or the server goes away.
    fn chat(&mut self) -> anyhow::Result<u8> {
        loop {
            if self.session.is_closed() {
                return Ok(self.finish_closed());
            }
            if self.interrupted.swap(false, Ordering::SeqCst) {
                return Ok(self.quit("/quit"));
            }
            match self.editor.readline(CHAT_PROMPT) {
                Ok(line) => {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let _ = self.editor.add_history_entry(line.as_str());
                    if is_quit(&line) {
                        return Ok(self.quit(&line));
                    }
                    if self.conn.send(&line).is_err() {
                        return Ok(self.finish_closed());
                    }
                }
                Err(ReadlineError::Interrupted) if self.session.is_closed() => {
                    return Ok(self.finish_closed());
                }
                Err(ReadlineError::Interrupted | ReadlineError::Eof) => {
                    return Ok(self.quit("/quit"));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sends `line` (a `/quit` or `/exit`) and waits for the server to close.
    fn quit(&mut self, line: &str) -> u8 {
        self.session.mark_quit();
        if self.conn.send(line).is_ok() {
            let deadline = Instant::now() + QUIT_WAIT;
            loop {
                match self.wait(deadline.saturating_duration_since(Instant::now())) {
                    // Stale news from before the quit.
                    Wait::Prompt(_) | Wait::LoggedIn => {}
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
                Ok(Event::LoggedIn) => return Wait::LoggedIn,
                Ok(Event::Closed(closed)) => return Wait::Closed(closed),
                Ok(Event::Input(_) | Event::InputEnd) | Err(RecvTimeoutError::Timeout) => {}
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
