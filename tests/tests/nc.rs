//! The real `nc` (netcat-openbsd) as a client: what PROTOCOL.md promises nc users.
//! A missing `nc` fails these tests: CI installs netcat-openbsd.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chat_tests::{find_in_path, Server, T};

fn nc_path() -> PathBuf {
    find_in_path("nc").unwrap_or_else(|| {
        panic!(
            "`nc` is not installed (not in PATH): install netcat-openbsd \
             (`apt-get install netcat-openbsd`); CI installs it"
        )
    })
}

struct Nc {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<JoinHandle<Vec<u8>>>,
}

impl Nc {
    fn start(s: &Server) -> Nc {
        let mut child = Command::new(nc_path())
            .arg("127.0.0.1")
            .arg(s.addr().port().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning nc");
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("nc stdout");
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = stdout.read_to_end(&mut out);
            out
        });
        Nc {
            child,
            stdin,
            stdout: Some(reader),
        }
    }

    fn type_in(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("nc stdin open");
        stdin.write_all(text.as_bytes()).expect("writing to nc");
        stdin.flush().expect("flushing nc stdin");
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for nc to exit (the server closed the connection; nc also needs its stdin closed)
    /// and returns what it printed.
    fn output_after_exit(&mut self) -> String {
        let deadline = Instant::now() + T;
        while self.child.try_wait().expect("try_wait on nc").is_none() {
            assert!(
                Instant::now() < deadline,
                "nc still running {T:?} after /quit: the server did not close the connection"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = self
            .stdout
            .take()
            .expect("output read once")
            .join()
            .expect("nc stdout reader");
        String::from_utf8(out).expect("nc printed UTF-8")
    }
}

impl Drop for Nc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn check_nc_output(out: &str, name: &str) {
    assert!(
        out.starts_with("* welcome to chat-server\r\nUsername: "),
        "nc output should start with the banner and the prompt: {out:?}"
    );
    assert!(
        out.contains(&format!("\r\n* welcome, {name}!"))
            || out.contains(&format!("Username: * welcome, {name}!")),
        "nc output lacks the welcome: {out:?}"
    );
    assert!(
        out.ends_with(&format!("* bye, {name}\r\n")),
        "nc output should end with the goodbye: {out:?}"
    );
}

#[test]
fn nc_with_piped_input_logs_in_talks_and_quits() {
    let s = Server::start(&[]);
    let mut watcher = s.login("watcher");
    let mut nc = Nc::start(&s);
    // Like `printf 'ncuser\nhello from nc\n/quit\n' | nc 127.0.0.1 PORT`: all at once.
    nc.type_in("ncuser\nhello from nc\n/quit\n");
    nc.close_stdin();
    watcher.expect_next("* ncuser joined");
    watcher.expect_next("[ncuser] hello from nc");
    watcher.expect_next("* ncuser left");
    let out = nc.output_after_exit();
    check_nc_output(&out, "ncuser");
}

#[test]
fn nc_typed_line_by_line() {
    let s = Server::start(&[]);
    let mut watcher = s.login("watcher");
    let mut nc = Nc::start(&s);
    nc.type_in("typist\n");
    watcher.expect_next("* typist joined");
    watcher.send_line("hi typist");
    nc.type_in("hi watcher\n");
    watcher.expect_next("[typist] hi watcher");
    nc.type_in("/me waves\n");
    watcher.expect_next("* typist waves");
    nc.type_in("/quit\n");
    watcher.expect_next("* typist left");
    // netcat-openbsd keeps running while its stdin is open, even once the server has closed;
    // without -N it does not pass the stdin EOF on, so it exits only if the server closed.
    nc.close_stdin();
    let out = nc.output_after_exit();
    check_nc_output(&out, "typist");
    assert!(
        out.contains("\r\n[watcher] hi typist\r\n") && out.contains("\r\n* typist waves\r\n"),
        "nc should have shown the room's lines: {out:?}"
    );
}
