//! A connection's input as plaintext: the socket's bytes as they are, or what its TLS session
//! decrypts of them. Every line source and the HTTP head reader read through here, so TLS is
//! one layer under all of them.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Instant;

use socket2::Socket;

use super::socket::{recv_nonblocking, wait_readable_until};
use crate::peer::Peer;

/// Waits until there may be input (or its end), or the deadline passes (false). Holds no
/// buffer while waiting.
pub fn wait(peer: &Peer, deadline: Option<Instant>) -> io::Result<bool> {
    if peer.tls().is_some() && tls_has_input(peer) {
        return Ok(true);
    }
    wait_readable_until(peer.socket(), deadline)
}

// The TLS paths stay out of line: an idle connection waits under `wait`'s and its callers'
// frames, and every stack page it has touched stays resident.
#[inline(never)]
fn tls_has_input(peer: &Peer) -> bool {
    let Some(tls) = peer.tls() else {
        return false;
    };
    tls.lock()
        .process_new_packets()
        .map(|state| state.plaintext_bytes_to_read() > 0 || state.peer_has_closed())
        .unwrap_or(true)
}

/// Reads what has arrived without blocking. `Ok(0)` is the end of input; `WouldBlock` means
/// nothing for the reader yet (nothing arrived, or only TLS handshake records).
pub fn read_available(peer: &Arc<Peer>, buf: &mut [u8]) -> io::Result<usize> {
    match peer.tls() {
        None => recv_nonblocking(peer.socket(), buf),
        Some(tls) => read_through_tls(peer, tls, buf),
    }
}

#[inline(never)]
fn read_through_tls(
    peer: &Arc<Peer>,
    tls: &parking_lot::Mutex<rustls::ServerConnection>,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut session = tls.lock();
    if let Some(result) = take_plaintext(&mut session, buf, false) {
        return result;
    }
    let ended = match session.read_tls(&mut SocketReader(peer.socket())) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => return Err(e),
    };
    let processed = session.process_new_packets();
    let wants_write = session.wants_write();
    let result = match processed {
        // The session has queued an alert saying why; the flusher sends it.
        Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        Ok(_) => take_plaintext(&mut session, buf, ended)
            .unwrap_or_else(|| Err(io::ErrorKind::WouldBlock.into())),
    };
    drop(session);
    if wants_write {
        peer.wake_flusher();
    }
    result
}

/// Drives a TLS handshake to its end; false if it fails or the deadline passes first. Records
/// that arrive with the last handshake flight stay in the session for the reader.
pub fn complete_handshake(peer: &Arc<Peer>, deadline: Instant) -> bool {
    let Some(tls) = peer.tls() else {
        return true;
    };
    loop {
        if !tls.lock().is_handshaking() {
            return true;
        }
        if !matches!(wait_readable_until(peer.socket(), Some(deadline)), Ok(true)) {
            return false;
        }
        let mut session = tls.lock();
        match session.read_tls(&mut SocketReader(peer.socket())) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(_) => return false,
        }
        let processed = session.process_new_packets();
        let wants_write = session.wants_write();
        drop(session);
        if wants_write {
            peer.wake_flusher();
        }
        if processed.is_err() {
            return false;
        }
    }
}

/// Plaintext the session holds, if any: `None` when it has none and the input goes on.
fn take_plaintext(
    session: &mut rustls::ServerConnection,
    buf: &mut [u8],
    ended: bool,
) -> Option<io::Result<usize>> {
    match session.reader().read(buf) {
        Ok(n) => Some(Ok(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => ended.then_some(Ok(0)),
        // The peer closed without close_notify: an end like any other for a chat.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Some(Ok(0)),
        Err(e) => Some(Err(e)),
    }
}

/// The socket as a `Read` for rustls, never blocking.
struct SocketReader<'a>(&'a Socket);

impl Read for SocketReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        recv_nonblocking(self.0, buf)
    }
}
