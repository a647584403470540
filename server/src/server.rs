//! Starting up and shutting down.
//!
//! The line port's accept loop runs on the main thread and the web port's on one of its own;
//! both admit connections into the one registry (see [`listener`](crate::listener)). SIGINT and
//! SIGTERM are handled on a thread of their own: every connection gets
//! `* server shutting down` (and, over WebSocket, close 1001), is given a moment to receive it,
//! and the process exits 0.

use std::ffi::OsString;
use std::io::{self, Write};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use chat_common::wire;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::access::Access;
use crate::accounts::{Accounts, Keeper};
use crate::cluster::Cluster;
use crate::config::{Config, DEFAULT_MAX_CLIENTS};
use crate::flusher::Flushers;
use crate::listener::{accept_loop, bind, Port};
use crate::registry::bus::NameClaims;
use crate::registry::{HistorySettings, Registry};
use crate::shared::Shared;
use crate::store::{Loaded, Store};
use crate::transport::tls::TlsSettings;
use crate::{housekeeping, limits};

/// Time given to clients to receive the shutdown notice before the process exits.
const SHUTDOWN_DRAIN: Duration = Duration::from_millis(1200);
/// How long a start waits for Redis before it listens anyway (refusing logins until Redis is up).
const CLUSTER_START_WAIT: Duration = Duration::from_secs(3);
/// Time given to the cluster's last batch (this server's users leave everywhere).
const CLUSTER_GOODBYE: Duration = Duration::from_millis(400);

pub fn run(config: Config, args: Vec<OsString>) -> anyhow::Result<()> {
    let wanted = limits::files_needed(config.max_clients.unwrap_or(DEFAULT_MAX_CLIENTS));
    let open_files = limits::raise_open_files(wanted).context("cannot read the open-file limit")?;
    let max_clients = limits::fit_max_clients(config.max_clients, DEFAULT_MAX_CLIENTS, open_files)?;
    let web_port = config.web_port()?;
    let line_listener = bind(&config.host, config.port)?;
    let line_addr = line_listener
        .local_addr()
        .context("cannot read the listening address")?;
    let web_listener = web_port
        .map(|port| bind(&config.host, port).context("web port"))
        .transpose()?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(TlsSettings::load(cert, key)?),
        _ => None,
    };
    let tls_listener = config
        .tls_port()
        .map(|port| bind(&config.host, port).context("TLS port"))
        .transpose()?;

    let access = Access::from_config(&config)?;
    let (store, loaded) = match &config.data_dir {
        Some(dir) => {
            let (store, loaded) = Store::open(dir, config.history as usize)?;
            (Some(Arc::new(store)), loaded)
        }
        None => (None, Loaded::default()),
    };
    let mut registry = Registry::new(
        max_clients as usize,
        HistorySettings {
            keep: config.history as usize,
            on_join: config.history_on_join as usize,
            outlive_rooms: store.is_some(),
        },
    );
    if let Some(store) = &store {
        registry.restore(Arc::clone(store), &loaded);
    }
    let cluster = match &config.cluster {
        Some(url) => {
            let (cluster, outbox, events) = Cluster::new(url, &config.cluster_prefix)?;
            registry.join_cluster(outbox, Arc::clone(&cluster) as Arc<dyn NameClaims>);
            Some((cluster, events))
        }
        None => None,
    };
    let registry = Arc::new(registry);
    let keeper: Option<Arc<dyn Keeper>> = match (&cluster, store) {
        (Some((cluster, _)), _) => Some(Arc::clone(cluster) as Arc<dyn Keeper>),
        (None, Some(store)) => Some(store as Arc<dyn Keeper>),
        (None, None) => None,
    };
    let accounts = Arc::new(Accounts::new(loaded.accounts, keeper));
    if let Some((cluster, events)) = &cluster {
        cluster.start(
            events.clone(),
            Arc::clone(&registry),
            Arc::clone(&accounts),
            config.history as usize,
        )?;
    }
    if let Some((cluster, _)) = &cluster {
        if !cluster.wait_ready(CLUSTER_START_WAIT) {
            tracing::warn!("cluster: Redis not reachable yet; new logins are refused until it is");
        }
    }
    let flushers = Flushers::start(config.writer_threads())?;
    let cluster = cluster.map(|(cluster, _)| cluster);
    let shared = Arc::new(Shared::new(
        config, args, access, accounts, registry, cluster, flushers, tls,
    ));
    housekeeping::start().context("cannot start the housekeeping thread")?;
    // Signals are caught before the server says it is listening, so a signal right after
    // that line still gets an orderly shutdown.
    let signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).context("cannot install signal handlers")?;
    let for_signals = Arc::clone(&shared);
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || wait_for_signal(signals, &for_signals))
        .context("cannot start the signal thread")?;

    let mut ready = vec![format!("listening on {line_addr}")];
    if let Some(listener) = web_listener {
        let web_addr = listener
            .local_addr()
            .context("cannot read the web port's address")?;
        ready.push(format!("web on {web_addr}"));
        let for_web = Arc::clone(&shared);
        thread::Builder::new()
            .name("accept-web".into())
            .spawn(move || accept_loop(&listener, &for_web, Port::Web))
            .context("cannot start the web port's thread")?;
        tracing::info!(%web_addr, "web page and WebSocket listening");
    }
    // One write, so a reader that takes the first line and closes the pipe cannot make the
    // second fail.
    if let Some(listener) = tls_listener {
        let tls_addr = listener
            .local_addr()
            .context("cannot read the TLS port's address")?;
        ready.push(format!("tls on {tls_addr}"));
        let for_tls = Arc::clone(&shared);
        thread::Builder::new()
            .name("accept-tls".into())
            .spawn(move || accept_loop(&listener, &for_tls, Port::Tls))
            .context("cannot start the TLS port's thread")?;
        tracing::info!(%tls_addr, "TLS listening");
    }
    let mut stdout = io::stdout().lock();
    let text: String = ready.iter().map(|line| format!("{line}\n")).collect();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write to standard output")?;
    drop(stdout);
    tracing::info!(%line_addr, max_clients, "listening");

    accept_loop(&line_listener, &shared, Port::Line);
    Ok(())
}

fn wait_for_signal(mut signals: Signals, shared: &Shared) {
    let mut signal = SIGTERM;
    for caught in signals.forever() {
        if caught != SIGHUP {
            signal = caught;
            break;
        }
        crate::reload::reload(shared);
    }
    tracing::info!(signal, "shutting down");
    let peers = shared
        .registry
        .shut_down(&wire::notice("server shutting down"));
    if let Some(cluster) = &shared.cluster {
        cluster.shut_down(CLUSTER_GOODBYE);
    }
    let deadline = Instant::now() + SHUTDOWN_DRAIN;
    for peer in &peers {
        peer.wait_drained(deadline);
    }
    for peer in &peers {
        let _ = peer.socket().shutdown(std::net::Shutdown::Both);
    }
    shared.registry.flush_store();
    tracing::info!(connections = peers.len(), "closed every connection; bye");
    std::process::exit(0);
}
