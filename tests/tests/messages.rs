//! PROTOCOL.md section 3, messages: relay to the others, no echo, trimming, blank lines,
//! `//`, order, and delivery right before `/quit` or EOF.

use chat_tests::Server;

#[test]
fn others_get_the_message_and_the_sender_no_echo() {
    let s = Server::start(&[]);
    let [mut alice, mut bob, mut carol] = s.users(["alice", "bob", "carol"]);
    alice.send_line("hello, world: [x] * ! ok");
    bob.expect_next("[alice] hello, world: [x] * ! ok");
    carol.expect_next("[alice] hello, world: [x] * ! ok");
    // Anything queued for alice before her /who reply would be an echo.
    assert_eq!(
        alice.sync(),
        Vec::<String>::new(),
        "the sender got lines back"
    );

    bob.send_line("민수 says 안녕");
    alice.expect_next("[bob] 민수 says 안녕");
    carol.expect_next("[bob] 민수 says 안녕");
}

#[test]
fn trailing_whitespace_is_trimmed() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    alice.send_raw(b"hi there  \t \t\n");
    bob.expect_next("[alice] hi there");
    alice.send_raw(b"crlf too   \r\n");
    bob.expect_next("[alice] crlf too");
}

#[test]
fn blank_lines_are_ignored() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    alice.send_raw(b"\n\r\n   \n\t\t\n \t \r\n\r");
    alice.send_line("after the blanks");
    bob.expect_next("[alice] after the blanks");
    assert_eq!(
        alice.sync(),
        Vec::<String>::new(),
        "blank lines must get no reply"
    );
}

#[test]
fn double_slash_sends_a_message_starting_with_slash() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    alice.send_line("//quit is how you leave");
    bob.expect_next("[alice] /quit is how you leave");
    alice.send_line("//");
    bob.expect_next("[alice] /");
    // alice is still here: /quit above was a message.
    assert_eq!(alice.sync(), Vec::<String>::new());
}

#[test]
fn one_senders_messages_arrive_in_order() {
    let s = Server::start(&["--flood-rate", "0"]);
    let [mut alice, mut bob, mut carol] = s.users(["alice", "bob", "carol"]);
    let mut burst = String::new();
    for i in 0..100 {
        burst.push_str(&format!("message {i}\n"));
    }
    alice.send_raw(burst.as_bytes());
    for i in 0..100 {
        bob.expect_next(&format!("[alice] message {i}"));
        carol.expect_next(&format!("[alice] message {i}"));
    }
}

#[test]
fn message_in_the_same_write_as_quit_is_delivered() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    alice.send_raw(b"last words\n/quit\n");
    bob.expect_next("[alice] last words");
    bob.expect_next("* alice left");
    alice.expect_next("* bye, alice");
    alice.expect_closed();
}

#[test]
fn message_right_before_eof_is_delivered() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    alice.send_raw(b"one\ntwo\nthree\n");
    alice.shutdown_write();
    bob.expect_next("[alice] one");
    bob.expect_next("[alice] two");
    bob.expect_next("[alice] three");
    bob.expect_next("* alice left");
}

#[test]
fn a_new_user_gets_messages_sent_right_after_its_join_notice() {
    // Once the room has seen `* NAME joined`, NAME is in the room: a message sent at once
    // must reach it. (Flood limit off: alice sends a message a round.)
    // History on join would come between the welcome and the message: not this test's concern.
    let s = Server::start(&["--flood-rate", "0", "--history-on-join", "0"]);
    let mut alice = s.login("alice");
    for round in 0..100 {
        let name = format!("new{round}");
        let mut newcomer = s.connect();
        newcomer.set_label(&name);
        // Half the rounds type the name before the prompt has arrived, as `nc` does.
        if round % 2 == 0 {
            newcomer.expect_prompt();
            newcomer.send_line(&name);
        } else {
            newcomer.send_line(&name);
            newcomer.expect_prompt();
        }
        alice.expect_next(&format!("* {name} joined"));
        alice.send_line(&format!("welcome {name}"));
        let welcome = newcomer.next_line();
        assert!(
            welcome.starts_with(&format!("* welcome, {name}!")),
            "{welcome:?}"
        );
        newcomer.expect_next(&format!("[alice] welcome {name}"));
        newcomer.send_line("/quit");
        newcomer.expect_next(&format!("* bye, {name}"));
        alice.expect_next(&format!("* {name} left"));
    }
}
