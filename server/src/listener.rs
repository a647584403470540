//! Listening sockets and the accept loop every port shares: admit (or refuse) a connection and
//! give it a reader thread with a small stack.

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use chat_common::wire;
use socket2::{Domain, Protocol, Socket, TcpKeepalive, Type};

use crate::connection::Cleanup;
use crate::peer::Peer;
use crate::registry::AdmitError;
use crate::shared::Shared;
use crate::transport::input;
use crate::transport::tls::TlsPort;
use rustls::ServerConnection;

/// Reader threads only parse lines and queue output; this is ample and keeps 10,000 of them
/// cheap (only the pages a thread touches count against memory).
const READER_STACK: usize = 128 * 1024;
const LISTEN_BACKLOG: i32 = 4096;

/// Which port a connection came in on; it decides how the connection is served and refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The line protocol over raw TCP.
    Line,
    /// The line protocol over TLS.
    Tls,
    /// HTTP (HTTPS when TLS is on): the page, `/metrics`, WebSocket.
    Web,
}

impl Port {
    fn name(self) -> &'static str {
        match self {
            Port::Line => "tcp",
            Port::Tls => "tls",
            Port::Web => "web",
        }
    }

    /// The TLS session a new connection on this port starts with, if any.
    fn tls_session(self, shared: &Shared) -> Result<Option<ServerConnection>, rustls::Error> {
        let port = match self {
            Port::Line => return Ok(None),
            Port::Tls => TlsPort::Line,
            Port::Web => TlsPort::Web,
        };
        shared.tls.as_ref().map(|tls| tls.session(port)).transpose()
    }
}

pub fn bind(host: &str, port: u16) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve --host {host}"))?
        .next()
        .with_context(|| format!("--host {host} has no address"))?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .context("cannot create a socket")?;
    socket
        .set_reuse_address(true)
        .context("cannot set SO_REUSEADDR")?;
    socket
        .bind(&addr.into())
        .with_context(|| format!("cannot listen on {addr}"))?;
    socket
        .listen(LISTEN_BACKLOG)
        .with_context(|| format!("cannot listen on {addr}"))?;
    Ok(socket.into())
}

/// Accepts connections for ever; each gets its own thread running `port`'s handler.
pub fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, port: Port) {
    // Held so that, out of descriptors, a connection can still be accepted and told so.
    let mut reserve = File::open("/dev/null").ok();
    loop {
        let (stream, addr) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) && reserve.is_some() => {
                drop(reserve.take());
                if let Ok((stream, addr)) = listener.accept() {
                    tracing::warn!(%addr, via = port.name(), "refused: out of file descriptors");
                    refuse(&Socket::from(stream), port, AdmitError::Full);
                }
                reserve = File::open("/dev/null").ok();
                continue;
            }
            Err(e) => {
                // Out of descriptors or memory: back off instead of spinning on the error.
                tracing::warn!(error = %e, "accept failed");
                if !matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                ) {
                    thread::sleep(Duration::from_millis(20));
                }
                continue;
            }
        };
        let id = shared.registry.next_peer_id();
        let socket = Socket::from(stream);
        if let Err(e) = configure(&socket, shared.config().keepalive_secs) {
            tracing::debug!(%addr, error = %e, "cannot configure a new connection");
        }
        let session = match port.tls_session(shared) {
            Ok(session) => session,
            Err(e) => {
                tracing::error!(%addr, error = %e, "cannot start a TLS session");
                continue;
            }
        };
        let encrypted = session.is_some();
        let peer = Arc::new(Peer::new(
            id,
            socket,
            addr,
            shared.config().outbuf_limit as usize,
            shared.flushers.for_peer(id),
            session,
        ));
        if let Err(refusal) = shared
            .registry
            .admit(&peer, shared.access.admission(addr.ip()))
        {
            if refusal != AdmitError::ShuttingDown {
                tracing::warn!(%addr, via = port.name(), reason = refusal.reason(), "refused");
            }
            // Under TLS nothing can be said before a handshake: the connection just closes.
            if !encrypted {
                refuse(peer.socket(), port, refusal);
            }
            continue;
        }
        tracing::info!(peer = id, %addr, via = port.name(), "connected");
        let login_deadline = Instant::now() + shared.config().login_timeout();
        let spawned = spawn_reader(Arc::clone(shared), Arc::clone(&peer), port, login_deadline);
        if let Err(e) = spawned {
            tracing::error!(%addr, error = %e, "cannot start a connection thread");
            shared.registry.remove_connection(peer.id);
            if !encrypted {
                refuse(peer.socket(), port, AdmitError::Full);
            }
        }
    }
}

