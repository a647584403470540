//! `idle`: N clients log in and stay quiet; what does each cost the server?
//!
//! The server's resident memory is read from `/proc/PID/status` before the first connect and
//! again after every client passed the barrier and a settling pause, so the difference over N
//! is the memory one logged-in, idle connection holds (buffers, stacks actually touched,
//! registry entries). The thread count shows the server's model: one thread per connection
//! reads about N, an event loop a constant. chat-bench's own memory per client is reported
//! too, as a check that the tool itself stays small.

use std::sync::atomic::Ordering::*;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::args::IdleArgs;
use crate::progress::Progress;
use crate::report::{IdleReport, Report};
use crate::shared::Shared;
use crate::swarm;
use crate::sys::{self, Nofile};

pub async fn run(a: &IdleArgs, lim: Nofile) -> Result<Report> {
    let c = &a.common;
    c.validate(1, c.clients)?;
    sys::check_fit(c.clients, lim)?;
    let pid = c.server_pid.map(|p| p.to_string());
    let before = match &pid {
        Some(p) => match sys::proc_mem(p) {
            Some(m) => Some(m),
            None => bail!("cannot read /proc/{p}/status: is {p} the server's PID on this machine?"),
        },
        None => None,
    };
    let own_before = sys::proc_mem("self").unwrap_or_default();
    let addr = c.addr()?;
    let prog = Progress::new();
    if pid.is_none() {
        prog.note("no --server-pid: only chat-bench's own memory is reported");
    }
    let sh = Arc::new(Shared::new(&c.prefix, 0, c.threads));
    let (swarm, login) = swarm::assemble(sh.clone(), c, addr, &prog).await?;
    tokio::time::sleep(Duration::from_millis(a.settle_ms)).await;
    let after = match &pid {
        Some(p) => match sys::proc_mem(p) {
            Some(m) => Some(m),
            None => bail!("the server (PID {p}) is gone after the logins"),
        },
        None => None,
    };
    let own_after = sys::proc_mem("self").unwrap_or_default();
    let n = swarm.len().max(1) as f64;
    let per_conn = match (before, after) {
        (Some(b), Some(a)) => Some((a.rss_kib as f64 - b.rss_kib as f64) / n),
        _ => None,
    };
    tokio::time::sleep(Duration::from_secs_f64(a.hold_s.max(0.0))).await;
    let disconnects = sh.disconnects.load(Acquire);
    let clients = swarm.len();
    swarm.stop().await;
    Ok(Report::Idle(IdleReport {
        scenario: "idle",
        server: addr.to_string(),
        clients,
        login,
        settle_ms: a.settle_ms,
        server_before: before,
        server_after: after,
        server_rss_per_conn_kib: per_conn,
        server_threads: after.map(|m| m.threads),
        bench_rss_per_conn_kib: (own_after.rss_kib as f64 - own_before.rss_kib as f64) / n,
        disconnects,
        notes: sh.notes(),
    }))
}
