//! `idle`: N clients log in and stay quiet; what does each cost the server?
//!
//! The server's resident memory is read from `/proc/PID/status` before the first connect and
//! again after every client passed the barrier and a settling pause, so the difference over N
//! is the memory one logged-in, idle connection holds (buffers, stacks actually touched,
//! registry entries). The thread count shows the server's model: one thread per connection
//! reads about N, an event loop a constant. chat-bench's own memory per client is reported
//! too, as a check that the tool itself stays small.
//!
//! The difference is only the cost of a connection on a fresh server. One that has served
//! before keeps freed memory (or has handed it back and may take it again in any amount), so
//! its RSS can even shrink while clients log in. Its peak RSS (VmHWM) well above the current
//! one gives that away: the figure is then reported as a lower bound, with the reason, and a
//! difference that is not positive is reported as not measured, never as a negative cost.

use std::sync::atomic::Ordering::*;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::args::IdleArgs;
use crate::progress::Progress;
use crate::report::{IdleReport, Report};
use crate::shared::Shared;
use crate::swarm;
use crate::sys::{self, Nofile, ProcMem};

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
    let addrs = c.addrs()?;
    let prog = Progress::new();
    if pid.is_none() {
        prog.note("no --server-pid: only chat-bench's own memory is reported");
    }
    let sh = Arc::new(Shared::new(&c.prefix, 0, c.threads).with_servers(addrs.len()));
    let (swarm, login) = swarm::assemble(sh.clone(), c, &addrs, &prog).await?;
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
        (Some(b), Some(a)) => Some(per_connection(b, a, swarm.len())),
        _ => None,
    };
    tokio::time::sleep(Duration::from_secs_f64(a.hold_s.max(0.0))).await;
    let disconnects = sh.disconnects.load(Acquire);
    let clients = swarm.len();
    swarm.stop().await;
    Ok(Report::Idle(IdleReport {
        scenario: "idle",
        server: addrs[0].to_string(),
        servers: addrs.iter().map(|a| a.to_string()).collect(),
        transport: c.transport(),
        clients,
        login,
        settle_ms: a.settle_ms,
        server_before: before,
        server_after: after,
        server_rss_per_conn_kib: per_conn.and_then(|p| p.kib),
        server_baseline_fresh: per_conn.map(|p| p.fresh_baseline),
        server_threads: after.map(|m| m.threads),
        bench_rss_per_conn_kib: (own_after.rss_kib as f64 - own_before.rss_kib as f64) / n,
        disconnects,
        notes: sh.notes(),
    }))
}

/// What the server's memory before and after the logins says about one connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerConnection {
    /// KiB of server RSS per connection; `None` when the RSS did not grow.
    pub kib: Option<f64>,
    /// The server had never been larger than it was at the start (see the module docs).
    pub fresh_baseline: bool,
}

/// Peak RSS above the starting RSS by more than this (KiB) means the server has served before.
/// A fresh chat-server starts with the two equal to the page; one that has served even a few
/// connections has a peak higher by at least their thread stacks, and after 400 connections
/// by megabytes, while its RSS may stay high too (measured on a debug build: 7.6 MiB fresh,
/// then 16.7 MiB with a 19.0 MiB peak), so a slack relative to the RSS would miss it.
const REUSE_SLACK_KIB: u64 = 128;

pub fn per_connection(before: ProcMem, after: ProcMem, clients: usize) -> PerConnection {
    let fresh_baseline = before.peak_rss_kib <= before.rss_kib + REUSE_SLACK_KIB;
    let grown = after.rss_kib.saturating_sub(before.rss_kib);
    let kib = (grown > 0 && clients > 0).then(|| grown as f64 / clients as f64);
    PerConnection {
        kib,
        fresh_baseline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(rss_kib: u64, peak_rss_kib: u64) -> ProcMem {
        ProcMem {
            rss_kib,
            peak_rss_kib,
            threads: 4,
        }
    }

    #[test]
    fn a_fresh_server_gives_the_growth_per_client() {
        let p = per_connection(mem(3_000, 3_000), mem(15_000, 15_000), 1000);
        assert_eq!(p.kib, Some(12.0));
        assert!(p.fresh_baseline);
    }

    #[test]
    fn a_server_that_served_before_is_named_and_never_costs_less_than_nothing() {
        // Measured on chat-server after a 1000-client run: 27 MiB peak, 11.5 MiB at the start,
        // 9.3 MiB after 200 more logins.
        let p = per_connection(mem(11_776, 27_480), mem(9_523, 27_480), 200);
        assert_eq!(p.kib, None);
        assert!(!p.fresh_baseline);
        let p = per_connection(mem(10_547, 27_480), mem(17_408, 27_480), 1000);
        assert!(p.kib.is_some_and(|k| k > 0.0));
        assert!(!p.fresh_baseline);
    }

    #[test]
    fn no_growth_is_not_a_figure() {
        assert_eq!(
            per_connection(mem(3_000, 3_000), mem(3_000, 3_000), 10).kib,
            None
        );
        assert_eq!(
            per_connection(mem(3_000, 3_000), mem(4_000, 4_000), 0).kib,
            None
        );
    }
}
