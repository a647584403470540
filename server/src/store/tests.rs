//! The store against real files: round trips across close and reopen, pruning, migrations.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::Connection;

use super::*;

/// A fresh directory under the system temp dir, removed on drop.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("chat-store-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the temp dir");
        TempDir(dir)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }

    pub(super) fn db(&self) -> PathBuf {
        self.0.join(DB_FILE)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn message(room: &str, i: i64) -> HistoryRow {
    HistoryRow {
        room_key: room.to_lowercase(),
        room_name: room.to_owned(),
        at_ms: 1_700_000_000_000 + i,
        line: format!("[alice] line {i}"),
    }
}

pub(super) fn account(name: &str) -> AccountRow {
    AccountRow {
        name_key: name.to_lowercase(),
        name: name.to_owned(),
        phc: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${name}"),
    }
}

fn history_count(db: &Path, room_key: &str) -> i64 {
    let conn = Connection::open(db).expect("open the db");
    conn.query_row(
        "SELECT count(*) FROM history WHERE room_key = ?1",
        [room_key],
        |row| row.get(0),
    )
    .expect("count")
}

#[test]
fn every_row_kind_survives_close_and_reopen() {
    let dir = TempDir::new("roundtrip");
    let v4: IpAddr = "192.0.2.7".parse().expect("ip");
    let v6: IpAddr = "2001:db8::1".parse().expect("ip");
    let gone: IpAddr = "192.0.2.8".parse().expect("ip");
    let far = now_ms() + 3_600_000;
    let ban_v4 = BanRow {
        ip: v4,
        name: Some("Mallory".into()),
        until_ms: Some(far),
        by: "op".into(),
    };
    let ban_v6 = BanRow {
        ip: v6,
        name: None,
        until_ms: None,
        by: "op".into(),
    };
    let lobby_topic = TopicRow {
        room_key: "lobby".into(),
        room_name: "lobby".into(),
        topic: "welcome — ünïcode too".into(),
    };
    let mute = MuteRow {
        name_key: "eve".into(),
        until_ms: None,
    };
    {
        let (store, loaded) = Store::open(dir.path(), 20).expect("open");
        assert!(loaded.accounts.is_empty() && loaded.history.is_empty());
        store.save_account(account("Alice")).expect("save alice");
        store.save_account(account("Bob")).expect("save bob");
        store.delete_account("bob").expect("delete bob");
        store.record_message(message("Rust", 1));
        store.record_message(message("lobby", 2));
        store.record_message(message("Rust", 3));
        store.set_topic(lobby_topic.clone());
        store.set_topic(TopicRow {
            room_key: "rust".into(),
            room_name: "Rust".into(),
            topic: "first".into(),
        });
        store.set_topic(TopicRow {
            room_key: "rust".into(),
            room_name: "Rust".into(),
            topic: String::new(),
        });
        store.save_ban(ban_v4.clone());
        store.save_ban(ban_v6.clone());
        store.save_ban(BanRow {
            ip: gone,
            name: None,
            until_ms: None,
            by: "op".into(),
        });
        store.delete_ban(gone);
        store.save_mute(mute.clone());
        store.save_mute(MuteRow {
            name_key: "trent".into(),
            until_ms: Some(far),
        });
        store.delete_mute("trent");
        assert_eq!(store.dropped(), 0);
    }
    let (store, loaded) = Store::open(dir.path(), 20).expect("reopen");
    assert_eq!(loaded.accounts, vec![account("Alice")]);
    assert_eq!(loaded.topics, vec![lobby_topic]);
    assert_eq!(
        loaded.history,
        vec![message("lobby", 2), message("Rust", 1), message("Rust", 3)]
    );
    assert_eq!(loaded.bans, vec![ban_v4, ban_v6]);
    assert_eq!(loaded.mutes, vec![mute]);
    assert_eq!(store.dropped(), 0);
}

#[test]
fn expired_bans_and_mutes_are_not_loaded() {
    let dir = TempDir::new("expired");
    let past = now_ms() - 1;
    {
        let (store, _) = Store::open(dir.path(), 20).expect("open");
        store.save_ban(BanRow {
            ip: "192.0.2.9".parse().expect("ip"),
            name: None,
            until_ms: Some(past),
            by: "op".into(),
        });
        store.save_mute(MuteRow {
            name_key: "eve".into(),
            until_ms: Some(past),
        });
    }
    let (_store, loaded) = Store::open(dir.path(), 20).expect("reopen");
    assert!(loaded.bans.is_empty(), "{:?}", loaded.bans);
    assert!(loaded.mutes.is_empty(), "{:?}", loaded.mutes);
}

#[test]
fn history_is_pruned_per_room_and_loads_the_last_n_oldest_first() {
    let dir = TempDir::new("prune");
    let keep = DISK_HISTORY_MIN as i64;
    {
        let (store, _) = Store::open(dir.path(), 5).expect("open");
        for i in 0..keep + 250 {
            store.record_message(message("big", i));
            if i % 400 == 0 {
                store.flush().expect("flush");
            }
        }
        for i in 0..3 {
            store.record_message(message("small", i));
        }
        store.flush().expect("flush");
        // Pruned while running: at most PRUNE_EVERY - 1 rows past the bound.
        let running = history_count(&dir.db(), "big");
        assert!(
            running >= keep && running < keep + i64::from(writer::PRUNE_EVERY),
            "{running}"
        );
    }
    // Exactly the bound after a clean stop.
    assert_eq!(history_count(&dir.db(), "big"), keep);
    assert_eq!(history_count(&dir.db(), "small"), 3);

    let (_store, loaded) = Store::open(dir.path(), 5).expect("reopen");
    let last = keep + 250;
    let mut want: Vec<HistoryRow> = (last - 5..last).map(|i| message("big", i)).collect();
    want.extend((0..3).map(|i| message("small", i)));
    assert_eq!(loaded.history, want);
    drop(_store);

    // `--history 0` loads none but keeps the disk rows; a larger `--history` keeps more.
    let (_store, loaded) = Store::open(dir.path(), 0).expect("reopen");
    assert!(loaded.history.is_empty());
    drop(_store);
    assert_eq!(history_count(&dir.db(), "big"), keep);
    let (_store, loaded) = Store::open(dir.path(), 5000).expect("reopen");
    assert_eq!(loaded.history.len(), DISK_HISTORY_MIN + 3);
    assert_eq!(loaded.history[0], message("big", 250));
}

#[test]
fn migrates_an_empty_file_and_a_missing_one() {
    let dir = TempDir::new("migrate");
    std::fs::write(dir.db(), b"").expect("create an empty file");
    let (store, _) = Store::open(dir.path(), 20).expect("open an empty file");
    store.save_account(account("Alice")).expect("save");
    drop(store);
    let conn = Connection::open(dir.db()).expect("open");
    assert_eq!(
        schema::version(&conn).expect("version"),
        schema::VERSION as i64
    );
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("journal mode");
    assert_eq!(mode, "wal");
    drop(conn);

    // A data dir that does not exist yet, two levels deep, is created.
    let nested = dir.path().join("a/b");
    let (_store, loaded) = Store::open(&nested, 20).expect("open a new dir");
    assert!(loaded.accounts.is_empty());
    assert!(nested.join(DB_FILE).exists());
}

#[test]
fn refuses_a_database_from_a_newer_version() {
    let dir = TempDir::new("future");
    {
        let conn = Connection::open(dir.db()).expect("create");
        conn.pragma_update(None, "user_version", 99)
            .expect("set the version");
    }
    let err = match Store::open(dir.path(), 20) {
        Ok(_) => panic!("a future schema was accepted"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("schema version 99"), "{err}");
    assert!(err.contains(&dir.db().display().to_string()), "{err}");
    // Refused, not touched.
    let conn = Connection::open(dir.db()).expect("open");
    assert_eq!(schema::version(&conn).expect("version"), 99);
}

#[test]
fn open_errors_name_the_path() {
    let dir = TempDir::new("badpath");
    // A data dir that is a file.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let err = format!("{:#}", Store::open(&file, 20).err().expect("refused"));
    assert!(
        err.contains("data dir") && err.contains("not-a-dir"),
        "{err}"
    );
    // A chat.db that is not a database.
    std::fs::write(dir.db(), vec![b'x'; 4096]).expect("write");
    let err = format!("{:#}", Store::open(dir.path(), 20).err().expect("refused"));
    assert!(err.contains(&dir.db().display().to_string()), "{err}");
}

#[test]
fn save_account_is_on_disk_when_it_returns() {
    let dir = TempDir::new("durable");
    let (store, _) = Store::open(dir.path(), 20).expect("open");
    store.save_account(account("Alice")).expect("save");
    // Another connection, while the store is still open (as after a kill -9): it is there.
    let conn = Connection::open(dir.db()).expect("open");
    let phc: String = conn
        .query_row(
            "SELECT phc FROM accounts WHERE name_key = 'alice'",
            [],
            |row| row.get(0),
        )
        .expect("the account row");
    assert_eq!(phc, account("Alice").phc);
    store.delete_account("alice").expect("delete");
    let n: i64 = conn
        .query_row("SELECT count(*) FROM accounts", [], |row| row.get(0))
        .expect("count");
    assert_eq!(n, 0);
    // Replacing an account (a new password) keeps one row.
    store.save_account(account("Alice")).expect("save");
    let mut changed = account("Alice");
    changed.phc = "$argon2id$new".into();
    store.save_account(changed.clone()).expect("save");
    drop(store);
    let (_store, loaded) = Store::open(dir.path(), 20).expect("reopen");
    assert_eq!(loaded.accounts, vec![changed]);
}

#[test]
fn a_second_store_on_the_same_dir_is_refused() {
    let dir = TempDir::new("lock");
    let (store, _) = Store::open(dir.path(), 20).expect("open");
    let err = format!("{:#}", Store::open(dir.path(), 20).err().expect("refused"));
    assert!(err.contains("in use by another chat-server"), "{err}");
    drop(store);
    Store::open(dir.path(), 20).expect("open once the first is closed");
}

#[test]
fn the_store_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Store>();
}
