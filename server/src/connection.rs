//! One connection's reader thread: login, then the user's lines, then leaving.
//!
//! The thread owns the reading side of its socket and nothing else: what it sends is queued on
//! its [`Peer`] and written by a flusher. Reads block with a timeout only while something is due
//! (the login deadline, or a partial line waiting to count as a line), so an idle logged-in user
//! costs a sleeping thread and no wake-ups.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_common::{sanitize, wire, Frame, LineFramer};

use crate::command::{self, Command, Input, HELP};
use crate::flood::FloodGate;
use crate::peer::Peer;
use crate::server::Shared;

/// How long a closing connection may take to hand its last lines (the goodbye) to the kernel.
const DRAIN_ON_CLOSE: Duration = Duration::from_secs(2);
/// How long a closing connection reads and discards what the client still sends, so its last
/// lines are not lost to a reset.
const LINGER_ON_CLOSE: Duration = Duration::from_millis(500);
/// Too big for the allocator's per-thread cache, so an idle thread keeps none of it.
const READ_BUFFER: usize = 4096;

/// Why a connection ended.
#[derive(Debug)]
enum End {
    Quit(Option<String>),
    Eof,
    LoginTimeout,
    Broken(io::Error),
}

enum Phase {
    Login { deadline: Instant },
    Chat { gate: FloodGate },
}

enum Flow {
    Continue,
    Stop(End),
}

struct Connection<'a> {
    shared: &'a Shared,
    peer: &'a Arc<Peer>,
    framer: LineFramer,
    phase: Phase,
    /// When the unterminated bytes now in the framer last grew.
    partial_since: Option<Instant>,
}

/// Serves one connection until it ends, then takes it out of the registry.
pub fn serve(shared: Arc<Shared>, peer: Arc<Peer>) {
    // Runs on every exit path, unwinding included, so a panic still logs the user out.
    let _guard = Cleanup {
        shared: &shared,
        peer: &peer,
    };
    let mut connection = Connection {
        shared: &shared,
        peer: &peer,
        framer: LineFramer::new(shared.config.max_line as usize),
        phase: Phase::Login {
            deadline: Instant::now() + shared.config.login_timeout(),
        },
        partial_since: None,
    };
    let end = connection.run();
    connection.finish(end);
}

struct Cleanup<'a> {
    shared: &'a Shared,
    peer: &'a Arc<Peer>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(peer = self.peer.id, "connection handler panicked");
            self.shared.registry.leave(self.peer, None, None);
        }
        self.peer.disconnect();
        self.shared.registry.remove_connection(self.peer.id);
    }
}

