//! PROTOCOL.md section 15: several chat-servers on one real Redis are one chat. Names, rooms,
//! the one order of a room, commands, history, accounts and operators across servers.
//! (Servers and Redis going away: `cluster_outage.rs`.)

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use chat_tests::{parse_rooms, parse_who, Client, RedisServer, Server, TempFile};

/// `chat-server --cluster URL --no-web EXTRA...`
fn member(redis: &RedisServer, extra: &[&str]) -> Server {
    let url = redis.url();
    let mut args = vec!["--cluster", url.as_str(), "--no-web"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Logs `name` in on `s`; each of `lobby` (users in the lobby, on any server) sees it join.
fn enter(s: &Server, name: &str, lobby: &mut [&mut Client]) -> Client {
    let c = s.login(name);
    for other in lobby {
        other.expect_joined(name);
    }
    c
}

/// `/who`: the count and the names.
fn who(c: &mut Client) -> (usize, BTreeSet<String>) {
    c.send_line("/who");
    let line = c.next_line();
    let who = parse_who(&line).unwrap_or_else(|| panic!("not a /who reply: {line:?}"));
    (who.count, who.names.into_iter().collect())
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|n| n.to_string()).collect()
}

/// Checks `* you are now in ROOM; N user(s) here: a, b` for the set `users`.
fn expect_now_in(c: &mut Client, room: &str, users: &[&str]) {
    let line = c.next_line();
    let rest = line
        .strip_prefix(&format!("* you are now in {room}; {} ", users.len()))
        .and_then(|r| {
            r.strip_prefix("users here: ")
                .or_else(|| r.strip_prefix("user here: "))
        })
        .unwrap_or_else(|| panic!("{}: expected the /join reply, got {line:?}", c.label()));
    let got: BTreeSet<String> = rest.split(", ").map(str::to_owned).collect();
    assert_eq!(got, names(users), "{line:?}");
}

/// The TEXT of a history line `* HH:MM TEXT`.
fn history_text(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    let digits = |i: usize| b[i].is_ascii_digit() && b[i + 1].is_ascii_digit();
    let shaped = b.len() > 8 && b.starts_with(b"* ") && digits(2) && b[4] == b':' && digits(5);
    (shaped && b[7] == b' ').then(|| &line[8..])
}

/// The next line is the history line `* HH:MM TEXT`.
fn expect_history(c: &mut Client, text: &str) {
    let line = c.next_line();
    let ok = history_text(&line) == Some(text);
    assert!(ok, "{}: expected `* HH:MM {text}`, got {line:?}", c.label());
}

#[test]
fn a_name_is_unique_across_servers_until_its_user_leaves() {
    let redis = RedisServer::start();
    let a = member(&redis, &["--history-on-join", "0"]);
    let b = member(&redis, &["--history-on-join", "0"]);
    let mut alice = a.login("alice");

    let mut other = b.connect();
    other.expect_prompt();
    other.send_line("ALICE");
    other.expect_next("! the name ALICE is taken");
    other.expect_prompt();
    other.send_line("bob");
    other.expect_line("bob's welcome", |l| l.starts_with("* welcome, bob!"));
    let mut bob = other;
    alice.expect_joined("bob");
    // And the other way round, and for /nick.
    let mut third = a.connect();
    third.expect_prompt();
    third.send_line("Bob");
    third.expect_next("! the name Bob is taken");
    bob.send_line("/nick Alice");
    bob.expect_next("! the name Alice is taken");
    bob.send_line("/nick bobby");
    alice.expect_next("* bob is now known as bobby");
    bob.expect_next("* bob is now known as bobby");
    third.expect_prompt();
    third.send_line("bob");
    third.expect_line("the welcome", |l| l.starts_with("* welcome, bob!"));

    // Once alice quits, her name is free on the other server.
    alice.send_line("/quit");
    alice.expect_closed();
    bob.expect_line("alice leaving", |l| l == "* alice left");
    let mut again = b.connect();
    again.expect_prompt();
    again.send_line("Alice");
    again.expect_line("the welcome", |l| l.starts_with("* welcome, Alice!"));
    third.expect_joined("Alice");
}

#[test]
fn every_member_on_every_server_sees_one_order() {
    const EACH: usize = 20;
    let redis = RedisServer::start();
    let servers: Vec<Server> = (0..3)
        .map(|_| member(&redis, &["--history-on-join", "0", "--flood-rate", "0"]))
        .collect();
    // On each server a listener and two senders.
    let mut listeners = Vec::new();
    let mut senders = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        listeners.push(s.login(&format!("listen{i}")));
        for side in ["a", "b"] {
            let name = format!("send{i}{side}");
            senders.push((name.clone(), s.login(&name)));
        }
    }
    let total = senders.len() * EACH;
    // Every sender at once, each in its own thread.
    std::thread::scope(|scope| {
        for (name, c) in &mut senders {
            scope.spawn(move || {
                for k in 0..EACH {
                    c.send_line(&format!("{name} m{k:02}"));
                }
            });
        }
    });
    // Every client's `[..]` lines (a sender does not get its own back).
    let read = |c: &mut Client, n: usize| -> Vec<String> {
        let mut got = Vec::new();
        while got.len() < n {
            let line = c.next_line();
            if line.starts_with('[') {
                got.push(line);
            } else {
                assert!(line.starts_with("* "), "{}: got {line:?}", c.label());
            }
        }
        got
    };
    let heard_by_listeners: Vec<Vec<String>> =
        listeners.iter_mut().map(|c| read(c, total)).collect();
    let heard_by_senders: Vec<(String, Vec<String>)> = senders
        .iter_mut()
        .map(|(name, c)| (name.clone(), read(c, total - EACH)))
        .collect();
    let order = &heard_by_listeners[0];
    for (i, seen) in heard_by_listeners.iter().enumerate() {
        assert_eq!(seen, order, "listen{i} saw another order than listen0");
    }
    for (name, _) in &senders {
        let own: Vec<&String> = order
            .iter()
            .filter(|l| l.starts_with(&format!("[{name}] ")))
            .collect();
        let want: Vec<String> = (0..EACH)
            .map(|k| format!("[{name}] {name} m{k:02}"))
            .collect();
        assert_eq!(own, want.iter().collect::<Vec<_>>(), "{name}'s messages");
    }
    for (name, seen) in &heard_by_senders {
        let others: Vec<&String> = order
            .iter()
            .filter(|l| !l.starts_with(&format!("[{name}] ")))
            .collect();
        assert_eq!(
            seen.iter().collect::<Vec<_>>(),
            others,
            "{name} saw another order"
        );
    }
}

