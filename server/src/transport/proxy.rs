//! The PROXY protocol, version 1 (the text one), on the line port (`--proxy-protocol`).
//!
//! Behind a TCP load balancer every connection comes from the balancer's address, so limits,
//! bans and logs would all see one user. HAProxy's `send-proxy` (and most balancers') puts one
//! line in front of the stream instead: `PROXY TCP4 SRC DST SPORT DPORT\r\n`. It is believed
//! only from `--trusted` addresses, which must then send it; anyone else connects as usual.

use std::net::IpAddr;
use std::thread;
use std::time::{Duration, Instant};

use super::socket::wait_readable_until;
use crate::peer::Peer;

/// The longest version 1 header, CRLF included (the specification's own bound).
const MAX_HEADER: usize = 107;

/// What the header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The user's address.
    Client(IpAddr),
    /// `PROXY UNKNOWN`: the balancer's own connection (a health check); its address stands.
    Unknown,
}

/// Parses a header line without its CRLF.
pub fn parse(line: &[u8]) -> Result<Origin, &'static str> {
    let line = std::str::from_utf8(line).map_err(|_| "not text")?;
    let mut words = line.split(' ');
    if words.next() != Some("PROXY") {
        return Err("no PROXY header");
    }
    match words.next() {
        Some("UNKNOWN") => Ok(Origin::Unknown),
        Some(family @ ("TCP4" | "TCP6")) => {
            let source: IpAddr = words
                .next()
                .and_then(|w| w.parse().ok())
                .ok_or("bad source address")?;
            let destination: Option<IpAddr> = words.next().and_then(|w| w.parse().ok());
            let ports_ok = words
                .by_ref()
                .take(2)
                .filter(|w| w.parse::<u16>().is_ok())
                .count()
                == 2;
            if destination.is_none() || !ports_ok || words.next().is_some() {
                return Err("bad addresses or ports");
            }
            if (family == "TCP4") != source.is_ipv4() {
                return Err("address of the wrong family");
            }
            Ok(Origin::Client(source))
        }
        _ => Err("unknown protocol family"),
    }
}

/// Reads the header at the start of a connection, by the login deadline, taking exactly its
/// bytes off the socket (what follows is the chat). Out of line: an idle connection's stack is
/// the frames it waits under, and this one is done before the first wait.
#[inline(never)]
pub fn read_header(peer: &Peer, deadline: Instant) -> Result<Origin, &'static str> {
    let socket = peer.socket();
    let mut buf = [0u8; MAX_HEADER];
    loop {
        if !wait_readable_until(socket, Some(deadline)).map_err(|_| "connection error")? {
            return Err("no PROXY header in time");
        }
        let peeked = recv(socket, &mut buf, libc::MSG_PEEK)?;
        let seen = &buf[..peeked];
        if peeked == 0 {
            return Err("closed before its PROXY header");
        }
        if !b"PROXY ".starts_with(&seen[..seen.len().min(6)]) {
            return Err("no PROXY header");
        }
        if let Some(end) = seen.windows(2).position(|w| w == b"\r\n") {
            let line = seen[..end].to_vec();
            recv(socket, &mut buf[..end + 2], 0)?;
            return parse(&line);
        }
        if peeked == MAX_HEADER {
            return Err("PROXY header too long");
        }
        // The rest of the header is on its way (it is sent in one piece, so rarely).
        thread::sleep(Duration::from_millis(5));
        if Instant::now() >= deadline {
            return Err("no PROXY header in time");
        }
    }
}

fn recv(socket: &socket2::Socket, buf: &mut [u8], flags: i32) -> Result<usize, &'static str> {
    // SAFETY: socket2's recv takes MaybeUninit; an initialised buffer is a valid one.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) };
    socket
        .recv_with_flags(uninit, flags | libc::MSG_DONTWAIT)
        .map_err(|_| "connection error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_one_headers() {
        let v4 = parse(b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 9009").unwrap();
        assert_eq!(v4, Origin::Client("203.0.113.7".parse().unwrap()));
        let v6 = parse(b"PROXY TCP6 2001:db8::1 2001:db8::2 51234 9009").unwrap();
        assert_eq!(v6, Origin::Client("2001:db8::1".parse().unwrap()));
        assert_eq!(parse(b"PROXY UNKNOWN"), Ok(Origin::Unknown));
        assert_eq!(
            parse(b"PROXY UNKNOWN ffff::1 ffff::2 1 2"),
            Ok(Origin::Unknown)
        );
        for bad in [
            &b"alice"[..],
            b"PROXY TCP4 203.0.113.7",
            b"PROXY TCP4 2001:db8::1 10.0.0.1 1 2",
            b"PROXY TCP4 203.0.113.7 10.0.0.1 1 99999",
            b"PROXY TCP4 203.0.113.7 10.0.0.1 1 2 extra",
            b"PROXY UDP4 203.0.113.7 10.0.0.1 1 2",
            b"PROXY TCP4 x 10.0.0.1 1 2",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
