//! `fanout`: N clients log in, K of them send M messages each, every client counts what it
//! receives.
//!
//! This is the throughput test: one message becomes N-1 deliveries, so the server's cost is
//! in the fan-out, not the reading. Deliveries/s is taken over the window from the first send
//! to the last delivery, so neither the login phase nor an idle tail dilutes it. The counts
//! are exact per (receiver, sender) pair: a message missing at one receiver is one lost
//! delivery, a garbled line counts as its message lost, a repeated or earlier seq as out of
//! order. Beyond each sender's order, the receivers that do not send are compared for one
//! order of all the messages (see `order.rs`).

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::args::FanoutArgs;
use crate::marker::{self, Kind, Marker};
use crate::net::{Transport, Writer};
use crate::order;
use crate::progress::Progress;
use crate::report::{FanoutReport, Latency, Report};
use crate::servers;
use crate::shared::Shared;
use crate::swarm;
use crate::sys::{self, now_ns, CpuSample, Nofile};

/// Counters the sender tasks update.
struct SendCounts {
    by_sender: Vec<AtomicU64>,
    total: AtomicU64,
    last_end_ns: AtomicU64,
}

pub async fn run(a: &FanoutArgs, lim: Nofile) -> Result<Report> {
    let c = &a.common;
    c.validate(2, c.clients)?;
    sys::check_fit(c.clients, lim)?;
    let k = a.senders;
    if k == 0 || a.messages == 0 {
        bail!("fanout needs at least one sender (-k) and one message (-m)");
    }
    if a.messages > marker::MAX_SEQ {
        bail!(
            "-m {} is over the {} messages a sender's sequence number can count",
            a.messages,
            marker::MAX_SEQ
        );
    }
    if k > c.clients {
        bail!("-k {k} senders is more than the -n {} clients", c.clients);
    }
    if a.rate < 0.0 || !a.rate.is_finite() {
        bail!("--rate must be 0 (unpaced) or a positive number of messages per second");
    }
    let addrs = c.addrs()?;
    let prog = Progress::new();
    let sh = Arc::new(Shared::new(&c.prefix, k, c.threads).with_servers(addrs.len()));
    let (mut swarm, login) = swarm::assemble(sh.clone(), c, &addrs, &prog).await?;
    let n = swarm.len();

    let counts = Arc::new(SendCounts {
        by_sender: (0..k).map(|_| AtomicU64::new(0)).collect(),
        total: AtomicU64::new(0),
        last_end_ns: AtomicU64::new(0),
    });
    let cpu0 = CpuSample::take(c.server_pid);
    let t0 = now_ns();
    let mut tasks = Vec::with_capacity(k);
    for i in 0..k {
        let Some(w) = swarm.writers[i].take() else {
            bail!("client {i} has no connection")
        };
        tasks.push(tokio::spawn(send_all(w, i, a.clone(), counts.clone())));
    }

    // Watch until every copy arrived, or nothing moved (sent or delivered) for --drain-s.
    let bar = prog.bar(k as u64 * a.messages * (n as u64 - 1), "deliveries");
    let drain = Duration::from_secs_f64(a.drain_s.max(0.1));
    let (mut seen, mut seen_sent) = (0, 0);
    let mut last_change = Instant::now();
    let mut cpu1 = CpuSample::take(c.server_pid);
    let mut stalled = false;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Some(e) = sh.slow_down_error() {
            bar.finish_and_clear();
            return Err(e);
        }
        let got = sh.delivered.load(Acquire);
        let sent = counts.total.load(Acquire);
        bar.set_position(got);
        if got != seen || sent != seen_sent {
            (seen, seen_sent) = (got, sent);
            last_change = Instant::now();
            cpu1 = CpuSample::take(c.server_pid);
        }
        let senders_done = tasks.iter().all(|t| t.is_finished());
        if senders_done && got >= sent * (n as u64 - 1) {
            cpu1 = CpuSample::take(c.server_pid);
            break;
        }
        if last_change.elapsed() > drain {
            stalled = !senders_done;
            break;
        }
    }
    bar.finish_and_clear();
    for (i, t) in tasks.into_iter().enumerate() {
        if !t.is_finished() {
            t.abort();
        }
        match t.await {
            Ok((w, r)) => {
                if let Err(e) = r {
                    sh.note(format!("sender {}: {e:#}", sh.name(i)));
                }
                swarm.writers[i] = Some(w);
            }
            Err(e) if e.is_cancelled() => {}
            Err(e) => sh.note(format!("sender task: {e}")),
        }
    }
    if stalled {
        sh.note(format!(
            "senders were still blocked in write after {drain:?} without progress"
        ));
    }
    let server_mem = c.server_pid.and_then(|p| sys::proc_mem(&p.to_string()));
    let stats = swarm.stop().await;

    let sent_by: Vec<u64> = counts.by_sender.iter().map(|v| v.load(Acquire)).collect();
    let sent: u64 = sent_by.iter().sum();
    let (mut received, mut lost, mut duplicates, mut short, mut out_of_order) = (0, 0, 0, 0, 0);
    for (r, st) in stats.iter().enumerate() {
        let mut is_short = false;
        for (s, &want) in sent_by.iter().enumerate().filter(|&(s, _)| s != r) {
            let got = st.count[s];
            received += got;
            lost += want.saturating_sub(got);
            duplicates += got.saturating_sub(want);
            is_short |= got < want;
        }
        short += usize::from(is_short);
        out_of_order += st.out_of_order;
    }
    let orders = order::compare(&stats, &sent_by, k);
    let servers: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    for n in servers::cross_notes(&stats, &sent_by, &servers) {
        sh.note(n);
    }
    let last = sh.last_delivery_ns.load(Acquire).max(t0 + 1);
    let window_s = (last - t0) as f64 / 1e9;
    let send_end = counts.last_end_ns.load(Acquire).max(t0);
    Ok(Report::Fanout(FanoutReport {
        scenario: "fanout",
        server: addrs[0].to_string(),
        servers,
        transport: c.transport(),
        clients: n,
        senders: k,
        messages_per_sender: a.messages,
        payload: c.payload,
        rate: a.rate,
        batch: a.batch.max(1),
        threads: c.threads,
        login,
        sent,
        send_s: (send_end - t0) as f64 / 1e9,
        expected: sent * (n as u64 - 1),
        received,
        lost,
        duplicates,
        garbled: sh.garbled.load(Acquire),
        out_of_order,
        orders: orders.orders,
        orders_compared: orders.compared,
        echoes: sh.echoes.load(Acquire),
        clients_short: short,
        window_s,
        deliveries_per_s: received as f64 / window_s,
        latency: Latency::of(&sh.latency()),
        cpu: cpu0.until(&cpu1, c.threads),
        server_mem,
        disconnects: sh.disconnects.load(Acquire),
        server_errors: sh.server_errors.load(Acquire),
        notes: sh.notes(),
    }))
}

