//! What a run reports: one struct per scenario, printed as a table for people or as one JSON
//! object (`--json`, see [`Report::json`]; the table is in `table.rs`). The field names are
//! the JSON keys, so scripts and the tests read exactly what the table shows.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::net::Transport;
use crate::sys::{CpuUse, ProcMem};

/// Percentiles of a microsecond histogram, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Some(Latency {
            count: h.len(),
            p50_ms: ms(0.50),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
            max_ms: h.max() as f64 / 1000.0,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Login {
    pub clients: usize,
    pub secs: f64,
    pub per_s: f64,
    pub max_login_ms: f64,
    pub barrier_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FanoutReport {
    pub scenario: &'static str,
    pub server: String,
    /// Every server the clients were spread over, round-robin (`server` first, then each
    /// `--also`); one element without `--also`.
    pub servers: Vec<String>,
    /// `tcp` (lines on the line port), `ws` (WebSocket on the web port), `tls` or `wss` (the
    /// same over TLS).
    pub transport: Transport,
    pub clients: usize,
    pub senders: usize,
    pub messages_per_sender: u64,
    pub payload: usize,
    pub rate: f64,
    pub batch: usize,
    pub threads: usize,
    pub login: Login,
    pub sent: u64,
    pub send_s: f64,
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub garbled: u64,
    pub out_of_order: u64,
    /// Distinct sequences of (sender, seq) among the receivers that do not send and got every
    /// message exactly once: 1 is one order for everybody. `None` (null) when not measured:
    /// every client sends, or no other receiver got every message.
    pub orders: Option<usize>,
    /// How many receivers `orders` compared.
    pub orders_compared: usize,
    pub echoes: u64,
    pub clients_short: usize,
    pub window_s: f64,
    pub deliveries_per_s: f64,
    pub latency: Option<Latency>,
    pub cpu: CpuUse,
    pub server_mem: Option<ProcMem>,
    pub disconnects: u64,
    pub server_errors: u64,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RttStep {
    pub clients: usize,
    pub samples: u64,
    pub timeouts: u64,
    pub rtt: Option<Latency>,
    pub secs: f64,
    pub cpu: CpuUse,
    pub held: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RttReport {
    pub scenario: &'static str,
    pub server: String,
    /// Every server the clients were spread over, round-robin (`server` first, then each
    /// `--also`); one element without `--also`.
    pub servers: Vec<String>,
    /// `tcp` (lines on the line port), `ws` (WebSocket on the web port), `tls` or `wss` (the
    /// same over TLS).
    pub transport: Transport,
    pub senders: usize,
    pub samples_per_step: u64,
    pub step: usize,
    pub limit_ms: f64,
    pub payload: usize,
    pub threads: usize,
    pub login: Login,
    pub steps: Vec<RttStep>,
    /// Largest client count whose step held (p95 within the limit, no timeouts).
    pub max_clients_held: Option<usize>,
    pub stopped_by: String,
    pub server_mem: Option<ProcMem>,
    pub garbled: u64,
    pub out_of_order: u64,
    pub disconnects: u64,
    pub server_errors: u64,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    pub scenario: &'static str,
    pub server: String,
    /// Every server the clients were spread over, round-robin (`server` first, then each
    /// `--also`); one element without `--also`.
    pub servers: Vec<String>,
    /// `tcp` (lines on the line port), `ws` (WebSocket on the web port), `tls` or `wss` (the
    /// same over TLS).
    pub transport: Transport,
    pub clients: usize,
    pub login: Login,
    pub settle_ms: u64,
    pub server_before: Option<ProcMem>,
    pub server_after: Option<ProcMem>,
    /// `None` without `--server-pid`, or when the server's RSS did not grow.
    pub server_rss_per_conn_kib: Option<f64>,
    /// The server's peak RSS was near its RSS at the start: it had not served before, and the
    /// figure above is the whole cost rather than a lower bound.
    pub server_baseline_fresh: Option<bool>,
    pub server_threads: Option<u64>,
    pub bench_rss_per_conn_kib: f64,
    pub disconnects: u64,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Report {
    Fanout(FanoutReport),
    Rtt(RttReport),
    Idle(IdleReport),
}

/// `label  value` rows, labels padded to one width.
impl Report {
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::new_hist;

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut h = new_hist();
        for us in 1..=10_000u64 {
            h.record(us * 100).unwrap(); // 0.1 ms .. 1000 ms
        }
        let l = Latency::of(&h).unwrap();
        assert_eq!(l.count, 10_000);
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.002;
        assert!(near(l.p50_ms, 500.0), "{l:?}");
        assert!(near(l.p95_ms, 950.0), "{l:?}");
        assert!(near(l.p99_ms, 990.0), "{l:?}");
        assert!(near(l.max_ms, 1000.0), "{l:?}");
        assert!(Latency::of(&new_hist()).is_none());
    }

    #[test]
    fn percentiles_of_a_skewed_spread() {
        let mut h = new_hist();
        h.record_n(1000, 98).unwrap(); // 98 samples at 1 ms
        h.record(50_000).unwrap(); // one at 50 ms
        h.record(2_000_000).unwrap(); // one at 2 s
        let l = Latency::of(&h).unwrap();
        assert_eq!((l.p50_ms, l.p95_ms), (1.0, 1.0));
        assert!((l.p99_ms - 50.0).abs() < 0.1, "{l:?}");
        assert!((l.max_ms - 2000.0).abs() < 2.0, "{l:?}");
    }
}
