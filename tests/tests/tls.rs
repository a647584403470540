//! PROTOCOL.md section 10: the line protocol over TLS on its own port, HTTPS and WSS on the web
//! port, the handshake under the login timeout, and SIGHUP reloading the certificate.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chat_tests::tls::{read_until, write_line, TestCerts};
use chat_tests::{Server, T};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use tungstenite::Message;

fn tls_server(certs: &TestCerts, extra: &[&str]) -> Server {
    let mut args: Vec<String> = certs.server_args();
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&args)
}

#[test]
fn tls_tcp_and_wss_users_chat_in_one_room() {
    let certs = TestCerts::new("room");
    let s = tls_server(&certs, &[]);

    let mut tls = certs.connect(s.tls_addr());
    read_until(&mut tls, "Username: ");
    write_line(&mut tls, "alice");
    read_until(&mut tls, "* welcome, alice!");

    let mut plain = s.login("bob");
    read_until(&mut tls, "* bob joined\r\n");

    // WSS on the web port, through the same kind of TLS session.
    let tcp = TcpStream::connect(s.web_addr()).unwrap();
    tcp.set_read_timeout(Some(T)).unwrap();
    let conn = ClientConnection::new(
        certs.client_config(),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let url = format!("wss://localhost:{}/ws", s.web_addr().port());
    let (mut wss, _) = tungstenite::client(url, StreamOwned::new(conn, tcp)).expect("WSS upgrade");
    let next_text = |wss: &mut tungstenite::WebSocket<_>| loop {
        match wss.read().expect("reading WSS") {
            Message::Text(t) => break t.to_string(),
            _ => continue,
        }
    };
    assert_eq!(next_text(&mut wss), "* welcome to chat-server");
    assert_eq!(next_text(&mut wss), "Username: ");
    wss.send(Message::text("carol")).unwrap();
    assert!(next_text(&mut wss).starts_with("* welcome, carol!"));
    read_until(&mut tls, "* carol joined\r\n");
    plain.expect_next("* carol joined");

    write_line(&mut tls, "over tls");
    plain.expect_next("[alice] over tls");
    assert_eq!(next_text(&mut wss), "[alice] over tls");
    plain.send_line("over tcp");
    read_until(&mut tls, "[bob] over tcp\r\n");
    assert_eq!(next_text(&mut wss), "[bob] over tcp");
    wss.send(Message::text("over wss")).unwrap();
    read_until(&mut tls, "[carol] over wss\r\n");
    plain.expect_next("[carol] over wss");

    // /quit over TLS: the goodbye, then a clean close (close_notify, so read gives 0).
    write_line(&mut tls, "/quit");
    let rest = read_to_end(&mut tls);
    assert!(rest.contains("* bye, alice"), "{rest:?}");
    plain.expect_next("* alice left");
}

fn read_to_end<S: Read>(stream: &mut S) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return String::from_utf8_lossy(&all).into_owned(),
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "expected a clean TLS close, got {e}; read {:?}",
                String::from_utf8_lossy(&all)
            ),
        }
    }
}

#[test]
fn the_web_port_speaks_https_only() {
    let certs = TestCerts::new("https");
    let s = tls_server(&certs, &[]);
    let mut tls = certs.connect(s.web_addr());
    tls.write_all(
        format!(
            "GET / HTTP/1.1\r\nHost: localhost:{}\r\n\r\n",
            s.web_addr().port()
        )
        .as_bytes(),
    )
    .unwrap();
    let page = read_to_end(&mut tls);
    assert!(
        page.starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        &page[..page.len().min(200)]
    );
    assert!(page.contains("Content-Security-Policy: default-src 'none'"));

    // Plain HTTP to it gets no page.
    let mut plain = TcpStream::connect(s.web_addr()).unwrap();
    plain.set_read_timeout(Some(T)).unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(
        !String::from_utf8_lossy(&got).contains("200 OK"),
        "plain HTTP was served"
    );
}

