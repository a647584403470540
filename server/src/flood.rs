//! The flood limit: a token bucket per user (PROTOCOL.md section 6).

use std::time::Instant;

/// Allows `burst` lines at once, then `rate` lines per second. A rate of 0 turns it off.
#[derive(Debug)]
pub struct FloodGate {
    burst: f64,
    rate: f64,
    tokens: f64,
    refilled: Instant,
}

impl FloodGate {
    pub fn new(burst: u32, rate: u32) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            rate: f64::from(rate),
            tokens: f64::from(burst.max(1)),
            refilled: Instant::now(),
        }
    }

    /// Takes one line's token at `now`; false means the line is refused.
    pub fn allow(&mut self, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let start = Instant::now();
        let mut gate = FloodGate::new(20, 10);
        assert!((0..20).all(|_| gate.allow(start)));
        assert!(!gate.allow(start));
        // 10 lines per second: one token every 100 ms.
        assert!(gate.allow(start + Duration::from_millis(100)));
        assert!(!gate.allow(start + Duration::from_millis(150)));
        assert!(gate.allow(start + Duration::from_millis(200)));
    }

    #[test]
    fn refill_is_capped_at_the_burst() {
        let start = Instant::now();
        let mut gate = FloodGate::new(3, 10);
        let later = start + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| gate.allow(later)).count(), 3);
    }

    #[test]
    fn rate_zero_is_off() {
        let now = Instant::now();
        let mut gate = FloodGate::new(1, 0);
        assert!((0..10_000).all(|_| gate.allow(now)));
    }
}
