//! PROTOCOL.md section 8, the command line: the `listening on` line, stdout otherwise silent,
//! every option accepted, and clean errors for a bad option or a port in use.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chat_tests::{server_binary, Server, T};

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs chat-server with `args` and waits for it to exit; kills it and fails if it does not
/// exit within `T` (it must refuse to start, not serve).
fn run_expecting_exit(args: &[&str]) -> Run {
    let mut child = Command::new(server_binary())
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning chat-server");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + T;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chat-server {args:?} did not exit within {T:?} (it should refuse to start); \
                 stdout {:?}, stderr {:?}",
                out.join().unwrap_or_default(),
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// A refusal to start: non-zero exit, nothing on stdout, a short stderr with no panic.
fn assert_clean_refusal(args: &[&str], run: &Run) {
    assert!(
        !run.status.success() && run.status.code().is_some(),
        "{args:?}: expected a non-zero exit, got {:?}; stderr {:?}",
        run.status,
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{args:?}: stdout {:?}", run.stdout);
    let lower = run.stderr.to_lowercase();
    assert!(
        !lower.contains("panicked") && !lower.contains("backtrace"),
        "{args:?}: stderr shows a panic:\n{}",
        run.stderr
    );
    assert!(
        !run.stderr.trim().is_empty(),
        "{args:?}: stderr says nothing"
    );
    assert!(
        run.stderr.len() <= 2000 && run.stderr.lines().count() <= 25,
        "{args:?}: stderr should be short, got {} bytes:\n{}",
        run.stderr.len(),
        run.stderr
    );
}

#[test]
fn port_zero_prints_the_real_port_and_nothing_else_on_stdout() {
    // Server::start checks the line is exactly `listening on 127.0.0.1:PORT` with PORT != 0.
    let mut s = Server::start(&[]);
    let mut alice = s.login("alice");
    alice.send_line("hello");
    alice.send_line("/quit");
    alice.expect_next("* bye, alice");
    s.send_signal(libc::SIGTERM);
    let status = s.wait_exit(T);
    assert!(status.is_some(), "chat-server did not exit on SIGTERM");
    let rest = s.stdout_after_listening();
    assert!(
        rest.is_empty(),
        "nothing but the `listening on` line may go to stdout, also got {}",
        chat_tests::show(&rest)
    );
}

#[test]
fn default_host_is_all_interfaces() {
    let mut child = Command::new(server_binary())
        .args(["--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning chat-server");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(T);
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("no `listening on` line");
    let port = line
        .trim_end()
        .strip_prefix("listening on 0.0.0.0:")
        .and_then(|p| p.parse::<u16>().ok());
    assert!(
        port.is_some_and(|p| p != 0),
        "expected `listening on 0.0.0.0:PORT`, got {line:?}"
    );
}

#[test]
fn every_documented_option_is_accepted() {
    let s = Server::start(&[
        "--max-clients",
        "50",
        "--max-line",
        "512",
        "--login-timeout",
        "30",
        "--outbuf-limit",
        "65536",
        "--flood-burst",
        "30",
        "--flood-rate",
        "5",
        "--partial-flush-ms",
        "150",
        "--keepalive-secs",
        "30",
    ]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    alice.send_line(&"m".repeat(513));
    alice.expect_next("! line too long (max 512 bytes)");
    alice.send_line("fine");
    bob.expect_next("[alice] fine");
}

#[test]
fn bad_options_fail_cleanly() {
    for args in [
        &["--host", "127.0.0.1", "--port", "0", "--no-such-option"][..],
        &["--host", "127.0.0.1", "--port", "notaport"],
        &["--host", "127.0.0.1", "--port", "70000"],
        &["--host", "127.0.0.1", "--port", "0", "--max-line", "lots"],
        &["--host", "not an address", "--port", "0"],
    ] {
        let run = run_expecting_exit(args);
        assert_clean_refusal(args, &run);
    }
}

#[test]
fn port_in_use_fails_cleanly() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("binding a port");
    let port = taken.local_addr().expect("local addr").port().to_string();
    let args = ["--host", "127.0.0.1", "--port", port.as_str()];
    let run = run_expecting_exit(&args);
    assert_clean_refusal(&args, &run);
    drop(taken);
}
