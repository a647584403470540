//! The on-disk store behind `--data-dir` (PROTOCOL.md section 13): accounts, room history and
//! topics, bans and mutes, in one SQLite database, `DIR/chat.db`.
//!
//! Chat must never wait on the disk. So the connection threads do not touch SQLite at all: they
//! hand rows to a bounded queue with `try_send` and go on. A full queue (a disk far slower than
//! the chat) drops the row, counts it for `/metrics` and logs a warning at most once every 10 s;
//! losing a line of history is better than stalling every room.
//!
//! One writer thread owns the only connection. It blocks for the first queued item, drains
//! whatever else is already queued (up to a batch cap) and writes it all in one transaction: one
//! commit per burst instead of one per line, so a busy server writes *fewer* transactions per
//! message than an idle one, and a row is committed moments after it was said. The database is in
//! WAL mode with `synchronous=NORMAL`: a commit is an append to the WAL with no `fsync`, which
//! survives `kill -9` (the data is in the kernel's page cache) though not a power cut.
//!
//! Accounts are different: `* NAME is now registered` is a promise, so `save_account` waits (at
//! most 5 s) until the writer has committed that row, and the writer commits a batch holding an
//! account with `synchronous=FULL`, which also survives a power cut.
//!
//! A disk that fills or fails (`SQLITE_FULL`, read-only, I/O errors) makes a batch fail: the
//! writer rolls it back, logs (rate-limited), counts its items as dropped, answers waiting
//! account writes with [`StoreError::Failed`] and carries on with the next batch, which may well
//! succeed once space is back.
//!
//! History on disk is pruned per room (see [`writer`]) so it does not grow for ever, and the schema
//! is versioned from the first version on (see [`schema`]).

mod load;
mod ratelimit;
mod schema;
mod writer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_failure;
#[cfg(test)]
mod tests_kill;

use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{RecvTimeoutError, SendTimeoutError, Sender, TrySendError};

use ratelimit::RateLimit;
use writer::{Op, Reply};

/// The database file inside the data dir.
pub const DB_FILE: &str = "chat.db";
/// Locked by the chat-server using the data dir.
const LOCK_FILE: &str = "chat.lock";
/// Items the writer may fall behind by before new ones are dropped.
const QUEUE_CAPACITY: usize = 10_000;
/// How long `save_account` and `delete_account` wait for the commit.
const DURABLE_WAIT: Duration = Duration::from_secs(5);
/// Rows of history kept on disk per room, at least (`--history` may ask for more).
const DISK_HISTORY_MIN: usize = 1000;

/// A row of each kind, as kept on disk and loaded at start.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRow {
    /// The case-folded name, the key.
    pub name_key: String,
    /// The name as registered.
    pub name: String,
    /// The argon2 hash in PHC string format.
    pub phc: String,
}

/// One history line of a room. `at_ms` is milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub room_key: String,
    pub room_name: String,
    pub at_ms: i64,
    pub line: String,
}

/// A room's topic; an empty `topic` given to [`Store::set_topic`] removes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicRow {
    pub room_key: String,
    pub room_name: String,
    pub topic: String,
}

/// A ban of an address (and the account `name`, if any), until `until_ms` (Unix ms) or for ever.
#[derive(Debug, Clone, PartialEq)]
pub struct BanRow {
    pub ip: IpAddr,
    pub name: Option<String>,
    pub until_ms: Option<i64>,
    pub by: String,
}

/// A mute of a name, until `until_ms` (Unix ms) or for ever.
#[derive(Debug, Clone, PartialEq)]
pub struct MuteRow {
    pub name_key: String,
    pub until_ms: Option<i64>,
}

/// Everything loaded at start: accounts, topics, the last `history_per_room` history rows of each
/// room (oldest first), bans and mutes in force (expired ones dropped).
#[derive(Debug, Default)]
pub struct Loaded {
    pub accounts: Vec<AccountRow>,
    pub topics: Vec<TopicRow>,
    pub history: Vec<HistoryRow>,
    pub bans: Vec<BanRow>,
    pub mutes: Vec<MuteRow>,
}

/// Why a durable write did not make it to disk.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("the database did not confirm the write in time")]
    Timeout,
    #[error("the database write failed: {0}")]
    Failed(String),
    #[error("the store has stopped")]
    Stopped,
}

/// What the handle and the writer thread share.
struct Shared {
    /// Items dropped: queue full, or their batch failed.
    dropped: AtomicU64,
    /// The "queue full" warning, at most once every 10 s.
    full_warning: RateLimit,
}

/// The handle the server keeps: a queue to the writer thread. Dropping it lets the writer commit
/// what is queued, then waits for it to finish.
pub struct Store {
    /// `None` only while dropping, to close the queue before joining the writer.
    queue: Option<Sender<Op>>,
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    /// Held (locked) while the store is open; dropped after the writer has finished.
    _lock: File,
}

impl Store {
    /// Opens (creating if needed) DIR/chat.db, runs migrations, loads. Errors name the path and
    /// the cause (e.g. a data dir that cannot be created or opened: the server refuses to start
    /// with one clear line).
    pub fn open(dir: &Path, history_per_room: usize) -> anyhow::Result<(Store, Loaded)> {
        Self::open_with(dir, history_per_room, QUEUE_CAPACITY)
    }

