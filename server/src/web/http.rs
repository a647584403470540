//! The HTTP/1.1 side of the web port: reading one request head (httparse) within the login
//! deadline and an 8 KiB bound, and writing responses, each with a `Content-Length`.

use std::time::Instant;

use std::sync::Arc;

use crate::peer::Peer;
use crate::transport::input;

/// The largest request head taken; past it, `431`.
pub const MAX_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 64;

/// A request head, with what was read after it (the first WebSocket frames, for an upgrade).
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The path without its query string.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub rest: Vec<u8>,
}

/// Why no request came.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    /// The head passed [`MAX_HEAD`].
    TooLarge,
    /// Not HTTP.
    Malformed,
    /// The client closed, failed, or the deadline passed first.
    Gone,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True when a comma-separated header (`Connection`, `Upgrade`) lists `token`.
    pub fn header_has(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// Reads one request head from the socket, waiting until `deadline` at most. Out of line, so its
/// buffers are not in the frame a WebSocket user then waits under for the rest of its life.
#[inline(never)]
pub fn read_head(peer: &Arc<Peer>, deadline: Instant) -> Result<Request, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        match input::wait(peer, Some(deadline)) {
            Ok(true) => {}
            Ok(false) if Instant::now() < deadline => continue,
            _ => return Err(HeadError::Gone),
        }
        let n = match input::read_available(peer, &mut chunk) {
            Ok(0) => return Err(HeadError::Gone),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(HeadError::Gone),
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(request) = parse_head(&buf)? {
            return Ok(request);
        }
        if buf.len() >= MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Parses a complete head from the start of `buf`; `None` while it is incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<Request>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    if len > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let target = request.path.unwrap_or("/");
    let path = target.split(['?', '#']).next().unwrap_or("/").to_owned();
    Ok(Some(Request {
        method: request.method.unwrap_or("").to_owned(),
        path,
        headers: request
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).trim().to_owned(),
                )
            })
            .collect(),
        rest: buf[len..].to_vec(),
    }))
}

/// A response to write in one piece.
pub struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// `HEAD`: the headers say what `GET` would send, and no body follows.
    head_only: bool,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type", content_type.to_owned())],
            body: body.into(),
            head_only: false,
        }
    }

    /// A short plain-text response, for errors.
    pub fn text(status: u16, body: &str) -> Self {
        Self::new(status, "text/plain; charset=utf-8", format!("{body}\n"))
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn head_only(mut self, yes: bool) -> Self {
        self.head_only = yes;
        self
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// The bytes on the wire; every response closes its connection.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = out.into_bytes();
        if !self.head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

/// The `101` that completes a WebSocket upgrade.
pub fn switching_protocols(accept_key: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept_key}\r\n\r\n"
    )
    .into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_parses_with_its_path_headers_and_what_follows() {
        let raw =
            b"GET /ws?x=1 HTTP/1.1\r\nHost: a:1\r\nConnection: keep-alive, Upgrade\r\n\r\n\x81";
        let request = parse_head(raw).unwrap().unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/ws");
        assert_eq!(request.header("host"), Some("a:1"));
        assert!(request.header_has("connection", "upgrade"));
        assert!(!request.header_has("connection", "close"));
        assert_eq!(request.rest, b"\x81");
    }

    #[test]
    fn incomplete_and_broken_heads() {
        assert!(parse_head(b"GET / HTTP/1.1\r\nHost: a").unwrap().is_none());
        assert_eq!(
            parse_head(b"\x00\x01 nonsense\r\n\r\n").unwrap_err(),
            HeadError::Malformed
        );
    }

    #[test]
    fn responses_have_a_length_and_head_has_no_body() {
        let get = Response::text(404, "not found").to_bytes();
        let text = String::from_utf8(get).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("Content-Length: 10\r\n"));
        assert!(text.ends_with("\r\n\r\nnot found\n"));
        let head = Response::text(200, "hello").head_only(true).to_bytes();
        let text = String::from_utf8(head).unwrap();
        assert!(text.contains("Content-Length: 6\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }
}
