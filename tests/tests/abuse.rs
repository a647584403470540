//! PROTOCOL.md section 14: per-address limits, displacement of connections that never log in,
//! bans, mutes and operators. Linux routes all of 127.0.0.0/8 to loopback, so clients bound to
//! 127.0.0.2 and up play other hosts; `--trusted 127.0.0.1/32` leaves those untrusted.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use chat_tests::{show, Client, Server, TempFile, WsClient, T};

fn host(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// Reads until the server closes; asserts the connection got no prompt and ended with `last`.
fn expect_refused(c: &mut Client, last: &str) {
    let rest = c.expect_closed();
    let text = String::from_utf8_lossy(&rest);
    assert!(
        !text.contains("Username:"),
        "a refused connection got a prompt: {}",
        show(&rest)
    );
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(lines.last(), Some(&last), "refusal: {}", show(&rest));
    assert!(
        lines[..lines.len() - 1].iter().all(|l| l.starts_with("* ")),
        "{}",
        show(&rest)
    );
}

#[test]
fn one_address_cannot_hold_more_than_its_share() {
    let s = Server::start(&["--max-per-ip", "10", "--trusted", "127.0.0.1/32"]);
    let attacker = host(2);
    let held: Vec<Client> = (0..10)
        .map(|_| {
            let mut c = Client::connect_from(s.addr(), attacker);
            c.expect_prompt();
            c
        })
        .collect();
    let started = Instant::now();
    let mut refused = 0;
    for i in 0..1990 {
        let mut c = Client::connect_from(s.addr(), attacker);
        expect_refused(&mut c, "! too many connections from your address");
        refused += 1;
        if i == 1000 {
            // Meanwhile people from other addresses get in, trusted or not.
            let mut other = Client::connect_from(s.addr(), host(3));
            other.login("visitor");
            let mut local = s.login("local");
            other.expect_next("* local joined");
            local.send_line("hello");
            other.expect_next("[local] hello");
        }
    }
    eprintln!("{refused} refused in {:?}", started.elapsed());
    // The web port counts the same address against the same limit.
    let over = WsClient::try_connect_with(s.web_addr(), "/ws", &[], Some(attacker));
    match over {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let body = response.body().as_deref().map(String::from_utf8_lossy);
            assert_eq!(
                body.as_deref(),
                Some("! too many connections from your address\r\n")
            );
        }
        Err(e) => panic!("an 11th connection over WebSocket: expected 429, got {e}"),
        Ok(_) => panic!("an 11th connection over WebSocket was upgraded"),
    }
    // A slot freed is a slot for the same address again.
    drop(held);
    let deadline = Instant::now() + T;
    loop {
        let mut c = Client::connect_from(s.addr(), attacker);
        match c.prompt_or_line(|l| l.starts_with("! ")) {
            Ok(_) => break,
            Err(lines) => assert!(Instant::now() < deadline, "still refused: {lines:?}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn trusted_addresses_are_exempt() {
    let s = Server::start(&["--max-per-ip", "2"]);
    // 127.0.0.1 is trusted by default.
    let held: Vec<Client> = (0..5)
        .map(|_| {
            let mut c = s.connect();
            c.expect_prompt();
            c
        })
        .collect();
    assert_eq!(held.len(), 5);
    let t = Server::start(&["--max-per-ip", "2", "--trusted", ""]);
    let _a = t.connect();
    let _b = t.connect();
    let mut c = t.connect();
    expect_refused(&mut c, "! too many connections from your address");
}

#[test]
fn a_full_server_of_idle_connections_still_lets_users_in() {
    let s = Server::start(&["--max-clients", "4"]);
    let mut idle: Vec<Client> = (0..4)
        .map(|_| {
            let mut c = s.connect();
            c.expect_prompt();
            c
        })
        .collect();
    // A fifth takes the place of the oldest idle one, which is told and closed.
    let mut alice = s.connect();
    alice.login("alice");
    expect_refused(&mut idle[0], "! server full");
    // And again: the next oldest goes, the logged-in user stays.
    let mut bob = s.connect();
    bob.login("bob");
    alice.expect_next("* bob joined");
    expect_refused(&mut idle[1], "! server full");
    for c in &mut idle[2..] {
        c.assert_silent(Duration::from_millis(200));
    }
    // Once only users are left, the server is full for real.
    let mut carol = s.connect();
    carol.login("carol");
    let mut dave = s.connect();
    dave.login("dave");
    let mut eve = s.connect();
    expect_refused(&mut eve, "! server full");
}

fn oper_server(extra: &[&str]) -> (Server, TempFile) {
    let file = TempFile::new("oper", "open sesame\n");
    let mut args = vec![
        "--oper-password-file",
        file.as_str(),
        "--trusted",
        "127.0.0.1/32",
    ];
    args.extend_from_slice(extra);
    (Server::start(&args), file)
}

#[test]
fn operators_kick_and_others_cannot() {
    let (s, _file) = oper_server(&[]);
    let [mut op, mut bob, mut carol] = s.users(["op", "bob", "carol"]);

    bob.send_line("/kick carol");
    bob.expect_next("! not an operator");
    bob.send_line("/help");
    bob.expect_line("the end of /help", |l| l.contains("/oper PASSWORD"));
    let after = bob.sync();
    assert!(
        after.is_empty(),
        "operator help shown to a non-operator: {after:?}"
    );

    op.send_line("/oper wrong");
    op.expect_next("! wrong password");
    op.send_line("/oper open sesame");
    op.expect_next("* you are now an operator");
    op.send_line("/help");
    op.expect_line("the end of the common /help", |l| {
        l.contains("/oper PASSWORD")
    });
    for command in ["/kick", "/ban", "/unban", "/bans", "/mute", "/unmute"] {
        op.expect_line(command, |l| l.starts_with(&format!("* {command} ")));
    }

    op.send_line("/kick bob spamming links");
    bob.expect_next("! you were kicked by op (spamming links)");
    bob.expect_closed();
    op.expect_next("* bob was kicked by op (spamming links)");
    carol.expect_next("* bob was kicked by op (spamming links)");
    // The name is free again.
    let mut again = s.login("bob");
    op.expect_next("* bob joined");
    carol.expect_next("* bob joined");
    again.send_line("back");
    carol.expect_next("[bob] back");
    op.expect_next("[bob] back");

    op.send_line("/kick nobody");
    op.expect_next("! no such user: nobody");
}

#[test]
fn a_banned_address_is_refused_before_the_prompt_until_unbanned() {
    let (s, _file) = oper_server(&[]);
    let mut op = s.login("op");
    op.send_line("/oper open sesame");
    op.expect_next("* you are now an operator");
    let mut mallory = Client::connect_from(s.addr(), host(5));
    mallory.login("mallory");
    op.expect_next("* mallory joined");

    op.send_line("/ban mallory");
    mallory.expect_next("! you were banned by op");
    mallory.expect_closed();
    op.expect_next("* mallory was banned by op");

    let mut back = Client::connect_from(s.addr(), host(5));
    expect_refused(&mut back, "! you are banned");
    let ws = WsClient::try_connect_with(s.web_addr(), "/ws", &[], Some(host(5)));
    assert!(
        matches!(&ws, Err(tungstenite::Error::Http(r)) if r.status() == 403),
        "a banned address over WebSocket: {:?}",
        ws.err()
    );
    // Others are not affected.
    let mut friend = Client::connect_from(s.addr(), host(6));
    friend.login("friend");
    op.expect_next("* friend joined");

    op.send_line("/bans");
    let bans = op.next_line();
    assert!(
        bans.starts_with("* 1 ban:") && bans.contains("127.0.0.5") && bans.contains("mallory"),
        "{bans}"
    );
    op.send_line("/unban mallory");
    op.expect_next("* unbanned mallory");
    let mut mallory = Client::connect_from(s.addr(), host(5));
    mallory.login("mallory");
    op.expect_next("* mallory joined");

    // By address, with connections from there that have not logged in.
    let mut waiting = Client::connect_from(s.addr(), host(7));
    waiting.expect_prompt();
    op.send_line("/ban 127.0.0.7");
    op.expect_next("* banned 127.0.0.7");
    expect_refused(&mut waiting, "! you are banned");
}

#[test]
fn a_timed_ban_ends_by_itself() {
    let (s, _file) = oper_server(&[]);
    let mut op = s.login("op");
    op.send_line("/oper open sesame");
    op.expect_next("* you are now an operator");
    // 0.05 minutes: 3 seconds.
    op.send_line("/ban 127.0.0.8 0.05");
    op.expect_next("* banned 127.0.0.8 for 0.05 minutes");
    let banned_at = Instant::now();
    let mut early = Client::connect_from(s.addr(), host(8));
    expect_refused(&mut early, "! you are banned");
    let deadline = banned_at + Duration::from_secs(3) + T;
    loop {
        let mut c = Client::connect_from(s.addr(), host(8));
        match c.prompt_or_line(|l| l == "! you are banned") {
            Ok(_) => break,
            Err(_) => assert!(Instant::now() < deadline, "the ban never ended"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        banned_at.elapsed() >= Duration::from_secs(3),
        "the ban ended early"
    );
}

#[test]
fn a_muted_user_reaches_nobody_until_unmuted() {
    let (s, _file) = oper_server(&[]);
    let [mut op, mut loud, mut quiet] = s.users(["op", "loud", "quiet"]);
    op.send_line("/oper open sesame");
    op.expect_next("* you are now an operator");

    op.send_line("/mute loud");
    for c in [&mut op, &mut loud, &mut quiet] {
        c.expect_next("* loud was muted by op");
    }
    loud.send_line("BUY NOW");
    loud.expect_next("! you are muted");
    loud.send_line("/me shouts");
    loud.expect_next("! you are muted");
    // A new name does not lift it.
    loud.send_line("/nick loud2");
    quiet.expect_next("* loud is now known as loud2");
    op.expect_next("* loud is now known as loud2");
    loud.expect_next("* loud is now known as loud2");
    loud.send_line("still here");
    loud.expect_next("! you are muted");
    quiet.assert_silent(Duration::from_millis(300));

    op.send_line("/unmute loud2");
    for c in [&mut op, &mut loud, &mut quiet] {
        c.expect_next("* loud2 was unmuted by op");
    }
    loud.send_line("sorry");
    quiet.expect_next("[loud2] sorry");
}

#[test]
fn failed_operator_passwords_are_limited_per_address() {
    let (s, _file) = oper_server(&[]);
    let mut guesser = Client::connect_from(s.addr(), host(9));
    guesser.login("guesser");
    for i in 0..5 {
        guesser.send_line(&format!("/oper guess{i}"));
        guesser.expect_next("! wrong password");
    }
    // Now even the right one is refused from there for a while...
    guesser.send_line("/oper open sesame");
    let line = guesser.next_line();
    assert!(line.starts_with("! too many wrong passwords"), "{line}");
    // ...but not from another address.
    let mut other = Client::connect_from(s.addr(), host(10));
    other.login("other");
    other.send_line("/oper open sesame");
    other.expect_next("* you are now an operator");
}

#[test]
fn behind_a_trusted_proxy_the_header_names_the_user() {
    let s = Server::start(&[
        "--web-real-ip-header",
        "X-Forwarded-For",
        "--max-per-ip",
        "1",
        "--trusted",
        "127.0.0.1/32",
    ]);
    let web = s.web_addr();
    let via_proxy = |user: &str| {
        WsClient::try_connect_with(web, "/ws", &[("X-Forwarded-For", user)], Some(host(1)))
    };
    let mut first = via_proxy("203.0.113.7").expect("first user behind the proxy");
    first.login("first");
    // Another user behind the same proxy is another address.
    let mut second = via_proxy("203.0.113.8").expect("second user behind the proxy");
    second.login("second");
    // The same user again is over its limit of 1.
    match via_proxy("203.0.113.7") {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 429),
        other => panic!("expected 429, got {:?}", other.err()),
    }
    // From an untrusted address the header is ignored: it counts as itself.
    let mut direct = WsClient::try_connect_with(
        web,
        "/ws",
        &[("X-Forwarded-For", "203.0.113.7")],
        Some(host(11)),
    )
    .expect("an untrusted client's header is ignored, not held against it");
    direct.login("direct");
    assert!(
        s.stderr().contains("203.0.113.8"),
        "logs name the user's address:\n{}",
        s.stderr()
    );
}

#[test]
fn a_ban_by_name_holds_a_registered_account_from_any_address() {
    let (s, _file) = oper_server(&[]);
    let mut op = s.login("op");
    op.send_line("/oper open sesame");
    op.expect_next("* you are now an operator");
    let mut mallory = Client::connect_from(s.addr(), host(12));
    mallory.login("mallory");
    mallory.sync();
    op.expect_next("* mallory joined");
    mallory.send_line("/register mallorys-pass");
    mallory.expect_next("* mallory is now registered");
    op.send_line("/ban mallory");
    mallory.expect_next("! you were banned by op");
    op.expect_next("* mallory was banned by op");

    // Another address, the same account: turned away before the password.
    let mut elsewhere = Client::connect_from(s.addr(), host(13));
    elsewhere.expect_prompt();
    elsewhere.send_line("Mallory");
    let rest = String::from_utf8_lossy(&elsewhere.expect_closed()).into_owned();
    assert_eq!(rest, "! you are banned\r\n");
    // Other names from that address are not affected.
    let mut friend = Client::connect_from(s.addr(), host(13));
    friend.login("friend");
    op.expect_next("* friend joined");

    op.send_line("/unban mallory");
    op.expect_next("* unbanned mallory");
    let mut back = Client::connect_from(s.addr(), host(13));
    back.expect_prompt();
    back.send_line("mallory");
    back.expect_prompt_of(b"Password: ");
    back.send_line("mallorys-pass");
    back.expect_line("the welcome", |l| l.starts_with("* welcome, mallory!"));
}

#[test]
fn a_ban_on_a_trusted_address_is_refused() {
    // Behind a proxy everyone comes from its address: banning it would shut out everyone.
    let (s, _file) = oper_server(&["--trusted", "127.0.0.9/32"]);
    let mut op = Client::connect_from(s.addr(), "127.0.0.8".parse().unwrap());
    op.login("op");
    op.send_line("/oper open sesame");
    op.expect_next("* you are now an operator");
    let mut proxied = Client::connect_from(s.addr(), "127.0.0.9".parse().unwrap());
    proxied.login("proxied");
    op.expect_joined("proxied");
    op.send_line("/ban proxied");
    op.expect_next(
        "! proxied comes through 127.0.0.9, a trusted address (a proxy?): banning it would shut \
         out everyone behind it; use /kick, or ban the user's own address",
    );
    op.send_line("/ban 127.0.0.9");
    op.expect_line("the refusal", |l| {
        l.starts_with("! 127.0.0.9, a trusted address")
    });
    proxied.send_line("still here");
    op.expect_next("[proxied] still here");
}
