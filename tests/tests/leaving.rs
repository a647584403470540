//! PROTOCOL.md sections 4 (/quit, /exit) and 5, leaving: EOF, reset, /quit with and without
//! a reason, and TCP keepalive on every connection.

use std::time::{Duration, Instant};

use chat_tests::{tcp_row, Server, T};

#[test]
fn eof_mid_session_counts_as_leaving() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    bob.shutdown_write();
    alice.expect_next("* bob left");
    let rest = bob.expect_closed();
    assert!(
        rest.is_empty(),
        "bob got {} after EOF",
        chat_tests::show(&rest)
    );
}

#[test]
fn reset_mid_session_counts_as_leaving() {
    let s = Server::start(&[]);
    let [mut alice, bob, mut carol] = s.users(["alice", "bob", "carol"]);
    bob.reset();
    alice.expect_next("* bob left");
    carol.expect_next("* bob left");
    // The server goes on serving the others.
    alice.send_line("still here");
    carol.expect_next("[alice] still here");
}

#[test]
fn quit_says_bye_then_closes_and_the_room_sees_left() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    alice.send_line("/quit");
    alice.expect_next("* bye, alice");
    let rest = alice.expect_closed();
    assert!(
        rest.is_empty(),
        "after the goodbye: {}",
        chat_tests::show(&rest)
    );
    bob.expect_next("* alice left");
}

#[test]
fn quit_with_a_reason_and_the_exit_alias() {
    let s = Server::start(&[]);
    let [mut watcher, mut alice, mut bob, mut carol] =
        s.users(["watcher", "alice", "bob", "carol"]);

    alice.send_line("/quit gone fishing");
    alice.expect_next("* bye, alice");
    alice.expect_closed();
    watcher.expect_next("* alice left (gone fishing)");

    bob.send_line("/exit");
    bob.expect_next("* alice left (gone fishing)");
    bob.expect_next("* bye, bob");
    bob.expect_closed();
    watcher.expect_next("* bob left");

    // Commands are case-insensitive.
    carol.send_line("/QUIT");
    carol.expect_next("* alice left (gone fishing)");
    carol.expect_next("* bob left");
    carol.expect_next("* bye, carol");
    carol.expect_closed();
    watcher.expect_next("* carol left");
}

#[test]
fn connections_have_tcp_keepalive_with_the_configured_idle_time() {
    // A peer that vanishes without FIN can only be found by keepalive. Its probes cannot be
    // provoked from here, but the kernel shows an armed keepalive timer ("tr" 2) for the
    // server's side of the connection, due within --keepalive-secs.
    let s = Server::start(&["--keepalive-secs", "5"]);
    let alice = s.login("alice");
    let client_port = alice.stream().local_addr().expect("local addr").port();
    let deadline = Instant::now() + T;
    let mut last = None;
    loop {
        last = tcp_row(s.addr().port(), client_port).or(last);
        if let Some(row) = last.filter(|r| r.timer == 2) {
            let when = row.timer_ticks;
            // USER_HZ is 100 ticks per second; 5 s plus slack.
            assert!(
                when <= 5 * 100 + 50,
                "keepalive timer due in {when} ticks, more than --keepalive-secs 5"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server's socket shows no keepalive timer (tr 2) in /proc/net/tcp: {last:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
