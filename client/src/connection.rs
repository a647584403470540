//! The connection: connecting, sending lines, and the reader thread. What carries the bytes,
//! plain TCP or TLS, is a [`Transport`].
//!
//! The reader thread owns everything that comes from the server. It decodes, cleans, colours
//! and prints each line itself, through whichever [`Output`] the mode chose, so incoming lines
//! appear the moment they arrive whatever the main thread is doing. It tells the main thread
//! only what changes its course: a prompt (`Username: ` or `Password: `), a completed login,
//! the end of the connection.

use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use chat_common::sanitize;
use chat_common::wire::{ServerLine, PROMPT};

use crate::decode::{Incoming, LineDecoder};
use crate::roster::Change;
use crate::session::{Closed, Event, Session};
use crate::style::Style;
use crate::transport::Transport;

/// How long an unterminated line may wait before it is shown anyway (a prompt from a server
/// that does not send ours).
const PARTIAL_WAIT: Duration = Duration::from_millis(300);

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `host`, over TLS when given a configuration (see [`crate::tls`]).
pub fn connect(
    host: &str,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> anyhow::Result<Transport> {
    let stream = connect_tcp(host, port)?;
    match tls {
        Some(config) => crate::tls::handshake(stream, config, host),
        None => Ok(Transport::plain(stream)),
    }
}

/// Connects to the first address of `host` that accepts.
fn connect_tcp(host: &str, port: u16) -> anyhow::Result<TcpStream> {
    let addrs = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host}"))?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address found");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => {
                // Chat lines are small and typed by people: send them at once.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(anyhow::anyhow!(
        "cannot connect to {}: {}",
        display_addr(host, port),
        crate::session::describe(&last)
    ))
}

fn display_addr(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The sending half of the connection.
pub struct Connection {
    transport: Transport,
}

impl Connection {
    pub fn new(transport: Transport) -> Self {
        Self { transport }
    }

    /// Sends one line, LF-terminated.
    pub fn send(&mut self, line: &str) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.transport.write_all(&bytes)
    }

    /// Closes the connection without a word (leaving during login: the server drops it
    /// silently).
    pub fn close(&self) {
        self.transport.shutdown();
    }
}

/// Where the reader prints server lines.
pub enum Output {
    /// Above the line being edited, through rustyline.
    Printer(Box<dyn rustyline::ExternalPrinter + Send>),
    /// Plain stdout, for piped use.
    Stdout,
}

impl Output {
    fn print(&mut self, line: String) {
        match self {
            // A terminal that cannot be written to leaves nothing useful to do about it.
            Output::Printer(printer) => {
                let _ = printer.print(line + "\n");
            }
            Output::Stdout => {
                let mut out = io::stdout().lock();
                let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            }
        }
    }
}

/// The socket reader: runs until the connection ends.
pub struct Reader {
    pub transport: Transport,
    pub output: Output,
    pub style: Style,
    pub session: Arc<Session>,
    pub events: Sender<Event>,
    /// Ring the terminal bell when someone mentions the user.
    pub bell: bool,
    /// Called last, once the close is known: interactive mode uses it to wake the editor.
    pub on_close: Box<dyn FnOnce() + Send>,
}

impl Reader {
    pub fn spawn(self) -> io::Result<thread::JoinHandle<()>> {
        thread::Builder::new()
            .name("socket-reader".into())
            .spawn(move || self.run())
    }

    fn run(mut self) {
        let mut decoder = LineDecoder::new();
        let mut buf = vec![0u8; 16 * 1024];
        let mut items = Vec::new();
        let error = loop {
            let wait = decoder.has_partial().then_some(PARTIAL_WAIT);
            match self.transport.read(&mut buf, wait) {
                Ok(0) => break None,
                Ok(n) => {
                    decoder.feed(&buf[..n], &mut items);
                    for item in items.drain(..) {
                        self.handle(item);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if let Some(partial) = decoder.take_partial() {
                        self.handle_partial(&partial);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Some(e),
            }
        };
        if let Some(rest) = decoder.take_partial() {
            self.output.print(self.style.render(&sanitize(&rest)));
        }
        self.session.mark_closed();
        let closed = Closed {
            after_quit: self.session.quit_sent(),
            error,
        };
        let _ = self.events.send(Event::Closed(closed));
        (self.on_close)();
    }

    fn handle(&mut self, item: Incoming) {
        match item {
            Incoming::Prompt => self.prompt(PROMPT.to_owned()),
            Incoming::PasswordPrompt => {
                // Nothing is printed: the main thread shows the prompt and hides the answer.
                self.session.login().on_password_prompt();
                self.session.ask_password();
                let _ = self.events.send(Event::PasswordPrompt);
            }
            Incoming::Line(raw) => {
                let line = sanitize(&raw);
                let parsed = ServerLine::parse(&line);
                let logged_in_as = match parsed {
                    ServerLine::Notice(text) => self.session.login().on_notice(text),
                    _ => None,
                };
                let (rendered, event) = {
                    let mut roster = self.session.roster();
                    if let Some(name) = &logged_in_as {
                        roster.set_me(name);
                    }
                    let event = match parsed {
                        ServerLine::Notice(text) => match roster.observe(text) {
                            Change::Room => Some(Event::RoomChanged),
                            Change::Renamed => Some(Event::Renamed),
                            Change::None => None,
                        },
                        ServerLine::Message { from, .. } => {
                            roster.saw_speaker(from);
                            None
                        }
                        ServerLine::Error(_) if self.session.logged_in() => Some(Event::Refused),
                        _ => None,
                    };
                    (self.style.render_for(&line, roster.me()), event)
                };
                let mut text = rendered.text;
                if rendered.mentions_me && self.bell {
                    text.push('\x07');
                }
                // Print first, so the welcome is on screen before the prompt changes.
                self.output.print(text);
                if logged_in_as.is_some() {
                    let _ = self.events.send(Event::LoggedIn);
                }
                if let Some(event) = event {
                    let _ = self.events.send(event);
                }
            }
        }
    }

    /// An unterminated line that waited: a prompt while logging in, else just a line.
    fn handle_partial(&mut self, raw: &str) {
        let text = sanitize(raw);
        if self.session.logged_in() {
            self.output.print(self.style.render(&text));
        } else {
            self.prompt(text);
        }
    }

    fn prompt(&mut self, text: String) {
        self.session.login().on_prompt();
        let _ = self.events.send(Event::Prompt(text));
    }
}