#[test]
fn commands_history_and_topics_span_servers() {
    let redis = RedisServer::start();
    let a = member(&redis, &[]);
    let b = member(&redis, &[]);
    let mut alice = a.login("alice");
    let mut bob = b.connect();
    bob.expect_prompt();
    bob.send_line("bob");
    bob.expect_next("* welcome, bob! you are in lobby with 2 users; /help lists the commands");
    alice.expect_joined("bob");

    alice.send_line("/msg BOB psst");
    alice.expect_next("[you -> bob] psst");
    bob.expect_next("[alice -> you] psst");
    bob.send_line("/msg alice back at you");
    bob.expect_next("[you -> alice] back at you");
    alice.expect_next("[bob -> you] back at you");
    alice.send_line("/msg nobody hello");
    alice.expect_next("! no such user: nobody");

    let mut carol = enter(&b, "carol", &mut [&mut alice, &mut bob]);
    for c in [&mut alice, &mut carol] {
        assert_eq!(who(c), (3, names(&["alice", "bob", "carol"])));
    }

    alice.send_line("/join dev");
    expect_now_in(&mut alice, "dev", &["alice"]);
    bob.expect_next("* alice left (moved to dev)");
    carol.expect_next("* alice left (moved to dev)");
    alice.send_line("first in dev");
    alice.send_line("/me waves");
    alice.expect_next("* alice waves");
    alice.send_line("/topic cross-server talk");
    alice.expect_next("* alice set the topic: cross-server talk");

    // bob, on the other server, finds the topic and the history there.
    bob.send_line("/join DEV");
    expect_now_in(&mut bob, "dev", &["alice", "bob"]);
    bob.expect_next("* topic: cross-server talk");
    expect_history(&mut bob, "[alice] first in dev");
    expect_history(&mut bob, "* alice waves");
    alice.expect_next("* bob joined");
    carol.expect_next("* bob left (moved to dev)");
    carol.send_line("/rooms");
    let line = carol.next_line();
    let rooms = parse_rooms(&line).unwrap_or_else(|| panic!("not a /rooms reply: {line:?}"));
    assert_eq!(
        rooms.1,
        vec![("dev".into(), 2), ("lobby".into(), 1)],
        "{line}"
    );
    let topic = carol.next_line();
    assert!(
        topic.contains("cross-server talk"),
        "/rooms shows topics: {topic:?}"
    );
    assert_eq!(who(&mut alice), (2, names(&["alice", "bob"])));

    bob.send_line("/topic set on B");
    bob.expect_next("* bob set the topic: set on B");
    alice.expect_next("* bob set the topic: set on B");
    bob.send_line("hello from B");
    alice.expect_next("[bob] hello from B");
    alice.send_line("hello from A");
    bob.expect_next("[alice] hello from A");
    // The lobby heard none of it: carol's own rename comes back to her after those.
    carol.send_line("/nick carol2");
    carol.expect_next("* carol is now known as carol2");

    // A server started later learns the rooms' topics and history from Redis.
    // It says it is listening only once the other servers told it who is there: dave's
    // welcome already counts carol2, and nobody is announced as joining afterwards.
    let c = member(&redis, &[]);
    let mut dave = c.connect();
    dave.expect_prompt();
    dave.send_line("dave");
    dave.expect_next("* welcome, dave! you are in lobby with 2 users; /help lists the commands");
    carol.expect_joined("dave");
    dave.send_line("/join dev");
    expect_now_in(&mut dave, "dev", &["alice", "bob", "dave"]);
    dave.expect_next("* topic: set on B");
    for text in [
        "[alice] first in dev",
        "* alice waves",
        "[bob] hello from B",
        "[alice] hello from A",
    ] {
        expect_history(&mut dave, text);
    }
    alice.expect_next("* dave joined");
    bob.expect_next("* dave joined");
    // What alice says now comes after her server's roster: dave's server knows the room.
    alice.send_line("hi dave");
    bob.expect_next("[alice] hi dave");
    dave.expect_line("alice's message", |l| l == "[alice] hi dave");
    assert_eq!(who(&mut dave), (3, names(&["alice", "bob", "dave"])));
}

