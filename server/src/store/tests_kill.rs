//! `kill -9` in the middle of a stream of writes (PROTOCOL.md section 13): no account that
//! `save_account` confirmed is lost, and history loses at most the last second.
//!
//! The test binary runs itself as the child (the `child` test, which does nothing unless
//! `CHAT_STORE_KILL_CHILD` names a data dir), so the process that is killed is a real one, with
//! the real writer thread, and nothing of it gets to run a destructor.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::tests::{account, TempDir};
use super::*;

const CHILD_ENV: &str = "CHAT_STORE_KILL_CHILD";

/// The child: history as fast as a busy room, an account now and then; reports each on stdout
/// once `record_message` / `save_account` has returned.
#[test]
fn child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    // Enough history on disk that none of it is pruned away.
    let (store, _) = Store::open(Path::new(&dir), 100_000).expect("open");
    let mut out = std::io::stdout().lock();
    let start = Instant::now();
    let mut i = 0i64;
    while start.elapsed() < Duration::from_secs(20) {
        store.record_message(HistoryRow {
            room_key: "lobby".into(),
            room_name: "lobby".into(),
            at_ms: i,
            line: format!("[alice] {i}"),
        });
        writeln!(out, "sent {i}").expect("stdout");
        if i % 100 == 0 {
            store
                .save_account(account(&format!("user{i}")))
                .expect("save_account");
            writeln!(out, "account user{i}").expect("stdout");
        }
        out.flush().expect("stdout");
        i += 1;
        std::thread::sleep(Duration::from_micros(500));
    }
}

#[test]
fn kill_9_loses_no_account_and_at_most_the_last_second_of_history() {
    let dir = TempDir::new("kill9");
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "store::tests_kill::child", "--nocapture"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the child");
    let stdout = child.stdout.take().expect("the child's stdout");
    let mut lines = BufReader::new(stdout).lines();

    // (index, when the parent saw it) of every message, and the accounts confirmed.
    let mut sent: Vec<(i64, Instant)> = Vec::new();
    let mut accounts = Vec::new();
    let mut first = None;
    while let Some(Ok(line)) = lines.next() {
        let now = Instant::now();
        if let Some(i) = line.strip_prefix("sent ") {
            sent.push((i.parse().expect("an index"), now));
        } else if let Some(name) = line.strip_prefix("account ") {
            accounts.push(name.to_owned());
        }
        if now.duration_since(*first.get_or_insert(now)) > Duration::from_millis(1500) {
            break;
        }
    }
    child.kill().expect("kill -9");
    let killed = Instant::now();
    let _ = child.wait();
    assert!(sent.len() > 100, "the child sent only {} lines", sent.len());

    let (_store, loaded) = Store::open(dir.path(), 100_000).expect("reopen");
    for name in &accounts {
        assert!(
            loaded.accounts.iter().any(|a| &a.name == name),
            "confirmed account {name} lost"
        );
    }
    let kept: Vec<i64> = loaded.history.iter().map(|row| row.at_ms).collect();
    let kept_n = i64::try_from(kept.len()).expect("count");
    assert_eq!(kept, (0..kept_n).collect::<Vec<_>>(), "history has gaps");
    // Every message sent more than a second before the kill is there.
    let old_enough = sent
        .iter()
        .filter(|(_, at)| killed.duration_since(*at) > Duration::from_secs(1))
        .map(|(i, _)| *i)
        .max()
        .unwrap_or(-1);
    assert!(
        kept_n > old_enough,
        "kept {kept_n} lines; line {old_enough} was sent over a second before the kill"
    );
}
