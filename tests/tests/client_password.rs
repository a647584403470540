//! `chat-client` on a real terminal (tmux, as in `client_tmux.rs`) with registered names
//! (PROTOCOL.md section 12): what is typed on the server's `Password: ` prompt never reaches the
//! screen or the history, at login and after `/nick`, and neither do `/register`, `/password`
//! and `/unregister`. Piped, the next input line answers `Password: `, and nothing is printed
//! back.

use std::path::PathBuf;

use chat_tests::client_harness::{addr_args, client_command, last_line, run_piped, Tmux};
use chat_tests::Server;

const WIDTH: u16 = 100;
const HEIGHT: u16 = 30;
/// The prompts as `wait_for_last_line` sees them (no trailing space).
const LOBBY: &str = "#lobby>";
const USERNAME: &str = "Username:";
const PASSWORD: &str = "Password:";
const SECRET: &str = "s3cretpass";

/// Registers `name` with `password` from a raw TCP client, which then leaves.
fn register(server: &Server, name: &str, password: &str) {
    let mut c = server.login(name);
    c.send_line(&format!("/register {password}"));
    c.expect_next(&format!("* {name} is now registered"));
    c.send_line("/quit");
    c.expect_closed();
}

fn history_file(tmux: &Tmux) -> PathBuf {
    tmux.data_dir().join("chat-client").join("history")
}

fn history(tmux: &Tmux) -> String {
    let file = history_file(tmux);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()))
}

/// Fails if `secret` is anywhere on the screen, its scrollback included.
fn assert_not_on_screen(tmux: &Tmux, secret: &str) {
    let all = tmux.run(&["capture-pane", "-p", "-J", "-S", "-", "-t", "0"]);
    assert!(!all.contains(secret), "{secret:?} is on the screen:\n{all}");
}

/// Types `text` on the `Password: ` prompt, piece by piece, checking after each piece that the
/// line still shows nothing but the prompt (no echo, no `*`).
fn type_unseen(tmux: &Tmux, text: &str) {
    for piece in [&text[..3], &text[3..]] {
        tmux.type_text(piece);
        // No event says the keys were handled: give the client time to draw them, then look.
        std::thread::sleep(std::time::Duration::from_millis(150));
        let screen = tmux.screen();
        assert_eq!(last_line(&screen), PASSWORD, "{screen}");
        assert!(!screen.contains(piece), "{screen}");
    }
}

#[test]
fn the_password_at_login_is_neither_shown_nor_kept() {
    let server = Server::start(&[]);
    register(&server, "alice", SECRET);
    let mut bob = server.login("bob");
    let [host, port] = addr_args(server.addr());
    let tmux = Tmux::start(WIDTH, HEIGHT, &client_command(&[&host, &port]));

    // A wrong password first: refused, and the name is asked again.
    tmux.wait_for_last_line(USERNAME);
    tmux.type_text("alice");
    tmux.press(&["Enter"]);
    tmux.wait_for_last_line(PASSWORD);
    type_unseen(&tmux, "wrong-pass1");
    tmux.press(&["Enter"]);
    tmux.wait_for("the refusal and the name prompt again", |s| {
        s.contains("! wrong password") && last_line(s) == USERNAME
    });

    tmux.type_text("alice");
    tmux.press(&["Enter"]);
    tmux.wait_for_last_line(PASSWORD);
    type_unseen(&tmux, SECRET);
    tmux.press(&["Enter"]);
    let screen = tmux.wait_for("the welcome", |s| {
        s.contains("* welcome, alice!") && last_line(s) == LOBBY
    });
    bob.expect_joined("alice");
    assert!(screen.contains(PASSWORD), "{screen}");
    assert_not_on_screen(&tmux, SECRET);
    assert_not_on_screen(&tmux, "wrong-pass1");

    // Commands that carry passwords are sent but not remembered; the rest is.
    tmux.type_text(&format!("/password {SECRET} n3w-passw0rd"));
    tmux.press(&["Enter"]);
    tmux.wait_for("the change", |s| s.contains("* password changed"));
    tmux.type_text("hello");
    tmux.press(&["Enter"]);
    bob.expect_next("[alice] hello");
    tmux.press(&["Up"]);
    tmux.wait_for_last_line("#lobby> hello");
    tmux.press(&["Up"]);
    // Nothing older to go to: the line stays.
    std::thread::sleep(std::time::Duration::from_millis(150));
    assert_eq!(last_line(&tmux.screen()), "#lobby> hello");
    tmux.press(&["C-c", "C-d"]);
    assert_eq!(tmux.wait_exit_status(), 0);

    let kept = history(&tmux);
    assert!(kept.contains("hello"), "{kept}");
    for secret in [SECRET, "wrong-pass1", "n3w-passw0rd", "/password"] {
        assert!(
            !kept.contains(secret),
            "{secret:?} in the history file:\n{kept}"
        );
    }
}

