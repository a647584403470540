//! The flusher's side of a peer: sending what is queued, as it is or through TLS, without ever
//! blocking on the socket.

use std::io;
use std::sync::atomic::Ordering;

use rustls::ServerConnection;
use socket2::Socket;

use super::{FlushOutcome, OutQueue, Peer};

impl Peer {
    /// Sends what can be sent without blocking. Called only by this peer's flusher thread.
    pub(crate) fn flush(&self) -> FlushOutcome {
        if let Some(tls) = &self.tls {
            return self.flush_tls(&mut tls.lock());
        }
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

    /// Moves queued plaintext into the TLS session and writes its records until the socket is
    /// full or all is sent. A closing peer gets close_notify after its last bytes.
    fn flush_tls(&self, tls: &mut ServerConnection) -> FlushOutcome {
        loop {
            while tls.wants_write() {
                match tls.write_tls(&mut SocketWriter(&self.socket)) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return FlushOutcome::Blocked
                    }
                    Err(e) => {
                        tracing::debug!(peer = self.id, error = %e, "TLS write failed");
                        self.close_output();
                        return self.settle_idle(&mut self.queue.lock());
                    }
                }
            }
            let mut queue = self.queue.lock();
            if queue.closed {
                return self.settle_idle(&mut queue);
            }
            if queue.bytes.is_empty() {
                if queue.closing && !queue.notified {
                    queue.notified = true;
                    tls.send_close_notify();
                    continue;
                }
                // Under the same lock as the check, so output queued meanwhile reschedules.
                return self.settle_idle(&mut queue);
            }
            let bytes = std::mem::take(&mut queue.bytes);
            self.in_flight.store(bytes.len(), Ordering::Release);
            drop(queue);
            crate::housekeeping::count_output(bytes.len());
            // The session's buffer has no limit, so this takes everything.
            if let Err(e) = io::Write::write_all(&mut tls.writer(), &bytes) {
                tracing::debug!(peer = self.id, error = %e, "TLS session refused output");
                self.close_output();
                return self.settle_idle(&mut self.queue.lock());
            }
        }
    }

    /// Nothing left to send: the peer leaves the flusher until more is queued.
    fn settle_idle(&self, queue: &mut OutQueue) -> FlushOutcome {
        queue.scheduled = false;
        queue.bytes = Vec::new();
        self.in_flight.store(0, Ordering::Release);
        self.drained.notify_all();
        FlushOutcome::Idle
    }
}

/// The socket as a `Write` for rustls, never blocking.
struct SocketWriter<'a>(&'a Socket);

impl io::Write for SocketWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        send_nonblocking(self.0, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One `send` that never blocks, whatever the socket's blocking mode (its reader thread blocks
/// on it), and never raises SIGPIPE.
pub(super) fn send_nonblocking(socket: &Socket, bytes: &[u8]) -> io::Result<usize> {
    socket.send_with_flags(bytes, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
}