#[test]
fn a_server_started_later_shows_the_lobby_history_kept_in_redis() {
    let redis = RedisServer::start();
    let a = member(&redis, &[]);
    let mut alice = a.login("alice");
    let mut bob = enter(&a, "bob", &mut [&mut alice]);
    alice.send_line("hello lobby");
    bob.expect_next("[alice] hello lobby");
    alice.send_line("/me waves");
    alice.expect_next("* alice waves");
    bob.expect_next("* alice waves");

    let b = member(&redis, &[]);
    let mut carol = b.login("carol");
    carol.send_line("/history");
    let shown = carol.sync();
    let texts: Vec<&str> = shown.iter().filter_map(|l| history_text(l)).collect();
    let lobby = ["[alice] hello lobby", "* alice waves"];
    assert_eq!(
        texts,
        [lobby, lobby].concat(),
        "the lobby's history on login, then by /history: {shown:?}"
    );
}

fn host(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// Reads until the server closes; the connection got no prompt and ended with `last`.
fn expect_refused(c: &mut Client, last: &str) {
    let rest = String::from_utf8_lossy(&c.expect_closed()).into_owned();
    assert!(!rest.contains("Username:"), "got a prompt: {rest:?}");
    assert!(rest.ends_with(&format!("{last}\r\n")), "{rest:?}");
}

#[test]
fn accounts_and_operators_span_servers() {
    let oper = TempFile::new("oper", "open sesame\n");
    let redis = RedisServer::start();
    let extra = [
        "--history-on-join",
        "0",
        "--oper-password-file",
        oper.as_str(),
        "--trusted",
        "127.0.0.1/32",
    ];
    let a = member(&redis, &extra);
    let b = member(&redis, &extra);
    let mut op = a.login("op");
    op.send_line("/oper open sesame");
    op.expect_next("* you are now an operator");

    // An account made on B holds on A.
    let mut rita = enter(&b, "rita", &mut [&mut op]);
    rita.send_line("/register rita-pass");
    rita.expect_next("* rita is now registered");
    rita.send_line("/quit");
    rita.expect_closed();
    op.expect_next("* rita left");
    let mut rita = a.connect();
    rita.expect_prompt();
    rita.send_line("Rita");
    rita.expect_prompt_of(b"Password: ");
    rita.send_line("rita-pass");
    rita.expect_line("the welcome", |l| l.starts_with("* welcome, Rita!"));
    op.expect_joined("Rita");

    // A kick from A throws out a user of B.
    let mut kim = Client::connect_from(b.addr(), host(2));
    kim.login("kim");
    op.expect_joined("kim");
    op.send_line("/kick kim flooding");
    kim.expect_next("! you were kicked by op (flooding)");
    kim.expect_closed();
    op.expect_next("* kim was kicked by op (flooding)");

    // A mute from A silences a user of B everywhere.
    let mut loud = Client::connect_from(b.addr(), host(3));
    loud.login("loud");
    op.expect_joined("loud");
    op.send_line("/mute loud");
    op.expect_next("* loud was muted by op");
    loud.expect_next("* loud was muted by op");
    loud.send_line("BUY NOW");
    loud.expect_next("! you are muted");
    op.send_line("/unmute loud");
    op.expect_next("* loud was unmuted by op");
    loud.expect_next("* loud was unmuted by op");
    loud.send_line("sorry");
    op.expect_next("[loud] sorry");

    // A ban by name from A: the user of B goes, and its address is refused on both servers.
    let mut mal = Client::connect_from(b.addr(), host(4));
    mal.login("mal");
    op.expect_joined("mal");
    op.send_line("/ban mal");
    mal.expect_next("! you were banned by op");
    mal.expect_closed();
    op.expect_next("* mal was banned by op");
    for s in [&a, &b] {
        let mut back = Client::connect_from(s.addr(), host(4));
        expect_refused(&mut back, "! you are banned");
    }
    // Other addresses are not affected.
    let mut friend = Client::connect_from(a.addr(), host(5));
    friend.login("friend");
    op.expect_joined("friend");
}

#[test]
fn lines_sent_with_the_name_are_answered_after_the_welcome() {
    // A login, /join or /nick goes through Redis; what the user sends right behind it is
    // answered after it, as on a single server (a script writes it all at once).
    let redis = RedisServer::start();
    let a = member(&redis, &["--history-on-join", "0"]);
    let b = member(&redis, &["--history-on-join", "0"]);
    let mut bob = b.login("bob");
    let mut quick = a.connect();
    quick.expect_prompt();
    quick.send_line("quick\n/who\n/join dev\n/who\n/nick quicker\n/who");
    quick.expect_next("* welcome, quick! you are in lobby with 2 users; /help lists the commands");
    quick.expect_next("* 2 users in lobby: bob, quick");
    quick.expect_next("* you are now in dev; 1 user here: quick");
    quick.expect_next("* 1 user in dev: quick");
    quick.expect_next("* quick is now known as quicker");
    quick.expect_next("* 1 user in dev: quicker");
    bob.expect_joined("quick");
    bob.expect_next("* quick left (moved to dev)");
}

#[test]
fn an_operator_banning_a_user_of_its_own_address_stays() {
    let oper = TempFile::new("oper-same", "open sesame\n");
    let redis = RedisServer::start();
    let extra = ["--oper-password-file", oper.as_str(), "--trusted", ""];
    let extra = [&extra[..], &["--history-on-join", "0"]].concat();
    let a = member(&redis, &extra);
    let b = member(&redis, &extra);
    let mut op = Client::connect_from(a.addr(), host(6));
    op.login("op");
    op.send_line("/oper open sesame");
    op.expect_next("* you are now an operator");
    let mut same = Client::connect_from(a.addr(), host(6));
    same.login("same");
    op.expect_joined("same");
    let mut other = Client::connect_from(b.addr(), host(6));
    other.login("other");
    op.expect_joined("other");
    same.expect_joined("other");
    op.send_line("/ban same 0.5");
    same.expect_next("! you were banned by op for 0.5 minutes");
    other.expect_next("! you were banned by op for 0.5 minutes");
    // Each user's own server throws it out: the two lines come in either order.
    let mut announced = [op.next_line(), op.next_line()];
    announced.sort();
    assert_eq!(
        announced,
        [
            "* other was banned by op for 0.5 minutes",
            "* same was banned by op for 0.5 minutes"
        ]
    );
    // The operator is still here.
    op.send_line("/who");
    op.expect_next("* 1 user in lobby: op");
}
