//! `--proxy-protocol`: behind a load balancer the line port sees users' own addresses, from the
//! PROXY header a trusted balancer sends; with raw headers, and through a real HAProxy.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chat_tests::{Client, Server, TempFile, T};

const BALANCER: &str = "127.0.0.1";

fn proxied_server(extra: &[&str]) -> Server {
    let mut args = vec!["--no-web", "--proxy-protocol", "--trusted", "127.0.0.1/32"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// A connection from the balancer's address, for the user at `client`.
fn through_balancer(s: &Server, client: &str) -> Client {
    let c = Client::connect_from(s.addr(), BALANCER.parse().unwrap());
    let header = format!(
        "PROXY TCP4 {client} 127.0.0.1 40000 {}\r\n",
        s.addr().port()
    );
    c.stream().write_all(header.as_bytes()).unwrap();
    c
}

#[test]
fn the_user_behind_the_balancer_counts_for_limits_and_logs() {
    let s = proxied_server(&["--max-per-ip", "1"]);
    let mut alice = through_balancer(&s, "203.0.113.7");
    alice.login("alice");
    s.wait_for_log("client=203.0.113.7", 1);
    // A second connection of the same user is over the per-address limit; another user is not,
    // though both come from the balancer's address.
    let mut again = through_balancer(&s, "203.0.113.7");
    again.expect_next("! too many connections from your address");
    again.expect_closed();
    let mut bob = through_balancer(&s, "203.0.113.8");
    bob.login("bob");
    alice.expect_joined("bob");
    // PROXY UNKNOWN (a balancer's health check) keeps the balancer's own address.
    let mut check = Client::connect_from(s.addr(), BALANCER.parse().unwrap());
    check.stream().write_all(b"PROXY UNKNOWN\r\n").unwrap();
    check.expect_prompt();
}

#[test]
fn a_ban_behind_the_balancer_holds_the_user_not_the_balancer() {
    let oper = TempFile::new("proxy-oper", "open sesame\n");
    let s = proxied_server(&["--oper-password-file", oper.as_str()]);
    let mut op = through_balancer(&s, "198.51.100.1");
    op.login("op");
    op.send_line("/oper open sesame");
    op.expect_next("* you are now an operator");
    let mut mal = through_balancer(&s, "198.51.100.66");
    mal.login("mal");
    op.expect_joined("mal");
    op.send_line("/ban mal");
    mal.expect_next("! you were banned by op");
    op.expect_next("* mal was banned by op");
    let mut back = through_balancer(&s, "198.51.100.66");
    back.expect_next("! you are banned");
    let mut other = through_balancer(&s, "198.51.100.67");
    other.login("other");
}

#[test]
fn a_trusted_address_without_a_header_is_refused_and_others_need_none() {
    let s = proxied_server(&["--login-timeout", "2"]);
    // The balancer must send the header: a bare name is not one.
    let mut bare = Client::connect_from(s.addr(), BALANCER.parse().unwrap());
    bare.stream().write_all(b"alice\r\n").unwrap();
    bare.expect_closed();
    // A balancer that sends nothing is closed at the login timeout.
    let mut silent = Client::connect_from(s.addr(), BALANCER.parse().unwrap());
    silent.expect_closed();
    s.wait_for_log("no PROXY header in time", 1);
    // Anyone else connects as usual, and a PROXY line from them is just a name (refused).
    let mut direct = Client::connect_from(s.addr(), "127.0.0.2".parse().unwrap());
    direct.expect_prompt();
    direct.send_line("PROXY TCP4 1.2.3.4 5.6.7.8 1 2");
    direct.expect_line("the refusal", |l| l.starts_with("! "));
}

/// A running haproxy, killed on drop (before its config file goes).
struct Haproxy {
    child: Child,
    _config: TempFile,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn through_a_real_haproxy_with_send_proxy() {
    assert!(
        Command::new("haproxy").arg("-v").output().is_ok(),
        "haproxy is not installed (Debian package haproxy; scripts/test installs it)"
    );
    let s = proxied_server(&[]);
    let front = free_port();
    let config = TempFile::new(
        "haproxy.cfg",
        &format!(
            "global\n    maxconn 100\ndefaults\n    mode tcp\n    timeout connect 5s\n    \
             timeout client 60s\n    timeout server 60s\nfrontend chat\n    bind 127.0.0.1:{front}\n    \
             default_backend servers\nbackend servers\n    server chat1 {} send-proxy\n",
            s.addr()
        ),
    );
    let child = Command::new("haproxy")
        .args(["-f", config.as_str()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting haproxy");
    let _haproxy = Haproxy {
        child,
        _config: config,
    };
    let front: SocketAddr = (BALANCER.parse::<IpAddr>().unwrap(), front).into();
    // The user connects from 127.0.0.5 to haproxy, which connects from 127.0.0.1 to the server.
    let deadline = Instant::now() + T;
    let mut user = loop {
        if let Ok(stream) = std::net::TcpStream::connect(front) {
            drop(stream);
            break Client::connect_from(front, "127.0.0.5".parse().unwrap());
        }
        assert!(
            Instant::now() < deadline,
            "haproxy never listened on {front}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    user.login("viaproxy");
    // The login is logged (and counted) with the user's address, not haproxy's.
    s.wait_for_log("client=127.0.0.5", 1);
    s.wait_for_log("name=viaproxy addr=127.0.0.5", 1);
}
