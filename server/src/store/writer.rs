//! The writer thread: the only user of the connection after start.
//!
//! It blocks for the first queued op, then drains what else is queued, up to [`BATCH_MAX`], and
//! writes the batch in one `BEGIN IMMEDIATE ... COMMIT`. Under load the batches grow, so the cost
//! per row falls as the rate rises; when idle, a lone row is committed at once. Either way a row
//! is on its way to disk moments after it was queued.
//!
//! A batch that fails (disk full, read-only, I/O error) is rolled back as a whole: its items are
//! counted as dropped, waiting account writes get the error, the error is logged at most once
//! every 10 s, and the thread goes on to the next batch. Nothing is retried from memory: the
//! queue behind a failing disk would only grow, and history that could not be kept is not worth
//! holding up chat for.
//!
//! Pruning: each room's history on disk is kept to `keep` rows. Deleting after every insert
//! would double the work, so a room is pruned (one indexed `DELETE`, in the same transaction)
//! once it has had [`PRUNE_EVERY`] inserts since its last prune, and all rooms with inserts
//! pending are pruned when the writer stops. A room thus holds at most `keep + PRUNE_EVERY - 1`
//! rows while the server runs, and `keep` after a clean stop or the next start.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::{params, Connection, TransactionBehavior};

use super::load::{count, PRUNE_ROOM};
use super::ratelimit::RateLimit;
use super::{AccountRow, BanRow, HistoryRow, MuteRow, StoreError, TopicRow};

/// Ops written in one transaction, at most.
const BATCH_MAX: usize = 1024;
/// Inserts into a room between two prunes of it.
pub(super) const PRUNE_EVERY: u32 = 100;

/// Where the answer of a durable op goes.
pub(super) type Reply = Sender<Result<(), StoreError>>;

/// One queued write.
pub(super) enum Op {
    Message(HistoryRow),
    Topic(TopicRow),
    SaveBan(BanRow),
    DeleteBan(IpAddr),
    SaveMute(MuteRow),
    DeleteMute(String),
    SaveAccount(AccountRow, Reply),
    DeleteAccount(String, Reply),
    /// Answered once everything queued before it has been written (or has failed).
    Flush(Reply),
    /// Runs on the connection after the batch before it (tests: fill the disk, pause the writer).
    #[cfg(test)]
    Run(Box<dyn FnOnce(&Connection) + Send>),
}

impl Op {
    /// Must be on disk even after a power cut when its batch commits.
    fn is_account(&self) -> bool {
        matches!(self, Op::SaveAccount(..) | Op::DeleteAccount(..))
    }

    /// Counted as dropped when its batch fails (a flush writes nothing of its own).
    fn is_write(&self) -> bool {
        match self {
            Op::Flush(_) => false,
            #[cfg(test)]
            Op::Run(_) => false,
            _ => true,
        }
    }
}

/// Writes batches until the queue is closed (the `Store` dropped), then prunes and returns.
pub(super) fn run(conn: Connection, queue: Receiver<Op>, dropped: &AtomicU64, keep: usize) {
    let mut writer = Writer {
        conn,
        dropped,
        keep,
        since_prune: HashMap::new(),
        failures: RateLimit::new(Duration::from_secs(10)),
        failed_since_log: 0,
    };
    let mut batch = Vec::with_capacity(BATCH_MAX);
    while let Ok(first) = queue.recv() {
        batch.push(first);
        while batch.len() < BATCH_MAX && !ends_batch(&batch) {
            match queue.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        writer.write(&mut batch);
    }
    writer.prune_pending();
}

/// A test op runs after the ops before it are committed, so it closes its batch.
fn ends_batch(batch: &[Op]) -> bool {
    #[cfg(test)]
    if let Some(Op::Run(_)) = batch.last() {
        return true;
    }
    let _ = batch;
    false
}

struct Writer<'a> {
    conn: Connection,
    dropped: &'a AtomicU64,
    /// History rows kept per room on disk.
    keep: usize,
    /// Rooms with inserts since their last prune, and how many.
    since_prune: HashMap<String, u32>,
    failures: RateLimit,
    /// Failed batches not yet reported in the log.
    failed_since_log: u64,
}

