//! PROTOCOL.md section 9: the web port. WebSocket users are users like any other (same name
//! space, rooms, commands, limits), every server-made close has its close code, and the HTTP
//! side answers with the contract's status codes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use chat_tests::{http_raw, http_request, Server, WsClient, WsEnd, T};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message;

#[test]
fn websocket_and_tcp_users_chat_in_one_room_both_ways() {
    let s = Server::start(&[]);
    let mut tcp = s.login("alice");
    let mut ws = WsClient::connect(s.web_addr());
    let welcome = ws.login("bob");
    assert!(welcome.contains("lobby"), "{welcome}");
    tcp.expect_next("* bob joined");

    ws.send("hello from the browser");
    tcp.expect_next("[bob] hello from the browser");
    tcp.send_line("hello from nc");
    ws.expect_next("[alice] hello from nc");

    // Private messages across transports, both ways.
    ws.send("/msg alice psst");
    ws.expect_next("[you -> alice] psst");
    tcp.expect_next("[bob -> you] psst");
    tcp.send_line("/msg bob back");
    tcp.expect_next("[you -> bob] back");
    ws.expect_next("[alice -> you] back");

    // Commands work the same: /who sees both, /me reaches the sender too.
    ws.send("/who");
    let who = ws.expect_line("the /who reply", |l| l.starts_with("* 2 users in lobby"));
    assert!(who.contains("alice") && who.contains("bob"), "{who}");
    ws.send("/me waves");
    ws.expect_next("* bob waves");
    tcp.expect_next("* bob waves");

    // One message holding line endings is several lines; its end ends the last one.
    ws.send("one\ntwo\r\nthree");
    tcp.expect_next("[bob] one");
    tcp.expect_next("[bob] two");
    tcp.expect_next("[bob] three");

    // /quit: goodbye line, then close 1000; the room hears it.
    ws.send("/quit gone home");
    let lines = ws.expect_close(CloseCode::Normal);
    assert_eq!(lines, ["* bye, bob"]);
    tcp.expect_next("* bob left (gone home)");
}

#[test]
fn names_are_one_space_across_websocket_and_tcp() {
    let s = Server::start(&[]);
    let mut tcp = s.login("Carol");
    let mut ws = WsClient::connect(s.web_addr());
    ws.expect_line("`Username: `", |l| l == "Username: ");
    ws.send("carol");
    ws.expect_line("a refusal", |l| l.starts_with("! ") && l.contains("taken"));
    // Refused, then asked again, as over TCP.
    ws.expect_next("Username: ");
    ws.send("dave");
    ws.expect_line("the welcome", |l| l.starts_with("* welcome, dave"));
    tcp.expect_next("* dave joined");

    // And the other way: a TCP user cannot take the WebSocket user's name.
    let mut late = s.connect();
    late.expect_prompt();
    late.send_line("DAVE");
    late.expect_line("a refusal", |l| l.starts_with("! ") && l.contains("taken"));
}

#[test]
fn an_upgrade_on_the_root_path_works_as_on_ws() {
    // The seeds' pages connect to a bare ws://HOST:PORT.
    let s = Server::start(&[]);
    let mut ws = WsClient::try_connect(s.web_addr(), "/", None).expect("upgrade on /");
    ws.login("erin");
}

#[test]
fn origin_is_checked_on_upgrade() {
    let s = Server::start(&["--web-origin", "https://chat.example"]);
    let web = s.web_addr();
    let refused = WsClient::try_connect(web, "/ws", Some("http://evil.example"));
    match refused {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        Err(e) => panic!("a foreign Origin should get 403, got {e}"),
        Ok(_) => panic!("a foreign Origin was upgraded"),
    }
    // The page's own origin, a listed one, and none at all are allowed.
    for origin in [
        Some(format!("http://{web}")),
        Some("https://chat.example".to_owned()),
        None,
    ] {
        let mut ws = WsClient::try_connect(web, "/ws", origin.as_deref())
            .unwrap_or_else(|e| panic!("Origin {origin:?} refused: {e}"));
        ws.expect_line("`Username: `", |l| l == "Username: ");
    }
    let any = Server::start(&["--web-origin", "*"]);
    WsClient::try_connect(any.web_addr(), "/ws", Some("http://evil.example"))
        .expect("--web-origin * allows any origin");
}

