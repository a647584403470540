//! PROTOCOL.md section 6, limits: the flood limit and the client limit. (Slow readers are in
//! slow.rs, bad input in badinput.rs.)

use std::time::{Duration, Instant};

use chat_tests::{Client, Server, T};

/// alice sends `n` numbered lines in one write. Every line must be either relayed to bob or
/// refused with `! slow down` to alice, and nothing else may happen; the connection stays
/// usable. Returns (delivered, refused) for the burst.
fn flood(s: &Server, n: usize) -> (usize, usize) {
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    let burst: String = (0..n).map(|i| format!("flood {i}\n")).collect();
    alice.send_raw(burst.as_bytes());

    let mut delivered = 0;
    let mut probes_delivered = 0;
    let mut last: Option<usize> = None;
    let mut count = |line: &str, delivered: &mut usize, probes: &mut usize| {
        if let Some(i) = line.strip_prefix("[alice] flood ") {
            let i: usize = i
                .parse()
                .unwrap_or_else(|_| panic!("bob: bad line {line:?}"));
            assert!(last.is_none_or(|l| i > l), "bob: out of order at {line:?}");
            last = Some(i);
            *delivered += 1;
        } else if line.starts_with("[alice] probe ") {
            *probes += 1;
        } else {
            panic!("bob: unexpected line {line:?} during a flood");
        }
    };

    // Probe until one gets through (tokens come back at the flood rate): proves the
    // connection still works, and that the server has handled the whole burst.
    let mut probes = 0;
    let deadline = Instant::now() + T;
    while probes_delivered == 0 {
        assert!(
            Instant::now() < deadline,
            "none of {probes} probes got through after the flood\n{}",
            bob.context()
        );
        alice.send_line(&format!("probe {probes}"));
        probes += 1;
        let window = Instant::now() + Duration::from_millis(300);
        while let Ok(line) = bob.try_next_line_bytes(window) {
            let line = String::from_utf8_lossy(&line).into_owned();
            count(&line, &mut delivered, &mut probes_delivered);
        }
    }

    // /quit is never refused: everything alice gets before the goodbye is a refusal.
    alice.send_line("/quit");
    let mut refused = 0;
    loop {
        let line = alice.next_line();
        match line.as_str() {
            "! slow down" => refused += 1,
            "* bye, alice" => break,
            _ => panic!(
                "alice: unexpected line {line:?} during a flood\n{}",
                alice.context()
            ),
        }
    }
    alice.expect_closed();
    loop {
        let line = bob.next_line();
        if line == "* alice left" {
            break;
        }
        count(&line, &mut delivered, &mut probes_delivered);
    }
    assert_eq!(
        delivered + probes_delivered + refused,
        n + probes,
        "{n} lines and {probes} probes sent: {delivered} + {probes_delivered} delivered, \
         {refused} refused; every line must be one or the other"
    );
    (delivered, n - delivered)
}

#[test]
fn flood_default_limit_refuses_excess_lines_with_slow_down() {
    let s = Server::start(&[]);
    let (delivered, refused) = flood(&s, 40);
    assert!(
        refused >= 1,
        "40 lines at once: no `! slow down` ({delivered} delivered)"
    );
    assert!(
        delivered >= 20,
        "only {delivered} of 40 delivered; the burst is 20"
    );
}

#[test]
fn flood_burst_and_rate_are_configurable() {
    let s = Server::start(&["--flood-burst", "5", "--flood-rate", "1"]);
    let (delivered, refused) = flood(&s, 12);
    assert!(refused >= 1, "12 lines with burst 5: no `! slow down`");
    assert!(
        delivered >= 5,
        "only {delivered} of 12 delivered; the burst is 5"
    );
    assert!(delivered < 12, "all 12 delivered with --flood-burst 5");
}

#[test]
fn flood_rate_zero_turns_the_limit_off() {
    let s = Server::start(&["--flood-rate", "0"]);
    let (delivered, refused) = flood(&s, 200);
    assert_eq!((delivered, refused), (200, 0), "with --flood-rate 0");
}

#[test]
fn blank_lines_cost_nothing_against_the_flood_limit() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    let mut burst = "\n".repeat(100);
    for i in 0..15 {
        burst.push_str(&format!("m{i}\n\r\n\n"));
    }
    alice.send_raw(burst.as_bytes());
    for i in 0..15 {
        bob.expect_next(&format!("[alice] m{i}"));
    }
    assert_eq!(
        alice.sync(),
        Vec::<String>::new(),
        "blank lines were counted"
    );
}

#[test]
fn quit_is_never_refused_by_the_flood_limit() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    let mut burst: String = (0..60).map(|i| format!("m{i}\n")).collect();
    burst.push_str("/quit\n");
    alice.send_raw(burst.as_bytes());
    alice.expect_line_eq("* bye, alice");
    alice.expect_closed();
    bob.expect_line_eq("* alice left");
}

/// Reads a refused connection to its end: only `* ` lines, then `! server full`, no prompt.
fn expect_server_full(c: &mut Client) {
    let rest = c.expect_closed();
    let text = String::from_utf8_lossy(&rest);
    assert!(
        !text.contains("Username:"),
        "a refused connection must get no prompt: {text:?}"
    );
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert!(text.ends_with("\r\n"), "unterminated: {text:?}");
    assert_eq!(lines.last(), Some(&"! server full"), "refusal: {text:?}");
    for l in &lines[..lines.len() - 1] {
        assert!(
            l.starts_with("* "),
            "only `* ` lines may come before it: {text:?}"
        );
    }
}

#[test]
fn server_full_refuses_without_prompt_and_frees_the_slot_on_leave() {
    let s = Server::start(&["--max-clients", "2"]);
    // Every slot holds a logged-in user, so there is no connection to displace (see
    // abuse.rs for a server full of connections that never log in).
    let [mut alice, mut bob] = s.users(["alice", "bob"]);

    let mut third = s.connect();
    expect_server_full(&mut third);
    let mut fourth = s.connect();
    expect_server_full(&mut fourth);

    // The refused ones were not users: alice heard nothing.
    assert_eq!(alice.sync(), Vec::<String>::new());

    bob.send_line("/quit");
    alice.expect_next("* bob left");
    let mut carol = s.connect_until_prompt();
    carol.send_line("carol");
    let welcome = carol.next_line();
    assert!(welcome.starts_with("* welcome, carol!"), "{welcome:?}");
    alice.expect_next("* carol joined");
    // Full again.
    let mut fifth = s.connect();
    expect_server_full(&mut fifth);
}
