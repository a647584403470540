//! The client's opening handshake (RFC 6455 section 4.1): `GET /ws` with a random key, and a
//! `101` answer whose `Sec-WebSocket-Accept` matches it.

use std::net::SocketAddr;

use httparse::{Status, EMPTY_HEADER};
use tokio::io::AsyncReadExt;
use tungstenite::handshake::client::generate_key;
use tungstenite::handshake::derive_accept_key;

use crate::login::LoginFail;
use crate::net::Stream;

/// A response head longer than this is not the chat-server's.
const MAX_HEAD: usize = 8 * 1024;

/// What the server's answer to the upgrade was.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Not a whole head yet.
    Partial,
    /// `101` with the right accept key; the head's length.
    Upgraded(usize),
    /// Another status, with its reason phrase.
    Refused(u16, String),
}

/// The upgrade request for `addr`, and the key it carries.
pub fn request(addr: SocketAddr) -> (String, String) {
    let key = generate_key();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    (req, key)
}

/// Reads the answer in `buf` to a request that sent `key`.
pub fn check(buf: &[u8], key: &str) -> Result<Answer, LoginFail> {
    let mut headers = [EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) => return Ok(Answer::Partial),
        Err(e) => {
            return Err(LoginFail::Upgrade(format!(
                "the answer is not HTTP ({e}); with --ws, -p must be the server's web port \
                 (its `web on` line), not the line port"
            )))
        }
    };
    let code = resp.code.unwrap_or(0);
    if code != 101 {
        return Ok(Answer::Refused(code, resp.reason.unwrap_or("").to_owned()));
    }
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let has_token = |name: &str, token: &str| {
        header(name).is_some_and(|v| {
            v.split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    if !has_token("upgrade", "websocket") || !has_token("connection", "upgrade") {
        return Err(LoginFail::Upgrade(
            "the 101 answer lacks `Upgrade: websocket` or `Connection: Upgrade`".into(),
        ));
    }
    let want = derive_accept_key(key.as_bytes());
    match header("sec-websocket-accept") {
        Some(got) if got == want.as_bytes() => Ok(Answer::Upgraded(len)),
        got => Err(LoginFail::Upgrade(format!(
            "Sec-WebSocket-Accept is {:?}, the key asks for {want:?}",
            got.map(String::from_utf8_lossy)
        ))),
    }
}

/// Upgrades a new connection to `addr`. Returns the bytes that came after the `101` head:
/// the first frames, often the banner and the prompt.
pub async fn upgrade(s: &mut Stream, addr: SocketAddr) -> Result<Vec<u8>, LoginFail> {
    let io = |what: &str, e: std::io::Error| LoginFail::Other(format!("{what}: {e}"));
    let (req, key) = request(addr);
    s.send(req.as_bytes())
        .await
        .map_err(|e| io("sending the WebSocket upgrade", e))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = match check(&buf, &key)? {
            Answer::Upgraded(len) => {
                buf.drain(..len);
                return Ok(buf);
            }
            Answer::Refused(code, reason) => return Err(refused(s, &buf, code, &reason).await),
            Answer::Partial if buf.len() > MAX_HEAD => {
                return Err(LoginFail::Upgrade(format!(
                    "no end of the answer's head in {} bytes",
                    buf.len()
                )))
            }
            Answer::Partial => s
                .read(&mut chunk)
                .await
                .map_err(|e| io("reading the answer to the WebSocket upgrade", e))?,
        };
        if n == 0 {
            return Err(LoginFail::Other(
                "the server closed the connection during the WebSocket upgrade".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Why the upgrade got `code`: a full server says so in a 503's body (PROTOCOL.md section 9).
async fn refused(s: &mut Stream, buf: &[u8], code: u16, reason: &str) -> LoginFail {
    let mut body = buf.to_vec();
    let mut chunk = [0u8; 1024];
    // The server closes after its answer; a short wait reads the rest of the body.
    let wait = std::time::Duration::from_millis(500);
    while body.len() < MAX_HEAD {
        match tokio::time::timeout(wait, s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => body.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    if code == 503 && memchr::memmem::find(&body, b"! server full").is_some() {
        return LoginFail::Full;
    }
    LoginFail::Upgrade(format!(
        "the web port answered `{code} {reason}` to `GET /ws`, not `101 Switching Protocols`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(accept: &str, extra: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n{extra}"
        )
        .into_bytes()
    }

    #[test]
    fn the_request_carries_a_fresh_key() {
        let addr: SocketAddr = "127.0.0.1:9010".parse().unwrap();
        let (req, key) = request(addr);
        assert!(req.starts_with("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:9010\r\n"));
        assert!(req.contains(&format!("Sec-WebSocket-Key: {key}\r\n")));
        assert!(req.contains("Sec-WebSocket-Version: 13\r\n") && req.ends_with("\r\n\r\n"));
        assert_eq!(key.len(), 24, "16 bytes in base64");
        assert_ne!(request(addr).1, key);
    }

    #[test]
    fn accept_key_of_rfc_6455() {
        // The example of RFC 6455 section 1.3.
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let a = answer("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "early frames");
        let len = a.len() - "early frames".len();
        assert_eq!(check(&a, key).unwrap(), Answer::Upgraded(len));
        for cut in 0..len {
            assert_eq!(
                check(&a[..cut], key).unwrap(),
                Answer::Partial,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_wrong_accept_key_is_refused() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let e = check(&answer("AAAAAAAAAAAAAAAAAAAAAAAAAAA=", ""), key).unwrap_err();
        assert!(
            e.is_fatal() && e.to_string().contains("Sec-WebSocket-Accept"),
            "{e}"
        );
        let no_upgrade = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: x\r\n\r\n";
        assert!(check(no_upgrade, key).is_err());
    }

    #[test]
    fn other_statuses_and_the_line_port() {
        let r = check(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "k").unwrap();
        assert_eq!(r, Answer::Refused(404, "Not Found".into()));
        let e = check(b"* welcome to chat\r\nUsername: ", "k").unwrap_err();
        assert!(e.to_string().contains("web port"), "{e}");
    }
}
