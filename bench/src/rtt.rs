//! `rtt`: broadcast round trips, after hashrocket's websocket-shootout.
//!
//! K broadcasters each send one message and wait until every other client has it; the time
//! from the send to the last receipt is one sample. Unlike `fanout`, the server is never
//! flooded: this is the latency a room of N users sees under light, steady traffic, and with
//! `--step` the answer to "how many clients can it hold": after each step that held (p95 at
//! or under `--limit-ms`, no sample timed out, no client dropped) S more clients log in,
//! until a step fails, the client cap or the open-file limit is reached.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use hdrhistogram::Histogram;

use crate::args::RttArgs;
use crate::marker::{self, Kind, Marker};
use crate::net::Writer;
use crate::progress::Progress;
use crate::report::{Latency, Report, RttReport, RttStep};
use crate::shared::{new_hist, Shared};
use crate::swarm::{self, Swarm};
use crate::sys::{self, now_ns, CpuSample, Nofile};

/// Timeouts after which a step is abandoned: its answer is already "does not hold".
const MAX_TIMEOUTS: u64 = 3;

pub async fn run(a: &RttArgs, lim: Nofile) -> Result<Report> {
    let c = &a.common;
    let cap = if a.step > 0 {
        a.max_clients.max(c.clients)
    } else {
        c.clients
    };
    c.validate(2, cap)?;
    sys::check_fit(c.clients, lim)?;
    if a.senders == 0 || a.samples == 0 {
        bail!("rtt needs at least one broadcaster (-k) and one sample (-s)");
    }
    let k = a.senders.min(c.clients - 1);
    let fd_cap = sys::max_clients(lim);
    let addrs = c.addrs()?;
    let prog = Progress::new();
    let sh = Arc::new(Shared::new(&c.prefix, k, c.threads).with_servers(addrs.len()));
    let (mut swarm, login) = swarm::assemble(sh.clone(), c, &addrs, &prog).await?;

    let mut steps = Vec::new();
    let mut held = None;
    let stopped_by;
    loop {
        let n = swarm.len();
        let mut st = run_step(&mut swarm, k, a).await?;
        let p95 = st.rtt.map_or(f64::INFINITY, |l| l.p95_ms);
        let disconnects = sh.disconnects.load(Acquire);
        st.held = st.timeouts == 0 && p95 <= a.limit_ms && disconnects == 0;
        let line = format!(
            "n={n}: rtt p50 {:.1} ms, p95 {:.1} ms, {} timeouts",
            st.rtt.map_or(f64::NAN, |l| l.p50_ms),
            p95,
            st.timeouts
        );
        let ok = st.held;
        steps.push(st);
        if a.step > 0 {
            prog.note(&line);
        }
        if !ok {
            stopped_by = if disconnects > 0 {
                format!("{disconnects} clients disconnected at n={n}")
            } else if p95 > a.limit_ms && p95.is_finite() {
                format!(
                    "p95 {p95:.1} ms passed the {} ms limit at n={n}",
                    a.limit_ms
                )
            } else {
                format!("round trips timed out at n={n}")
            };
            break;
        }
        held = Some(n);
        if a.step == 0 {
            stopped_by = "one step (no --step)".into();
            break;
        }
        if n >= cap {
            stopped_by = format!("--max-clients {cap} reached");
            break;
        }
        if n >= fd_cap {
            stopped_by = format!("the open-file limit ({} clients) reached", fd_cap);
            break;
        }
        let add = a.step.min(cap - n).min(fd_cap - n);
        let bar = prog.bar(add as u64, "logins");
        let grown = swarm.grow(add, c.concurrency, &bar).await;
        bar.finish_and_clear();
        if let Err(e) = grown {
            stopped_by = format!("logins failed going to n={}: {e:#}", n + add);
            break;
        }
        if let Err(e) = swarm.barrier().await {
            stopped_by = format!("at n={}: {e:#}", n + add);
            break;
        }
    }

    let server_mem = c.server_pid.and_then(|p| sys::proc_mem(&p.to_string()));
    let stats = swarm.stop().await;
    Ok(Report::Rtt(RttReport {
        scenario: "rtt",
        server: addrs[0].to_string(),
        servers: addrs.iter().map(|a| a.to_string()).collect(),
        transport: c.transport(),
        senders: k,
        samples_per_step: a.samples,
        step: a.step,
        limit_ms: a.limit_ms,
        payload: c.payload,
        threads: c.threads,
        login,
        steps,
        max_clients_held: held,
        stopped_by,
        server_mem,
        garbled: sh.garbled.load(Acquire),
        out_of_order: stats.iter().map(|s| s.out_of_order).sum(),
        disconnects: sh.disconnects.load(Acquire),
        server_errors: sh.server_errors.load(Acquire),
        notes: sh.notes(),
    }))
}

