//! PROTOCOL.md section 4, commands other than /join and /rooms (rooms.rs) and /quit
//! (leaving.rs): /who, /help, /me, /msg, /nick, unknown commands.

use std::collections::BTreeSet;

use chat_tests::{parse_who, Server};

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn who_names_the_users_in_the_room_and_their_count() {
    let s = Server::start(&[]);
    let mut alice = s.login("alice");
    alice.send_line("/who");
    alice.expect_next("* 1 user in lobby: alice");

    let mut bob = s.login("bob");
    alice.expect_next("* bob joined");
    let _carol = s.login("carol");
    alice.expect_next("* carol joined");
    bob.expect_next("* carol joined");
    for cmd in ["/who", "/WHO", "/Who   "] {
        bob.send_line(cmd);
        let line = bob.next_line();
        let who = parse_who(&line)
            .unwrap_or_else(|| panic!("{cmd}: expected `* 3 users in lobby: ...`, got {line:?}"));
        assert_eq!(who.count, 3, "{cmd}: {line:?}");
        assert_eq!(who.room, "lobby", "{cmd}: {line:?}");
        assert_eq!(
            who.names.iter().cloned().collect::<BTreeSet<_>>(),
            set(&["alice", "bob", "carol"]),
            "{cmd}: {line:?}"
        );
        assert_eq!(who.names.len(), 3, "{cmd}: {line:?}");
    }
}

#[test]
fn help_lists_every_command_including_exit() {
    let s = Server::start(&[]);
    let mut alice = s.login("alice");
    alice.send_line("/help");
    let lines = alice.sync();
    assert_eq!(
        lines.first().map(String::as_str),
        Some("* commands:"),
        "/help: {lines:?}"
    );
    for l in &lines[1..] {
        assert!(l.starts_with("* /"), "/help line {l:?} in {lines:?}");
    }
    for cmd in [
        "/quit", "/exit", "/who", "/help", "/me", "/msg", "/nick", "/join", "/rooms",
    ] {
        let listed = lines[1..].iter().any(|l| {
            l.strip_prefix("* ")
                .and_then(|r| r.strip_prefix(cmd))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', ',', '\t']))
        });
        assert!(listed, "/help does not list {cmd}: {lines:?}");
    }
}

#[test]
fn me_goes_to_the_whole_room_sender_included() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    alice.send_line("/me waves hello");
    alice.expect_next("* alice waves hello");
    bob.expect_next("* alice waves hello");
    alice.send_line("/ME dances");
    alice.expect_next("* alice dances");
    bob.expect_next("* alice dances");

    alice.send_line("/me");
    alice.expect_next("! usage: /me ACTION");
    alice.send_line("/me   ");
    alice.expect_next("! usage: /me ACTION");
    // The errors went to alice only.
    alice.send_line("done");
    bob.expect_next("[alice] done");
}

#[test]
fn msg_reaches_only_the_named_user() {
    let s = Server::start(&[]);
    let [mut alice, mut bob, mut carol] = s.users(["alice", "bob", "carol"]);
    alice.send_line("/msg bob psst, a secret");
    bob.expect_next("[alice -> you] psst, a secret");
    alice.expect_next("[you -> bob] psst, a secret");
    // bob has it, so the server handled it: carol must have nothing queued.
    assert_eq!(
        carol.sync(),
        Vec::<String>::new(),
        "carol saw the private message"
    );

    alice.send_line("/msg nobody hello");
    alice.expect_next("! no such user: nobody");
    alice.send_line("/msg bob");
    alice.expect_next("! usage: /msg NAME TEXT");
    alice.send_line("/msg");
    alice.expect_next("! usage: /msg NAME TEXT");
    alice.send_line("public");
    bob.expect_next("[alice] public");
    carol.expect_next("[alice] public");
}

#[test]
fn nick_renames_announces_and_refuses_like_login() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    alice.send_line("/nick Alicia");
    alice.expect_next("* alice is now known as Alicia");
    bob.expect_next("* alice is now known as Alicia");
    alice.send_line("hi");
    bob.expect_next("[Alicia] hi");

    bob.send_line("/nick alicia");
    bob.expect_next("! the name alicia is taken");
    bob.send_line("/nick ALICIA");
    bob.expect_next("! the name ALICIA is taken");
    bob.send_line("/nick bad/name");
    bob.expect_next("! a name may only hold letters, digits and _ - . (no spaces or symbols)");
    bob.send_line("/nick bad\x1b[31mred");
    bob.expect_next("! a name may only hold letters, digits and _ - . (no spaces or symbols)");
    bob.send_line(&format!("/nick {}", "n".repeat(25)));
    bob.expect_next("! a name is at most 24 characters");
    bob.send_line("/nick");
    bob.expect_next("! usage: /nick NEW");
    // Refusals went to bob alone.
    assert_eq!(
        alice.sync(),
        Vec::<String>::new(),
        "alice saw bob's refusals"
    );

    // The old name is free again; the new one shows in /who.
    let mut carol = s.login("alice");
    alice.expect_next("* alice joined");
    bob.expect_next("* alice joined");
    carol.send_line("/who");
    // The lobby's history comes first.
    let line = carol.expect_line("the /who reply", |l| parse_who(l).is_some());
    let who = parse_who(&line).unwrap_or_else(|| panic!("not a /who reply: {line:?}"));
    assert_eq!(
        who.names.into_iter().collect::<BTreeSet<_>>(),
        set(&["Alicia", "bob", "alice"]),
        "{line:?}"
    );
}

#[test]
fn unknown_commands_name_the_command_word_alone() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    alice.send_line("/frobnicate now please");
    alice.expect_next("! unknown command: /frobnicate (try /help)");
    alice.send_line("/x");
    alice.expect_next("! unknown command: /x (try /help)");
    alice.send_line("/quitnow");
    alice.expect_next("! unknown command: /quitnow (try /help)");
    // Nothing of it reached bob.
    alice.send_line("still here");
    bob.expect_next("[alice] still here");
}
