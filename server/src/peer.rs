//! One connected client: its socket and its output queue.
//!
//! Any thread may queue output for a peer (usually while holding the registry lock, so a room's
//! lines reach every member in one order). Queuing only copies bytes into memory; the socket is
//! written by a [`Flusher`](crate::flusher::Flusher) thread, which sends everything queued in one
//! system call. A peer whose unsent output passes the limit is marked closed and reported as an
//! [`Overflow`], so one client that stops reading costs its own memory only, up to the limit,
//! and never delays anyone else.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};
use std::net::Shutdown;

use socket2::Socket;

use crate::flusher::Flusher;

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

pub struct Peer {
    pub id: PeerId,
    pub addr: SocketAddr,
    socket: Socket,
    outbuf_limit: usize,
    flusher: Arc<Flusher>,
    queue: Mutex<OutQueue>,
    /// Signalled by the flusher when the queue empties or the peer closes.
    drained: Condvar,
    /// Bytes handed to the flusher and not yet accepted by the kernel.
    in_flight: AtomicUsize,
    /// Used only by this peer's flusher thread: the bytes being sent and how far it got.
    pub(crate) sending: Mutex<SendBuffer>,
}

#[derive(Default)]
struct OutQueue {
    bytes: Vec<u8>,
    /// Handed to the flusher (queued there, being sent, or waiting for the socket to drain).
    scheduled: bool,
    /// No more output is accepted or sent.
    closed: bool,
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
        flusher: Arc<Flusher>,
    ) -> Self {
        Self {
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

    /// Queues bytes for this peer. Never blocks on the network.
    pub fn send(self: &Arc<Self>, bytes: &[u8]) -> Result<(), Overflow> {
        let mut queue = self.queue.lock();
        if queue.closed {
            return Ok(());
        }
        let unsent = queue.bytes.len() + self.in_flight.load(Ordering::Acquire);
        if unsent + bytes.len() > self.outbuf_limit {
            queue.closed = true;
            queue.bytes = Vec::new();
            return Err(Overflow);
        }
        let (len, capacity) = (queue.bytes.len(), queue.bytes.capacity());
        if capacity == 0 && !queue.scheduled {
            queue.bytes.reserve_exact(bytes.len());
        } else if capacity - len < bytes.len() {
            let grown = (2 * capacity).max(len + bytes.len()).max(BACKLOG_CAPACITY);
            queue.bytes.reserve_exact(grown - len);
        }
        queue.bytes.extend_from_slice(bytes);
        if !queue.scheduled {
            queue.scheduled = true;
            drop(queue);
            self.flusher.schedule(Arc::clone(self));
        }
        Ok(())
    }

    /// Queues one protocol line, adding the CRLF ending.
    pub fn send_line(self: &Arc<Self>, line: &str) -> Result<(), Overflow> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.send(&bytes)
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

    /// Sends what can be sent without blocking. Called only by this peer's flusher thread.
    pub(crate) fn flush(&self) -> FlushOutcome {
        let mut sending = self.sending.lock();
        loop {
            if sending.sent == sending.bytes.len() {
                let mut queue = self.queue.lock();
                if queue.closed || queue.bytes.is_empty() {
                    queue.scheduled = false;
                    // An idle peer keeps no buffer: most users are idle most of the time.
                    sending.bytes = Vec::new();
                    sending.sent = 0;
                    queue.bytes = Vec::new();
                    self.in_flight.store(0, Ordering::Release);
                    self.drained.notify_all();
                    return FlushOutcome::Idle;
                }
                sending.bytes.clear();
                sending.sent = 0;
                std::mem::swap(&mut sending.bytes, &mut queue.bytes);
                self.in_flight.store(sending.bytes.len(), Ordering::Release);
                crate::housekeeping::count_output(sending.bytes.len());
            }
            let start = sending.sent;
            match send_nonblocking(&self.socket, &sending.bytes[start..]) {
                Ok(n) => {
                    sending.sent += n;
                    self.in_flight.fetch_sub(n, Ordering::AcqRel);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return FlushOutcome::Blocked,
                Err(e) => {
                    tracing::debug!(peer = self.id, error = %e, "write failed");
                    sending.bytes = Vec::new();
                    sending.sent = 0;
                    drop(sending);
                    self.close_output();
                    let mut queue = self.queue.lock();
                    queue.scheduled = false;
                    self.in_flight.store(0, Ordering::Release);
                    self.drained.notify_all();
                    return FlushOutcome::Idle;
                }
            }
        }
    }
}

/// One `send` that never blocks, whatever the socket's blocking mode (its reader thread blocks
/// on it), and never raises SIGPIPE.
fn send_nonblocking(socket: &Socket, bytes: &[u8]) -> io::Result<usize> {
    socket.send_with_flags(bytes, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
}
