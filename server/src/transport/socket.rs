//! Socket calls the reader threads share: waiting for input without holding a buffer, and
//! reading without blocking.

use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use socket2::Socket;

/// Blocks until the socket has input (or EOF, or an error to report), or the timeout passes
/// (returns false). Waiting without a buffer keeps an idle connection's memory to its stack.
pub fn wait_readable(socket: &Socket, timeout: Option<Duration>) -> io::Result<bool> {
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

/// [`wait_readable`] until an instant rather than for a duration.
pub fn wait_readable_until(socket: &Socket, deadline: Option<Instant>) -> io::Result<bool> {
    wait_readable(
        socket,
        deadline.map(|due| due.saturating_duration_since(Instant::now())),
    )
}

pub fn recv_nonblocking(socket: &Socket, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: socket2's recv takes MaybeUninit; an initialised buffer is a valid one.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) };
    socket.recv_with_flags(uninit, libc::MSG_DONTWAIT)
}

/// How long a closing connection reads and discards what the client still sends.
const LINGER_ON_CLOSE: Duration = Duration::from_millis(500);

/// Half-closes, then reads and discards until the client closes too (or a short while passes):
/// closing a socket with unread input sends a reset, which can destroy the last lines still on
/// their way to the client.
pub fn linger(mut socket: &Socket) {
    use std::io::Read;
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