#[test]
fn openssl_s_client_is_a_working_ad_hoc_client() {
    let certs = TestCerts::new("openssl");
    let s = tls_server(&certs, &[]);
    let mut watcher = s.login("watcher");
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect"])
        .arg(s.tls_addr().to_string())
        .arg("-CAfile")
        .arg(certs.ca())
        .arg("-verify_return_error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client (Debian package openssl; scripts/test installs it)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"sslguest\nhello from openssl\n").unwrap();
    stdin.flush().unwrap();
    watcher.expect_next("* sslguest joined");
    watcher.expect_next("[sslguest] hello from openssl");
    // openssl's output, line by line, as it comes.
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        for line in std::io::BufRead::split(std::io::BufReader::new(stdout), b'\n') {
            let line = String::from_utf8_lossy(&line.unwrap()).into_owned() + "\n";
            out.push_str(&line);
            let _ = lines_tx.send(line);
        }
        out
    });
    watcher.send_line("hi openssl");
    // /quit only once the message is in: the two travel on different connections.
    loop {
        let line = lines.recv_timeout(T).expect("openssl's output stopped");
        if line == "[watcher] hi openssl\r\n" {
            break;
        }
    }
    stdin.write_all(b"/quit\n").unwrap();
    drop(stdin);
    let out = reader.join().unwrap();
    let _ = child.wait();
    assert!(out.contains("Username: "), "{out}");
    assert!(out.contains("* bye, sslguest"), "{out}");
}

#[test]
fn a_handshake_that_stalls_is_closed_at_the_login_timeout() {
    let certs = TestCerts::new("stall");
    let s = tls_server(&certs, &["--login-timeout", "1"]);
    for addr in [s.tls_addr(), s.web_addr()] {
        let mut stream = TcpStream::connect(addr).unwrap();
        // Half a ClientHello record header, then nothing.
        stream.write_all(&[0x16, 0x03, 0x01]).unwrap();
        stream.set_read_timeout(Some(T)).unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        let took = started.elapsed();
        assert!(took < T, "{addr}: not closed");
        assert!(
            took >= Duration::from_millis(900),
            "{addr}: closed before the timeout"
        );
    }
}

#[test]
fn sighup_reloads_the_pair_for_new_connections_and_keeps_it_on_a_broken_file() {
    let certs = TestCerts::new("first");
    let mut s = tls_server(&certs, &[]);
    let first = certs.cert_der();
    assert_eq!(certs.presented_certificate(s.tls_addr()).unwrap(), first);
    // An open connection before the reload.
    let mut open = certs.connect(s.tls_addr());
    read_until(&mut open, "Username: ");
    write_line(&mut open, "early");
    read_until(&mut open, "* welcome, early!");

    let next = TestCerts::new("second");
    certs.rotate_from(&next);
    s.send_signal(libc::SIGHUP);
    let deadline = Instant::now() + T;
    // New connections see the new certificate (trusting the new CA).
    while next.presented_certificate(s.tls_addr()).ok() != Some(next.cert_der()) {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not bring in the new certificate"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The open one goes on.
    write_line(&mut open, "/who");
    read_until(&mut open, "in lobby");

    // A broken file: the server says why and keeps the pair it has.
    std::fs::write(certs.cert(), "not a certificate\n").unwrap();
    s.send_signal(libc::SIGHUP);
    s.wait_for_log("kept the old TLS certificate", 1);
    assert!(
        s.stderr().contains(&certs.cert().display().to_string()),
        "{}",
        s.stderr()
    );
    assert_eq!(
        next.presented_certificate(s.tls_addr()).unwrap(),
        next.cert_der()
    );
}

#[test]
fn a_bad_file_at_start_is_one_clear_line() {
    let certs = TestCerts::new("bad");
    let other = TestCerts::new("other");
    let cases: [(Vec<String>, &str); 3] = [
        (
            vec![
                "--tls-cert".into(),
                "/nonexistent/cert.pem".into(),
                "--tls-key".into(),
                certs.key().display().to_string(),
            ],
            "/nonexistent/cert.pem",
        ),
        (
            vec![
                "--tls-cert".into(),
                certs.key().display().to_string(),
                "--tls-key".into(),
                certs.key().display().to_string(),
            ],
            "no certificate",
        ),
        (
            vec![
                "--tls-cert".into(),
                certs.cert().display().to_string(),
                "--tls-key".into(),
                other.key().display().to_string(),
            ],
            "do not make a pair",
        ),
    ];
    for (args, expected) in cases {
        let out = Command::new(chat_tests::server_binary())
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(
            lines[0].starts_with("chat-server: ") && lines[0].contains(expected),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_tls_client_that_never_reads_is_dropped_and_delays_no_one() {
    let certs = TestCerts::new("slow");
    let s = tls_server(&certs, &["--outbuf-limit", "65536", "--flood-rate", "0"]);
    let mut reader = s.login("reader");
    let mut stuck = certs.connect(s.tls_addr());
    read_until(&mut stuck, "Username: ");
    write_line(&mut stuck, "stuck");
    read_until(&mut stuck, "* welcome, stuck!");
    reader.expect_next("* stuck joined");
    let mut talker = s.login("talker");
    reader.expect_next("* talker joined");
    // From here on `stuck` reads nothing.
    chat_tests::slow::flood_until_dropped(&mut talker, &mut reader, "stuck");
}
