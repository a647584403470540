//! `chat-client --tls [--ca FILE]` against chat-server's TLS port (PROTOCOL.md section 10), with
//! certificates made at test time.

use std::path::Path;

use chat_tests::client_harness::{
    client_command, last_line, run_piped, Finished, PipedClient, Tmux,
};
use chat_tests::tls::TestCerts;
use chat_tests::Server;

/// A server with a TLS port whose certificate `certs` holds.
fn tls_server(certs: &TestCerts) -> Server {
    let args = certs.server_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&args)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// The client refused the certificate with the one line, naming the host, and exit status 1.
fn expect_refused(out: &Finished, host: &str) {
    assert_eq!(out.status.code(), Some(1), "{out}");
    let prefix = format!("chat-client: the TLS certificate of {host} does not verify: ");
    assert!(out.stderr.starts_with(&prefix), "{out}");
    assert!(out.stderr.contains("UnknownIssuer"), "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(!out.stderr.contains("panicked"), "{out}");
    assert_eq!(out.stdout, "", "{out}");
}

#[test]
fn piped_tls_client_chats_with_a_plain_tcp_user() {
    let certs = TestCerts::new("client-piped");
    let server = tls_server(&certs);
    let mut bob = server.login("bob");
    let port = server.tls_addr().port().to_string();

    let ca = certs.ca();
    let mut alice = PipedClient::spawn(&["--tls", "--ca", path(&ca), "localhost", &port]);
    alice.try_write(b"alice\n").expect("writing the name");
    bob.expect_joined("alice");
    bob.send_line("hello alice, in clear");
    // Once bob's /who is answered, his line is on its way to alice, before anything she sends.
    assert!(bob.sync().is_empty());
    alice
        .try_write(b"hi bob, over TLS\n")
        .expect("writing a line");
    bob.expect_next("[alice] hi bob, over TLS");
    alice.close_stdin();
    let out = alice.finish();

    bob.expect_next("* alice left");
    assert_eq!(out.status.code(), Some(0), "{out}");
    out.expect_stdout_line("[bob] hello alice, in clear");
    out.expect_stdout_line("* bye, alice");
    assert_eq!(out.stderr, "", "{out}");
}

#[test]
fn the_server_name_may_be_an_ip_address() {
    let certs = TestCerts::new("client-ip");
    let server = tls_server(&certs);
    let addr = server.tls_addr();
    let ca = certs.ca();
    let out = run_piped(
        &[
            "--tls",
            "--ca",
            path(&ca),
            "-H",
            "127.0.0.1",
            "-p",
            &addr.port().to_string(),
        ],
        b"alice\n/who\n",
    );
    assert_eq!(out.status.code(), Some(0), "{out}");
    out.expect_stdout_line("* 1 user in lobby: alice");
    out.expect_stdout_line("* bye, alice");
}

#[test]
fn a_ca_that_did_not_sign_the_certificate_is_refused_with_one_line() {
    let certs = TestCerts::new("client-signed");
    let other = TestCerts::new("client-other");
    let server = tls_server(&certs);
    let port = server.tls_addr().port().to_string();
    let ca = other.ca();
    let out = run_piped(
        &["--tls", "--ca", path(&ca), "localhost", &port],
        b"alice\n",
    );
    expect_refused(&out, "localhost");
}

#[test]
fn without_ca_the_system_roots_refuse_a_private_ca() {
    let certs = TestCerts::new("client-system");
    let server = tls_server(&certs);
    let port = server.tls_addr().port().to_string();
    let out = run_piped(&["--tls", "localhost", &port], b"alice\n");
    expect_refused(&out, "localhost");
}

#[test]
fn the_system_store_is_where_rustls_native_certs_looks() {
    // SSL_CERT_FILE replaces the OS store: trusting the test CA there is enough without --ca.
    let certs = TestCerts::new("client-env");
    let server = tls_server(&certs);
    let port = server.tls_addr().port().to_string();
    let ca = certs.ca();
    let mut alice =
        PipedClient::spawn_with_env(&["--tls", "localhost", &port], &[("SSL_CERT_FILE", &ca)]);
    alice.try_write(b"alice\n").expect("writing the name");
    alice.close_stdin();
    let out = alice.finish();
    assert_eq!(out.status.code(), Some(0), "{out}");
    out.expect_stdout_line("* bye, alice");
}

#[test]
fn server_going_away_over_tls_prints_one_line_and_exits_1() {
    let certs = TestCerts::new("client-shutdown");
    let mut server = tls_server(&certs);
    let mut bob = server.login("bob");
    let port = server.tls_addr().port().to_string();
    let ca = certs.ca();
    // Input stays open: the client must notice the close by itself.
    let alice = PipedClient::spawn(&[
        "--tls",
        "--ca",
        path(&ca),
        "localhost",
        &port,
        "--name",
        "alice",
    ]);
    bob.expect_joined("alice");
    server.send_signal(libc::SIGTERM);
    let out = alice.finish();
    assert_eq!(out.status.code(), Some(1), "{out}");
    out.expect_stdout_line("* server shutting down");
    assert_eq!(
        out.stderr, "chat-client: connection closed by server\n",
        "{out}"
    );
}

#[test]
fn tls_to_the_plain_port_fails_with_one_line() {
    let certs = TestCerts::new("client-plain-port");
    let server = tls_server(&certs);
    let port = server.addr().port().to_string();
    let ca = certs.ca();
    let out = run_piped(
        &["--tls", "--ca", path(&ca), "127.0.0.1", &port],
        b"alice\n",
    );
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr
            .starts_with("chat-client: TLS handshake with 127.0.0.1 failed: "),
        "{out}"
    );
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
}

#[test]
fn interactive_client_over_tls() {
    let certs = TestCerts::new("client-tmux");
    let server = tls_server(&certs);
    let mut bob = server.login("bob");
    let port = server.tls_addr().port().to_string();
    let ca = certs.ca();
    let tmux = Tmux::start(
        100,
        24,
        &client_command(&["--tls", "--ca", path(&ca), "localhost", &port]),
    );
    tmux.wait_for_last_line("Username:");
    tmux.type_text("alice");
    tmux.press(&["Enter"]);
    tmux.wait_for_last_line("#lobby>");
    bob.expect_joined("alice");

    tmux.type_text("half typed");
    tmux.wait_for_last_line("#lobby> half typed");
    bob.send_line("hello over there");
    tmux.wait_for("bob's line above the intact input line", |s| {
        s.contains("[bob] hello over there") && last_line(s) == "#lobby> half typed"
    });
    tmux.type_text(", then sent");
    tmux.press(&["Enter"]);
    bob.expect_next("[alice] half typed, then sent");

    tmux.type_text("/quit");
    tmux.press(&["Enter"]);
    bob.expect_next("* alice left");
    assert_eq!(tmux.wait_exit_status(), 0);
    let screen = tmux.screen();
    assert!(!screen.contains("[terminal left raw]"), "{screen}");
    assert!(screen.contains("* bye, alice"), "{screen}");
}
