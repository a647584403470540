//! "At most once every N seconds" for log lines that could otherwise flood the log: a disk that
//! stays full fails every batch, and a queue that stays full drops every line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Lets one caller through per period; lock-free, so the connection threads can share it.
pub(super) struct RateLimit {
    start: Instant,
    period_ms: u64,
    /// Milliseconds after `start` from which the next caller is let through.
    next_ms: AtomicU64,
}

impl RateLimit {
    pub(super) fn new(period: Duration) -> Self {
        RateLimit {
            start: Instant::now(),
            period_ms: u64::try_from(period.as_millis()).unwrap_or(u64::MAX),
            next_ms: AtomicU64::new(0),
        }
    }

    /// True for the first call, then for the first call after each period.
    pub(super) fn ready(&self) -> bool {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Relaxed);
        now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now.saturating_add(self.period_ms),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_period() {
        let limit = RateLimit::new(Duration::from_millis(50));
        assert!(limit.ready());
        assert!(!limit.ready());
        std::thread::sleep(Duration::from_millis(60));
        assert!(limit.ready());
        assert!(!limit.ready());
    }
}
