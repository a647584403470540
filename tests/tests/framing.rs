//! PROTOCOL.md section 1, framing: CRLF from the server, a prompt with no line ending, every
//! client line ending, partial lines flushed after a wait, telnet commands removed.
//!
//! (Every line the harness reads is checked for its CRLF ending and its prefix.)

use std::time::Duration;

use chat_tests::{Server, PROMPT};

const IAC: u8 = 255;
const SB: u8 = 250;
const SE: u8 = 240;
const WILL: u8 = 251;
const DO: u8 = 253;
const DONT: u8 = 254;
const IP: u8 = 244;

#[test]
fn banner_then_prompt_without_line_ending() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let before = c.expect_prompt();
    assert_eq!(
        before,
        ["* welcome to chat-server"],
        "lines before the prompt"
    );
    // Nothing may follow the prompt (no CR, no LF) until the client says something.
    c.assert_silent(Duration::from_millis(300));
    c.send_line("alice");
    let welcome = c.next_line();
    assert!(
        welcome.starts_with("* welcome, alice!"),
        "the bytes right after the prompt should be the welcome line, got {welcome:?}"
    );
}

#[test]
fn every_line_ending_ends_a_line() {
    // Partial flush off: a line may only end by its terminator here.
    let s = Server::start(&["--partial-flush-ms", "0"]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);

    alice.send_raw(b"one\ntwo\r\nthree\rfour\r\0five\n");
    for word in ["one", "two", "three", "four", "five"] {
        bob.expect_next(&format!("[alice] {word}"));
    }

    // A lone CR at the end of a read ends the line at once, without waiting for a LF.
    alice.send_raw(b"six\r");
    bob.expect_next("[alice] six");
    // The LF that follows later is part of that ending (or an ignored blank line), not a line.
    alice.send_raw(b"\nseven\r\0");
    bob.expect_next("[alice] seven");
    alice.send_raw(b"eight\r");
    bob.expect_next("[alice] eight");
    alice.send_raw(b"\0nine\r\n");
    bob.expect_next("[alice] nine");

    // No echo, no error for any of that on the sender's side.
    assert_eq!(alice.sync(), Vec::<String>::new(), "alice got lines back");
    alice.send_line("ten");
    bob.expect_next("[alice] ten");
}

#[test]
fn login_accepts_every_line_ending() {
    // Each user checks it gets nothing unexpected: earlier users' lines as history would be.
    let s = Server::start(&["--partial-flush-ms", "0", "--history-on-join", "0"]);
    let mut watcher = s.login("watcher");
    let mut keep = Vec::new(); // dropping one would make watcher see `* NAME left`
    for (name, ending) in [
        ("lf", &b"\n"[..]),
        ("crlf", b"\r\n"),
        ("cr", b"\r"),
        ("crnul", b"\r\0"),
    ] {
        let mut c = s.connect();
        c.expect_prompt();
        let mut bytes = name.as_bytes().to_vec();
        bytes.extend_from_slice(ending);
        c.send_raw(&bytes);
        let welcome = c.next_line();
        assert!(
            welcome.starts_with(&format!("* welcome, {name}!")),
            "name sent with ending {ending:?}: expected a welcome, got {welcome:?}"
        );
        watcher.expect_next(&format!("* {name} joined"));
        // The next line proves the ending left nothing behind (no blank/NUL line, no error).
        c.send_line("hi");
        watcher.expect_next(&format!("[{name}] hi"));
        assert_eq!(
            c.sync(),
            Vec::<String>::new(),
            "{name} got unexpected lines"
        );
        keep.push(c);
    }
}

#[test]
fn unterminated_name_and_messages_go_through_after_the_flush_wait() {
    // Like the Python client of seed 001: it sends input() with no newline.
    let s = Server::start(&["--partial-flush-ms", "100"]);
    let mut bob = s.login("bob");

    let mut alice = s.connect();
    alice.expect_prompt();
    alice.set_label("alice");
    alice.send_raw(b"alice");
    let welcome = alice.next_line();
    assert!(
        welcome.starts_with("* welcome, alice!"),
        "an unterminated name should log in after the flush wait, got {welcome:?}"
    );
    bob.expect_next("* alice joined");

    alice.send_raw(b"hello there");
    bob.expect_next("[alice] hello there");
    alice.send_raw("안녕하세요".as_bytes());
    bob.expect_next("[alice] 안녕하세요");
    // A terminated line afterwards is a line of its own, not glued to the flushed text.
    alice.send_raw(b"second\n");
    bob.expect_next("[alice] second");
    // Commands work unterminated too.
    alice.send_raw(b"/me waves");
    bob.expect_next("* alice waves");
    alice.expect_next("* alice waves");
}

#[test]
fn unterminated_message_goes_through_with_the_default_wait() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    alice.send_raw(b"no newline here");
    bob.expect_next("[alice] no newline here");
}

#[test]
fn partial_flush_zero_never_takes_a_partial_line() {
    let s = Server::start(&["--partial-flush-ms", "0"]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);

    alice.send_raw(b"hel");
    bob.assert_silent(Duration::from_millis(700));
    alice.send_raw(b"lo\n");
    bob.expect_next("[alice] hello");

    let mut carol = s.connect();
    carol.expect_prompt();
    carol.send_raw(b"car");
    carol.assert_silent(Duration::from_millis(500));
    carol.send_raw(b"ol\n");
    let welcome = carol.next_line();
    assert!(
        welcome.starts_with("* welcome, carol!"),
        "the held partial name and its rest should make `carol`, got {welcome:?}"
    );
}

#[test]
fn telnet_commands_are_removed() {
    let s = Server::start(&["--partial-flush-ms", "0"]);
    let mut bob = s.login("bob");

    // A telnet client negotiates right away, before the prompt, and ends lines with CR NUL.
    let mut alice = s.connect();
    let mut hello = vec![IAC, DO, 1, IAC, WILL, 3, IAC, SB, 24, 0];
    hello.extend_from_slice(b"xterm");
    hello.extend_from_slice(&[IAC, SE]);
    hello.extend_from_slice(b"alice\r\0");
    alice.send_raw(&hello);
    let before = alice.expect_prompt();
    assert_eq!(
        before,
        ["* welcome to chat-server"],
        "lines before the prompt"
    );
    let welcome = alice.next_line();
    assert!(
        welcome.starts_with("* welcome, alice!"),
        "name after telnet negotiation: got {welcome:?}"
    );
    alice.set_label("alice");
    bob.expect_next("* alice joined");

    let mut line = b"he".to_vec();
    line.extend_from_slice(&[IAC, WILL, 31]);
    line.extend_from_slice(b"llo");
    line.extend_from_slice(&[IAC, IP]);
    line.extend_from_slice(b" wor");
    line.extend_from_slice(&[IAC, SB, 31, 0, 80, 0, 24, IAC, SE]);
    line.extend_from_slice(b"ld");
    line.extend_from_slice(&[IAC, DONT, 1]);
    line.extend_from_slice(b"\r\0");
    alice.send_raw(&line);
    bob.expect_next("[alice] hello world");

    // A command split across two writes, right after the IAC byte.
    alice.send_raw(&[b'a', IAC]);
    alice.send_raw(&[DO, 1, b'b', b'\n']);
    bob.expect_next("[alice] ab");

    // The server answers no negotiation: alice got nothing but the reply to /who.
    assert_eq!(alice.sync(), Vec::<String>::new(), "alice got lines back");
    assert!(
        !alice.unread().contains(&IAC) && !alice.unread().starts_with(PROMPT),
        "unexpected unread bytes"
    );
}
