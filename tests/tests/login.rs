//! PROTOCOL.md section 2, login: valid and invalid names, uniqueness, welcome and join
//! notices, the login timeout, and silent leaving before login.

use std::time::{Duration, Instant};

use chat_tests::{is_word_prefix, Server};

const BAD_CHARS: &str = "! a name may only hold letters, digits and _ - . (no spaces or symbols)";

/// Checks `* welcome, NAME! you are in lobby with N users; /help lists the commands`.
fn assert_welcome(line: &str, name: &str) {
    let ok = line
        .strip_prefix(&format!("* welcome, {name}! you are in lobby with "))
        .and_then(|rest| rest.split_once(' '))
        .is_some_and(|(n, rest)| {
            n.parse::<usize>().is_ok()
                && matches!(
                    rest,
                    "users; /help lists the commands" | "user; /help lists the commands"
                )
        });
    assert!(
        ok,
        "welcome for {name}: expected `* welcome, {name}! you are in lobby with N users; \
         /help lists the commands`, got {line:?}"
    );
}

#[test]
fn welcome_names_the_user_and_the_room_sees_joined() {
    let s = Server::start(&[]);
    let mut alice = s.connect();
    let welcome = alice.login("alice");
    assert_welcome(&welcome, "alice");

    let mut bob = s.connect();
    let welcome = bob.login("bob");
    assert_welcome(&welcome, "bob");
    let joined = alice.next_line();
    assert!(
        is_word_prefix(&joined, "* bob joined"),
        "alice should get `* bob joined`, got {joined:?}"
    );
    // bob is not told about his own joining.
    assert_eq!(bob.sync(), Vec::<String>::new(), "bob got extra lines");
}

#[test]
fn valid_names_are_accepted() {
    let s = Server::start(&[]);
    let mut watcher = s.login("watcher");
    let mut keep = Vec::new(); // dropping one would make watcher see `* NAME left`
    let long_ascii = "n".repeat(24);
    let long_wide = "민".repeat(24);
    for name in [
        "민수",
        "bob_2",
        "Ada.L",
        "x-y",
        "ÉLODIE",
        "7",
        long_ascii.as_str(),
        long_wide.as_str(),
    ] {
        let mut c = s.connect();
        let welcome = c.login(name);
        assert_welcome(&welcome, name);
        watcher.expect_next(&format!("* {name} joined"));
        keep.push(c);
    }
}

#[test]
fn invalid_names_get_one_error_line_and_the_prompt_again() {
    let s = Server::start(&[]);
    let mut watcher = s.login("watcher");
    let mut c = s.connect();
    c.expect_prompt();
    let too_long = "n".repeat(25);
    let too_long_wide = "민".repeat(25);
    let cases: Vec<(&[u8], &str)> = vec![
        (b"a b", BAD_CHARS),
        (b"/x", BAD_CHARS),
        (b"", "! a name cannot be empty"),
        (too_long.as_bytes(), "! a name is at most 24 characters"),
        (
            too_long_wide.as_bytes(),
            "! a name is at most 24 characters",
        ),
        (b"bad\x1b[31m", BAD_CHARS),
        (b"\x1b[2Jclear", BAD_CHARS),
        (b"nul\x00x", BAD_CHARS),
        (b"bell\x07", BAD_CHARS),
        (b"c1\xc2\x9bx", BAD_CHARS),
        (b"al!ce", BAD_CHARS),
    ];
    for (name, error) in cases {
        let mut line = name.to_vec();
        line.push(b'\n');
        c.send_raw(&line);
        let got = c.next_line();
        assert_eq!(got, error, "name {:?}", String::from_utf8_lossy(name));
        let between = c.expect_prompt();
        assert!(
            between.is_empty(),
            "name {:?}: one `! ` line then the prompt, but also got {between:?}",
            String::from_utf8_lossy(name)
        );
    }
    // Retrying after refusals works.
    c.send_line("alice");
    assert_welcome(&c.next_line(), "alice");
    // Refused attempts were never announced.
    watcher.expect_next("* alice joined");
}

