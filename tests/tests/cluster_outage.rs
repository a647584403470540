//! PROTOCOL.md section 15, when things go away: a server killed or shut down, and Redis itself
//! stopped and started again. Each test has its own real Redis (see `RedisServer`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chat_tests::{Client, RedisServer, Server, T};

/// What the protocol allows for a dead server's users to be shown leaving.
const GONE_WITHIN: Duration = Duration::from_secs(15);
const UNAVAILABLE: &str = "! cluster unavailable, try again later";

/// `chat-server --cluster URL --no-web --history-on-join 0`
fn member(redis: &RedisServer) -> Server {
    let url = redis.url();
    Server::start(&["--cluster", &url, "--no-web", "--history-on-join", "0"])
}

/// Logs `name` in on `s`; each of `lobby` (users in the lobby, on any server) sees it join.
fn enter(s: &Server, name: &str, lobby: &mut [&mut Client]) -> Client {
    let c = s.login(name);
    for other in lobby {
        other.expect_joined(name);
    }
    c
}

/// Sends `name` at the prompt until it is welcome, as long as each refusal is `refusal`.
fn login_retrying(s: &Server, name: &str, refusal: &str) -> Client {
    let mut c = s.connect();
    c.set_label(name);
    let deadline = Instant::now() + T;
    loop {
        c.expect_prompt();
        c.send_line(name);
        let line = c.next_line();
        if line.starts_with(&format!("* welcome, {name}!")) {
            return c;
        }
        assert_eq!(line, refusal, "{name}: neither the welcome nor {refusal:?}");
        assert!(
            Instant::now() < deadline,
            "{name}: still {refusal:?} after {T:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The next lines of `c`, by `deadline`, are exactly `lines` in any order.
fn expect_lines_by(c: &mut Client, lines: &[String], deadline: Instant) {
    let mut missing: BTreeSet<&String> = lines.iter().collect();
    while !missing.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = c.next_line_within(left);
        assert!(
            missing.remove(&line),
            "{}: got {line:?} while waiting for {missing:?}",
            c.label()
        );
    }
}

#[test]
fn a_killed_or_stopped_server_s_users_leave_everywhere() {
    let redis = RedisServer::start();
    let a = member(&redis);
    let mut b = member(&redis);
    let mut c = member(&redis);
    let mut ann = a.login("ann");
    let mut bea = enter(&b, "bea", &mut [&mut ann]);
    let mut cy1 = enter(&c, "cy1", &mut [&mut ann, &mut bea]);
    let _cy2 = enter(&c, "cy2", &mut [&mut ann, &mut bea, &mut cy1]);

    // kill -9: no goodbye; the others notice the silence.
    let killed = Instant::now();
    c.kill();
    let gone = ["* cy1 left (server gone)", "* cy2 left (server gone)"].map(String::from);
    for user in [&mut ann, &mut bea] {
        expect_lines_by(user, &gone, killed + GONE_WITHIN);
    }
    eprintln!("server gone noticed after {:?}", killed.elapsed());
    // Its names come free (once its lease runs out).
    let mut cy1 = login_retrying(&a, "CY1", "! the name CY1 is taken");
    ann.expect_joined("CY1");
    bea.expect_joined("CY1");

    // SIGTERM: its users leave everywhere at once, and their names are free.
    b.send_signal(libc::SIGTERM);
    bea.expect_next("* server shutting down");
    bea.expect_closed();
    for user in [&mut ann, &mut cy1] {
        user.expect_next("* bea left (server shutting down)");
    }
    let status = b.wait_exit(T).expect("chat-server exits after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    let _bea = enter(&a, "bea", &mut [&mut ann, &mut cy1]);
}

#[test]
fn without_redis_logins_wait_local_users_talk_and_then_all_resumes() {
    let mut redis = RedisServer::start();
    let a = member(&redis);
    let b = member(&redis);
    let mut a1 = a.login("a1");
    let mut a2 = enter(&a, "a2", &mut [&mut a1]);
    let mut b1 = enter(&b, "b1", &mut [&mut a1, &mut a2]);

    redis.stop();
    for s in [&a, &b] {
        let mut newcomer = s.connect();
        newcomer.expect_prompt();
        newcomer.send_line("newcomer");
        newcomer.expect_next(UNAVAILABLE);
        newcomer.expect_prompt();
    }
    // Users of one server still talk to each other.
    a1.send_line("still here");
    a2.expect_line("a1's message", |l| l == "[a1] still here");
    a2.send_line("me too");
    a1.expect_line("a2's message", |l| l == "[a2] me too");
    // A server started meanwhile says it is listening, and refuses logins too.
    let c = member(&redis);
    let mut early = c.connect();
    early.expect_prompt();
    early.send_line("early");
    early.expect_next(UNAVAILABLE);

    // Redis is back (empty, on the same port): every server comes back by itself.
    redis.restart();
    let _late_a = login_retrying(&a, "late_a", UNAVAILABLE);
    // Once a server says it is back, its very next login works: no connection left over from
    // before the restart is used for the name claim.
    // (c started during the outage: its first sync is its coming back.)
    for (s, name, syncs) in [(&b, "late_b", 2), (&c, "late_c", 1)] {
        s.wait_for_log("cluster: in sync", syncs);
        let mut late = s.connect();
        late.expect_prompt();
        late.send_line(name);
        late.expect_line("the welcome", |l| {
            l.starts_with(&format!("* welcome, {name}!"))
        });
    }
    // The users of the other server show up again, and talk crosses servers again.
    a1.expect_joined("b1");
    let seen = |line: &str| line == "* a1 joined" || line == "* a2 joined";
    let first = b1.expect_line("a1 or a2 joining", seen);
    b1.expect_line("the other joining", |l| seen(l) && l != first);
    b1.send_line("back again");
    a1.expect_line("b1's message", |l| l == "[b1] back again");
    a2.expect_line("b1's message", |l| l == "[b1] back again");
    a2.send_line("welcome back");
    b1.expect_line("a2's message", |l| l == "[a2] welcome back");
    // The name space is one again too.
    let mut dup = c.connect();
    dup.expect_prompt();
    dup.send_line("B1");
    dup.expect_next("! the name B1 is taken");
}
