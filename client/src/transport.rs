//! The byte stream to the server: plain TCP, or TLS over TCP (`--tls`).
//!
//! Two threads use one connection: the socket reader reads, the main thread writes. A
//! [`Transport`] is a cheap handle that both hold; for TLS the handles share one session.
//!
//! TLS design: the socket stays blocking and the `rustls::ClientConnection` sits behind a mutex.
//! The reader waits for bytes with `peek` (honouring the read timeout) without holding the
//! session, then locks it only to take in what has arrived and decrypt it. The writer encrypts
//! under the lock and writes the records to the socket after releasing it, so a slow socket
//! never keeps the reader from the session. TLS records must reach the wire in the order they
//! were sealed, so a second mutex (`send`) orders each seal-and-write as one step.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustls::ClientConnection;

/// A shared handle on the connection; clones use the same socket (and TLS session).
#[derive(Clone)]
pub enum Transport {
    Plain(Arc<TcpStream>),
    Tls(Arc<TlsStream>),
}

impl Transport {
    pub fn plain(stream: TcpStream) -> Self {
        Transport::Plain(Arc::new(stream))
    }

    /// A TLS transport over `tcp`; `conn` has finished its handshake (see [`crate::tls`]).
    pub fn tls(tcp: TcpStream, conn: ClientConnection) -> Self {
        Transport::Tls(Arc::new(TlsStream {
            tcp,
            conn: Mutex::new(conn),
            send: Mutex::new(()),
        }))
    }

    /// Reads what the server sent: `Ok(0)` at the end of the stream, an error of kind
    /// `WouldBlock` or `TimedOut` when `wait` passed with nothing (`None`: wait as long as it
    /// takes). Only one thread reads.
    pub fn read(&self, buf: &mut [u8], wait: Option<Duration>) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => {
                tcp.set_read_timeout(wait)?;
                (&**tcp).read(buf)
            }
            Self::Tls(tls) => tls.read(buf, wait),
        }
    }

    /// Sends all of `bytes`.
    pub fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => (&**tcp).write_all(bytes),
            Self::Tls(tls) => tls.write_all(bytes),
        }
    }

    /// Closes the connection in both directions; a blocked [`Transport::read`] returns.
    pub fn shutdown(&self) {
        match self {
            Self::Plain(tcp) => {
                let _ = tcp.shutdown(Shutdown::Both);
            }
            Self::Tls(tls) => tls.shutdown(),
        }
    }
}

/// One TLS session over a blocking socket, usable from two threads.
pub struct TlsStream {
    tcp: TcpStream,
    conn: Mutex<ClientConnection>,
    /// Held while records are sealed and written, so they reach the wire in order.
    send: Mutex<()>,
}

/// How long a close waits to deliver its `close_notify`.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

impl TlsStream {
    fn conn(&self) -> MutexGuard<'_, ClientConnection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read(&self, buf: &mut [u8], wait: Option<Duration>) -> io::Result<usize> {
        let deadline = wait.map(|wait| Instant::now() + wait);
        loop {
            // Plaintext already decrypted (perhaps during the handshake) comes first.
            match self.conn().reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The server closed TCP without a close_notify. A line chat has no length to
                // truncate, so this is an ordinary end, as on a plain connection.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            // Wait for bytes without holding the session, so the writer is never held up.
            let left = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Err(io::ErrorKind::TimedOut.into()),
                },
                None => None,
            };
            self.tcp.set_read_timeout(left)?;
            self.tcp.peek(&mut [0u8; 1])?;
            if self.receive()? {
                self.flush()?;
            }
        }
    }

    /// Takes in the bytes that have arrived and decrypts them; true if the session has
    /// something to send in return (an alert, a key update).
    fn receive(&self) -> io::Result<bool> {
        let mut conn = self.conn();
        match conn.read_tls(&mut &self.tcp) {
            // At the end of the stream rustls now knows, and its reader reports it next.
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
        if let Err(e) = conn.process_new_packets() {
            // Tell the server why (the alert rustls queued), then give up on the session.
            drop(conn);
            let _ = self.flush();
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        Ok(conn.wants_write())
    }

    fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        let _order = self.send.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let (taken, sealed) = {
                let mut conn = self.conn();
                let taken = conn.writer().write(bytes)?;
                (taken, sealed(&mut conn)?)
            };
            if taken == 0 && sealed.is_empty() && !bytes.is_empty() {
                return Err(io::ErrorKind::WriteZero.into());
            }
            (&self.tcp).write_all(&sealed)?;
            bytes = &bytes[taken..];
            if bytes.is_empty() {
                return Ok(());
            }
        }
    }

    /// Writes out whatever the session has queued.
    fn flush(&self) -> io::Result<()> {
        self.write_all(&[])
    }

    fn shutdown(&self) {
        // A polite close_notify, if the socket takes it quickly; then close regardless.
        self.conn().send_close_notify();
        let _ = self.tcp.set_write_timeout(Some(CLOSE_WAIT));
        let _ = self.flush();
        let _ = self.tcp.shutdown(Shutdown::Both);
    }
}

/// Takes the records the session has sealed, ready for the socket.
fn sealed(conn: &mut ClientConnection) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out)?;
    }
    Ok(out)
}