#[test]
fn the_password_after_nick_is_hidden_even_when_a_message_redraws_the_line() {
    let server = Server::start(&[]);
    register(&server, "bob", SECRET);
    let mut carol = server.login("carol");
    let [host, port] = addr_args(server.addr());
    let tmux = Tmux::start(
        WIDTH,
        HEIGHT,
        &client_command(&[&host, &port, "--name", "alice"]),
    );
    tmux.wait_for_last_line(LOBBY);
    carol.expect_joined("alice");

    tmux.type_text("/nick bob");
    tmux.press(&["Enter"]);
    tmux.wait_for_last_line(PASSWORD);
    type_unseen(&tmux, "s3cret");
    // A message redraws the line being typed: still hidden.
    carol.send_line("hi there");
    let screen = tmux.wait_for("the message above the hidden line", |s| {
        s.contains("[carol] hi there") && last_line(s) == PASSWORD
    });
    assert!(!screen.contains("s3cret"), "{screen}");
    tmux.type_text("pass");
    tmux.press(&["Enter"]);
    carol.expect_next("* alice is now known as bob");
    tmux.wait_for("the rename", |s| {
        s.contains("* alice is now known as bob") && last_line(s) == LOBBY
    });
    assert_not_on_screen(&tmux, SECRET);
    assert_not_on_screen(&tmux, "s3cret");

    // Registering the name is not remembered either.
    tmux.type_text("/unregister s3cretpass");
    tmux.press(&["Enter"]);
    tmux.wait_for("the answer", |s| {
        s.contains("* bob is no longer registered")
    });
    tmux.press(&["C-d"]);
    assert_eq!(tmux.wait_exit_status(), 0);
    let kept = history(&tmux);
    assert!(kept.contains("/nick bob"), "{kept}");
    assert!(
        !kept.contains("s3cret"),
        "the password in the history file:\n{kept}"
    );
    assert!(!kept.contains("/unregister"), "{kept}");
}

#[test]
fn ctrl_c_on_the_password_prompt_after_nick_cancels_the_nick() {
    let server = Server::start(&[]);
    register(&server, "bob", SECRET);
    let mut carol = server.login("carol");
    let [host, port] = addr_args(server.addr());
    let tmux = Tmux::start(
        WIDTH,
        HEIGHT,
        &client_command(&[&host, &port, "--name", "alice"]),
    );
    tmux.wait_for_last_line(LOBBY);
    carol.expect_joined("alice");

    tmux.type_text("/nick bob");
    tmux.press(&["Enter"]);
    tmux.wait_for_last_line(PASSWORD);
    tmux.type_text("half");
    // The first Ctrl-C clears the line, the second cancels.
    tmux.press(&["C-c", "C-c"]);
    tmux.wait_for("the refusal and the room prompt again", |s| {
        s.contains("! wrong password") && last_line(s) == LOBBY
    });
    tmux.type_text("still alice");
    tmux.press(&["Enter"]);
    carol.expect_next("[alice] still alice");
}

#[test]
fn piped_input_answers_the_password_prompt_with_the_next_line() {
    let server = Server::start(&[]);
    register(&server, "alice", SECRET);
    let mut bob = server.login("bob");
    let [host, port] = addr_args(server.addr());
    // A wrong password, the name again, the right one, a message: all sent at once.
    let input = format!("alice\nwrong-pass1\nalice\n{SECRET}\nhi from a pipe\n");
    let out = run_piped(&[&host, &port], input.as_bytes());
    assert!(out.status.success(), "{out}");
    bob.expect_joined("alice");
    bob.expect_next("[alice] hi from a pipe");
    out.expect_stdout_line("! wrong password");
    assert!(out.stdout.contains("* welcome, alice!"), "{out}");
    for secret in [SECRET, "wrong-pass1", "Password:"] {
        assert!(!out.stdout.contains(secret), "{secret:?} printed\n{out}");
        assert!(!out.stderr.contains(secret), "{secret:?} printed\n{out}");
    }
}
