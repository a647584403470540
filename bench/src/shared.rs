//! State every reader updates while a run goes on, and the coordinator watches.
//!
//! Readers keep per-sender counts to themselves (returned when they stop, see
//! [`crate::client::RecvStats`]); only what the coordinator needs *during* the run is shared:
//! a delivery total for the progress bar and the end condition, problem counters that stop a
//! run early (`! slow down`), the barrier count, the RTT slots, and the latency histograms.
//! Readers touch the shared counters once per read, not once per line.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Mutex, MutexGuard};

use hdrhistogram::Histogram;
use tokio::sync::Notify;

/// Highest latency tracked, in microseconds (larger values are clamped to it).
const HIST_MAX_US: u64 = 3_600_000_000;

pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

/// One broadcaster's outstanding round trip in `rtt`.
#[derive(Default)]
pub struct RttSlot {
    /// The sequence number being timed (0: none).
    pub seq: AtomicU64,
    /// Receivers still to see it.
    pub remaining: AtomicI64,
    /// Set to `seq` by the reader that saw the last copy, with `done_ns` its receipt time.
    pub done_seq: AtomicU64,
    pub done_ns: AtomicU64,
    pub notify: Notify,
}

pub struct Shared {
    /// Client names are this prefix + index.
    pub prefix: Vec<u8>,
    /// Sender indexes that carry measured messages are 0..senders.
    pub senders: usize,
    /// Servers the clients are spread over (1 + `--also`): a client counts for the barrier
    /// when it sees the probe of the first client on its own server.
    pub servers: usize,
    pub delivered: AtomicU64,
    pub last_delivery_ns: AtomicU64,
    pub garbled: AtomicU64,
    pub echoes: AtomicU64,
    pub slow_down: AtomicU64,
    pub server_errors: AtomicU64,
    pub disconnects: AtomicU64,
    /// Set once the run is over: connections closing after it are not disconnects.
    pub stopping: std::sync::atomic::AtomicBool,
    /// Barrier: probes of round >= `probe_base` count; `probe_seen` clients have seen one.
    pub probe_base: AtomicU64,
    pub probe_seen: AtomicUsize,
    pub rtt: Vec<RttSlot>,
    hist: Vec<Mutex<Histogram<u64>>>,
    notes: Mutex<Vec<String>>,
}

impl Shared {
    pub fn new(prefix: &str, senders: usize, threads: usize) -> Shared {
        Shared {
            prefix: prefix.as_bytes().to_vec(),
            senders,
            servers: 1,
            delivered: AtomicU64::new(0),
            last_delivery_ns: AtomicU64::new(0),
            garbled: AtomicU64::new(0),
            echoes: AtomicU64::new(0),
            slow_down: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            stopping: Default::default(),
            probe_base: AtomicU64::new(u64::MAX),
            probe_seen: AtomicUsize::new(0),
            rtt: (0..senders).map(|_| RttSlot::default()).collect(),
            // Several shards only matter with several runtime threads.
            hist: (0..threads.max(1) * 4)
                .map(|_| Mutex::new(new_hist()))
                .collect(),
            notes: Mutex::new(Vec::new()),
        }
    }

    /// The same, with the clients spread over `servers` addresses.
    pub fn with_servers(mut self, servers: usize) -> Shared {
        self.servers = servers.max(1);
        self
    }

    pub fn name(&self, idx: usize) -> String {
        format!("{}{idx}", String::from_utf8_lossy(&self.prefix))
    }

    /// The latency histogram shard of client `idx`.
    pub fn hist(&self, idx: usize) -> MutexGuard<'_, Histogram<u64>> {
        self.hist[idx % self.hist.len()]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub fn record_latency(h: &mut Histogram<u64>, ns: u64) {
        h.saturating_record((ns / 1000).clamp(1, HIST_MAX_US));
    }

    /// All shards merged.
    pub fn latency(&self) -> Histogram<u64> {
        let mut all = new_hist();
        for i in 0..self.hist.len() {
            let _ = all.add(&*self.hist(i));
        }
        all
    }

    /// Keeps the first few distinct problems for the report.
    pub fn note(&self, what: String) {
        let mut n = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        if n.len() < 8 && !n.contains(&what) {
            n.push(what);
        }
    }

    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A reader saw a probe of `round`; `last` is the highest round it had seen before.
    pub fn saw_probe(&self, round: u64, last: u64) {
        let base = self.probe_base.load(Acquire);
        if round >= base && last < base {
            self.probe_seen.fetch_add(1, AcqRel);
        }
    }

    /// A reader saw message `seq` of broadcaster `sender` at `now_ns`.
    pub fn rtt_arrival(&self, sender: usize, seq: u64, now_ns: u64) {
        let Some(slot) = self.rtt.get(sender) else {
            return;
        };
        if slot.seq.load(Acquire) == seq && slot.remaining.fetch_sub(1, AcqRel) == 1 {
            slot.done_ns.store(now_ns, Release);
            slot.done_seq.store(seq, Release);
            slot.notify.notify_one();
        }
    }

    /// The error that ends a run early, if the server has refused messages.
    pub fn slow_down_error(&self) -> Option<anyhow::Error> {
        let n = self.slow_down.load(Acquire);
        (n > 0).then(|| {
            anyhow::anyhow!(
                "the server answered `! slow down` ({n} times): its flood limit refuses the \
                 benchmark's messages; start chat-server with --flood-rate 0 to benchmark it"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_counting_per_barrier() {
        let s = Shared::new("b", 1, 1);
        s.probe_base.store(3, Release);
        s.saw_probe(2, 0); // an older barrier's probe
        s.saw_probe(3, 2);
        s.saw_probe(4, 3); // the same client again, a later round
        s.saw_probe(4, 0); // another client that missed round 3
        assert_eq!(s.probe_seen.load(Acquire), 2);
    }

    #[test]
    fn rtt_slot_completes_on_last_receiver() {
        let s = Shared::new("b", 2, 1);
        let slot = &s.rtt[1];
        slot.remaining.store(2, Release);
        slot.seq.store(7, Release);
        s.rtt_arrival(1, 6, 10); // late copy of an earlier sample
        s.rtt_arrival(1, 7, 11);
        assert_eq!(slot.done_seq.load(Acquire), 0);
        s.rtt_arrival(1, 7, 12);
        assert_eq!(
            (slot.done_seq.load(Acquire), slot.done_ns.load(Acquire)),
            (7, 12)
        );
        s.rtt_arrival(5, 1, 1); // not a broadcaster: ignored
    }
}
