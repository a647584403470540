//! One connection's reader thread: login, then the user's lines, then leaving.
//!
//! The thread owns the reading side of its connection and nothing else: what it sends is queued
//! on its [`Peer`] and written by a flusher. Where lines come from is a [`LineSource`] (raw TCP
//! bytes, or WebSocket messages), so the chat rules below exist once for every transport.
//! Reads block with a deadline only while something is due (the login deadline, a partial line
//! waiting to count as a line, a WebSocket ping), so an idle logged-in TCP user costs a sleeping
//! thread and no wake-ups.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_common::{sanitize, wire, Frame};

use crate::commands::{self, Command, Input};
use crate::flood::FloodGate;
use crate::peer::Peer;
use crate::shared::Shared;
use crate::transport::socket::linger;
use crate::transport::{CloseReason, Framing};

/// How long a closing connection may take to hand its last lines (the goodbye) to the kernel.
pub const DRAIN_ON_CLOSE: Duration = Duration::from_secs(2);

/// Why a connection ended.
#[derive(Debug)]
pub enum End {
    Quit(Option<String>),
    /// The client closed (EOF, or a WebSocket close).
    Eof,
    LoginTimeout,
    Broken(io::Error),
    /// A WebSocket message too large to take.
    TooBig,
    /// No answer to a WebSocket ping.
    Unresponsive,
    /// Not let in: a banned account.
    Refused,
}

/// What a read left the connection in; frames it appended are handled either way.
pub enum Status {
    Open,
    Closed(End),
}

/// Where a connection's lines come from.
pub trait LineSource {
    /// Waits for input until `deadline` (none: for ever) and appends the frames it completes.
    fn read(&mut self, deadline: Option<Instant>, frames: &mut Vec<Frame>) -> Status;
    /// When the source next needs attention without input (a partial line, a ping).
    fn due(&self) -> Option<Instant>;
    /// Does what is due by `now`; may append frames.
    fn on_due(&mut self, now: Instant, frames: &mut Vec<Frame>) -> Status;
    /// The longest line the source takes, for the `line too long` reply.
    fn max_line(&self) -> usize;
}

enum Phase {
    /// `password_for`: the name was registered; the next line is its password.
    Login {
        deadline: Instant,
        password_for: Option<String>,
    },
    /// `password_for`: `/nick` to a registered name; the next line is its password.
    Chat {
        gate: FloodGate,
        password_for: Option<String>,
    },
}

enum Flow {
    Continue,
    Stop(End),
}

struct Connection<'a> {
    shared: &'a Shared,
    peer: &'a Arc<Peer>,
    phase: Phase,
}

/// Serves one connection until it ends, then takes it out of the registry. `login_deadline`
/// counts from connect, whatever came before the chat (an HTTP upgrade).
pub fn serve(
    shared: &Shared,
    peer: &Arc<Peer>,
    source: &mut dyn LineSource,
    login_deadline: Instant,
) {
    let mut connection = Connection {
        shared,
        peer,
        phase: Phase::Login {
            deadline: login_deadline,
            password_for: None,
        },
    };
    let end = connection.run(source);
    connection.finish(end);
}

/// Takes the connection out of the registry on every exit path, unwinding included, so a
/// panic still logs the user out.
pub struct Cleanup<'a> {
    pub shared: &'a Shared,
    pub peer: &'a Arc<Peer>,
}

impl Cleanup<'_> {
    /// The connection goes on elsewhere (another thread took it over): nothing to clean up here.
    pub fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        clean_up(self.shared, self.peer);
    }
}

// Out of line: inlined, its logging would grow the frame every idle connection waits under,
// and each stack page a waiting thread has touched stays resident.
#[inline(never)]
fn clean_up(shared: &Shared, peer: &Arc<Peer>) {
    if std::thread::panicking() {
        tracing::error!(peer = peer.id, "connection handler panicked");
        shared.registry.leave(peer, None, None);
    }
    peer.disconnect();
    shared.registry.remove_connection(peer.id);
}

