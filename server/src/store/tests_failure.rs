//! The store when the disk fails it or cannot keep up: chat's side never waits.
//!
//! A full disk is made with `PRAGMA max_page_count` on the writer's connection: SQLite then
//! answers `SQLITE_FULL` exactly as on a full file system, and (unlike `chmod`) that also holds
//! when the tests run as root.

use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use rusqlite::Connection;

use super::tests::{account, message, TempDir};
use super::*;

/// Caps the database at its current size (or lifts the cap), on the writer's connection.
fn cap_pages(store: &Store, capped: bool) {
    let (done, wait) = bounded(1);
    store.run_on_writer(move |conn: &Connection| {
        let pages: i64 = if capped {
            conn.query_row("PRAGMA page_count", [], |row| row.get(0))
                .expect("page_count")
        } else {
            1_000_000_000
        };
        let set: i64 = conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |row| {
                row.get(0)
            })
            .expect("max_page_count");
        let _ = done.send(set);
    });
    wait.recv_timeout(Duration::from_secs(10))
        .expect("the writer ran the cap");
}

fn big_message(i: i64) -> HistoryRow {
    HistoryRow {
        line: format!("[alice] {i} {}", "x".repeat(3000)),
        ..message("lobby", i)
    }
}

#[test]
fn a_full_disk_drops_and_counts_and_the_writer_recovers() {
    let dir = TempDir::new("full");
    let (store, _) = Store::open(dir.path(), 20).expect("open");
    store
        .save_account(account("Alice"))
        .expect("save before the disk fills");
    cap_pages(&store, true);

    let start = Instant::now();
    for i in 0..50 {
        store.record_message(big_message(i));
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "record_message waited"
    );
    let _ = store.flush();
    assert!(store.dropped() > 0, "nothing counted as dropped");

    // An account that does not fit: an error, at once, not a hang.
    let mut bob = account("Bob");
    bob.phc = "y".repeat(20_000);
    let start = Instant::now();
    match store.save_account(bob.clone()) {
        Err(StoreError::Failed(why)) => assert!(why.contains("full"), "{why}"),
        other => panic!("expected a failed write, got {other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "save_account hung"
    );
    let dropped = store.dropped();

    // Space is back: the same writer thread writes again.
    cap_pages(&store, false);
    store
        .save_account(bob.clone())
        .expect("save once there is space");
    store.record_message(big_message(1000));
    store.flush().expect("flush");
    assert_eq!(store.dropped(), dropped);
    drop(store);

    let (_store, loaded) = Store::open(dir.path(), 20).expect("reopen");
    assert_eq!(loaded.accounts, vec![account("Alice"), bob]);
    assert_eq!(loaded.history.last(), Some(&big_message(1000)));
}

#[test]
fn record_message_never_blocks_when_the_queue_is_full() {
    let dir = TempDir::new("queue");
    let (store, _) = Store::open_with(dir.path(), 20, 4).expect("open");
    // Hold the writer between two batches.
    let (entered_tx, entered) = bounded(1);
    let (release, release_rx) = bounded::<()>(1);
    store.run_on_writer(move |_| {
        let _ = entered_tx.send(());
        let _ = release_rx.recv_timeout(Duration::from_secs(30));
    });
    entered
        .recv_timeout(Duration::from_secs(10))
        .expect("the writer paused");

    let start = Instant::now();
    for i in 0..1004 {
        store.record_message(message("lobby", i));
    }
    store.set_topic(TopicRow {
        room_key: "lobby".into(),
        room_name: "lobby".into(),
        topic: "dropped too".into(),
    });
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "enqueueing waited: {:?}",
        start.elapsed()
    );
    assert_eq!(store.dropped(), 1001);

    // A durable write behind a stuck writer gives up after its 5 s.
    let start = Instant::now();
    assert_eq!(
        store.save_account(account("Alice")),
        Err(StoreError::Timeout)
    );
    assert!(start.elapsed() < Duration::from_secs(7));

    let _ = release.send(());
    store.flush().expect("flush");
    drop(store);
    let (_store, loaded) = Store::open(dir.path(), 20).expect("reopen");
    let want: Vec<HistoryRow> = (0..4).map(|i| message("lobby", i)).collect();
    assert_eq!(loaded.history, want);
    assert!(loaded.topics.is_empty());
    assert!(loaded.accounts.is_empty());
}
