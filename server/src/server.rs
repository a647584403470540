//! Listening, admitting connections, and shutting down.
//!
//! The accept loop gives each admitted connection its own reader thread with a small stack;
//! a connection over `--max-clients` gets `! server full` and is closed at once. SIGINT and
//! SIGTERM are handled on a thread of their own: every connection gets
//! `* server shutting down`, is given a moment to receive it, and the process exits 0.

use std::fs::File;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use chat_common::wire;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use socket2::{Domain, Protocol, Socket, TcpKeepalive, Type};

use crate::config::{Config, DEFAULT_MAX_CLIENTS};
use crate::flusher::Flushers;
use crate::peer::Peer;
use crate::registry::{AdmitError, Registry};
use crate::{connection, housekeeping, limits};

/// Reader threads only parse lines and queue output; this is ample and keeps 10,000 of them
/// cheap (only the pages a thread touches count against memory).
const READER_STACK: usize = 128 * 1024;
const LISTEN_BACKLOG: i32 = 4096;
/// Time given to clients to receive the shutdown notice before the process exits.
const SHUTDOWN_DRAIN: Duration = Duration::from_millis(1200);

/// What every connection thread shares.
pub struct Shared {
    pub config: Config,
    pub registry: Registry,
    flushers: Flushers,
}

pub fn run(config: Config) -> anyhow::Result<()> {
    let wanted = limits::files_needed(config.max_clients.unwrap_or(DEFAULT_MAX_CLIENTS));
    let open_files = limits::raise_open_files(wanted).context("cannot read the open-file limit")?;
    let max_clients = limits::fit_max_clients(config.max_clients, DEFAULT_MAX_CLIENTS, open_files)?;
    let listener = listen(&config.host, config.port)?;
    let local = listener
        .local_addr()
        .context("cannot read the listening address")?;

    let shared = Arc::new(Shared {
        registry: Registry::new(max_clients as usize),
        flushers: Flushers::start(config.writer_threads())?,
        config,
    });
    housekeeping::start().context("cannot start the housekeeping thread")?;
    // Signals are caught before the server says it is listening, so a signal right after
    // that line still gets an orderly shutdown.
    let signals = Signals::new([SIGINT, SIGTERM]).context("cannot install signal handlers")?;
    let for_signals = Arc::clone(&shared);
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || wait_for_signal(signals, &for_signals))
        .context("cannot start the signal thread")?;

    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {local}").context("cannot write to standard output")?;
    stdout.flush().context("cannot write to standard output")?;
    drop(stdout);
    tracing::info!(%local, max_clients, "listening");

    accept_loop(&listener, &shared);
    Ok(())
}

fn listen(host: &str, port: u16) -> anyhow::Result<TcpListener> {
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

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut next_id = 0u64;
    // Held so that, out of descriptors, a connection can still be accepted and told so.
    let mut reserve = File::open("/dev/null").ok();
    loop {
        let (stream, addr) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) && reserve.is_some() => {
                drop(reserve.take());
                if let Ok((stream, addr)) = listener.accept() {
                    tracing::warn!(%addr, "refused: out of file descriptors");
                    refuse(&Socket::from(stream), "server full");
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
        next_id += 1;
        let socket = Socket::from(stream);
        if let Err(e) = configure(&socket, shared.config.keepalive_secs) {
            tracing::debug!(%addr, error = %e, "cannot configure a new connection");
        }
        let peer = Arc::new(Peer::new(
            next_id,
            socket,
            addr,
            shared.config.outbuf_limit as usize,
            shared.flushers.for_peer(next_id),
        ));
        match shared.registry.admit(&peer) {
            Ok(()) => {}
            Err(AdmitError::Full) => {
                tracing::warn!(%addr, "refused: server full");
                refuse(peer.socket(), "server full");
                continue;
            }
            Err(AdmitError::ShuttingDown) => {
                refuse(peer.socket(), "server shutting down");
                continue;
            }
        }
        tracing::info!(peer = peer.id, %addr, "connected");
        let for_thread = Arc::clone(shared);
        let for_peer = Arc::clone(&peer);
        let spawned = thread::Builder::new()
            .name(format!("conn-{next_id}"))
            .stack_size(READER_STACK)
            .spawn(move || connection::serve(for_thread, for_peer));
        if let Err(e) = spawned {
            tracing::error!(%addr, error = %e, "cannot start a connection thread");
            shared.registry.remove_connection(peer.id);
            refuse(peer.socket(), "server full");
        }
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

/// Tells a connection why it cannot stay, without waiting on it, and closes it.
fn refuse(socket: &Socket, reason: &str) {
    let line = format!("{}{}", wire::error(reason), wire::LINE_END);
    let _ = socket.send_with_flags(line.as_bytes(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
    let _ = socket.shutdown(std::net::Shutdown::Write);
}

fn wait_for_signal(mut signals: Signals, shared: &Shared) {
    let signal = signals.forever().next().unwrap_or(SIGTERM);
    tracing::info!(signal, "shutting down");
    let peers = shared
        .registry
        .shut_down(&wire::notice("server shutting down"));
    let deadline = Instant::now() + SHUTDOWN_DRAIN;
    for peer in &peers {
        peer.wait_drained(deadline);
    }
    for peer in &peers {
        let _ = peer.socket().shutdown(std::net::Shutdown::Both);
    }
    tracing::info!(connections = peers.len(), "closed every connection; bye");
    std::process::exit(0);
}