    /// [`Store::open`] with a given queue capacity (tests use a tiny one).
    fn open_with(
        dir: &Path,
        history_per_room: usize,
        capacity: usize,
    ) -> anyhow::Result<(Store, Loaded)> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the data dir {}", dir.display()))?;
        let lock = lock_dir(dir)?;
        let path = dir.join(DB_FILE);
        let mut conn = schema::open(&path)?;
        let keep = history_per_room.max(DISK_HISTORY_MIN);
        let loaded = load::load(&mut conn, history_per_room, keep, now_ms())
            .with_context(|| format!("cannot load {}", path.display()))?;
        let shared = Arc::new(Shared {
            dropped: AtomicU64::new(0),
            full_warning: RateLimit::new(Duration::from_secs(10)),
        });
        let (queue, rx) = crossbeam_channel::bounded(capacity.max(1));
        let writer = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("store-writer".into())
                .spawn(move || writer::run(conn, rx, &shared.dropped, keep))
                .context("cannot start the database writer thread")?
        };
        let store = Store {
            queue: Some(queue),
            shared,
            writer: Some(writer),
            _lock: lock,
        };
        Ok((store, loaded))
    }

    /// Queues a history line (fire and forget; never blocks).
    pub fn record_message(&self, row: HistoryRow) {
        self.enqueue(Op::Message(row));
    }

    /// Queues a topic; an empty topic removes the room's row.
    pub fn set_topic(&self, row: TopicRow) {
        self.enqueue(Op::Topic(row));
    }

    /// Queues a ban (replacing any ban of the same address).
    pub fn save_ban(&self, row: BanRow) {
        self.enqueue(Op::SaveBan(row));
    }

    /// Queues the removal of the ban of `ip`.
    pub fn delete_ban(&self, ip: IpAddr) {
        self.enqueue(Op::DeleteBan(ip));
    }

    /// Queues a mute (replacing any mute of the same name).
    pub fn save_mute(&self, row: MuteRow) {
        self.enqueue(Op::SaveMute(row));
    }

    /// Queues the removal of the mute of `name_key`.
    pub fn delete_mute(&self, name_key: &str) {
        self.enqueue(Op::DeleteMute(name_key.to_owned()));
    }

    /// Writes an account (insert or replace, e.g. a new password) and waits, at most 5 s, until
    /// it is committed. Blocks the caller: call it holding no lock.
    pub fn save_account(&self, row: AccountRow) -> Result<(), StoreError> {
        self.durable(|reply| Op::SaveAccount(row, reply))
    }

    /// Deletes an account and waits, at most 5 s, until that is committed.
    pub fn delete_account(&self, name_key: &str) -> Result<(), StoreError> {
        let key = name_key.to_owned();
        self.durable(|reply| Op::DeleteAccount(key, reply))
    }

    /// Waits (at most 5 s) until everything queued before it has been written (or has failed):
    /// for a clean shutdown, and for tests.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.durable(Op::Flush)
    }

    /// Items dropped because the queue was full or writes failed, for /metrics.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    fn enqueue(&self, op: Op) {
        let Some(queue) = &self.queue else { return };
        match queue.try_send(op) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let dropped = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if self.shared.full_warning.ready() {
                    tracing::warn!(
                        dropped,
                        "the database writer is behind: queue full, dropping writes"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                let dropped = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if self.shared.full_warning.ready() {
                    tracing::error!(dropped, "the database writer has stopped, dropping writes");
                }
            }
        }
    }

    /// Queues an op carrying a reply channel and waits for the answer, all within `DURABLE_WAIT`.
    fn durable(&self, make: impl FnOnce(Reply) -> Op) -> Result<(), StoreError> {
        let queue = self.queue.as_ref().ok_or(StoreError::Stopped)?;
        let deadline = Instant::now() + DURABLE_WAIT;
        let (reply, answer) = crossbeam_channel::bounded(1);
        match queue.send_timeout(make(reply), DURABLE_WAIT) {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout(_)) => return Err(StoreError::Timeout),
            Err(SendTimeoutError::Disconnected(_)) => return Err(StoreError::Stopped),
        }
        match answer.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(StoreError::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(StoreError::Stopped),
        }
    }

    /// Runs `f` on the writer's connection, between two batches (tests: fill the disk, pause).
    #[cfg(test)]
    fn run_on_writer(&self, f: impl FnOnce(&rusqlite::Connection) + Send + 'static) {
        if let Some(queue) = &self.queue {
            let _ = queue.send(Op::Run(Box::new(f)));
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Closing the queue ends the writer once it has written what is queued.
        drop(self.queue.take());
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::error!("the database writer thread panicked");
            }
        }
    }
}

/// Takes DIR/chat.lock, so that a second chat-server on the same data dir is refused at start
/// instead of interleaving its writes and its pruning with ours. The kernel releases the lock
/// when the process ends, however it ends.
fn lock_dir(dir: &Path) -> anyhow::Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // flock, not `File::try_lock`: that needs Rust 1.89 and the workspace says 1.88.
    // SAFETY: flock only takes a descriptor, which `file` keeps open for the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(file);
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        anyhow::bail!(
            "the data dir {} is in use by another chat-server",
            dir.display()
        );
    }
    Err(e).with_context(|| format!("cannot lock {}", path.display()))
}

/// Now, in milliseconds since the Unix epoch (the unit of every `*_ms` column).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
