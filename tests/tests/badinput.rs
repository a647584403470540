//! PROTOCOL.md section 6, bad input: over-long lines (with bounded memory), invalid UTF-8,
//! control characters and terminal escapes.

use chat_tests::{proc_status_kib, show, Client, Server};

#[test]
fn line_of_exactly_max_line_bytes_passes_and_one_more_is_refused() {
    let s = Server::start(&["--max-line", "100", "--partial-flush-ms", "0"]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);

    let exact = "x".repeat(100);
    alice.send_line(&exact);
    bob.expect_next(&format!("[alice] {exact}"));
    // The CR of a CRLF ending does not count against the limit.
    let exact_crlf = "y".repeat(100);
    alice.send_raw(format!("{exact_crlf}\r\n").as_bytes());
    bob.expect_next(&format!("[alice] {exact_crlf}"));
    // The limit is in bytes: 33 three-byte characters pass, 34 do not.
    let wide_ok = "민".repeat(33);
    alice.send_line(&wide_ok);
    bob.expect_next(&format!("[alice] {wide_ok}"));

    alice.send_line(&"z".repeat(101));
    alice.expect_next("! line too long (max 100 bytes)");
    alice.send_line(&"민".repeat(34));
    alice.expect_next("! line too long (max 100 bytes)");

    alice.send_line("ok");
    // Neither refused line reached bob, not even in part.
    bob.expect_next("[alice] ok");
    assert_eq!(
        alice.sync(),
        Vec::<String>::new(),
        "alice: one error per line"
    );
}

#[test]
fn huge_line_is_refused_once_memory_stays_bounded_and_connection_works() {
    const HUGE: usize = 32 << 20;
    let s = Server::start(&["--partial-flush-ms", "0"]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    let pid = s.pid();
    let rss_before = proc_status_kib(pid, "VmRSS");
    let peak_before = proc_status_kib(pid, "VmHWM");

    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..HUGE / chunk.len() {
        alice.send_raw(&chunk);
    }
    alice.send_raw(b"\nafter\n");
    // Once bob has "after", the server has read and handled all 32 MiB.
    bob.expect_next("[alice] after");
    let rss_after = proc_status_kib(pid, "VmRSS");
    let peak_after = proc_status_kib(pid, "VmHWM");

    alice.expect_next("! line too long (max 4096 bytes)");
    assert_eq!(
        alice.sync(),
        Vec::<String>::new(),
        "the too-long line must be reported once"
    );
    let limit_kib = 16 * 1024;
    assert!(
        rss_after.saturating_sub(rss_before) < limit_kib,
        "RSS grew from {rss_before} KiB to {rss_after} KiB for one 32 MiB line"
    );
    assert!(
        peak_after.saturating_sub(peak_before) < limit_kib,
        "peak RSS (VmHWM) grew from {peak_before} KiB to {peak_after} KiB for one 32 MiB line"
    );
}

#[test]
fn invalid_utf8_becomes_the_replacement_character() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);

    alice.send_raw(b"caf\xe9 ok \x80 end\n");
    let got = bob.next_line_bytes(chat_tests::T);
    assert_eq!(
        show(&got),
        show(b"[alice] caf\xef\xbf\xbd ok \xef\xbf\xbd end"),
        "invalid bytes should each become U+FFFD (EF BF BD)"
    );
    // A truncated multi-byte sequence at the end of the line.
    alice.send_raw(b"cut \xe4\xb8\n");
    bob.expect_next("[alice] cut \u{FFFD}");
    alice.send_raw(b"/me \xe9t\xe9\n");
    bob.expect_next("* alice \u{FFFD}t\u{FFFD}");
    alice.expect_next("* alice \u{FFFD}t\u{FFFD}");
}

/// Fails unless `line` is free of every control character PROTOCOL.md bans from relayed text.
fn assert_clean(line: &[u8], context: &str) {
    let text = String::from_utf8(line.to_vec())
        .unwrap_or_else(|_| panic!("{context}: relayed line is not UTF-8: {}", show(line)));
    if let Some(c) = text
        .chars()
        .find(|&c| (c.is_ascii_control() && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c))
    {
        panic!(
            "{context}: control character {c:?} reached another user in {}",
            show(line)
        );
    }
}

const NASTY: &[u8] = b"red \x1b[31mALERT\x1b[0m bell\x07 back\x08 del\x7f nul\x00x \
c1\xc2\x9b2J \xc2\x85nel osc\x1b]0;title\x07 clear\x1b[2J\x1bc vt\x0bff\x0c end";

fn nasty(prefix: &[u8]) -> Vec<u8> {
    let mut line = prefix.to_vec();
    line.extend_from_slice(NASTY);
    line.push(b'\n');
    line
}

fn expect_clean_with_words(c: &mut Client, starts: &str, context: &str) {
    let line = c.next_line_bytes(chat_tests::T);
    assert_clean(&line, context);
    let text = String::from_utf8_lossy(&line);
    assert!(
        text.starts_with(starts),
        "{context}: expected a line starting {starts:?}, got {text:?}"
    );
    for word in ["red", "ALERT", "bell", "end"] {
        assert!(
            text.contains(word),
            "{context}: the text around control characters must stay; no {word:?} in {text:?}"
        );
    }
}

#[test]
fn control_characters_and_escapes_never_reach_other_users() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);

    alice.send_raw(&nasty(b""));
    expect_clean_with_words(&mut bob, "[alice] ", "message");

    alice.send_raw(&nasty(b"/me "));
    expect_clean_with_words(&mut bob, "* alice ", "/me to bob");
    expect_clean_with_words(&mut alice, "* alice ", "/me to alice");

    alice.send_raw(&nasty(b"/msg bob "));
    expect_clean_with_words(&mut bob, "[alice -> you] ", "/msg to bob");
    expect_clean_with_words(&mut alice, "[you -> bob] ", "/msg echo to alice");

    alice.send_raw(&nasty(b"/quit "));
    alice.expect_next("* bye, alice");
    expect_clean_with_words(&mut bob, "* alice left (", "/quit reason");
}

#[test]
fn tab_is_not_a_banned_control_character() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    alice.send_line("a\tb");
    bob.expect_next("[alice] a\tb");
}
