//! Reading what the cluster keeps in Redis when a server first joins: rooms' history and topics,
//! accounts, bans and mutes, as the rows the data dir would give (see [`crate::store::Loaded`]).
//!
//! The snapshot is taken after subscribing to the bus, with the batch number it is current to:
//! batches up to that number are in it, later ones arrive on the bus. History entries carry the
//! number of their batch, so an entry written after the snapshot began is left to the bus.

use std::collections::HashMap;

use redis::{Connection, RedisResult};
use serde::Deserialize;

use super::scripts::Keys;
use crate::store::{now_ms, AccountRow, BanRow, HistoryRow, Loaded, MuteRow, TopicRow};

#[derive(Deserialize)]
struct HistoryEntry {
    at_ms: i64,
    line: String,
}

#[derive(Deserialize)]
struct BanEntry {
    name: Option<String>,
    until_ms: Option<i64>,
    by: String,
}

type Hash = HashMap<String, String>;

/// The batch number the snapshot is current to, and what it holds.
pub fn take(conn: &mut Connection, keys: &Keys) -> RedisResult<(u64, Loaded)> {
    let (seq, rooms, topics, accounts, bans, mutes): (Option<u64>, Hash, Hash, Hash, Hash, Hash) =
        redis::pipe()
            .atomic()
            .get(keys.seq())
            .hgetall(keys.rooms())
            .hgetall(keys.topics())
            .hgetall(keys.accounts())
            .hgetall(keys.bans())
            .hgetall(keys.mutes())
            .query(conn)?;
    let seq = seq.unwrap_or(0);
    let mut history_of = redis::pipe();
    let room_keys: Vec<&String> = rooms.keys().collect();
    for room in &room_keys {
        history_of.lrange(keys.history(room), 0, -1);
    }
    let histories: Vec<Vec<String>> = if room_keys.is_empty() {
        Vec::new()
    } else {
        history_of.query(conn)?
    };
    let mut loaded = Loaded::default();
    for (room_key, entries) in room_keys.iter().zip(histories) {
        let room_name = rooms.get(*room_key).cloned().unwrap_or_default();
        for entry in entries {
            let Some((at_seq, json)) = entry.split_once(' ') else {
                continue;
            };
            let (Ok(at_seq), Ok(entry)) = (
                at_seq.parse::<u64>(),
                serde_json::from_str::<HistoryEntry>(json),
            ) else {
                continue;
            };
            if at_seq <= seq {
                loaded.history.push(HistoryRow {
                    room_key: (*room_key).clone(),
                    room_name: room_name.clone(),
                    at_ms: entry.at_ms,
                    line: entry.line,
                });
            }
        }
    }
    loaded.topics = topics
        .into_iter()
        .map(|(room_key, topic)| TopicRow {
            room_name: rooms
                .get(&room_key)
                .cloned()
                .unwrap_or_else(|| room_key.clone()),
            room_key,
            topic,
        })
        .collect();
    loaded.accounts = accounts
        .into_iter()
        .filter_map(|(name_key, value)| {
            let (name, phc) = serde_json::from_str::<(String, String)>(&value).ok()?;
            Some(AccountRow {
                name_key,
                name,
                phc,
            })
        })
        .collect();
    let now = now_ms();
    loaded.bans = bans
        .into_iter()
        .filter_map(|(ip, value)| {
            let ban = serde_json::from_str::<BanEntry>(&value).ok()?;
            let ip = ip.parse().ok()?;
            Some(BanRow {
                ip,
                name: ban.name,
                until_ms: ban.until_ms,
                by: ban.by,
            })
        })
        .filter(|ban| ban.until_ms.is_none_or(|until| until > now))
        .collect();
    loaded.mutes = mutes
        .into_iter()
        .map(|(name_key, until)| MuteRow {
            name_key,
            until_ms: until.parse().ok(),
        })
        .filter(|mute| mute.until_ms.is_none_or(|until| until > now))
        .collect();
    Ok((seq, loaded))
}

/// Puts back what a Redis that restarted empty has lost, from a server that still knows it:
/// accounts, topics, bans and mutes. Only what is missing is written, so every server can do
/// it.
pub fn reseed(conn: &mut Connection, keys: &Keys, known: &Loaded) -> RedisResult<()> {
    let mut pipe = redis::pipe();
    for row in &known.accounts {
        let value = serde_json::to_string(&(&row.name, &row.phc)).unwrap_or_default();
        pipe.hset_nx(keys.accounts(), &row.name_key, value).ignore();
    }
    for row in &known.topics {
        pipe.hset_nx(keys.rooms(), &row.room_key, &row.room_name)
            .ignore();
        pipe.hset_nx(keys.topics(), &row.room_key, &row.topic)
            .ignore();
    }
    for ban in &known.bans {
        let value = serde_json::json!({ "name": ban.name, "until_ms": ban.until_ms, "by": ban.by });
        pipe.hset_nx(keys.bans(), ban.ip.to_string(), value.to_string())
            .ignore();
    }
    for mute in &known.mutes {
        let until = mute.until_ms.map_or_else(String::new, |ms| ms.to_string());
        pipe.hset_nx(keys.mutes(), &mute.name_key, until).ignore();
    }
    pipe.query(conn)
}