/// Appends message `seq` of sender `me`, stamped now, framed for `tr`; `line` is scratch.
fn push_msg(
    out: &mut Vec<u8>,
    line: &mut Vec<u8>,
    tr: Transport,
    me: usize,
    seq: u64,
    payload: usize,
) {
    let m = Marker {
        kind: Kind::Msg,
        sender: me as u32,
        seq,
        sent_ns: now_ns(),
    };
    line.clear();
    marker::encode(line, &m, payload);
    tr.push_line(out, line);
}

/// One sender: messages 1..=M, unpaced (`--batch` per write) or paced at `--rate`. Gives the
/// write half back: dropping it would end the client's session before the run is over.
async fn send_all(
    mut w: Writer,
    me: usize,
    a: FanoutArgs,
    counts: Arc<SendCounts>,
) -> (Writer, Result<()>) {
    let r = send_loop(&mut w, me, &a, &counts).await;
    counts.last_end_ns.fetch_max(now_ns(), Release);
    (w, r)
}

async fn send_loop(w: &mut Writer, me: usize, a: &FanoutArgs, counts: &SendCounts) -> Result<()> {
    let payload = a.common.payload;
    let batch = a.batch.max(1) as u64;
    let tr = a.common.transport();
    let mut out = Vec::with_capacity(batch as usize * (payload + 14));
    let mut line = Vec::with_capacity(payload);
    let start = Instant::now();
    let mut seq = 0u64;
    let mut writes = 0u64;
    while seq < a.messages {
        // How many to send now: a batch when unpaced, whatever is due when paced.
        let n = if a.rate > 0.0 {
            let due = ((start.elapsed().as_secs_f64() * a.rate) as u64 + 1).min(a.messages);
            if due <= seq {
                let next = start + Duration::from_secs_f64(seq as f64 / a.rate);
                tokio::time::sleep_until(next.into()).await;
                continue;
            }
            (due - seq).min(1024)
        } else {
            batch.min(a.messages - seq)
        };
        out.clear();
        for _ in 0..n {
            seq += 1;
            push_msg(&mut out, &mut line, tr, me, seq, payload);
        }
        w.send(&out).await?;
        counts.by_sender[me].fetch_add(n, Release);
        counts.total.fetch_add(n, Release);
        writes += 1;
        // Let the readers on this thread run between bursts of writes.
        if writes.is_multiple_of(32) {
            tokio::task::yield_now().await;
        }
    }
    Ok(())
}
