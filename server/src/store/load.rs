//! Reading everything back at start.
//!
//! Before loading, one transaction tidies up what a previous run may have left: bans and mutes
//! whose time ran out, and history past the per-room bound (which may have shrunk since, or been
//! overshot by the writer's pruning "every so often", see [`super::writer`]). That is best effort:
//! a full or read-only disk still loads, and the queries filter out what is expired anyway.

use std::net::IpAddr;

use rusqlite::{params, Connection};

use super::{AccountRow, BanRow, HistoryRow, Loaded, MuteRow, TopicRow};

/// Deletes the rows of `room_key` older than its newest `keep` (param 2), oldest first.
pub(super) const PRUNE_ROOM: &str = "DELETE FROM history WHERE room_key = ?1 AND id <= \
     (SELECT id FROM history WHERE room_key = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)";

/// Tidies up, then loads: the last `history_per_room` history rows of each room (oldest first),
/// keeping `keep` on disk; bans and mutes still in force at `now_ms`.
pub(super) fn load(
    conn: &mut Connection,
    history_per_room: usize,
    keep: usize,
    now_ms: i64,
) -> rusqlite::Result<Loaded> {
    let rooms = room_keys(conn)?;
    // Best effort: a full or read-only disk must not keep the server from starting.
    if let Err(e) = tidy(conn, &rooms, keep, now_ms) {
        tracing::error!(error = %e, "cannot tidy up the database (expired bans, old history)");
    }
    let mut loaded = Loaded {
        accounts: accounts(conn)?,
        topics: topics(conn)?,
        history: Vec::new(),
        bans: bans(conn, now_ms)?,
        mutes: mutes(conn, now_ms)?,
    };
    if history_per_room > 0 {
        let mut last = conn.prepare(
            "SELECT room_key, room_name, at_ms, line FROM history WHERE room_key = ?1 \
             ORDER BY id DESC LIMIT ?2",
        )?;
        for room in &rooms {
            let start = loaded.history.len();
            let rows = last.query_map(params![room, count(history_per_room)], |row| {
                Ok(HistoryRow {
                    room_key: row.get(0)?,
                    room_name: row.get(1)?,
                    at_ms: row.get(2)?,
                    line: row.get(3)?,
                })
            })?;
            for row in rows {
                loaded.history.push(row?);
            }
            // Read newest first (so LIMIT takes the last ones), handed out oldest first.
            loaded.history[start..].reverse();
        }
    }
    Ok(loaded)
}

/// Deletes expired bans and mutes, and history past `keep` rows per room.
fn tidy(conn: &mut Connection, rooms: &[String], keep: usize, now_ms: i64) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute(
        "DELETE FROM bans WHERE until_ms IS NOT NULL AND until_ms <= ?1",
        [now_ms],
    )?;
    tx.execute(
        "DELETE FROM mutes WHERE until_ms IS NOT NULL AND until_ms <= ?1",
        [now_ms],
    )?;
    for room in rooms {
        tx.execute(PRUNE_ROOM, params![room, count(keep)])?;
    }
    tx.commit()
}

fn room_keys(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT DISTINCT room_key FROM history ORDER BY room_key")?;
    let rows = stmt.query_map([], |row| row.get(0))?;
    rows.collect()
}

fn accounts(conn: &Connection) -> rusqlite::Result<Vec<AccountRow>> {
    let mut stmt = conn.prepare("SELECT name_key, name, phc FROM accounts ORDER BY name_key")?;
    let rows = stmt.query_map([], |row| {
        Ok(AccountRow {
            name_key: row.get(0)?,
            name: row.get(1)?,
            phc: row.get(2)?,
        })
    })?;
    rows.collect()
}

fn topics(conn: &Connection) -> rusqlite::Result<Vec<TopicRow>> {
    let mut stmt =
        conn.prepare("SELECT room_key, room_name, topic FROM topics ORDER BY room_key")?;
    let rows = stmt.query_map([], |row| {
        Ok(TopicRow {
            room_key: row.get(0)?,
            room_name: row.get(1)?,
            topic: row.get(2)?,
        })
    })?;
    rows.collect()
}

fn bans(conn: &Connection, now_ms: i64) -> rusqlite::Result<Vec<BanRow>> {
    let mut stmt = conn.prepare(
        "SELECT ip, name, until_ms, by FROM bans WHERE until_ms IS NULL OR until_ms > ?1 \
         ORDER BY ip",
    )?;
    let rows = stmt.query_map([now_ms], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
        ))
    })?;
    let mut bans = Vec::new();
    for row in rows {
        let (ip, name, until_ms, by) = row?;
        // Written from an `IpAddr`; a row edited by hand into nonsense is skipped, not fatal.
        match ip.parse::<IpAddr>() {
            Ok(ip) => bans.push(BanRow {
                ip,
                name,
                until_ms,
                by,
            }),
            Err(_) => tracing::warn!(ip, "skipping a ban of an unreadable address"),
        }
    }
    Ok(bans)
}

fn mutes(conn: &Connection, now_ms: i64) -> rusqlite::Result<Vec<MuteRow>> {
    let mut stmt = conn.prepare(
        "SELECT name_key, until_ms FROM mutes WHERE until_ms IS NULL OR until_ms > ?1 \
         ORDER BY name_key",
    )?;
    let rows = stmt.query_map([now_ms], |row| {
        Ok(MuteRow {
            name_key: row.get(0)?,
            until_ms: row.get(1)?,
        })
    })?;
    rows.collect()
}

/// A row count as SQLite takes it.
pub(super) fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