impl Connection<'_> {
    fn run(&mut self, source: &mut dyn LineSource) -> End {
        self.reply(&wire::notice("welcome to chat-server"));
        self.prompt();
        let mut frames = Vec::new();
        loop {
            let status = source.read(self.next_due(source), &mut frames);
            if let Flow::Stop(end) = self.handle_all(&mut frames, source.max_line()) {
                return end;
            }
            if let Status::Closed(end) = status {
                return end;
            }
            if let Flow::Stop(end) = self.on_time(source, &mut frames) {
                return end;
            }
        }
    }

    /// Does what is due: the login deadline, then the source's own (partial line, ping).
    #[inline(never)]
    fn on_time(&mut self, source: &mut dyn LineSource, frames: &mut Vec<Frame>) -> Flow {
        let now = Instant::now();
        if let Phase::Login { deadline, .. } = self.phase {
            if now >= deadline {
                self.reply(&wire::error("login timed out"));
                return Flow::Stop(End::LoginTimeout);
            }
        }
        if source.due().is_some_and(|due| now >= due) {
            let status = source.on_due(now, frames);
            if let Flow::Stop(end) = self.handle_all(frames, source.max_line()) {
                return Flow::Stop(end);
            }
            if let Status::Closed(end) = status {
                return Flow::Stop(end);
            }
        }
        Flow::Continue
    }

    /// The next instant something is due: the login deadline or the source's own.
    fn next_due(&self, source: &dyn LineSource) -> Option<Instant> {
        let login = match self.phase {
            Phase::Login { deadline, .. } => Some(deadline),
            Phase::Chat { .. } => None,
        };
        match (login, source.due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    #[inline(never)]
    fn handle_all(&mut self, frames: &mut Vec<Frame>, max_line: usize) -> Flow {
        let was_chatting = matches!(self.phase, Phase::Chat { .. });
        for frame in frames.drain(..) {
            if let Flow::Stop(end) = self.handle(frame, max_line) {
                return Flow::Stop(end);
            }
        }
        if !was_chatting && matches!(self.phase, Phase::Chat { .. }) {
            // Most users now sit idle for a long time: give back the stack pages that
            // logging in touched, keeping only what waiting needs.
            crate::stack::release_unused();
        }
        Flow::Continue
    }

    // Kept out of line so `run`, the frame an idle connection waits in, stays small.
    #[inline(never)]
    fn handle(&mut self, frame: Frame, max: usize) -> Flow {
        let line = match frame {
            Frame::Line(line) => line,
            Frame::TooLong => {
                self.reply(&wire::error(&format!("line too long (max {max} bytes)")));
                if matches!(self.phase, Phase::Login { .. }) {
                    self.prompt();
                }
                return Flow::Continue;
            }
        };
        match &mut self.phase {
            Phase::Login { password_for, .. } => match password_for.take() {
                Some(name) => {
                    self.login_with_password(&name, &line);
                    Flow::Continue
                }
                None => self.login(&line),
            },
            Phase::Chat { password_for, .. } => match password_for.take() {
                Some(name) => {
                    commands::account::nick_with_password(self.shared, self.peer, &name, &line);
                    Flow::Continue
                }
                None => self.chat(&line),
            },
        }
    }

    /// A name: registered ones (not online) are asked for their password first, and a banned
    /// account is turned away.
    fn login(&mut self, line: &str) -> Flow {
        let registered = chat_common::validate_name(line)
            .ok()
            .filter(|name| self.shared.accounts.is_registered(name))
            .filter(|name| !self.shared.registry.is_online(name));
        if let Some(name) = registered {
            if self.shared.registry.account_banned(name) {
                tracing::info!(peer = self.peer.id, %name, "refused: banned account");
                self.reply(&wire::error("you are banned"));
                return Flow::Stop(End::Refused);
            }
            if let Phase::Login { password_for, .. } = &mut self.phase {
                *password_for = Some(name.to_owned());
                self.ask(wire::PASSWORD_PROMPT);
                return Flow::Continue;
            }
        }
        self.enter(line);
        Flow::Continue
    }

    fn login_with_password(&mut self, name: &str, password: &str) {
        match commands::account::check_password(self.shared, self.peer, name, password) {
            Ok(()) => self.enter(name),
            Err(refusal) => {
                self.reply(&wire::error(&refusal));
                self.prompt();
            }
        }
    }

    /// Logs in under `name` (its password, if any, already checked).
    fn enter(&mut self, name: &str) {
        match self.shared.registry.login(self.peer, name) {
            Ok(name) => {
                let addr = self
                    .shared
                    .registry
                    .address_of(self.peer.id)
                    .unwrap_or(self.peer.addr.ip());
                let via = match (self.peer.framing(), self.peer.tls().is_some()) {
                    (Framing::Lines, false) => "tcp",
                    (Framing::Lines, true) => "tls",
                    (Framing::WebSocket, false) => "ws",
                    (Framing::WebSocket, true) => "wss",
                };
                tracing::info!(peer = self.peer.id, %name, %addr, via, "logged in");
                self.phase = Phase::Chat {
                    gate: FloodGate::new(
                        self.shared.config().flood_burst,
                        self.shared.config().flood_rate,
                    ),
                    password_for: None,
                };
            }
            Err(refusal) => {
                self.reply(&wire::error(&refusal.to_string()));
                self.prompt();
            }
        }
    }

    fn chat(&mut self, line: &str) -> Flow {
        let input = commands::parse(line);
        let exempt = matches!(input, Input::Blank | Input::Command(Command::Quit(_)));
        let Phase::Chat { gate, password_for } = &mut self.phase else {
            return Flow::Continue;
        };
        if !exempt && !gate.allow(Instant::now()) {
            self.reply(&wire::error("slow down"));
            return Flow::Continue;
        }
        if let Input::Command(Command::Nick(new)) = input {
            if commands::account::needs_password_for_nick(self.shared, self.peer, new) {
                *password_for = Some(new.to_owned());
                self.ask(wire::PASSWORD_PROMPT);
                return Flow::Continue;
            }
        }
        match input {
            Input::Blank => {}
            Input::Message(text) => commands::chat::message(self.shared, self.peer, text),
            Input::Command(Command::Quit(reason)) => {
                let reason = reason.map(|r| sanitize(r).trim().to_owned());
                return Flow::Stop(End::Quit(reason.filter(|r| !r.is_empty())));
            }
            Input::Command(command) => commands::chat::execute(self.shared, self.peer, command),
        }
        Flow::Continue
    }

    fn reply(&self, line: &str) {
        self.shared.registry.reply(self.peer, line);
    }

    fn prompt(&self) {
        self.ask(wire::PROMPT);
    }

    /// Sends a prompt (`Username: `, `Password: `).
    fn ask(&self, prompt: &str) {
        if self.peer.send_prompt(prompt).is_err() {
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
            (Some(name), End::Unresponsive) => {
                tracing::info!(peer = self.peer.id, %name, "left: no answer to ping")
            }
            (Some(name), _) => tracing::info!(peer = self.peer.id, %name, "left: closed"),
            (None, End::LoginTimeout) => tracing::info!(peer = self.peer.id, "login timed out"),
            (None, _) => tracing::debug!(peer = self.peer.id, ?end, "closed before login"),
        }
        let close = match &end {
            End::Broken(_) | End::Unresponsive => return,
            // The client closed first (a WebSocket close has been answered already).
            End::Eof => None,
            End::Quit(_) => Some(CloseReason::Normal),
            End::LoginTimeout | End::Refused => Some(CloseReason::Policy),
            End::TooBig => Some(CloseReason::TooBig),
        };
        if let Some(reason) = close {
            self.peer.send_close(reason);
        }
        self.peer.wait_drained(Instant::now() + DRAIN_ON_CLOSE);
        linger(self.peer.socket());
    }
}
