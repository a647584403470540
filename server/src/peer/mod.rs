//! One connected client: its socket and its output queue.
//!
//! Any thread may queue output for a peer (usually while holding the registry lock, so a room's
//! lines reach every member in one order). Queuing only copies bytes into memory, framed for the
//! way the client came in ([`Framing`]); the socket is written by a flusher thread (whatever
//! [`Schedule`] the peer was given), which sends everything queued in one system call. A peer whose unsent output passes the limit is marked closed and reported as an
//! [`Overflow`], so one client that stops reading costs its own memory only, up to the limit,
//! and never delays anyone else.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};
use std::net::Shutdown;

use rustls::ServerConnection;
use socket2::Socket;

use crate::transport::{CloseReason, Framing};

mod send;

use send::send_nonblocking;

/// Identifies a connection for its whole life; never reused.
pub type PeerId = u64;

/// Smallest buffer of a backed-up output queue. Growing a queue frees its old buffer in
/// whichever thread is broadcasting, and glibc caches small freed buffers per thread: with
/// thousands of reader threads, a login storm would leave kilobytes cached in each of them. A
/// queue that backs up (its flusher is still busy with the previous batch) therefore starts at,
/// or grows straight to, this size, above that cache's limit (1,032 bytes); its frees go to the
/// shared arena, where a trim can return them. An idle peer's first line gets an exact-size
/// buffer, which its flusher frees.
const BACKLOG_CAPACITY: usize = 1100;

/// The peer's unsent output passed the limit; it has been closed for output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// Takes a peer whose queue went from empty to not empty, and sends its output later.
pub trait Schedule: Send + Sync {
    fn schedule(&self, peer: Arc<Peer>);
}

pub struct Peer {
    pub id: PeerId,
    pub addr: SocketAddr,
    socket: Socket,
    outbuf_limit: usize,
    flusher: Arc<dyn Schedule>,
    queue: Mutex<OutQueue>,
    /// Signalled by the flusher when the queue empties or the peer closes.
    drained: Condvar,
    /// Bytes handed to the flusher and not yet accepted by the kernel.
    in_flight: AtomicUsize,
    /// Used only by this peer's flusher thread: the bytes being sent and how far it got.
    pub(crate) sending: Mutex<SendBuffer>,
    /// The TLS session, on a TLS port: the reader feeds it, the flusher encrypts through it.
    /// Boxed: a session is over a kilobyte, and most peers have none.
    tls: Option<Box<Mutex<ServerConnection>>>,
}

#[derive(Default)]
struct OutQueue {
    bytes: Vec<u8>,
    /// Handed to the flusher (queued there, being sent, or waiting for the socket to drain).
    scheduled: bool,
    /// No more output is accepted or sent.
    closed: bool,
    /// The close has been queued: what is queued is still sent, nothing more is accepted.
    closing: bool,
    /// TLS: the close_notify alert has been handed to the session.
    notified: bool,
    framing: Framing,
}

#[derive(Default)]
pub(crate) struct SendBuffer {
    pub bytes: Vec<u8>,
    pub sent: usize,
    /// Registered with the flusher's poller, waiting for the socket to become writable.
    pub registered: bool,
}

/// What a flush attempt found.
pub(crate) enum FlushOutcome {
    /// Everything queued was sent (or the peer is closed); nothing more to do.
    Idle,
    /// The socket's send buffer is full; wait until it is writable.
    Blocked,
}

impl Peer {
    pub fn new(
        id: PeerId,
        socket: Socket,
        addr: SocketAddr,
        outbuf_limit: usize,
        flusher: Arc<dyn Schedule>,
        tls: Option<ServerConnection>,
    ) -> Self {
        Self {
            tls: tls.map(|session| Box::new(Mutex::new(session))),
            id,
            addr,
            socket,
            outbuf_limit,
            flusher,
            queue: Mutex::new(OutQueue::default()),
            drained: Condvar::new(),
            in_flight: AtomicUsize::new(0),
            sending: Mutex::new(SendBuffer::default()),
        }
    }

    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// `--outbuf-limit`: the most this peer may have unsent before it is dropped.
    pub fn outbuf_limit(&self) -> usize {
        self.outbuf_limit
    }

    /// The TLS session, on a TLS port.
    pub fn tls(&self) -> Option<&Mutex<ServerConnection>> {
        self.tls.as_deref()
    }

    /// Has the flusher look at this peer even with nothing queued: TLS has records of its own
    /// to send (handshake, alerts).
    pub fn wake_flusher(self: &Arc<Self>) {
        let mut queue = self.queue.lock();
        if !queue.scheduled && !queue.closed {
            queue.scheduled = true;
            drop(queue);
            self.flusher.schedule(Arc::clone(self));
        }
    }

    /// Queues bytes as they are (an HTTP response, before any framing applies).
    pub fn send(self: &Arc<Self>, bytes: &[u8]) -> Result<(), Overflow> {
        self.enqueue(bytes.len(), |_, out| out.extend_from_slice(bytes))
    }

    /// Queues one protocol line, given without its ending, in this peer's framing.
    pub fn send_line(self: &Arc<Self>, line: &str) -> Result<(), Overflow> {
        self.enqueue_framed(
            |framing| framing.line_len(line.len()),
            |framing, out| framing.push_line(line, out),
        )
    }

