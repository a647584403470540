//! A raw TCP chat client that checks the server's framing on every line it reads.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::{show, T};

mod ops;

/// Why a read stopped without the wanted data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The deadline passed.
    Timeout,
    /// The server closed the connection (EOF).
    Closed,
    /// The connection was reset (or aborted).
    Reset,
}

/// One connection to the server. Every read has a deadline; every failure shows what arrived.
pub struct Client {
    stream: TcpStream,
    /// Received bytes not consumed yet.
    buf: Vec<u8>,
    /// The last lines consumed, for failure messages.
    recent: VecDeque<String>,
    closed: Option<End>,
    label: String,
}

const RECENT: usize = 30;

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, T)
            .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        Client::from_stream(stream)
    }

    /// Connects from a given local address (any of 127.0.0.0/8 works on Linux), so a test can
    /// play several hosts.
    pub fn connect_from(addr: SocketAddr, local: std::net::IpAddr) -> Client {
        Client::from_stream(stream_from(addr, local))
    }

    /// Connects with a small receive buffer (set before connecting, so the window stays small):
    /// a client that stops reading fills its kernel buffers quickly.
    pub fn connect_with_rcvbuf(addr: SocketAddr, rcvbuf: usize) -> Client {
        use socket2::{Domain, Protocol, SockAddr, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
            .expect("creating a TCP socket");
        socket
            .set_recv_buffer_size(rcvbuf)
            .expect("setting SO_RCVBUF");
        socket
            .connect_timeout(&SockAddr::from(addr), T)
            .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        Client::from_stream(socket.into())
    }

    pub fn from_stream(stream: TcpStream) -> Client {
        stream.set_nodelay(true).expect("TCP_NODELAY");
        stream.set_write_timeout(Some(T)).expect("write timeout");
        let label = match stream.local_addr() {
            Ok(a) => format!("client :{}", a.port()),
            Err(_) => "client".to_owned(),
        };
        Client {
            stream,
            buf: Vec::new(),
            recent: VecDeque::new(),
            closed: None,
            label,
        }
    }

    /// The name used in failure messages (set by [`Client::login`]).
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn set_label(&mut self, label: &str) {
        self.label = label.to_owned();
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// What this client has seen, for panic messages.
    pub fn context(&self) -> String {
        let mut s = format!("[{}] last lines read:", self.label);
        if self.recent.is_empty() {
            s.push_str(" (none)");
        }
        for l in &self.recent {
            s.push_str(&format!("\n    {l:?}"));
        }
        s.push_str(&format!(
            "\n  unread bytes: {}\n  connection: {}",
            show(&self.buf),
            match self.closed {
                None => "open",
                Some(End::Closed) => "closed by the server (EOF)",
                Some(End::Reset) => "reset",
                Some(End::Timeout) => "?",
            }
        ));
        s
    }

    /// Reads once (whatever is available) into the buffer, waiting at most until `deadline`.
    fn fill(&mut self, deadline: Instant) -> Result<usize, End> {
        if let Some(end) = self.closed {
            return Err(end);
        }
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(End::Timeout);
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            self.stream
                .set_read_timeout(Some(wait))
                .expect("set_read_timeout");
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.closed = Some(End::Closed);
                    return Err(End::Closed);
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                        return Err(End::Timeout)
                    }
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe => {
                        self.closed = Some(End::Reset);
                        return Err(End::Reset);
                    }
                    _ => panic!("{}: read error {e}\n{}", self.label, self.context()),
                },
            }
        }
    }

    /// Takes one complete line from the buffer, checking the framing rules of PROTOCOL.md
    /// section 1: CRLF ending, no other CR or control, one of the three prefixes.
    fn take_line(&mut self) -> Option<Vec<u8>> {
        let pos = self.buf.iter().position(|&b| b == b'\n')?;
        let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
        line.pop();
        if line.pop() != Some(b'\r') {
            panic!(
                "{}: server line not ending in CRLF: {}\n{}",
                self.label,
                show(&line),
                self.context()
            );
        }
        if line.contains(&b'\r') {
            panic!(
                "{}: server line holds a bare CR: {}\n{}",
                self.label,
                show(&line),
                self.context()
            );
        }
        if !(line.starts_with(b"* ") || line.starts_with(b"! ") || line.starts_with(b"[")) {
            panic!(
                "{}: server line without a `* `, `! ` or `[` prefix: {}\n{}",
                self.label,
                show(&line),
                self.context()
            );
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent
            .push_back(String::from_utf8_lossy(&line).into_owned());
        Some(line)
    }

    /// The next line, or why there is none by `deadline`.
    pub fn try_next_line_bytes(&mut self, deadline: Instant) -> Result<Vec<u8>, End> {
        loop {
            if let Some(line) = self.take_line() {
                return Ok(line);
            }
            self.fill(deadline)?;
        }
    }

    fn lost(&self, end: End, waiting_for: &str, timeout: Duration) -> ! {
        let why = match end {
            End::Timeout => format!("nothing matching within {timeout:?}"),
            End::Closed => "the server closed the connection".to_owned(),
            End::Reset => "the connection was reset".to_owned(),
        };
        panic!(
            "{}: waiting for {waiting_for}: {why}\n{}",
            self.label,
            self.context()
        )
    }

    /// The next line as raw bytes (without CRLF).
    pub fn next_line_bytes(&mut self, timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        match self.try_next_line_bytes(deadline) {
            Ok(line) => line,
            Err(end) => self.lost(end, "a line", timeout),
        }
    }

    fn utf8(&self, line: Vec<u8>) -> String {
        String::from_utf8(line).unwrap_or_else(|e| {
            panic!(
                "{}: server line is not UTF-8: {}\n{}",
                self.label,
                show(e.as_bytes()),
                self.context()
            )
        })
    }

    /// The next line (without CRLF), within [`T`].
    pub fn next_line(&mut self) -> String {
        self.next_line_within(T)
    }

    pub fn next_line_within(&mut self, timeout: Duration) -> String {
        let line = self.next_line_bytes(timeout);
        self.utf8(line)
    }

    /// The very next line must be `expected`.
    pub fn expect_next(&mut self, expected: &str) {
        let line = self.next_line();
        assert_eq!(
            line,
            expected,
            "{}: unexpected next line\n{}",
            self.label,
            self.context()
        );
    }

    /// Skips lines until one satisfies `pred` (described by `what`) and returns it.
    pub fn expect_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.expect_line_within(what, T, pred)
    }

    pub fn expect_line_within(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            match self.try_next_line_bytes(deadline) {
                Ok(line) => {
                    let line = self.utf8(line);
                    if pred(&line) {
                        return line;
                    }
                }
                Err(end) => self.lost(end, what, timeout),
            }
        }
    }

    /// Skips lines until exactly `expected`.
    pub fn expect_line_eq(&mut self, expected: &str) {
        self.expect_line(&format!("{expected:?}"), |l| l == expected);
    }

    /// Unread bytes (for tests that look at raw input).
    pub fn unread(&self) -> &[u8] {
        &self.buf
    }
}

/// True if `line` starts with `prefix` followed by the end or a non-word character (`\b`).
pub fn is_word_prefix(line: &str, prefix: &str) -> bool {
    match line.strip_prefix(prefix) {
        Some(rest) => !rest
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_'),
        None => false,
    }
}

/// A TCP connection to `addr` from the local address `local`.
pub fn stream_from(addr: SocketAddr, local: std::net::IpAddr) -> TcpStream {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .expect("creating a TCP socket");
    socket
        .bind(&SockAddr::from(SocketAddr::new(local, 0)))
        .unwrap_or_else(|e| panic!("binding to {local}: {e}"));
    socket
        .connect_timeout(&SockAddr::from(addr), T)
        .unwrap_or_else(|e| panic!("connecting to {addr} from {local}: {e}"));
    socket.into()
}
