//! PROTOCOL.md section 13: with `--data-dir`, history, topics, accounts, bans and mutes survive a
//! restart; a kill -9 loses at most the last second of history and never an account; a disk
//! that fails does not stop the chat.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chat_tests::{Client, Server, T};

/// A fresh data directory, removed on drop.
struct DataDir(PathBuf);

impl DataDir {
    fn new(tag: &str) -> DataDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("chat-data-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        DataDir(dir)
    }

    fn arg(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp path")
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn oper_file(dir: &DataDir) -> String {
    let path = dir.0.with_extension("oper");
    std::fs::write(&path, "op-password\n").expect("writing the operator password");
    path.to_str().expect("UTF-8").to_owned()
}

fn history_texts(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| {
            l.strip_prefix("* ")
                .filter(|r| r.as_bytes().get(2) == Some(&b':'))
        })
        .map(|r| r[6..].to_owned())
        .collect()
}

#[test]
fn a_restart_keeps_history_topics_accounts_bans_and_mutes() {
    let dir = DataDir::new("restart");
    let oper = oper_file(&dir);
    let args = [
        "--data-dir",
        dir.arg(),
        "--oper-password-file",
        &oper,
        "--trusted",
        "127.0.0.1/32",
    ];
    {
        let mut s = Server::start(&args);
        let [mut alice, mut op] = s.users(["alice", "op"]);
        alice.send_line("/register alices-pass");
        alice.expect_next("* alice is now registered");
        alice.send_line("/topic kept topic");
        alice.expect_next("* alice set the topic: kept topic");
        op.expect_next("* alice set the topic: kept topic");
        for i in 1..=3 {
            alice.send_line(&format!("kept {i}"));
            op.expect_next(&format!("[alice] kept {i}"));
        }
        alice.send_line("/join dev");
        alice.expect_line("join reply", |l| l.starts_with("* you are now in dev"));
        alice.send_line("in dev before the restart");
        alice.sync();
        op.expect_next("* alice left (moved to dev)");
        op.send_line("/oper op-password");
        op.expect_next("* you are now an operator");
        let mut mallory = Client::connect_from(s.addr(), "127.0.0.9".parse().unwrap());
        mallory.login("mallory");
        mallory.sync();
        op.expect_next("* mallory joined");
        op.send_line("/mute mallory");
        op.expect_next("* mallory was muted by op");
        mallory.expect_next("* mallory was muted by op");
        op.send_line("/ban 127.0.0.10");
        op.expect_next("* banned 127.0.0.10");
        // Give the writer a moment past its last batch, then stop the server the hard way.
        std::thread::sleep(Duration::from_millis(1500));
        s.send_signal(libc::SIGKILL);
    }
    let s = Server::start(&args);
    // History and topic of the lobby.
    let mut bob = s.connect();
    bob.login("bob");
    let shown = bob.sync();
    assert_eq!(
        shown.first().map(String::as_str),
        Some("* topic: kept topic"),
        "{shown:?}"
    );
    assert_eq!(
        history_texts(&shown),
        ["[alice] kept 1", "[alice] kept 2", "[alice] kept 3"]
    );
    // The emptied room kept its history on disk.
    bob.send_line("/join dev");
    bob.expect_line("join reply", |l| l.starts_with("* you are now in dev"));
    assert_eq!(
        history_texts(&bob.sync()),
        ["[alice] in dev before the restart"]
    );
    // The account.
    let mut imposter = s.connect();
    imposter.expect_prompt();
    imposter.send_line("alice");
    imposter.expect_prompt_of(b"Password: ");
    imposter.send_line("alices-pass");
    imposter.expect_line("the welcome", |l| l.starts_with("* welcome, alice!"));
    // The ban and the mute.
    let mut banned = Client::connect_from(s.addr(), "127.0.0.10".parse().unwrap());
    let rest = String::from_utf8_lossy(&banned.expect_closed()).into_owned();
    assert!(rest.ends_with("! you are banned\r\n"), "{rest:?}");
    let mut mallory = Client::connect_from(s.addr(), "127.0.0.9".parse().unwrap());
    mallory.login("mallory");
    mallory.sync();
    mallory.send_line("still muted?");
    mallory.expect_next("! you are muted");
}

#[test]
fn kill_9_loses_at_most_the_last_second() {
    let dir = DataDir::new("kill9");
    let args = [
        "--data-dir",
        dir.arg(),
        "--flood-rate",
        "0",
        "--history",
        "100000",
    ];
    let mut sent: Vec<(usize, Instant)> = Vec::new();
    {
        let mut s = Server::start(&args);
        let [mut talker, mut listener] = s.users(["talker", "listener"]);
        let start = Instant::now();
        let mut i = 0;
        // A steady stream (about 200 a second) for 2.5 s, each message confirmed delivered,
        // then kill -9 mid-stream.
        while start.elapsed() < Duration::from_millis(2500) {
            i += 1;
            talker.send_line(&format!("n{i}"));
            listener.expect_next(&format!("[talker] n{i}"));
            sent.push((i, Instant::now()));
            std::thread::sleep(Duration::from_millis(5));
        }
        s.send_signal(libc::SIGKILL);
    }
    let killed_at = Instant::now();
    let s = Server::start(&args);
    let mut reader = s.login("reader");
    reader.sync();
    reader.send_line("/history 10000");
    let kept = history_texts(&reader.sync())
        .iter()
        .filter_map(|t| t.strip_prefix("[talker] n"))
        .filter_map(|n| n.parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    let must_have = sent
        .iter()
        .filter(|(_, at)| killed_at.duration_since(*at) > Duration::from_secs(1))
        .map(|(i, _)| *i)
        .max()
        .unwrap_or(0);
    eprintln!(
        "sent {}, kept up to n{kept}, required n{must_have}",
        sent.len()
    );
    assert!(kept >= must_have, "kill -9 lost more than the last second: kept up to n{kept}, sent n{must_have} over a second before the kill");
}

#[test]
fn a_full_disk_is_logged_and_chat_goes_on() {
    let dir = DataDir::new("full");
    // The database may grow to 256 KiB; past it every write fails (EFBIG), as on a full disk.
    let s = Server::start_with(&["--data-dir", dir.arg(), "--flood-rate", "0"], |command| {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit only, between fork and exec.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 256 * 1024,
                    rlim_max: 256 * 1024,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let [mut talker, mut listener] = s.users(["talker", "listener"]);
    let filler = "f".repeat(1000);
    let deadline = Instant::now() + T;
    let mut i = 0;
    while !s.stderr().to_lowercase().contains("database") || i < 1000 {
        assert!(
            Instant::now() < deadline,
            "no database error logged after {i} messages:\n{}",
            s.stderr()
        );
        i += 1;
        talker.send_line(&format!("{i} {filler}"));
        listener.expect_next(&format!("[talker] {i} {filler}"));
    }
    // Chat goes on, accounts are refused cleanly rather than hanging.
    listener.send_line("still chatting");
    talker.expect_next("[listener] still chatting");
    talker.send_line("/register some-password");
    let reply = talker.next_line();
    assert!(
        reply.starts_with("! ") || reply == "* talker is now registered",
        "{reply}"
    );
}
