//! PROTOCOL.md section 11: rooms remember their last messages and their topic.

use chat_tests::{Client, Server};

/// `* HH:MM TEXT` with a real time: returns TEXT.
fn history_text(line: &str) -> &str {
    let rest = line
        .strip_prefix("* ")
        .unwrap_or_else(|| panic!("not a history line: {line:?}"));
    let (time, text) = rest.split_at(6);
    let b = time.as_bytes();
    assert!(
        b[0].is_ascii_digit()
            && b[1].is_ascii_digit()
            && b[2] == b':'
            && b[3].is_ascii_digit()
            && b[4].is_ascii_digit()
            && b[5] == b' ',
        "not `* HH:MM `: {line:?}"
    );
    text
}

fn expect_history(c: &mut Client, expected: &[&str]) {
    for want in expected {
        let line = c.next_line();
        assert_eq!(history_text(&line), *want, "full line {line:?}");
    }
}

#[test]
fn newcomers_see_the_last_messages_and_history_gives_more_up_to_the_ring() {
    let s = Server::start(&["--history", "5", "--history-on-join", "3"]);
    let [mut alice, mut carol] = s.users(["alice", "carol"]);
    for i in 1..=5 {
        alice.send_line(&format!("m{i}"));
        carol.expect_next(&format!("[alice] m{i}"));
    }
    alice.send_line("/me waves");
    alice.expect_next("* alice waves");
    carol.expect_next("* alice waves");
    // Private messages and notices are not history.
    alice.send_line("/msg carol secret");
    carol.expect_next("[alice -> you] secret");
    alice.expect_next("[you -> carol] secret");

    let mut bob = s.connect();
    bob.login("bob");
    expect_history(&mut bob, &["[alice] m4", "[alice] m5", "* alice waves"]);
    alice.expect_next("* bob joined");
    assert_eq!(bob.sync(), Vec::<String>::new(), "nothing more on joining");

    // /history: at most --history (the ring holds 5), oldest first.
    bob.send_line("/history");
    expect_history(
        &mut bob,
        &[
            "[alice] m2",
            "[alice] m3",
            "[alice] m4",
            "[alice] m5",
            "* alice waves",
        ],
    );
    bob.send_line("/history 2");
    expect_history(&mut bob, &["[alice] m5", "* alice waves"]);
    assert_eq!(bob.sync(), Vec::<String>::new());
    bob.send_line("/history x");
    bob.expect_next("! usage: /history [N]");
}

#[test]
fn joining_a_room_shows_its_history_and_an_emptied_room_forgets() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    alice.send_line("/join dev");
    alice.expect_line("the join reply", |l| l.starts_with("* you are now in dev"));
    bob.expect_next("* alice left (moved to dev)");
    alice.send_line("in dev");
    alice.sync();
    bob.send_line("/join dev");
    bob.expect_line("the join reply", |l| l.starts_with("* you are now in dev"));
    expect_history(&mut bob, &["[alice] in dev"]);
    alice.expect_next("* bob joined");

    // Both leave: the room disappears, and its history with it.
    alice.send_line("/join lobby");
    alice.expect_line("the join reply", |l| {
        l.starts_with("* you are now in lobby")
    });
    bob.send_line("/join lobby");
    bob.expect_line("the join reply", |l| {
        l.starts_with("* you are now in lobby")
    });
    alice.send_line("/join dev");
    alice.expect_line("the join reply", |l| l.starts_with("* you are now in dev"));
    assert_eq!(
        alice.sync(),
        Vec::<String>::new(),
        "a new dev has no history"
    );
}

#[test]
fn history_zero_keeps_nothing() {
    let s = Server::start(&["--history", "0"]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    alice.send_line("hello");
    bob.expect_next("[alice] hello");
    let mut carol = s.login("carol");
    assert_eq!(carol.sync(), Vec::<String>::new());
    carol.send_line("/history");
    carol.expect_next("* no history in lobby");
}

#[test]
fn topics_are_set_shown_on_entry_and_in_rooms() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    alice.send_line("/topic");
    alice.expect_next("* no topic in lobby");
    alice.send_line("/topic Rust and \x1b[31mchat\x1b[0m");
    alice.expect_next("* alice set the topic: Rust and chat");
    bob.expect_next("* alice set the topic: Rust and chat");
    bob.send_line("/topic");
    bob.expect_next("* topic: Rust and chat");
    bob.send_line(&format!("/topic {}", "x".repeat(301)));
    bob.expect_next("! topic too long (max 300 bytes)");

    alice.send_line("said before carol");
    bob.expect_next("[alice] said before carol");
    let mut carol = s.login("carol");
    carol.expect_next("* topic: Rust and chat");
    expect_history(&mut carol, &["[alice] said before carol"]);

    carol.send_line("/rooms");
    let list = carol.next_line();
    assert!(list.starts_with("* 1 room: lobby (3)"), "{list}");
    carol.expect_next("*   lobby: Rust and chat");
}