/// Starts a connection's reader thread. A TLS connection does its handshake first and then goes
/// on in a fresh thread: glibc keeps the small blocks a thread frees in a cache of that thread's
/// own, and the handshake frees kilobytes of them, which a long-lived idle reader would keep
/// resident for the connection's whole life. A thread that ends hands its cache back.
fn spawn_reader(
    shared: Arc<Shared>,
    peer: Arc<Peer>,
    port: Port,
    login_deadline: Instant,
) -> io::Result<()> {
    let id = peer.id;
    let body = move || {
        if peer.tls().is_some() {
            hand_over_after_handshake(shared, peer, port, login_deadline);
        } else {
            serve(shared, peer, port, login_deadline);
        }
    };
    thread::Builder::new()
        .name(format!("conn-{id}"))
        .stack_size(READER_STACK)
        .spawn(body)
        .map(drop)
}

fn serve(shared: Arc<Shared>, peer: Arc<Peer>, port: Port, login_deadline: Instant) {
    match port {
        Port::Line | Port::Tls => crate::transport::tcp::serve(shared, peer, login_deadline),
        Port::Web => crate::web::serve(shared, peer, login_deadline),
    }
}

fn hand_over_after_handshake(shared: Arc<Shared>, peer: Arc<Peer>, port: Port, deadline: Instant) {
    let cleanup = Cleanup {
        shared: &shared,
        peer: &peer,
    };
    if !input::complete_handshake(&peer, deadline) {
        tracing::debug!(peer = peer.id, addr = %peer.addr, "TLS handshake failed or timed out");
        return;
    }
    cleanup.disarm();
    let id = peer.id;
    let (for_shared, for_peer) = (Arc::clone(&shared), Arc::clone(&peer));
    let spawned = thread::Builder::new()
        .name(format!("conn-{id}"))
        .stack_size(READER_STACK)
        .spawn(move || serve(for_shared, for_peer, port, deadline));
    if let Err(e) = spawned {
        tracing::error!(peer = id, error = %e, "cannot start a connection thread");
        drop(Cleanup {
            shared: &shared,
            peer: &peer,
        });
    }
}

/// TCP_NODELAY, because output is already batched per client and a second small write must not
/// wait for a delayed ACK; keepalive, so a peer that vanished without a FIN is noticed.
fn configure(socket: &Socket, keepalive_secs: u64) -> io::Result<()> {
    socket.set_nodelay(true)?;
    let idle = Duration::from_secs(keepalive_secs);
    let keepalive = TcpKeepalive::new()
        .with_time(idle)
        .with_interval(Duration::from_secs(keepalive_secs.clamp(1, 10)))
        .with_retries(5);
    socket.set_tcp_keepalive(&keepalive)?;
    // Unacknowledged output (a peer gone mid-send) gives up after the same total time.
    socket.set_tcp_user_timeout(Some(
        idle + Duration::from_secs(keepalive_secs.clamp(1, 10) * 5),
    ))
}

/// Tells a connection why it cannot stay, without waiting on it, and closes it: a `! ` line on
/// the line port, an HTTP error carrying the same line on the web port.
pub fn refuse(socket: &Socket, port: Port, refusal: AdmitError) {
    let line = format!("{}{}", wire::error(refusal.reason()), wire::LINE_END);
    let bytes = match port {
        Port::Line | Port::Tls => line.into_bytes(),
        Port::Web => http_refusal(refusal, &line),
    };
    let _ = socket.send_with_flags(&bytes, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
    let _ = socket.shutdown(std::net::Shutdown::Write);
}

/// The HTTP answer to a refused web connection, with the `! ` line as its body.
pub fn http_refusal(refusal: AdmitError, line: &str) -> Vec<u8> {
    let status = match refusal {
        AdmitError::Full | AdmitError::ShuttingDown => "503 Service Unavailable",
        AdmitError::Banned => "403 Forbidden",
        AdmitError::TooManyFromAddress => "429 Too Many Requests",
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{line}",
        line.len()
    )
    .into_bytes()
}
