//! Opening the database and bringing its schema up to date.
//!
//! The schema version lives in SQLite's own header field, `PRAGMA user_version` (0 for a new or
//! empty file). [`MIGRATIONS`] is the ordered list of steps: step `i` takes a database from version
//! `i` to `i + 1`, and runs in one transaction together with the bump of `user_version`, so a crash
//! mid-migration leaves the old version intact. A later release only ever appends steps; it never
//! edits one that has shipped. A database with a version newer than this binary knows was written
//! by a newer chat-server: it is refused rather than half-understood.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use rusqlite::Connection;

/// How long a statement waits for a lock held by another connection (an `sqlite3` shell taking
/// a backup, say) before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// Step `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the first version.
    "CREATE TABLE accounts (
        name_key TEXT PRIMARY KEY NOT NULL,
        name     TEXT NOT NULL,
        phc      TEXT NOT NULL
    );
    CREATE TABLE topics (
        room_key  TEXT PRIMARY KEY NOT NULL,
        room_name TEXT NOT NULL,
        topic     TEXT NOT NULL
    );
    -- id (the rowid) grows with every insert: the order lines were said in.
    CREATE TABLE history (
        id        INTEGER PRIMARY KEY,
        room_key  TEXT NOT NULL,
        room_name TEXT NOT NULL,
        at_ms     INTEGER NOT NULL,
        line      TEXT NOT NULL
    );
    CREATE INDEX history_by_room ON history (room_key, id);
    CREATE TABLE bans (
        ip       TEXT PRIMARY KEY NOT NULL,
        name     TEXT,
        until_ms INTEGER,
        by       TEXT NOT NULL
    );
    CREATE TABLE mutes (
        name_key TEXT PRIMARY KEY NOT NULL,
        until_ms INTEGER
    );",
];

/// The schema version this binary writes.
pub(super) const VERSION: usize = MIGRATIONS.len();

/// Opens (creating) the database at `path`, sets it up for one writer and migrates it.
pub(super) fn open(path: &Path) -> anyhow::Result<Connection> {
    let shown = path.display();
    let mut conn = Connection::open(path).with_context(|| format!("cannot open {shown}"))?;
    configure(&conn).with_context(|| format!("cannot set up {shown}"))?;
    migrate(&mut conn).with_context(|| format!("cannot migrate {shown}"))?;
    Ok(conn)
}

/// Per-connection settings; WAL mode is also recorded in the file.
fn configure(conn: &Connection) -> anyhow::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // The first statement that reads the file: a file that is not a database fails here.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Some file systems cannot hold the shared-memory index WAL needs. The store still
        // works, with a rollback journal.
        tracing::warn!(mode, "the database could not switch to WAL mode");
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

/// Runs the migration steps the database has not had yet.
fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let found = usize::try_from(found).unwrap_or(usize::MAX);
    if found > VERSION {
        bail!(
            "the database has schema version {found}, newer than the {VERSION} this chat-server \
             knows: it was written by a newer chat-server; run that one, or move the data dir aside"
        );
    }
    for (from, step) in MIGRATIONS.iter().enumerate().skip(found) {
        let to = from + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(step)
            .with_context(|| format!("migration to schema version {to} failed"))?;
        tx.pragma_update(None, "user_version", i64::try_from(to)?)?;
        tx.commit()?;
        tracing::info!(version = to, "database schema migrated");
    }
    Ok(())
}

/// The schema version of an open database.
#[cfg(test)]
pub(super) fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}