impl Connection<'_> {
    fn run(&mut self) -> End {
        self.reply(&wire::notice("welcome to chat-server"));
        self.prompt();
        let mut frames = Vec::new();
        loop {
            let timeout = self
                .next_due()
                .map(|due| due.saturating_duration_since(Instant::now()));
            match wait_readable(self.peer.socket(), timeout) {
                Ok(true) => {}
                Ok(false) => {
                    if let Flow::Stop(end) = self.on_timeout() {
                        return end;
                    }
                    continue;
                }
                Err(e) => return End::Broken(e),
            }
            // The buffer exists only while there is input, so an idle connection holds none.
            let mut buf = vec![0u8; READ_BUFFER];
            match recv_nonblocking(self.peer.socket(), &mut buf) {
                Ok(0) => {
                    // The client closed its side: what it sent last still counts.
                    if let Some(frame) = self.framer.take_partial() {
                        if let Flow::Stop(end) = self.handle(frame) {
                            return end;
                        }
                    }
                    return End::Eof;
                }
                Ok(n) => {
                    self.framer.feed(&buf[..n], &mut frames);
                    drop(buf);
                    let was_chatting = matches!(self.phase, Phase::Chat { .. });
                    for frame in frames.drain(..) {
                        if let Flow::Stop(end) = self.handle(frame) {
                            return end;
                        }
                    }
                    self.partial_since = self.framer.has_partial().then(Instant::now);
                    if !was_chatting && matches!(self.phase, Phase::Chat { .. }) {
                        // Most users now sit idle for a long time: give back the stack pages
                        // that logging in touched, keeping only what waiting needs.
                        crate::stack::release_unused();
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return End::Broken(e),
            }
        }
    }

    /// The next instant something is due: the login deadline or the partial-line flush.
    fn next_due(&self) -> Option<Instant> {
        let login = match self.phase {
            Phase::Login { deadline } => Some(deadline),
            Phase::Chat { .. } => None,
        };
        let partial = self
            .partial_since
            .zip(self.shared.config.partial_flush())
            .map(|(since, wait)| since + wait);
        match (login, partial) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    #[inline(never)]
    fn on_timeout(&mut self) -> Flow {
        let now = Instant::now();
        if let Phase::Login { deadline } = self.phase {
            if now >= deadline {
                self.reply(&wire::error("login timed out"));
                return Flow::Stop(End::LoginTimeout);
            }
        }
        let partial_due = self
            .partial_since
            .zip(self.shared.config.partial_flush())
            .is_some_and(|(since, wait)| now >= since + wait);
        if partial_due {
            self.partial_since = None;
            if let Some(frame) = self.framer.take_partial() {
                return self.handle(frame);
            }
        }
        Flow::Continue
    }

    // Kept out of line so `run`, the frame an idle connection waits in, stays small.
    #[inline(never)]
    fn handle(&mut self, frame: Frame) -> Flow {
        let line = match frame {
            Frame::Line(line) => line,
            Frame::TooLong => {
                let max = self.framer.max_line();
                self.reply(&wire::error(&format!("line too long (max {max} bytes)")));
                if matches!(self.phase, Phase::Login { .. }) {
                    self.prompt();
                }
                return Flow::Continue;
            }
        };
        match self.phase {
            Phase::Login { .. } => {
                self.login(&line);
                Flow::Continue
            }
            Phase::Chat { .. } => self.chat(&line),
        }
    }

    fn login(&mut self, line: &str) {
        match self.shared.registry.login(self.peer, line) {
            Ok(name) => {
                tracing::info!(peer = self.peer.id, %name, "logged in");
                self.phase = Phase::Chat {
                    gate: FloodGate::new(
                        self.shared.config.flood_burst,
                        self.shared.config.flood_rate,
                    ),
                };
            }
            Err(refusal) => {
                self.reply(&wire::error(&refusal.to_string()));
                self.prompt();
            }
        }
    }

    fn chat(&mut self, line: &str) -> Flow {
        let input = command::parse(line);
        let exempt = matches!(input, Input::Blank | Input::Command(Command::Quit(_)));
        if let Phase::Chat { gate } = &mut self.phase {
            if !exempt && !gate.allow(Instant::now()) {
                self.reply(&wire::error("slow down"));
                return Flow::Continue;
            }
        }
        let registry = &self.shared.registry;
        match input {
            Input::Blank => {}
            Input::Message(text) => {
                let text = sanitize(text);
                let text = text.trim_end();
                if !text.trim_start().is_empty() {
                    registry.say(self.peer.id, text);
                }
            }
            Input::Command(command) => match command {
                Command::Quit(reason) => {
                    let reason = reason.map(|r| sanitize(r).trim().to_owned());
                    return Flow::Stop(End::Quit(reason.filter(|r| !r.is_empty())));
                }
                Command::Who => registry.who(self.peer),
                Command::Help => {
                    for line in HELP {
                        self.reply(&wire::notice(line));
                    }
                }
                Command::Rooms => registry.rooms(self.peer),
                Command::Me(action) => {
                    let action = sanitize(action);
                    match action.trim() {
                        "" => self.reply(&wire::error("usage: /me ACTION")),
                        action => registry.act(self.peer.id, action),
                    }
                }
                Command::Msg { to, text } => {
                    let text = sanitize(text);
                    let text = text.trim();
                    if text.is_empty() {
                        self.reply(&wire::error("usage: /msg NAME TEXT"));
                    } else if !registry.whisper(self.peer, to, text) {
                        self.reply(&wire::error(&format!("no such user: {}", sanitize(to))));
                    }
                }
                Command::Nick(new) => match registry.rename(self.peer.id, new) {
                    Ok(()) => tracing::info!(peer = self.peer.id, name = %new, "renamed"),
                    Err(refusal) => self.reply(&wire::error(&refusal.to_string())),
                },
                Command::Join(room) => match chat_common::validate_room(room) {
                    Ok(room) => {
                        if let Err(refusal) = registry.join(self.peer, room) {
                            self.reply(&wire::error(&refusal));
                        }
                    }
                    Err(e) => self.reply(&wire::error(&format!("invalid room name: {e}"))),
                },
                Command::Usage(usage) => self.reply(&wire::error(&format!("usage: {usage}"))),
                Command::Unknown(word) => self.reply(&wire::error(&format!(
                    "unknown command: {} (try /help)",
                    sanitize(word)
                ))),
            },
        }
        Flow::Continue
    }

    fn reply(&self, line: &str) {
        self.shared.registry.reply(self.peer, line);
    }

    fn prompt(&self) {
        if self.peer.send(wire::PROMPT.as_bytes()).is_err() {
            self.peer.disconnect();
        }
    }

    /// Leaves the room with the right notice, sends what is still queued, and closes.
    fn finish(&mut self, end: End) {
        let registry = &self.shared.registry;
        let name = match &end {
            End::Quit(reason) => {
                let farewell = registry
                    .name_of(self.peer.id)
                    .map(|name| wire::notice(&format!("bye, {name}")));
                registry.leave(self.peer, reason.as_deref(), farewell.as_deref())
            }
            _ => registry.leave(self.peer, None, None),
        };
        match (&name, &end) {
            (Some(name), End::Broken(e)) => {
                tracing::info!(peer = self.peer.id, %name, error = %e, "left: connection lost")
            }
            (Some(name), End::Quit(Some(reason))) => {
                tracing::info!(peer = self.peer.id, %name, %reason, "left: quit")
            }
            (Some(name), End::Quit(None)) => {
                tracing::info!(peer = self.peer.id, %name, "left: quit")
            }
            (Some(name), _) => tracing::info!(peer = self.peer.id, %name, "left: closed"),
            (None, End::LoginTimeout) => tracing::info!(peer = self.peer.id, "login timed out"),
            (None, _) => tracing::debug!(peer = self.peer.id, ?end, "closed before login"),
        }
        if matches!(end, End::Broken(_)) {
            return;
        }
        self.peer.wait_drained(Instant::now() + DRAIN_ON_CLOSE);
        self.linger();
    }

    /// Half-closes, then reads and discards until the client closes too (or a short while
    /// passes): closing a socket with unread input sends a reset, which can destroy the last
    /// lines still on their way to the client.
    fn linger(&self) {
        let mut socket = self.peer.socket();
        if socket.shutdown(std::net::Shutdown::Write).is_err() {
            return;
        }
        let deadline = Instant::now() + LINGER_ON_CLOSE;
        let mut sink = [0u8; 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
                return;
            }
            match socket.read(&mut sink) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

/// Blocks until the socket has input (or EOF, or an error to report), or the timeout passes
/// (returns false). Waiting without a buffer keeps an idle connection's memory to its stack.
fn wait_readable(socket: &socket2::Socket, timeout: Option<Duration>) -> io::Result<bool> {
    let timeout_ms = match timeout {
        // Round up, so a due time is never polled early in a busy loop.
        Some(t) => i32::try_from(t.as_micros().div_ceil(1000)).unwrap_or(i32::MAX),
        None => -1,
    };
    let mut fds = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for a descriptor this connection owns.
    match unsafe { libc::poll(&mut fds, 1, timeout_ms) } {
        -1 => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
        0 => Ok(false),
        _ => Ok(true),
    }
}

fn recv_nonblocking(socket: &socket2::Socket, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: socket2's recv takes MaybeUninit; an initialised buffer is a valid one.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) };
    socket.recv_with_flags(uninit, libc::MSG_DONTWAIT)
}
