//! WebSocket as a line source (PROTOCOL.md section 9): each text (or binary) message is one
//! line, or several if it holds line endings. tungstenite does the framing, unmasking, size
//! limits and the close handshake; its own writes (pongs, the answer to a close) go into the
//! peer's output queue like every other byte the server sends, so they cannot overtake or split
//! a chat line.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_common::{Frame, LineFramer};
use tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tungstenite::Message;

use super::input;
use crate::connection::{End, LineSource, Status};
use crate::peer::Peer;

/// Read buffer of an upgraded connection. tungstenite keeps (and zero-fills) its buffer for the
/// connection's life, and chat lines are short: a small one keeps an idle user cheap.
const READ_BUFFER: usize = 2048;
/// The largest message taken and answered with `line too long`; past it, close 1009.
const MIN_MESSAGE_LIMIT: usize = 64 * 1024;

/// The limit on one WebSocket message for a given `--max-line`.
pub fn message_limit(max_line: usize) -> usize {
    max_line.saturating_mul(2).max(MIN_MESSAGE_LIMIT)
}

/// Lines from WebSocket messages, with pings while the client is silent.
pub struct WsLines {
    ws: WebSocket<PeerStream>,
    framer: LineFramer,
    keepalive: Duration,
    last_heard: Instant,
    ping_sent: Option<Instant>,
}

impl WsLines {
    /// Wraps a connection whose upgrade has been answered. `early` holds bytes the client sent
    /// after its request head, read together with it.
    pub fn new(peer: Arc<Peer>, max_line: usize, keepalive: Duration, early: Vec<u8>) -> Self {
        let limit = message_limit(max_line);
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0)
            .max_message_size(Some(limit))
            .max_frame_size(Some(limit));
        let stream = PeerStream {
            peer,
            deadline: None,
        };
        let ws = if early.is_empty() {
            WebSocket::from_raw_socket(stream, Role::Server, Some(config))
        } else {
            WebSocket::from_partially_read(stream, early, Role::Server, Some(config))
        };
        Self {
            ws,
            framer: LineFramer::new(max_line),
            keepalive,
            last_heard: Instant::now(),
            ping_sent: None,
        }
    }

    fn heard(&mut self) {
        self.last_heard = Instant::now();
        self.ping_sent = None;
    }
}

impl LineSource for WsLines {
    fn read(&mut self, deadline: Option<Instant>, frames: &mut Vec<Frame>) -> Status {
        self.ws.get_mut().deadline = deadline;
        match self.ws.read() {
            Ok(Message::Text(text)) => {
                self.heard();
                self.push_message(text.as_bytes(), frames);
                Status::Open
            }
            Ok(Message::Binary(bytes)) => {
                self.heard();
                self.push_message(&bytes, frames);
                Status::Open
            }
            Ok(Message::Close(_)) => Status::Closed(End::Eof),
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {
                self.heard();
                Status::Open
            }
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Status::Open,
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::Interrupted => Status::Open,
            Err(
                WsError::ConnectionClosed
                | WsError::AlreadyClosed
                | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake),
            ) => Status::Closed(End::Eof),
            Err(WsError::Capacity(CapacityError::MessageTooLong { .. })) => {
                Status::Closed(End::TooBig)
            }
            Err(WsError::Io(e)) => Status::Closed(End::Broken(e)),
            Err(e) => Status::Closed(End::Broken(io::Error::other(e))),
        }
    }

    fn due(&self) -> Option<Instant> {
        Some(match self.ping_sent {
            Some(sent) => sent + self.keepalive,
            None => self.last_heard + self.keepalive,
        })
    }

    fn on_due(&mut self, now: Instant, _frames: &mut Vec<Frame>) -> Status {
        if self.ping_sent.is_some() {
            return Status::Closed(End::Unresponsive);
        }
        self.ping_sent = Some(now);
        match self.ws.send(Message::Ping(Default::default())) {
            Ok(()) => Status::Open,
            Err(WsError::Io(e)) => Status::Closed(End::Broken(e)),
            Err(e) => Status::Closed(End::Broken(io::Error::other(e))),
        }
    }

    fn max_line(&self) -> usize {
        self.framer.max_line()
    }
}

impl WsLines {
    /// One message is one line, or several if it holds line endings; its end ends a line.
    fn push_message(&mut self, bytes: &[u8], frames: &mut Vec<Frame>) {
        self.framer.feed(bytes, frames);
        frames.extend(self.framer.take_partial());
    }
}

/// The socket as tungstenite sees it: reads wait at most until the deadline (then report
/// `WouldBlock`, which tungstenite resumes from), and writes go into the peer's output queue.
struct PeerStream {
    peer: Arc<Peer>,
    deadline: Option<Instant>,
}

impl Read for PeerStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !input::wait(&self.peer, self.deadline)? {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            match input::read_available(&self.peer, buf) {
                // Only TLS records arrived: wait for more, up to the same deadline.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
    }
}

impl Write for PeerStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.peer.send(buf) {
            Ok(()) => Ok(buf.len()),
            Err(_) => Err(io::Error::other("output queue full")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