    /// Queues the login prompt (no line ending over TCP; a message of its own over WebSocket).
    pub fn send_prompt(self: &Arc<Self>, prompt: &str) -> Result<(), Overflow> {
        self.enqueue_framed(
            |_| prompt.len() + 14,
            |framing, out| framing.push_prompt(prompt, out),
        )
    }

    /// Queues the framing's close message (a WebSocket close frame); what is queued before it
    /// is still sent, anything queued after it is ignored.
    pub fn send_close(self: &Arc<Self>, reason: CloseReason) {
        let mut queue = self.queue.lock();
        if queue.closed || queue.closing {
            return;
        }
        let framing = queue.framing;
        framing.push_close(reason, &mut queue.bytes);
        // Under the same lock as the close itself: a flusher that finds the queue empty then
        // also finds it closing, and sends TLS close_notify instead of going idle.
        queue.closing = true;
        if !queue.scheduled {
            queue.scheduled = true;
            drop(queue);
            self.flusher.schedule(Arc::clone(self));
        }
    }

    /// From now on lines are written in `framing` (after a WebSocket upgrade).
    pub fn set_framing(&self, framing: Framing) {
        self.queue.lock().framing = framing;
    }

    pub fn framing(&self) -> Framing {
        self.queue.lock().framing
    }

    fn enqueue(
        self: &Arc<Self>,
        len: usize,
        write: impl FnOnce(Framing, &mut Vec<u8>),
    ) -> Result<(), Overflow> {
        self.enqueue_framed(|_| len, write)
    }

    /// Queues what `write` appends (at most `len` bytes, given the framing). Never blocks on
    /// the network.
    fn enqueue_framed(
        self: &Arc<Self>,
        len: impl FnOnce(Framing) -> usize,
        write: impl FnOnce(Framing, &mut Vec<u8>),
    ) -> Result<(), Overflow> {
        let mut queue = self.queue.lock();
        if queue.closed || queue.closing {
            return Ok(());
        }
        let framing = queue.framing;
        let len = len(framing);
        let unsent = queue.bytes.len() + self.in_flight.load(Ordering::Acquire);
        if unsent + len > self.outbuf_limit {
            queue.closed = true;
            queue.bytes = Vec::new();
            return Err(Overflow);
        }
        let (used, capacity) = (queue.bytes.len(), queue.bytes.capacity());
        if capacity == 0 && !queue.scheduled {
            queue.bytes.reserve_exact(len);
        } else if capacity - used < len {
            let grown = (2 * capacity).max(used + len).max(BACKLOG_CAPACITY);
            queue.bytes.reserve_exact(grown - used);
        }
        write(framing, &mut queue.bytes);
        if !queue.scheduled {
            queue.scheduled = true;
            drop(queue);
            self.flusher.schedule(Arc::clone(self));
        }
        Ok(())
    }

    /// Stops all output: what is queued is dropped and later sends are ignored.
    pub fn close_output(&self) {
        let mut queue = self.queue.lock();
        queue.closed = true;
        queue.bytes = Vec::new();
        self.drained.notify_all();
    }

    /// Waits until everything queued has been handed to the kernel, the peer is closed, or the
    /// deadline passes. Returns true when the output was fully sent.
    pub fn wait_drained(&self, deadline: Instant) -> bool {
        let mut queue = self.queue.lock();
        while queue.scheduled && !queue.closed {
            if self.drained.wait_until(&mut queue, deadline).timed_out() {
                break;
            }
        }
        !queue.scheduled && !queue.closed
    }

    /// Ends the connection in both directions, waking a reader blocked on the socket.
    pub fn disconnect(&self) {
        self.close_output();
        let _ = self.socket.shutdown(Shutdown::Both);
    }

    /// Tells the client why it must go (`line`, then the framing's close), and ends its input,
    /// so its reader thread sends what is queued and closes as after any end of input.
    pub fn dismiss(self: &Arc<Self>, line: &str, reason: CloseReason) {
        let _ = self.send_line(line);
        self.close_after_output(reason);
    }

    /// Queues the framing's close and ends the client's input: the reader thread then sends
    /// what is queued and closes, as after any end of input.
    pub fn close_after_output(self: &Arc<Self>, reason: CloseReason) {
        self.send_close(reason);
        let _ = self.socket.shutdown(Shutdown::Read);
    }

    /// Drops the connection at once (too slow): what is queued is discarded. Where the framing
    /// has a close message and no frame is half sent, the close is tried once without waiting.
    pub fn abort(&self, reason: CloseReason) {
        let framing = self.framing();
        self.close_output();
        // Under TLS a frame would need the session, which the flusher may hold mid-record.
        if framing != Framing::Lines && self.tls.is_none() {
            if let Some(mut sending) = self.sending.try_lock() {
                if sending.sent == 0 || sending.sent == sending.bytes.len() {
                    sending.sent = sending.bytes.len();
                    let mut close = Vec::new();
                    framing.push_close(reason, &mut close);
                    let _ = send_nonblocking(&self.socket, &close);
                }
            }
        }
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}
