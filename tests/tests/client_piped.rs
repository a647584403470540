//! `chat-client` with piped standard input against the real server: the scriptable mode.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use chat_tests::client_harness::{addr_args, run_piped, PipedClient};
use chat_tests::{Server, T};
use socket2::{Domain, SockAddr, Socket, Type};

fn no_panic(out: &chat_tests::client_harness::Finished) {
    assert!(!out.stderr.contains("panicked"), "{out}");
    assert!(!out.stderr.contains("RUST_BACKTRACE"), "{out}");
}

#[test]
fn piped_lines_are_sent_and_eof_quits() {
    let server = Server::start(&[]);
    let mut bob = server.login("bob");
    let [host, port] = addr_args(server.addr());

    let out = run_piped(&[&host, &port], b"alice\nhi\n");

    bob.expect_joined("alice");
    bob.expect_next("[alice] hi");
    bob.expect_next("* alice left");
    assert_eq!(out.status.code(), Some(0), "{out}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("* welcome, alice!")),
        "{out}"
    );
    out.expect_stdout_line("* bye, alice");
    // The prompt is for people; stdout is a pipe, so no colour either.
    assert!(!out.stdout.contains("Username:"), "{out}");
    assert!(!out.stdout.contains('\u{1b}'), "{out}");
    assert_eq!(out.stderr, "", "{out}");
}

#[test]
fn crlf_input_and_everything_until_the_close_is_printed() {
    let server = Server::start(&[]);
    let [host, port] = addr_args(server.addr());
    // /who is answered before the server handles the /quit sent at EOF.
    let out = run_piped(&[&host, &port], b"alice\r\n/who\r\n");
    assert_eq!(out.status.code(), Some(0), "{out}");
    out.expect_stdout_line("* 1 user in lobby: alice");
    let last = out.stdout.lines().last().unwrap_or_default();
    assert_eq!(last, "* bye, alice", "{out}");
}

#[test]
fn name_flag_logs_in_without_a_name_line() {
    let server = Server::start(&[]);
    let mut bob = server.login("bob");
    let [host, port] = addr_args(server.addr());

    let out = run_piped(&[&host, &port, "--name", "alice"], b"hi from a script\n");

    bob.expect_joined("alice");
    bob.expect_next("[alice] hi from a script");
    bob.expect_next("* alice left");
    assert_eq!(out.status.code(), Some(0), "{out}");
    out.expect_stdout_line("* bye, alice");
}

#[test]
fn refused_name_falls_back_to_the_next_input_line() {
    let server = Server::start(&[]);
    let mut bob = server.login("bob");
    let [host, port] = addr_args(server.addr());

    let out = run_piped(&[&host, &port, "--name", "BOB"], b"carol\nhello\n");

    bob.expect_joined("carol");
    bob.expect_next("[carol] hello");
    bob.expect_next("* carol left");
    assert_eq!(out.status.code(), Some(0), "{out}");
    out.expect_stdout_line("! the name BOB is taken");
    out.expect_stdout_line("* bye, carol");
}

#[test]
fn explicit_quit_with_a_reason_ends_the_session() {
    let server = Server::start(&[]);
    let mut bob = server.login("bob");
    let [host, port] = addr_args(server.addr());

    let out = run_piped(&[&host, &port], b"alice\n/quit gone fishing\nnot sent\n");

    bob.expect_joined("alice");
    bob.expect_next("* alice left (gone fishing)");
    assert_eq!(out.status.code(), Some(0), "{out}");
    out.expect_stdout_line("* bye, alice");
    // Nothing after /quit reaches the room.
    let before = bob.sync();
    assert!(before.is_empty(), "{before:?}");
}

#[test]
fn input_that_never_logs_in_fails_without_waiting_for_the_login_timeout() {
    let server = Server::start(&[]);
    let [host, port] = addr_args(server.addr());

    let started = Instant::now();
    let out = run_piped(&[&host, &port], b"not a name\n");

    assert_eq!(out.status.code(), Some(1), "{out}");
    out.expect_stdout_line(
        "! a name may only hold letters, digits and _ - . (no spaces or symbols)",
    );
    assert_eq!(
        out.stderr.trim_end(),
        "chat-client: input ended before the server accepted a name",
        "{out}"
    );
    assert!(started.elapsed() < T, "took {:?}", started.elapsed());
    no_panic(&out);
}

#[test]
fn connection_refused_is_one_line_and_status_1() {
    // A socket bound but not listening holds its port, and connections to it are refused:
    // no other test can take the port meanwhile.
    let holder = Socket::new(Domain::IPV4, Type::STREAM, None).expect("creating a socket");
    holder
        .bind(&SockAddr::from(SocketAddr::from(([127, 0, 0, 1], 0))))
        .expect("binding a free port");
    let port = holder
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .expect("bound address")
        .port();
    let out = run_piped(&["127.0.0.1", &port.to_string()], b"alice\n");
    drop(holder);

    assert_eq!(out.status.code(), Some(1), "{out}");
    assert_eq!(
        out.stderr,
        format!("chat-client: cannot connect to 127.0.0.1:{port}: connection refused\n"),
        "{out}"
    );
    assert_eq!(out.stdout, "", "{out}");
    no_panic(&out);
}

#[test]
fn server_going_away_prints_one_line_and_exits_1() {
    let mut server = Server::start(&[]);
    let mut bob = server.login("bob");
    let [host, port] = addr_args(server.addr());

    // Input stays open (until `finish` returns): the client must notice the close by itself.
    let alice = PipedClient::spawn(&[&host, &port, "--name", "alice"]);
    bob.expect_joined("alice");
    server.send_signal(libc::SIGTERM);
    let out = alice.finish();
    drop(bob);

    assert_eq!(out.status.code(), Some(1), "{out}");
    out.expect_stdout_line("* server shutting down");
    assert_eq!(
        out.stderr, "chat-client: connection closed by server\n",
        "{out}"
    );
    no_panic(&out);
}

/// A hostile server: control characters and escape sequences in its lines never reach the
/// terminal, and broken UTF-8 and a missing CR are tolerated.
#[test]
fn control_characters_from_another_server_are_stripped() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a fake server");
    let port = listener.local_addr().expect("local addr").port();
    let fake = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accepting the client");
        conn.set_read_timeout(Some(T)).expect("read timeout");
        conn.write_all(b"* hi\x1b]0;owned\x07 there\r\nUsername: ")
            .expect("writing");
        let mut name = Vec::new();
        let mut byte = [0u8; 1];
        while conn.read(&mut byte).expect("reading the name") == 1 && byte[0] != b'\n' {
            name.push(byte[0]);
        }
        assert_eq!(name, b"alice");
        conn.write_all(
            b"* welcome, alice!\r\n[eve] \x1b[2J\x1b[31mred\x1b[0m \x07bell\x08\r\n[eve] bad \xff utf8\n",
        )
        .expect("writing");
        // Read the /quit sent at EOF, then close.
        read_until_quit(&mut conn);
    });
    let out = run_piped(&["127.0.0.1", &port.to_string()], b"alice\n");
    fake.join().expect("fake server thread");

    assert_eq!(out.status.code(), Some(0), "{out}");
    assert_eq!(
        out.stdout, "* hi there\n* welcome, alice!\n[eve] red bell\n[eve] bad \u{fffd} utf8\n",
        "{out}"
    );
}

fn read_until_quit(conn: &mut TcpStream) {
    let deadline = Instant::now() + T;
    let mut got = Vec::new();
    let mut chunk = [0u8; 256];
    while !got.ends_with(b"/quit\n") {
        assert!(Instant::now() < deadline, "no /quit from the client");
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}