impl Writer<'_> {
    /// Writes and empties `batch`, answering the durable ops in it.
    fn write(&mut self, batch: &mut Vec<Op>) {
        // Accounts must survive a power cut too: one fsync, only for the batches that hold one.
        let full_sync = batch.iter().any(Op::is_account);
        let result = if full_sync {
            let result = self
                .set_synchronous("FULL")
                .and_then(|()| self.apply(batch));
            if let Err(e) = self.set_synchronous("NORMAL") {
                tracing::warn!(error = %e, "cannot set the database back to synchronous=NORMAL");
            }
            result
        } else {
            self.apply(batch)
        };
        let answer = match result {
            Ok(()) => Ok(()),
            Err(e) => {
                self.failed(batch, &e);
                Err(StoreError::Failed(e.to_string()))
            }
        };
        for op in batch.drain(..) {
            match op {
                Op::SaveAccount(_, reply) | Op::DeleteAccount(_, reply) | Op::Flush(reply) => {
                    // The caller may have given up waiting: nobody to tell.
                    let _ = reply.send(answer.clone());
                }
                #[cfg(test)]
                Op::Run(f) => f(&self.conn),
                _ => {}
            }
        }
    }

    fn set_synchronous(&self, level: &str) -> rusqlite::Result<()> {
        self.conn.pragma_update(None, "synchronous", level)
    }

    /// One transaction for the whole batch.
    fn apply(&mut self, batch: &[Op]) -> rusqlite::Result<()> {
        // A failed COMMIT can leave the transaction open; the next BEGIN would fail for ever.
        if !self.conn.is_autocommit() {
            self.conn.execute_batch("ROLLBACK")?;
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut to_prune = Vec::new();
        for op in batch {
            match op {
                Op::Message(row) => {
                    tx.prepare_cached(
                        "INSERT INTO history (room_key, room_name, at_ms, line) \
                         VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![
                        row.room_key,
                        row.room_name,
                        row.at_ms,
                        row.line
                    ])?;
                    let count = self.since_prune.entry(row.room_key.clone()).or_insert(0);
                    *count += 1;
                    if *count >= PRUNE_EVERY {
                        to_prune.push(row.room_key.clone());
                    }
                }
                Op::Topic(row) if row.topic.is_empty() => {
                    tx.prepare_cached("DELETE FROM topics WHERE room_key = ?1")?
                        .execute([&row.room_key])?;
                }
                Op::Topic(row) => {
                    tx.prepare_cached(
                        "INSERT INTO topics (room_key, room_name, topic) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (room_key) DO UPDATE \
                         SET room_name = excluded.room_name, topic = excluded.topic",
                    )?
                    .execute(params![
                        row.room_key,
                        row.room_name,
                        row.topic
                    ])?;
                }
                Op::SaveBan(row) => {
                    tx.prepare_cached(
                        "INSERT INTO bans (ip, name, until_ms, by) VALUES (?1, ?2, ?3, ?4) \
                         ON CONFLICT (ip) DO UPDATE SET name = excluded.name, \
                         until_ms = excluded.until_ms, by = excluded.by",
                    )?
                    .execute(params![
                        row.ip.to_string(),
                        row.name,
                        row.until_ms,
                        row.by
                    ])?;
                }
                Op::DeleteBan(ip) => {
                    tx.prepare_cached("DELETE FROM bans WHERE ip = ?1")?
                        .execute([ip.to_string()])?;
                }
                Op::SaveMute(row) => {
                    tx.prepare_cached(
                        "INSERT INTO mutes (name_key, until_ms) VALUES (?1, ?2) \
                         ON CONFLICT (name_key) DO UPDATE SET until_ms = excluded.until_ms",
                    )?
                    .execute(params![row.name_key, row.until_ms])?;
                }
                Op::DeleteMute(name_key) => {
                    tx.prepare_cached("DELETE FROM mutes WHERE name_key = ?1")?
                        .execute([name_key])?;
                }
                Op::SaveAccount(row, _) => {
                    tx.prepare_cached(
                        "INSERT INTO accounts (name_key, name, phc) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (name_key) DO UPDATE \
                         SET name = excluded.name, phc = excluded.phc",
                    )?
                    .execute(params![row.name_key, row.name, row.phc])?;
                }
                Op::DeleteAccount(name_key, _) => {
                    tx.prepare_cached("DELETE FROM accounts WHERE name_key = ?1")?
                        .execute([name_key])?;
                }
                Op::Flush(_) => {}
                #[cfg(test)]
                Op::Run(_) => {}
            }
        }
        for room in &to_prune {
            tx.prepare_cached(PRUNE_ROOM)?
                .execute(params![room, count(self.keep)])?;
        }
        tx.commit()?;
        for room in &to_prune {
            self.since_prune.remove(room);
        }
        Ok(())
    }

    /// Counts a failed batch's items as dropped and logs, at most once every 10 s.
    fn failed(&mut self, batch: &[Op], error: &rusqlite::Error) {
        let items = batch.iter().filter(|op| op.is_write()).count() as u64;
        let dropped = self.dropped.fetch_add(items, Ordering::Relaxed) + items;
        self.failed_since_log += 1;
        if self.failures.ready() {
            tracing::error!(
                %error,
                failed_batches = self.failed_since_log,
                dropped,
                "a database write failed; chat goes on without it"
            );
            self.failed_since_log = 0;
        }
    }

    /// Prunes every room with inserts since its last prune (when the writer stops).
    fn prune_pending(&mut self) {
        if self.since_prune.is_empty() {
            return;
        }
        let result = (|| {
            let tx = self.conn.transaction()?;
            for room in self.since_prune.keys() {
                tx.prepare_cached(PRUNE_ROOM)?
                    .execute(params![room, count(self.keep)])?;
            }
            tx.commit()
        })();
        match result {
            Ok(()) => self.since_prune.clear(),
            Err(e) => tracing::warn!(error = %e, "cannot prune history at shutdown"),
        }
    }
}
