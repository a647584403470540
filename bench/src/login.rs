//! Connecting and logging in per PROTOCOL.md section 2, over either transport.

use std::net::SocketAddr;

use chat_common::wire::PROMPT;
use memchr::{memchr, memmem};
use tokio::io::AsyncReadExt;

use crate::net::{Connector, Stream};
use crate::ws::{self, Decoder};

/// A "line" longer than this without a newline is dropped as garbage.
pub const MAX_LINE: usize = 64 * 1024;

/// Why a login did not succeed. All but `Other` end the whole run: retrying cannot help.
#[derive(Debug)]
pub enum LoginFail {
    Refused(SocketAddr),
    Rejected {
        name: String,
        line: String,
    },
    Full,
    /// The WebSocket upgrade was refused or answered wrongly.
    Upgrade(String),
    /// The TLS handshake failed for a reason every client would meet: the certificate, or a
    /// server that does not speak TLS there.
    Tls(String),
    Other(String),
}

impl LoginFail {
    pub fn is_fatal(&self) -> bool {
        !matches!(self, LoginFail::Other(_))
    }
}

impl std::fmt::Display for LoginFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginFail::Refused(a) => write!(
                f,
                "cannot connect to {a}: connection refused (is chat-server running there? \
                 pick the server with --host and -p)"
            ),
            LoginFail::Rejected { name, line } if line.contains("taken") => write!(
                f,
                "login as {name} rejected: the server said {line:?}; another client holds \
                 these names, pick another name prefix with --prefix"
            ),
            LoginFail::Rejected { name, line } => {
                write!(f, "login as {name} rejected: the server said {line:?}")
            }
            LoginFail::Full => write!(
                f,
                "the server answered `! server full`: start it with a larger --max-clients"
            ),
            LoginFail::Upgrade(s) => write!(f, "WebSocket upgrade failed: {s}"),
            LoginFail::Tls(s) | LoginFail::Other(s) => f.write_str(s),
        }
    }
}

/// A logged-in connection.
pub struct Conn {
    pub stream: Stream,
    /// Lines (decoded, with `--ws`) that arrived after the welcome line.
    pub carry: Vec<u8>,
    /// The frame decoder, with `--ws`.
    pub dec: Option<Decoder>,
}

/// True if `name` occurs in `line` as a whole name, not inside a longer one. A '.' right
/// after it may end a sentence.
pub fn has_word(line: &[u8], name: &[u8]) -> bool {
    let name_byte =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.') || b >= 0x80;
    let ends = |i: usize| i >= line.len() || !name_byte(line[i]);
    memmem::find_iter(line, name).any(|p| {
        let after = p + name.len();
        (p == 0 || !name_byte(line[p - 1]))
            && (ends(after) || (line[after] == b'.' && ends(after + 1)))
    })
}

fn io_fail(e: std::io::Error, what: &str) -> LoginFail {
    LoginFail::Other(format!("{what}: {e}"))
}

/// Connects (with `--tls` the handshake, with `--ws` the upgrade) and logs in as `name`.
pub async fn login(to: &Connector, name: &str) -> Result<Conn, LoginFail> {
    let (addr, tr) = (to.addr, to.transport);
    let mut s = to.connect().await?;
    let mut buf = Vec::with_capacity(512);
    let mut dec = None;
    if tr.is_ws() {
        let early = ws::handshake::upgrade(&mut s, addr).await?;
        let mut d = Decoder::default();
        decode_into(&mut d, &early, &mut buf);
        dec = Some(d);
    }
    let prompt = PROMPT.as_bytes();
    // 1. Banner lines, then the prompt (no line ending on TCP; a message of its own on ws).
    loop {
        if let Some(p) = memmem::find(&buf, prompt) {
            buf.drain(..p + prompt.len());
            break;
        }
        let complete = memchr::memrchr(b'\n', &buf).map_or(&buf[..0], |nl| &buf[..nl]);
        if let Some(l) = complete
            .split(|&b| b == b'\n')
            .find(|l| l.starts_with(b"! "))
        {
            let l = String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l));
            return Err(if l == "! server full" {
                LoginFail::Full
            } else {
                LoginFail::Other(l.into())
            });
        }
        fill(
            &mut s,
            &mut buf,
            &mut dec,
            "waiting for the `Username: ` prompt",
        )
        .await?;
    }
    // 2. The name; 3. a `* ` line naming us, or a `! ` refusal.
    let mut line = Vec::with_capacity(name.len() + 16);
    tr.push_line(&mut line, name.as_bytes());
    s.send(&line)
        .await
        .map_err(|e| io_fail(e, "sending the name"))?;
    loop {
        while let Some(nl) = memchr(b'\n', &buf) {
            let l = &buf[..nl];
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            if l.starts_with(b"! ") {
                let line = String::from_utf8_lossy(l).into_owned();
                return Err(LoginFail::Rejected {
                    name: name.to_owned(),
                    line,
                });
            }
            let ok = l.starts_with(b"* ") && has_word(l, name.as_bytes());
            buf.drain(..=nl);
            if ok {
                return Ok(Conn {
                    stream: s,
                    carry: buf,
                    dec,
                });
            }
        }
        fill(&mut s, &mut buf, &mut dec, "waiting for the welcome line").await?;
    }
}

/// Decodes the raw bytes `raw` and appends the lines they hold to `buf`.
fn decode_into(d: &mut Decoder, raw: &[u8], buf: &mut Vec<u8>) {
    let at = buf.len();
    buf.resize(at + ws::SLACK, 0);
    buf.extend_from_slice(raw);
    let n = d.decode(buf, at, at + ws::SLACK);
    buf.truncate(at + n);
}

async fn fill(
    s: &mut Stream,
    buf: &mut Vec<u8>,
    dec: &mut Option<Decoder>,
    what: &str,
) -> Result<(), LoginFail> {
    if buf.len() > MAX_LINE {
        return Err(LoginFail::Other(format!(
            "{what}: {} bytes without it",
            buf.len()
        )));
    }
    if let Some(why) = dec.as_ref().and_then(|d| d.ended()) {
        return Err(LoginFail::Other(format!("{what}: {why}")));
    }
    let mut chunk = [0u8; 1024];
    match s.read(&mut chunk).await {
        Ok(0) => Err(LoginFail::Other(format!(
            "{what}: the server closed the connection"
        ))),
        Ok(n) => {
            match dec {
                Some(d) => decode_into(d, &chunk[..n], buf),
                None => buf.extend_from_slice(&chunk[..n]),
            }
            Ok(())
        }
        Err(e) => Err(io_fail(e, what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words() {
        assert!(has_word(b"* welcome, b1! you are in lobby", b"b1"));
        assert!(!has_word(b"* welcome, b10! you are in lobby", b"b1"));
        assert!(!has_word(b"* welcome, xb1! you", b"b1"));
        assert!(has_word(b"* hello b1.", b"b1"));
        assert!(!has_word(b"* hello b1.x", b"b1"));
        assert!(has_word(b"b1", b"b1"));
        assert!(has_word(b"* b10 b1 joined", b"b1"));
    }
}