#[test]
fn a_long_message_is_refused_and_a_huge_one_closes_with_1009() {
    let s = Server::start(&["--max-line", "100"]);
    let mut tcp = s.login("frank");
    let mut ws = WsClient::connect(s.web_addr());
    ws.login("gina");
    tcp.expect_next("* gina joined");

    ws.send(&"x".repeat(101));
    ws.expect_next("! line too long (max 100 bytes)");
    // The connection stays, and the next line goes through whole.
    ws.send("short");
    tcp.expect_next("[gina] short");

    // Past what the server takes in one message (64 KiB at least): it closes with 1009, having
    // read no more than the frame's header, and she leaves.
    let huge = "y".repeat(256 * 1024);
    ws.send_message(Message::text(huge))
        .expect("sending 256 KiB");
    let (end, _) = ws.expect_end();
    assert_eq!(end, WsEnd::Close(Some(1009)), "a 256 KiB message");
    tcp.expect_next("* gina left");
}

#[test]
fn a_websocket_client_that_never_reads_is_dropped_and_delays_no_one() {
    let s = Server::start(&["--outbuf-limit", "65536", "--flood-rate", "0"]);
    let mut tcp = s.login("reader");
    let mut stuck = WsClient::connect(s.web_addr());
    stuck.login("stuck");
    tcp.expect_next("* stuck joined");
    let mut talker = s.login("talker");
    tcp.expect_next("* talker joined");
    // From here on `stuck` reads nothing.

    chat_tests::slow::flood_until_dropped(&mut talker, &mut tcp, "stuck");
    tcp.send_line("still here");
    talker.expect_next("[reader] still here");
}

#[test]
fn shutdown_sends_close_1001() {
    let mut s = Server::start(&[]);
    let mut ws = WsClient::connect(s.web_addr());
    ws.login("hal");
    s.send_signal(libc::SIGTERM);
    let lines = ws.expect_close(CloseCode::Away);
    assert!(
        lines.contains(&"* server shutting down".to_owned()),
        "{lines:?}"
    );
    let status = s.wait_exit(Duration::from_secs(5));
    assert_eq!(status.and_then(|st| st.code()), Some(0));
}

#[test]
fn login_timeout_closes_with_1008() {
    let s = Server::start(&["--login-timeout", "1"]);
    let mut ws = WsClient::connect(s.web_addr());
    let lines = ws.expect_close(CloseCode::Policy);
    assert!(lines.contains(&"! login timed out".to_owned()), "{lines:?}");
}

#[test]
fn a_silent_client_is_pinged_and_one_that_never_answers_leaves() {
    let s = Server::start(&["--keepalive-secs", "1"]);
    let mut tcp = s.login("ivy");

    // A client that logs in and then reads nothing, so never answers a ping: it leaves.
    let mut mute = WsClient::connect(s.web_addr());
    mute.login("kim");
    tcp.expect_next("* kim joined");
    tcp.expect_next("* kim left");

    // A client that keeps reading (tungstenite answers each ping as it reads) is pinged and
    // stays, through several rounds of pings.
    let mut live = WsClient::connect(s.web_addr());
    live.login("jo");
    tcp.expect_next("* jo joined");
    let until = Instant::now() + Duration::from_secs(4);
    let mut pings = 0;
    loop {
        match live.try_next_message(until) {
            Ok(Some(Message::Ping(_))) => pings += 1,
            Ok(Some(other)) => panic!("jo: unexpected {other:?}"),
            Ok(None) => break,
            Err(end) => panic!("jo: connection ended ({end:?}) although it answered pings"),
        }
    }
    assert!(
        pings >= 2,
        "jo: {pings} pings in 4 s of silence with --keepalive-secs 1"
    );
    live.send("still here");
    tcp.expect_next("[jo] still here");
}

