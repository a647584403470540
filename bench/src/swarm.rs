//! Many clients at once: logging them in a limited number at a time, the barrier that proves
//! the server delivers to every one of them, and stopping their readers to collect counts.
//!
//! Each client is one task: it connects and logs in, hands its write half back to the
//! coordinator, then becomes the reader of its connection. The barrier exists because a
//! server may acknowledge a login slightly before it has added the user to the broadcast
//! list; messages sent in between would be charged as lost although no user could notice.
//! So before measuring, client 0 sends a probe and every other client must see it.
//!
//! With `--also` the clients are spread round-robin over several servers (see `servers.rs`)
//! and the first client on each server sends the probe: every other client must see the one
//! from its own server. That proves each server has it on its list; whether the servers pass
//! messages between them is what the run itself measures.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use indicatif::ProgressBar;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

use crate::client::{self, RecvStats};
use crate::login::{self, LoginFail};
use crate::marker::{self, Kind, Marker};
use crate::net::{Connector, Transport, Writer};
use crate::servers;
use crate::shared::Shared;
use crate::sys::now_ns;

/// Probes sent per barrier before giving up.
const PROBE_ROUNDS: u64 = 5;

pub struct Swarm {
    pub sh: Arc<Shared>,
    /// One per server; client i uses `connectors[i % len]`.
    connectors: Vec<Connector>,
    login_timeout: Duration,
    payload: usize,
    pub transport: Transport,
    /// Write halves by client index; a sender task borrows its own for a while.
    pub writers: Vec<Option<Writer>>,
    readers: Vec<JoinHandle<RecvStats>>,
    stop_tx: watch::Sender<bool>,
    probe_round: u64,
}

/// One login phase.
#[derive(Debug, Clone, Copy)]
pub struct Grown {
    pub added: usize,
    pub secs: f64,
    /// Slowest single connect + login.
    pub max_ms: f64,
}

/// What one login task reports: client index, its write half or why not, login time in ms.
type LoginResult = (usize, Result<Writer, LoginFail>, f64);

/// Results of a login phase as they come in.
struct Tally {
    start: usize,
    writers: Vec<Option<Writer>>,
    fail: Option<LoginFail>,
    failed: usize,
    max_ms: f64,
}

impl Tally {
    fn take(&mut self, (idx, r, ms): LoginResult, bar: &ProgressBar) {
        match r {
            Ok(w) => {
                self.writers[idx - self.start] = Some(w);
                self.max_ms = self.max_ms.max(ms);
                bar.inc(1);
            }
            Err(e) => {
                self.failed += 1;
                // Keep the first failure, unless a fatal one comes later.
                if self
                    .fail
                    .as_ref()
                    .is_none_or(|f| !f.is_fatal() && e.is_fatal())
                {
                    self.fail = Some(e);
                }
            }
        }
    }
}

impl Swarm {
    /// `addrs` are the servers of `c.targets()`, resolved. Fails only on a bad `--ca` (or no
    /// system roots) or a host TLS cannot check, with `--tls`.
    pub fn new(sh: Arc<Shared>, addrs: &[SocketAddr], c: &crate::args::Common) -> Result<Self> {
        debug_assert_eq!(sh.servers, addrs.len(), "Shared::with_servers");
        let main = Connector::new(c, addrs[0])?;
        let mut connectors = Vec::with_capacity(addrs.len());
        for (t, &addr) in c.targets().iter().zip(addrs).skip(1) {
            connectors.push(main.also(&t.host, addr)?);
        }
        connectors.insert(0, main);
        Ok(Swarm {
            sh,
            connectors,
            login_timeout: c.login_timeout(),
            payload: c.payload,
            transport: c.transport(),
            writers: Vec::new(),
            readers: Vec::new(),
            stop_tx: watch::channel(false).0,
            probe_round: 0,
        })
    }

    pub fn len(&self) -> usize {
        self.writers.len()
    }

    /// Logs in `add` more clients, `concurrency` at a time. All must succeed: the counts a
    /// run checks are exact only if every client is in. A refused connection, a rejected
    /// name or `! server full` stops the phase at once.
    pub async fn grow(
        &mut self,
        add: usize,
        concurrency: usize,
        bar: &ProgressBar,
    ) -> Result<Grown> {
        let t0 = Instant::now();
        let start = self.len();
        let (tx, mut rx) = mpsc::unbounded_channel::<LoginResult>();
        let sem = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut tally = Tally {
            start,
            writers: (0..add).map(|_| None).collect(),
            fail: None,
            failed: 0,
            max_ms: 0.0,
        };
        let mut readers = Vec::with_capacity(add);
        let mut pending = 0usize;
        for idx in start..start + add {
            while let Ok(r) = rx.try_recv() {
                pending -= 1;
                tally.take(r, bar);
            }
            if tally.failed > 0 {
                break;
            }
            let permit = sem
                .clone()
                .acquire_owned()
                .await
                .context("login semaphore closed")?;
            let to = &self.connectors[servers::server_of(idx, self.connectors.len())];
            let (sh, tx, to, tr) = (self.sh.clone(), tx.clone(), to.clone(), self.transport);
            let (timeout, stop) = (self.login_timeout, self.stop_tx.subscribe());
            pending += 1;
            readers.push(tokio::spawn(async move {
                let t = Instant::now();
                let name = sh.name(idx);
                let r = tokio::time::timeout(timeout, login::login(&to, &name))
                    .await
                    .unwrap_or_else(|_| {
                        let hint = if tr.is_ws() {
                            ""
                        } else {
                            " (if -p is the server's web port, add --ws)"
                        };
                        Err(LoginFail::Other(format!(
                            "login as {name} timed out after {timeout:?}{hint}"
                        )))
                    });
                drop(permit);
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                match r {
                    Ok(conn) => {
                        let (rd, wr) = conn.stream.split();
                        let _ = tx.send((idx, Ok(wr), ms));
                        client::read_loop(sh, idx, rd, conn.carry, conn.dec, stop).await
                    }
                    Err(e) => {
                        let _ = tx.send((idx, Err(e), ms));
                        RecvStats::new(sh.senders)
                    }
                }
            }));
        }
        while pending > 0 {
            let r = rx
                .recv()
                .await
                .ok_or_else(|| anyhow!("a login task vanished"))?;
            pending -= 1;
            tally.take(r, bar);
        }
        if let Some(e) = tally.fail {
            if e.is_fatal() {
                bail!("{e}");
            }
            bail!("{} of {add} logins failed; the first: {e}", tally.failed);
        }
        self.writers.extend(tally.writers);
        self.readers.extend(readers);
        Ok(Grown {
            added: add,
            secs: t0.elapsed().as_secs_f64(),
            max_ms: tally.max_ms,
        })
    }

