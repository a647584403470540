//! PROTOCOL.md section 4, /join and /rooms: notices, room names, isolation, empty rooms.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chat_tests::{parse_rooms, parse_who, Client, Server, T};

/// Checks `* you are now in ROOM; N users here: a, b` (room compared case-insensitively).
fn expect_now_in(c: &mut Client, room: &str, users: &[&str]) {
    let line = c.next_line();
    let parsed = line
        .strip_prefix("* you are now in ")
        .and_then(|r| r.split_once("; "))
        .and_then(|(got_room, r)| {
            let (n, r) = r.split_once(' ')?;
            let names = r
                .strip_prefix("users here: ")
                .or_else(|| r.strip_prefix("user here: "))?;
            Some((
                got_room.to_owned(),
                n.parse::<usize>().ok()?,
                names.to_owned(),
            ))
        });
    let Some((got_room, n, names)) = parsed else {
        panic!(
            "{}: expected `* you are now in {room}; N users here: ...`, got {line:?}",
            c.label()
        )
    };
    assert!(got_room.eq_ignore_ascii_case(room), "room in {line:?}");
    assert_eq!(n, users.len(), "count in {line:?}");
    let got: BTreeSet<&str> = names.split(", ").collect();
    assert_eq!(got, users.iter().copied().collect(), "users in {line:?}");
}

/// Expects `* NAME left (moved to ROOM)`, the room compared case-insensitively.
fn expect_moved(c: &mut Client, name: &str, room: &str) {
    let line = c.next_line();
    let ok = line
        .strip_prefix(&format!("* {name} left (moved to "))
        .and_then(|r| r.strip_suffix(')'))
        .is_some_and(|r| r.eq_ignore_ascii_case(room));
    assert!(
        ok,
        "{}: expected `* {name} left (moved to {room})`, got {line:?}",
        c.label()
    );
}

fn rooms(c: &mut Client) -> Vec<(String, usize)> {
    c.send_line("/rooms");
    let line = c.next_line();
    let (n, list) = parse_rooms(&line)
        .unwrap_or_else(|| panic!("expected `* N rooms: a (1), b (2)`, got {line:?}"));
    assert_eq!(n, list.len(), "count in {line:?}");
    let mut sorted = list.clone();
    sorted.sort();
    assert_eq!(list, sorted, "rooms should be sorted by name: {line:?}");
    list
}

fn owned(list: &[(&str, usize)]) -> Vec<(String, usize)> {
    list.iter().map(|(r, n)| (r.to_string(), *n)).collect()
}

#[test]
fn join_moves_between_rooms_with_notices() {
    let s = Server::start(&[]);
    let [mut alice, mut bob, mut carol] = s.users(["alice", "bob", "carol"]);

    alice.send_line("/join #dev");
    expect_now_in(&mut alice, "dev", &["alice"]);
    expect_moved(&mut bob, "alice", "dev");
    expect_moved(&mut carol, "alice", "dev");

    // Room names are case-insensitive and the `#` is optional.
    bob.send_line("/join DEV");
    expect_now_in(&mut bob, "dev", &["alice", "bob"]);
    alice.expect_next("* bob joined");
    expect_moved(&mut carol, "bob", "dev");

    bob.send_line("/who");
    let line = bob.next_line();
    let who = parse_who(&line).unwrap_or_else(|| panic!("not a /who reply: {line:?}"));
    assert!(who.room.eq_ignore_ascii_case("dev"), "{line:?}");
    assert_eq!(who.count, 2, "{line:?}");

    // Back to the lobby.
    alice.send_line("/join lobby");
    expect_now_in(&mut alice, "lobby", &["alice", "carol"]);
    expect_moved(&mut bob, "alice", "lobby");
    carol.expect_next("* alice joined");
}