#[test]
fn the_page_is_served_with_a_strict_policy() {
    let s = Server::start(&[]);
    let page = http_request(s.web_addr(), "GET", "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let length: usize = page.header("content-length").unwrap().parse().unwrap();
    assert_eq!(length, page.body.len());
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains('*'),
        "{csp}"
    );
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.to_ascii_lowercase().starts_with("<!doctype html>"));

    let head = http_request(s.web_addr(), "HEAD", "/");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length").unwrap(), length.to_string());
    assert!(head.body.is_empty());
}

#[test]
fn http_errors() {
    let s = Server::start(&[]);
    let web = s.web_addr();
    for (method, path, status) in [
        ("GET", "/nothing-here", 404),
        ("POST", "/", 405),
        ("DELETE", "/ws", 405),
        ("GET", "/ws", 426),
    ] {
        let response = http_request(web, method, path);
        assert_eq!(response.status, status, "{method} {path}");
        let length: usize = response.header("content-length").unwrap().parse().unwrap();
        assert_eq!(length, response.body.len(), "{method} {path}");
    }
    // A head over 8 KiB: 431, then close.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
        "f".repeat(9000)
    );
    assert_eq!(http_raw(web, big.as_bytes()).status, 431);

    // Garbage: 400.
    assert_eq!(http_raw(web, b"\x16\x03\x01 not http\r\n\r\n").status, 400);
}

#[test]
fn a_request_head_that_never_completes_is_closed_at_the_login_timeout() {
    let s = Server::start(&["--login-timeout", "1"]);
    let mut stream = TcpStream::connect(s.web_addr()).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    stream.set_read_timeout(Some(T)).unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = stream.read_to_end(&mut rest);
    assert!(
        read.is_ok() && rest.is_empty(),
        "expected a bare close, got {read:?} {rest:?}"
    );
    assert!(started.elapsed() < T, "not closed");
}

#[test]
fn metrics_count_users_and_messages_in_the_text_format() {
    let s = Server::start(&[]);
    let [mut a, mut b] = s.users(["m1", "m2"]);
    a.send_line("one");
    b.expect_next("[m1] one");
    let mut ws = WsClient::connect(s.web_addr());
    ws.login("m3");
    b.expect_next("* m3 joined");

    let response = http_request(s.web_addr(), "GET", "/metrics");
    assert_eq!(response.status, 200);
    assert!(response
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(response.body).unwrap();
    let mut samples = std::collections::HashMap::new();
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.insert(rest.split(' ').next().unwrap().to_owned());
        } else if !line.starts_with('#') {
            let (name, value) = line.split_once(' ').expect("`name value`");
            assert!(typed.contains(name), "{name} has no TYPE line before it");
            samples.insert(name.to_owned(), value.parse::<f64>().expect("a number"));
        }
    }
    assert_eq!(samples["chat_users"], 3.0);
    assert_eq!(samples["chat_rooms"], 1.0);
    assert_eq!(samples["chat_messages_relayed_total"], 1.0);
    assert!(samples["chat_connections"] >= 3.0);
    assert!(samples["chat_lines_delivered_total"] >= 1.0);
    for name in [
        "chat_clients_dropped_slow_total",
        "chat_logins_refused_total",
    ] {
        assert!(samples.contains_key(name), "{name} missing:\n{text}");
    }

    let off = Server::start(&["--no-metrics"]);
    assert_eq!(http_request(off.web_addr(), "GET", "/metrics").status, 404);
}

#[test]
fn no_web_turns_the_port_off_and_web_port_picks_it() {
    let s = Server::start(&["--no-web"]);
    s.login("solo");
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let t = Server::start(&["--web-port", &port.to_string()]);
    assert_eq!(t.web_addr().port(), port);
}
