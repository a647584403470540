//! Putting back what the disk (`--data-dir`) or the cluster's Redis kept: rooms' history and topics, bans, mutes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::history::Entry;
use super::state::Ban;
use super::Registry;
use crate::store::{now_ms, BanRow, Loaded, MuteRow, Store, TopicRow};

impl Registry {
    /// Hands the registry the store, and the rows loaded from it at start.
    pub fn restore(&self, store: Arc<Store>, loaded: &Loaded) {
        self.load(loaded);
        self.state.lock().store = Some(store);
        tracing::info!(
            accounts = loaded.accounts.len(),
            history = loaded.history.len(),
            topics = loaded.topics.len(),
            bans = loaded.bans.len(),
            mutes = loaded.mutes.len(),
            "restored from the data dir"
        );
    }

    /// Puts back rooms' history and topics, bans and mutes (from the disk, or the cluster's
    /// Redis).
    pub fn load(&self, loaded: &Loaded) {
        let mut state = self.state.lock();
        let keep = state.history.keep;
        let now = (Instant::now(), now_ms());
        for row in &loaded.history {
            let log = state.room_log(&row.room_key, &row.room_name);
            log.remember(
                Entry {
                    at_ms: row.at_ms,
                    line: row.line.as_str().into(),
                },
                keep,
            );
        }
        for row in &loaded.topics {
            state.room_log(&row.room_key, &row.room_name).topic = Some(row.topic.clone());
        }
        for row in &loaded.bans {
            state.bans.push(Ban {
                ip: row.ip,
                name: row.name.clone(),
                until: row.until_ms.map(|ms| instant_of(ms, now)),
                by: row.by.clone(),
            });
        }
        for row in &loaded.mutes {
            let until = row.until_ms.map(|ms| instant_of(ms, now));
            state.mutes.insert(row.name_key.clone(), until);
        }
    }
}

impl Registry {
    /// What this server knows that Redis keeps: topics, bans and mutes in force (history is
    /// left out: every server has it, and each would add it again).
    pub fn export(&self) -> Loaded {
        let state = self.state.lock();
        let now = (Instant::now(), now_ms());
        let wall = |at: Instant| {
            let left = at.saturating_duration_since(now.0).as_millis();
            now.1
                .saturating_add(i64::try_from(left).unwrap_or(i64::MAX))
        };
        let rooms = state
            .rooms
            .iter()
            .map(|(k, room)| (k, &room.name, &room.log));
        let archived = state.archived.iter().map(|(k, (name, log))| (k, name, log));
        let topics = rooms
            .chain(archived)
            .filter_map(|(room_key, room_name, log)| {
                Some(TopicRow {
                    room_key: room_key.clone(),
                    room_name: room_name.clone(),
                    topic: log.topic.clone()?,
                })
            })
            .collect();
        let bans = state
            .bans
            .iter()
            .filter(|ban| ban.active(now.0))
            .map(|ban| BanRow {
                ip: ban.ip,
                name: ban.name.clone(),
                until_ms: ban.until.map(wall),
                by: ban.by.clone(),
            })
            .collect();
        let mutes = state
            .mutes
            .iter()
            .filter(|(_, until)| until.is_none_or(|until| now.0 < until))
            .map(|(name_key, until)| MuteRow {
                name_key: name_key.clone(),
                until_ms: until.map(wall),
            })
            .collect();
        Loaded {
            topics,
            bans,
            mutes,
            ..Loaded::default()
        }
    }
}

/// The instant of a wall-clock time in Unix ms, given now in both clocks.
fn instant_of(ms: i64, (now, now_ms): (Instant, i64)) -> Instant {
    let ahead = u64::try_from(ms.saturating_sub(now_ms)).unwrap_or(0);
    now + Duration::from_millis(ahead)
}