#[test]
fn join_refusals() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    alice.send_line("/join lobby");
    alice.expect_next("! you are already in lobby");
    alice.send_line("/join #Lobby");
    let line = alice.next_line();
    assert!(
        line.to_lowercase() == "! you are already in lobby",
        "expected `! you are already in lobby`, got {line:?}"
    );
    for bad in ["bad\x1b[31mroom", "a/b", "#", "##x", &"r".repeat(25)] {
        alice.send_line(&format!("/join {bad}"));
        let line = alice.next_line();
        assert!(
            line.starts_with("! invalid room name: "),
            "/join {bad:?}: expected `! invalid room name: <reason>`, got {line:?}"
        );
    }
    alice.send_line("/join");
    alice.expect_next("! usage: /join ROOM");
    // alice never left the lobby, and bob heard nothing of it.
    assert_eq!(
        bob.sync(),
        Vec::<String>::new(),
        "bob saw alice's refused joins"
    );
    alice.send_line("still in the lobby");
    bob.expect_next("[alice] still in the lobby");
}

#[test]
fn messages_do_not_cross_rooms() {
    let s = Server::start(&[]);
    let [mut alice, mut bob, mut carol, mut dave] = s.users(["alice", "bob", "carol", "dave"]);
    alice.send_line("/join dev");
    expect_now_in(&mut alice, "dev", &["alice"]);
    for c in [&mut bob, &mut carol, &mut dave] {
        expect_moved(c, "alice", "dev");
    }
    bob.send_line("/join dev");
    expect_now_in(&mut bob, "dev", &["alice", "bob"]);
    alice.expect_next("* bob joined");
    for c in [&mut carol, &mut dave] {
        expect_moved(c, "bob", "dev");
    }

    alice.send_line("in dev");
    bob.expect_next("[alice] in dev");
    alice.send_line("/me hides");
    alice.expect_next("* alice hides");
    bob.expect_next("* alice hides");
    // bob has both, so the server handled them: the lobby must have nothing queued.
    assert_eq!(
        carol.sync(),
        Vec::<String>::new(),
        "dev leaked into the lobby"
    );

    carol.send_line("in the lobby");
    dave.expect_next("[carol] in the lobby");
    assert_eq!(
        alice.sync(),
        Vec::<String>::new(),
        "the lobby leaked into dev"
    );
    assert_eq!(
        bob.sync(),
        Vec::<String>::new(),
        "the lobby leaked into dev"
    );
}

#[test]
fn rooms_lists_rooms_with_counts_and_empty_rooms_disappear() {
    let s = Server::start(&[]);
    let [mut alice, mut bob] = s.users(["alice", "bob"]);
    assert_eq!(rooms(&mut alice), owned(&[("lobby", 2)]));

    alice.send_line("/join dev");
    expect_now_in(&mut alice, "dev", &["alice"]);
    expect_moved(&mut bob, "alice", "dev");
    assert_eq!(rooms(&mut bob), owned(&[("dev", 1), ("lobby", 1)]));

    // The lobby stays, even empty.
    bob.send_line("/join dev");
    expect_now_in(&mut bob, "dev", &["alice", "bob"]);
    alice.expect_next("* bob joined");
    assert_eq!(rooms(&mut alice), owned(&[("dev", 2), ("lobby", 0)]));

    // dev disappears once both have moved on.
    alice.send_line("/join lobby");
    expect_now_in(&mut alice, "lobby", &["alice"]);
    expect_moved(&mut bob, "alice", "lobby");
    bob.send_line("/join zoo");
    expect_now_in(&mut bob, "zoo", &["bob"]);
    assert_eq!(rooms(&mut alice), owned(&[("lobby", 1), ("zoo", 1)]));

    // A room emptied by a disconnect disappears too (the server notices the EOF on its own
    // time, so poll /rooms until it does).
    bob.shutdown_write();
    let deadline = Instant::now() + T;
    loop {
        let list = rooms(&mut alice);
        if list == owned(&[("lobby", 1)]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "zoo is still listed {T:?} after its last user left: {list:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