/// What the broadcasters of one step share.
struct StepState {
    left: AtomicI64,
    timeouts: AtomicU64,
    hist: Mutex<Histogram<u64>>,
}

/// `a.samples` round trips shared by the K broadcasters, over the current clients.
async fn run_step(swarm: &mut Swarm, k: usize, a: &RttArgs) -> Result<RttStep> {
    let c = &a.common;
    let n = swarm.len();
    let state = Arc::new(StepState {
        left: AtomicI64::new(a.samples as i64),
        timeouts: AtomicU64::new(0),
        hist: Mutex::new(new_hist()),
    });
    let cpu0 = CpuSample::take(c.server_pid);
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(k);
    for i in 0..k {
        let Some(w) = swarm.writers[i].take() else {
            bail!("client {i} has no connection")
        };
        let (sh, state, a) = (swarm.sh.clone(), state.clone(), a.clone());
        tasks.push(tokio::spawn(async move {
            let mut w = w;
            let r = broadcast(&mut w, i, n - 1, &sh, &state, &a).await;
            (w, r)
        }));
    }
    let mut first_err = None;
    for (i, t) in tasks.into_iter().enumerate() {
        let (w, r) = t.await?;
        swarm.writers[i] = Some(w);
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    let cpu = cpu0.until(&CpuSample::take(c.server_pid), c.threads);
    let hist = state.hist.lock().unwrap_or_else(|e| e.into_inner());
    Ok(RttStep {
        clients: n,
        samples: hist.len(),
        timeouts: state.timeouts.load(Acquire),
        rtt: Latency::of(&hist),
        secs: t0.elapsed().as_secs_f64(),
        cpu,
        held: false,
    })
}

/// One broadcaster: send, wait for the last of `receivers` copies, repeat.
async fn broadcast(
    w: &mut Writer,
    me: usize,
    receivers: usize,
    sh: &Shared,
    state: &StepState,
    a: &RttArgs,
) -> Result<()> {
    let slot = &sh.rtt[me];
    let timeout = Duration::from_millis(a.sample_timeout_ms);
    let tr = a.common.transport();
    let mut line = Vec::with_capacity(a.common.payload);
    let mut out = Vec::with_capacity(a.common.payload + 14);
    while state.left.fetch_sub(1, AcqRel) > 0 {
        if let Some(e) = sh.slow_down_error() {
            return Err(e);
        }
        let seq = slot.seq.load(Acquire) + 1;
        slot.remaining.store(receivers as i64, Release);
        slot.seq.store(seq, Release);
        let sent = now_ns();
        line.clear();
        marker::encode(
            &mut line,
            &Marker {
                kind: Kind::Msg,
                sender: me as u32,
                seq,
                sent_ns: sent,
            },
            a.common.payload,
        );
        out.clear();
        tr.push_line(&mut out, &line);
        w.send(&out).await?;
        let done = async {
            loop {
                let woken = slot.notify.notified();
                if slot.done_seq.load(Acquire) == seq {
                    return;
                }
                woken.await;
            }
        };
        match tokio::time::timeout(timeout, done).await {
            Ok(()) => {
                let ns = slot.done_ns.load(Acquire).saturating_sub(sent);
                let mut h = state.hist.lock().unwrap_or_else(|e| e.into_inner());
                Shared::record_latency(&mut h, ns);
            }
            Err(_) => {
                let missing = slot.remaining.load(Acquire);
                sh.note(format!(
                    "a round trip from {} timed out after {timeout:?} with {missing} receivers missing",
                    sh.name(me)
                ));
                if state.timeouts.fetch_add(1, AcqRel) + 1 >= MAX_TIMEOUTS {
                    state.left.store(0, Release);
                }
            }
        }
    }
    Ok(())
}
