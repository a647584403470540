//! Clients of the web port: a WebSocket chat user (tungstenite) and one-shot HTTP requests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::WebSocket;
use tungstenite::{Error, Message};

use crate::T;

/// A WebSocket chat connection. Every read has a deadline.
pub struct WsClient {
    ws: WebSocket<TcpStream>,
    label: String,
    /// The last lines read, for failure messages.
    recent: Vec<String>,
}

/// How a WebSocket connection ended, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
pub enum WsEnd {
    /// A close frame with this code.
    Close(Option<u16>),
    /// The TCP connection ended without a close frame.
    Dropped,
}

impl WsClient {
    /// Connects to `ws://ADDR/ws` without an `Origin` (not a browser).
    pub fn connect(addr: SocketAddr) -> WsClient {
        Self::try_connect(addr, "/ws", None).unwrap_or_else(|e| panic!("ws connect: {e}"))
    }

    /// Connects to `ws://ADDR{path}`, with an `Origin` header if given.
    pub fn try_connect(
        addr: SocketAddr,
        path: &str,
        origin: Option<&str>,
    ) -> Result<WsClient, Error> {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
        Self::try_connect_with(addr, path, &headers, None)
    }

    /// Connects to `ws://ADDR{path}` with extra request headers, from `local` if given.
    pub fn try_connect_with(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        local: Option<std::net::IpAddr>,
    ) -> Result<WsClient, Error> {
        let stream = match local {
            Some(local) => crate::client::stream_from(addr, local),
            None => TcpStream::connect(addr).expect("tcp connect to the web port"),
        };
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let mut request = format!("ws://{addr}{path}").into_client_request()?;
        for (name, value) in headers {
            let name =
                tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("header name");
            request
                .headers_mut()
                .insert(name, HeaderValue::from_str(value).expect("header value"));
        }
        let (ws, _) = tungstenite::client(request, stream).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            tungstenite::HandshakeError::Interrupted(_) => {
                Error::Io(std::io::ErrorKind::WouldBlock.into())
            }
        })?;
        Ok(WsClient {
            ws,
            label: format!("ws:{addr}"),
            recent: Vec::new(),
        })
    }

    pub fn set_label(&mut self, label: &str) {
        self.label = label.to_owned();
    }

    pub fn stream(&self) -> &TcpStream {
        self.ws.get_ref()
    }

    /// The next message of any kind before the deadline; `Err` when the connection ends.
    pub fn try_next_message(&mut self, deadline: Instant) -> Result<Option<Message>, WsEnd> {
        loop {
            match self.ws.read() {
                Ok(Message::Close(frame)) => {
                    return Err(WsEnd::Close(frame.map(|f| u16::from(f.code))));
                }
                Ok(message) => return Ok(Some(message)),
                Err(Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() >= deadline {
                        return Ok(None);
                    }
                }
                Err(_) => return Err(WsEnd::Dropped),
            }
        }
    }

    /// The next text message (pings and pongs skipped), within [`T`].
    pub fn next_line(&mut self) -> String {
        self.next_line_within(T)
    }

    pub fn next_line_within(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            match self.try_next_message(deadline) {
                Ok(Some(Message::Text(text))) => {
                    self.recent.push(text.to_string());
                    return text.to_string();
                }
                Ok(Some(Message::Binary(bytes))) => panic!(
                    "{}: the server sent a binary message {bytes:?}; lines are text messages",
                    self.label
                ),
                Ok(Some(_)) => continue,
                Ok(None) => panic!(
                    "{}: no message within {timeout:?}; recent lines: {:?}",
                    self.label,
                    self.recent_lines()
                ),
                Err(end) => panic!(
                    "{}: connection ended ({end:?}) while waiting for a line; recent: {:?}",
                    self.label,
                    self.recent_lines()
                ),
            }
        }
    }

    fn recent_lines(&self) -> &[String] {
        &self.recent[self.recent.len().saturating_sub(8)..]
    }

    pub fn expect_next(&mut self, expected: &str) {
        let line = self.next_line();
        assert_eq!(
            line,
            expected,
            "{}: recent {:?}",
            self.label,
            self.recent_lines()
        );
    }

    /// Reads lines until one matches; returns it.
    pub fn expect_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{}: no line {what} within {T:?}; recent: {:?}",
                self.label,
                self.recent_lines()
            );
            let line = self.next_line_within(left);
            if pred(&line) {
                return line;
            }
        }
    }

    pub fn send(&mut self, text: &str) {
        self.ws
            .send(Message::text(text))
            .unwrap_or_else(|e| panic!("{}: sending {text:?}: {e}", self.label));
    }

    pub fn send_message(&mut self, message: Message) -> Result<(), Error> {
        self.ws.send(message)
    }

    /// Reads the banner and the prompt (a message of its own), sends `name`, and reads the
    /// welcome line.
    pub fn login(&mut self, name: &str) -> String {
        self.expect_line("`Username: `", |l| l == "Username: ");
        self.send(name);
        self.set_label(name);
        self.expect_line("the welcome", |l| {
            l.starts_with("* welcome, ") && l.contains(name)
        })
    }

    /// Reads until the connection ends; returns how, and the text lines read on the way.
    pub fn expect_end(&mut self) -> (WsEnd, Vec<String>) {
        let deadline = Instant::now() + T;
        let mut lines = Vec::new();
        loop {
            match self.try_next_message(deadline) {
                Ok(Some(Message::Text(text))) => lines.push(text.to_string()),
                Ok(Some(_)) => {}
                Ok(None) => panic!("{}: still open after {T:?}; read {lines:?}", self.label),
                Err(end) => return (end, lines),
            }
        }
    }

    /// Reads until a close frame; asserts its code.
    pub fn expect_close(&mut self, code: CloseCode) -> Vec<String> {
        let (end, lines) = self.expect_end();
        assert_eq!(
            end,
            WsEnd::Close(Some(u16::from(code))),
            "{}: expected close {code:?}; lines before: {lines:?}",
            self.label
        );
        lines
    }
}

/// One HTTP response, as read until the server closed.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` as given and reads the response until the server closes.
pub fn http_raw(addr: SocketAddr, request: &[u8]) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).expect("tcp connect to the web port");
    stream.set_read_timeout(Some(T)).expect("read timeout");
    // The server may answer and close before it has read all of a large request.
    let _ = stream.write_all(request);
    let mut raw = Vec::new();
    if let Err(e) = stream.read_to_end(&mut raw) {
        assert!(
            !raw.is_empty(),
            "no HTTP response to {:?}: {e}",
            String::from_utf8_lossy(&request[..request.len().min(80)])
        );
    }
    parse_response(&raw)
}

/// `METHOD PATH` with a Host header.
pub fn http_request(addr: SocketAddr, method: &str, path: &str) -> HttpResponse {
    http_raw(
        addr,
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
}

fn parse_response(raw: &[u8]) -> HttpResponse {
    let text = String::from_utf8_lossy(raw);
    let end = text
        .find("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {text:?}"));
    let mut lines = text[..end].split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (name, value) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("bad header {l:?}"));
            (name.trim().to_owned(), value.trim().to_owned())
        })
        .collect();
    let body = raw[end + 4..].to_vec();
    HttpResponse {
        status,
        headers,
        body,
    }
}