#[test]
fn names_are_unique_case_insensitively() {
    let s = Server::start(&[]);
    let mut alice = s.login("alice");
    let mut c = s.connect();
    c.expect_prompt();
    for taken in ["alice", "Alice", "ALICE"] {
        c.send_line(taken);
        c.expect_next(&format!("! the name {taken} is taken"));
        assert_eq!(c.expect_prompt(), Vec::<String>::new(), "after {taken:?}");
    }
    c.send_line("bob");
    assert_welcome(&c.next_line(), "bob");
    alice.expect_next("* bob joined");

    // Once alice is gone the name is free, in any spelling.
    alice.send_line("/quit");
    alice.expect_next("* bye, alice");
    c.expect_next("* alice left");
    let mut again = s.connect();
    assert_welcome(&again.login("Alice"), "Alice");
    c.expect_next("* Alice joined");
}

#[test]
fn login_times_out_counted_from_connect_across_retries() {
    let s = Server::start(&["--login-timeout", "1"]);
    let mut member = s.login("member");
    let mut idle = s.connect();
    let mut retrier = s.connect();
    let start = Instant::now();
    retrier.expect_prompt();

    // Keep sending refused names faster than the timeout: a timer restarted by each retry would
    // never fire.
    let mut attempts = 0;
    let mut timed_out = false;
    while !timed_out {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no `! login timed out` after {attempts} refused names in {:?} with \
             --login-timeout 1\n{}",
            start.elapsed(),
            retrier.context()
        );
        if retrier.try_send_raw(b"not valid\n").is_err() {
            // The server closed already: its last line must be waiting to be read.
            retrier.expect_line_eq("! login timed out");
            break;
        }
        attempts += 1;
        match retrier.prompt_or_line(|l| l == "! login timed out") {
            Ok(lines) => assert_eq!(lines, [BAD_CHARS], "refusal of attempt {attempts}"),
            Err(lines) => {
                // Only the refusal of this attempt may come before the timeout line.
                assert!(
                    lines.len() == 1 || (lines.len() == 2 && lines[0] == BAD_CHARS),
                    "lines before `! login timed out`: {lines:?}"
                );
                timed_out = true;
            }
        }
        if !timed_out {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    let elapsed = start.elapsed();
    let rest = retrier.expect_closed();
    assert!(
        rest.is_empty(),
        "nothing may follow `! login timed out`, got {}",
        chat_tests::show(&rest)
    );
    assert!(
        elapsed >= Duration::from_millis(900),
        "timed out after {elapsed:?}, before the 1 s login timeout"
    );

    // The idle connection (no bytes at all) times out too.
    let lines = idle.expect_prompt();
    assert_eq!(lines, ["* welcome to chat-server"]);
    idle.expect_next("! login timed out");
    idle.expect_closed();

    // A logged-in user is not subject to the login timeout, and saw nothing of either.
    assert_eq!(member.sync(), Vec::<String>::new(), "member saw lines");
}

#[test]
fn connections_that_never_logged_in_leave_silently() {
    // With room for exactly three connections, getting two new prompts afterwards proves the
    // server has dropped both ghosts before the next logins.
    let s = Server::start(&["--max-clients", "3"]);
    let mut alice = s.login("alice");

    let mut ghost1 = s.connect();
    ghost1.expect_prompt();
    ghost1.send_line("not valid");
    ghost1.expect_next(BAD_CHARS);
    ghost1.shutdown_write();
    ghost1.expect_closed();
    drop(ghost1);
    let mut ghost2 = s.connect();
    ghost2.expect_prompt();
    ghost2.send_raw(b"half a na"); // partial name, then reset
    ghost2.reset();

    let mut carol = s.connect_until_prompt();
    let mut dave = s.connect_until_prompt();
    carol.send_line("carol");
    assert_welcome(&carol.next_line(), "carol");
    alice.expect_next("* carol joined");
    dave.send_line("dave");
    assert_welcome(&dave.next_line(), "dave");
    alice.expect_next("* dave joined");
    assert_eq!(alice.sync(), Vec::<String>::new());
}

#[test]
fn the_prompt_comes_back_after_each_refusal_until_success() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.expect_prompt();
    for _ in 0..3 {
        c.send_line("a b");
        c.expect_next(BAD_CHARS);
        c.expect_prompt();
    }
    c.send_line("finally");
    assert_welcome(&c.next_line(), "finally");
    // A logged-in user never sees the prompt again.
    c.send_line("/who");
    c.expect_next("* 1 user in lobby: finally");
}
