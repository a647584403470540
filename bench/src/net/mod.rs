//! The four ways a client reaches the server (`tcp`, `ws`, `tls`, `wss`) and the stream types
//! they need.
//!
//! Plain TCP keeps tokio's owned halves, so its reader waits for readiness and `try_read`s
//! into the thread's shared scratch buffer exactly as before (see `client.rs`). TLS cannot be
//! read that way: the bytes on the socket are records that rustls must decrypt, so its reader
//! polls `AsyncRead` into the same scratch instead. [`Reader`] and [`Writer`] are enums over
//! the two, so the hot path of each stays monomorphic and a TCP read never touches TLS code.

pub mod tls;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::Result;
use chat_common::wire::LINE_END;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::login::LoginFail;
use crate::ws::push_masked_text;

/// How the clients speak to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Plain lines over TCP, the server's line port.
    #[default]
    Tcp,
    /// WebSocket at `/ws` on the server's web port: one text message per line.
    Ws,
    /// Lines over TLS, the server's TLS port (`--tls`).
    Tls,
    /// WebSocket over TLS on the web port of a server with TLS on (`--ws --tls`).
    Wss,
}

impl Transport {
    pub fn new(ws: bool, tls: bool) -> Transport {
        match (ws, tls) {
            (false, false) => Transport::Tcp,
            (true, false) => Transport::Ws,
            (false, true) => Transport::Tls,
            (true, true) => Transport::Wss,
        }
    }

    pub fn is_ws(self) -> bool {
        matches!(self, Transport::Ws | Transport::Wss)
    }

    pub fn is_tls(self) -> bool {
        matches!(self, Transport::Tls | Transport::Wss)
    }

    /// Appends one line (without its ending) as this transport sends it: `line\r\n`, or one
    /// masked text frame holding `line`. TLS frames nothing of its own at this level.
    pub fn push_line(self, out: &mut Vec<u8>, line: &[u8]) {
        if self.is_ws() {
            push_masked_text(out, line);
        } else {
            out.extend_from_slice(line);
            out.extend_from_slice(LINE_END.as_bytes());
        }
    }

    /// For the report: how a reader finds the server.
    pub fn describe(self, server: &str) -> String {
        match self {
            Transport::Tcp => format!("tcp (lines on {server})"),
            Transport::Ws => format!("ws (WebSocket, ws://{server}/ws)"),
            Transport::Tls => format!("tls (lines over TLS on {server})"),
            Transport::Wss => format!("wss (WebSocket over TLS, wss://{server}/ws)"),
        }
    }
}

/// Opens connections to the server: TCP, then the TLS handshake with `--tls`.
#[derive(Clone)]
pub struct Connector {
    pub addr: SocketAddr,
    pub transport: Transport,
    tls: Option<tls::Tls>,
}

impl Connector {
    /// Reads `--ca` (or the system's roots) once for the whole run.
    pub fn new(c: &crate::args::Common, addr: SocketAddr) -> Result<Connector> {
        let transport = c.transport();
        let tls = if transport.is_tls() {
            Some(tls::Tls::new(&c.host, c.ca.as_deref(), transport.is_ws())?)
        } else {
            None
        };
        Ok(Connector {
            addr,
            transport,
            tls,
        })
    }

    /// The same for the server of an `--also HOST:PORT` (resolved to `addr`): the TLS
    /// certificate is checked for that HOST; the roots are not read again.
    pub fn also(&self, host: &str, addr: SocketAddr) -> Result<Connector> {
        let tls = match &self.tls {
            Some(t) => Some(t.for_also(host)?),
            None => None,
        };
        Ok(Connector {
            addr,
            transport: self.transport,
            tls,
        })
    }

    pub async fn connect(&self) -> Result<Stream, LoginFail> {
        let addr = self.addr;
        let s = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(LoginFail::Refused(addr))
            }
            Err(e) => return Err(LoginFail::Other(format!("connect to {addr}: {e}"))),
        };
        // Our own Nagle delays must not be charged to the server.
        s.set_nodelay(true)
            .map_err(|e| LoginFail::Other(format!("TCP_NODELAY: {e}")))?;
        match &self.tls {
            None => Ok(Stream::Tcp(s)),
            Some(t) => Ok(Stream::Tls(Box::new(t.handshake(s, addr).await?))),
        }
    }
}

/// A connection during login, before it is split.
pub enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Writes all of `buf` and pushes it to the socket (TLS keeps what a write could not
    /// send until a flush).
    pub async fn send(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write_all(buf).await?;
        self.flush().await
    }

    pub fn split(self) -> (Reader, Writer) {
        match self {
            Stream::Tcp(s) => {
                let (r, w) = s.into_split();
                (Reader::Tcp(r), Writer::Tcp(w))
            }
            Stream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (Reader::Tls(r), Writer::Tls(w))
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The read side of a logged-in client (see `client::read_loop`).
pub enum Reader {
    Tcp(OwnedReadHalf),
    Tls(TlsRead),
}

/// The read half of a TLS connection.
pub type TlsRead = ReadHalf<TlsStream<TcpStream>>;

/// Decrypts whatever has arrived on `r` into `buf` (tokio-rustls goes on reading records while
/// they come and `buf` has room). `Pending` registers the waker; `Ready(Ok(0))` is the end of
/// the stream. A TCP end without TLS's close_notify is an end too: chat-bench checks every
/// line itself and needs no truncation guard.
pub fn poll_tls(r: &mut TlsRead, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
    let mut rb = ReadBuf::new(buf);
    match Pin::new(r).poll_read(cx, &mut rb) {
        Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
        Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Poll::Ready(Ok(0)),
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    }
}

/// The write side of a logged-in client, held by the coordinator or lent to a sender.
pub enum Writer {
    Tcp(OwnedWriteHalf),
    Tls(WriteHalf<TlsStream<TcpStream>>),
}

impl Writer {
    /// Writes all of `buf`; over TLS also flushes, so nothing waits in rustls' buffer.
    pub async fn send(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Writer::Tcp(w) => w.write_all(buf).await,
            Writer::Tls(w) => {
                w.write_all(buf).await?;
                w.flush().await
            }
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