    /// Sends `line` (without its ending) as client `idx`, framed for the transport.
    pub async fn write_line(&mut self, idx: usize, line: &[u8]) -> Result<()> {
        let w = self.writers[idx]
            .as_mut()
            .ok_or_else(|| anyhow!("client {idx} is busy sending"))?;
        let mut out = Vec::with_capacity(line.len() + 16);
        self.transport.push_line(&mut out, line);
        w.send(&out)
            .await
            .with_context(|| format!("writing as {}", self.sh.name(idx)))
    }

    /// Clients that send the barrier's probe: the first on each server.
    fn heads(&self) -> usize {
        self.connectors.len().min(self.len())
    }

    /// Waits until every client other than client 0 has received a probe from client 0 (with
    /// several servers: every client other than the first on each server has received the
    /// probe of the first on its own).
    pub async fn barrier(&mut self) -> Result<Duration> {
        let t0 = Instant::now();
        let heads = self.heads();
        let need = self.len().saturating_sub(heads);
        let sh = self.sh.clone();
        // Probes from earlier barriers are below the new base and no longer count.
        sh.probe_base.store(self.probe_round + 1, Release);
        sh.probe_seen.store(0, Release);
        let per_round = Duration::from_millis(2000 + 2 * self.len() as u64);
        for _ in 0..PROBE_ROUNDS {
            self.probe_round += 1;
            for head in 0..heads {
                let m = Marker {
                    kind: Kind::Probe,
                    sender: head as u32,
                    seq: self.probe_round,
                    sent_ns: now_ns(),
                };
                let mut line = Vec::with_capacity(self.payload);
                marker::encode(&mut line, &m, self.payload);
                self.write_line(head, &line)
                    .await
                    .context("sending the barrier probe")?;
            }
            let deadline = Instant::now() + per_round;
            while Instant::now() < deadline {
                if sh.probe_seen.load(Acquire) >= need {
                    return Ok(t0.elapsed());
                }
                if let Some(e) = sh.slow_down_error() {
                    return Err(e);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        let from = match heads {
            1 => sh.name(0),
            _ => format!(
                "the first client on their server ({} to {})",
                sh.name(0),
                sh.name(heads - 1)
            ),
        };
        bail!(
            "barrier: after {PROBE_ROUNDS} probes only {} of {need} clients received a message \
             from {from}; the server accepted their logins but does not deliver to them{}",
            sh.probe_seen.load(Acquire),
            sh.notes()
                .first()
                .map(|n| format!(" (first problem: {n})"))
                .unwrap_or_default()
        )
    }

    /// Stops every reader and returns what each counted, by client index.
    pub async fn stop(self) -> Vec<RecvStats> {
        self.sh.stopping.store(true, Release);
        let _ = self.stop_tx.send(true);
        let mut out = Vec::with_capacity(self.readers.len());
        for h in self.readers {
            out.push(h.await.unwrap_or_else(|_| RecvStats::new(self.sh.senders)));
        }
        drop(self.writers);
        out
    }
}

/// Logs in the first `c.clients` clients, spread over `addrs` (`c.targets()` resolved), with
/// a progress bar and passes the barrier.
pub async fn assemble(
    sh: Arc<Shared>,
    c: &crate::args::Common,
    addrs: &[SocketAddr],
    prog: &crate::progress::Progress,
) -> Result<(Swarm, crate::report::Login)> {
    let mut swarm = Swarm::new(sh, addrs, c)?;
    let bar = prog.bar(c.clients as u64, "logins");
    let grown = swarm.grow(c.clients, c.concurrency, &bar).await;
    bar.finish_and_clear();
    let g = grown?;
    let barrier = swarm.barrier().await?;
    let login = crate::report::Login {
        clients: g.added,
        secs: g.secs,
        per_s: g.added as f64 / g.secs.max(1e-9),
        max_login_ms: g.max_ms,
        barrier_ms: barrier.as_secs_f64() * 1000.0,
    };
    Ok((swarm, login))
}

#[cfg(test)]
#[path = "swarm_tests.rs"]
mod tests;
