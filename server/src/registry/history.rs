//! What a room remembers (PROTOCOL.md section 11): its last messages, as delivered, and its
//! topic. A message is stored once, as one shared string, whatever the room's size: the
//! broadcast path pays one allocation per message for it, none per recipient.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use chat_common::wire;

/// The longest topic, in bytes.
pub const MAX_TOPIC: usize = 300;

/// One remembered message: `[alice] hi` or `* bob waves`, and when it was sent.
#[derive(Debug, Clone)]
pub struct Entry {
    pub at_ms: i64,
    pub line: Arc<str>,
}

/// A room's memory.
#[derive(Debug, Default)]
pub struct RoomLog {
    pub history: VecDeque<Entry>,
    pub topic: Option<String>,
}

impl RoomLog {
    /// Remembers a delivered line, forgetting the oldest past `capacity`.
    pub fn remember(&mut self, entry: Entry, capacity: usize) {
        if capacity == 0 {
            return;
        }
        while self.history.len() >= capacity {
            self.history.pop_front();
        }
        self.history.push_back(entry);
    }

    /// The last `n` messages, oldest first, as history lines.
    pub fn last_lines(&self, n: usize) -> impl Iterator<Item = String> + '_ {
        let skip = self.history.len().saturating_sub(n);
        self.history.iter().skip(skip).map(history_line)
    }

    pub fn is_empty(&self) -> bool {
        self.history.is_empty() && self.topic.is_none()
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `* HH:MM LINE`, the time in UTC.
pub fn history_line(entry: &Entry) -> String {
    let minutes = entry.at_ms.div_euclid(60_000).rem_euclid(24 * 60);
    wire::notice(&format!(
        "{:02}:{:02} {}",
        minutes / 60,
        minutes % 60,
        entry.line
    ))
}

/// `* topic: TEXT`.
pub fn topic_line(topic: &str) -> String {
    wire::notice(&format!("topic: {topic}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at_ms: i64, line: &str) -> Entry {
        Entry {
            at_ms,
            line: line.into(),
        }
    }

    #[test]
    fn lines_carry_utc_hours_and_minutes() {
        // 2026-11-30 14:03:59 UTC.
        let at =
            1_796_050_000_000 + (14 * 60 + 3) * 60_000 - 1_796_050_000_000 % 86_400_000 + 59_000;
        assert_eq!(history_line(&entry(at, "[alice] hi")), "* 14:03 [alice] hi");
        assert_eq!(
            history_line(&entry(0, "* bob waves")),
            "* 00:00 * bob waves"
        );
    }

    #[test]
    fn the_ring_keeps_the_last_and_gives_them_oldest_first() {
        let mut log = RoomLog::default();
        for i in 0..5 {
            log.remember(entry(i * 60_000, &format!("[a] {i}")), 3);
        }
        let lines: Vec<String> = log.last_lines(10).collect();
        assert_eq!(lines, ["* 00:02 [a] 2", "* 00:03 [a] 3", "* 00:04 [a] 4"]);
        let last: Vec<String> = log.last_lines(2).collect();
        assert_eq!(last, ["* 00:03 [a] 3", "* 00:04 [a] 4"]);
        let mut none = RoomLog::default();
        none.remember(entry(0, "[a] x"), 0);
        assert!(none.is_empty());
    }
}
