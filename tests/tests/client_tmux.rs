//! `chat-client` on a real terminal: tmux runs it, `send-keys` types, `capture-pane` reads the
//! screen. The point of the client is that incoming lines never garble the line being typed.

use chat_tests::client_harness::{
    addr_args, client_command, ends_with_input, last_line, require_tmux, Tmux,
};
use chat_tests::{Client, Server};

const WIDTH: u16 = 120;
const HEIGHT: u16 = 30;
/// The input prompt in the lobby, as `wait_for_last_line` sees it (no trailing space).
const PROMPT: &str = "#lobby>";

/// Starts the client in tmux and logs in as `name` by typing on the server's prompt.
fn start_logged_in(server: &Server, name: &str, room: &mut [&mut Client]) -> Tmux {
    let [host, port] = addr_args(server.addr());
    let tmux = Tmux::start(WIDTH, HEIGHT, &client_command(&[&host, &port]));
    tmux.wait_for_last_line("Username:");
    tmux.type_text(name);
    tmux.press(&["Enter"]);
    tmux.wait_for_last_line(PROMPT);
    for other in room.iter_mut() {
        other.expect_joined(name);
    }
    tmux
}

#[test]
fn tmux_is_installed() {
    require_tmux();
}

#[test]
fn incoming_message_leaves_the_half_typed_line_intact() {
    let server = Server::start(&[]);
    let mut bob = server.login("bob");
    let tmux = start_logged_in(&server, "alice", &mut [&mut bob]);
    let screen = tmux.screen();
    assert!(screen.contains("* welcome, alice!"), "{screen}");

    tmux.type_text("half of what I wanted");
    tmux.wait_for_last_line("#lobby> half of what I wanted");

    bob.send_line("hello from bob");
    // Waiting for both at once: a capture may fall between the message and the redraw. A
    // garbled input line never matches, and the wait fails.
    let screen = tmux.wait_for("bob's message above the intact input line", |s| {
        s.contains("[bob] hello from bob") && last_line(s) == "#lobby> half of what I wanted"
    });
    // The message sits above the input line, on a line of its own.
    let lines: Vec<&str> = screen
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        lines[lines.len() - 2..],
        ["[bob] hello from bob", "#lobby> half of what I wanted"],
        "{screen}"
    );

    tmux.type_text(" to say");
    tmux.press(&["Enter"]);
    bob.expect_next("[alice] half of what I wanted to say");
    tmux.wait_for_last_line(PROMPT);
}

#[test]
fn a_long_wrapped_input_line_survives_a_burst_of_messages() {
    let server = Server::start(&[]);
    let mut bob = server.login("bob");
    let tmux = start_logged_in(&server, "alice", &mut [&mut bob]);

    // Longer than the window is wide, so it wraps over two screen rows.
    let typed: String = (0..30).map(|i| format!("w{i:02} ")).collect();
    let typed = typed.trim_end();
    let expected = format!("#lobby> {typed}");
    assert!(expected.len() > usize::from(WIDTH) && expected.len() < 2 * usize::from(WIDTH));
    tmux.type_text(typed);
    tmux.wait_for_input(&expected);

    let long = "x".repeat(150);
    for i in 0..10 {
        bob.send_line(&format!("message {i} {long}"));
    }
    bob.send_line("/msg alice a private one");
    let screen = tmux.wait_for("the private message above the intact input line", |s| {
        s.contains("[bob -> you] a private one") && ends_with_input(s, &expected)
    });
    for i in 0..10 {
        let line = format!("[bob] message {i} {long}");
        assert!(
            screen.lines().any(|l| l == line),
            "no {line:?} in\n{screen}"
        );
    }

    tmux.press(&["Enter"]);
    bob.expect_next("[you -> alice] a private one");
    bob.expect_next(&format!("[alice] {typed}"));
}

#[test]
fn colours_by_prefix_on_a_terminal() {
    let server = Server::start(&[]);
    let mut bob = server.login("bob");
    let tmux = start_logged_in(&server, "alice", &mut [&mut bob]);

    bob.send_line("hi");
    bob.send_line("/msg alice psst");
    tmux.type_text("/nosuch");
    tmux.press(&["Enter"]);
    tmux.wait_for("the error", |s| s.contains("! unknown command: /nosuch"));
    tmux.wait_for("the private message", |s| s.contains("[bob -> you] psst"));

    let screen = tmux.screen_with_escapes();
    let line = |start: &str| {
        screen
            .lines()
            .find(|l| l.contains(start))
            .unwrap_or_else(|| panic!("no line with {start:?} in {screen:?}"))
            .to_owned()
    };
    // tmux re-encodes attributes, so look for the SGR parameters, not exact bytes.
    assert!(
        line("* welcome, alice").contains("\u{1b}[2m"),
        "notice not dim: {screen:?}"
    );
    assert!(
        line("! unknown command").contains("31m"),
        "error not red: {screen:?}"
    );
    let message = line("] hi");
    assert!(
        message.contains("\u{1b}["),
        "name not coloured: {message:?}"
    );
    assert!(
        line("psst").contains("\u{1b}[1m"),
        "private not bold: {screen:?}"
    );
}

#[test]
fn no_color_turns_colour_off() {
    let server = Server::start(&[]);
    let [host, port] = addr_args(server.addr());
    let command = format!("NO_COLOR=1 {}", client_command(&[&host, &port]));
    let tmux = Tmux::start(WIDTH, HEIGHT, &command);
    tmux.wait_for_last_line("Username:");
    tmux.type_text("alice");
    tmux.press(&["Enter"]);
    tmux.wait_for_last_line(PROMPT);
    let screen = tmux.screen_with_escapes();
    let welcome = screen
        .lines()
        .find(|l| l.contains("* welcome, alice"))
        .unwrap_or_default();
    assert!(!welcome.contains('\u{1b}'), "{screen:?}");
}

#[test]
fn refused_name_flag_falls_back_to_asking() {
    let server = Server::start(&[]);
    let mut bob = server.login("bob");
    let [host, port] = addr_args(server.addr());
    let tmux = Tmux::start(
        WIDTH,
        HEIGHT,
        &client_command(&[&host, &port, "--name", "bob"]),
    );
    let screen = tmux.wait_for_last_line("Username:");
    assert!(screen.contains("! the name bob is taken"), "{screen}");
    tmux.type_text("carol");
    tmux.press(&["Enter"]);
    tmux.wait_for_last_line(PROMPT);
    bob.expect_joined("carol");
}

#[test]
fn history_on_the_up_arrow() {
    let server = Server::start(&[]);
    let mut bob = server.login("bob");
    let tmux = start_logged_in(&server, "alice", &mut [&mut bob]);
    for text in ["first", "second"] {
        tmux.type_text(text);
        tmux.press(&["Enter"]);
        bob.expect_next(&format!("[alice] {text}"));
    }
    tmux.press(&["Up", "Up"]);
    tmux.wait_for_last_line("#lobby> first");
    tmux.press(&["Enter"]);
    bob.expect_next("[alice] first");
}

#[test]
fn ctrl_d_quits_with_status_0() {
    let server = Server::start(&[]);
    let mut bob = server.login("bob");
    let tmux = start_logged_in(&server, "alice", &mut [&mut bob]);
    tmux.press(&["C-d"]);
    bob.expect_next("* alice left");
    assert_eq!(tmux.wait_exit_status(), 0);
    let screen = tmux.screen();
    assert!(screen.contains("* bye, alice"), "{screen}");
    assert!(!screen.contains("[terminal left raw]"), "{screen}");
}

#[test]
fn ctrl_c_on_an_empty_line_quits_with_status_0() {
    let server = Server::start(&[]);
    let mut bob = server.login("bob");
    let tmux = start_logged_in(&server, "alice", &mut [&mut bob]);
    tmux.press(&["C-c"]);
    bob.expect_next("* alice left");
    assert_eq!(tmux.wait_exit_status(), 0);
}

#[test]
fn ctrl_c_clears_a_half_typed_line_and_stays_connected() {
    let server = Server::start(&[]);
    let mut bob = server.login("bob");
    let tmux = start_logged_in(&server, "alice", &mut [&mut bob]);
    tmux.type_text("never sent");
    tmux.wait_for_last_line("#lobby> never sent");
    tmux.press(&["C-c"]);
    tmux.wait_for_last_line(PROMPT);
    // Still connected: the next line goes out, and the cleared one never did.
    tmux.type_text("sent instead");
    tmux.press(&["Enter"]);
    bob.expect_next("[alice] sent instead");
    bob.send_line("still there?");
    tmux.wait_for("bob's message", |s| s.contains("[bob] still there?"));
    let screen = tmux.screen();
    assert!(!screen.contains("[chat-client exited"), "{screen}");
}

#[test]
fn slash_quit_quits_with_status_0() {
    let server = Server::start(&[]);
    let mut bob = server.login("bob");
    let tmux = start_logged_in(&server, "alice", &mut [&mut bob]);
    tmux.type_text("/quit see you");
    tmux.press(&["Enter"]);
    bob.expect_next("* alice left (see you)");
    assert_eq!(tmux.wait_exit_status(), 0);
}

#[test]
fn server_going_away_mid_typing_exits_1_and_restores_the_terminal() {
    let mut server = Server::start(&[]);
    let mut bob = server.login("bob");
    let tmux = start_logged_in(&server, "alice", &mut [&mut bob]);
    tmux.type_text("half typed");
    tmux.wait_for_last_line("#lobby> half typed");

    server.send_signal(libc::SIGTERM);
    assert_eq!(tmux.wait_exit_status(), 1);
    let screen = tmux.screen();
    assert!(screen.contains("* server shutting down"), "{screen}");
    assert_eq!(
        screen
            .lines()
            .filter(|l| l.starts_with("chat-client:"))
            .collect::<Vec<_>>(),
        ["chat-client: connection closed by server"],
        "{screen}"
    );
    assert!(!screen.contains("[terminal left raw]"), "{screen}");
    assert!(!screen.contains("panicked"), "{screen}");
}

#[test]
fn three_lines_in_one_send_keys_all_arrive_in_order() {
    let server = Server::start(&[]);
    let mut bob = server.login("bob");
    let tmux = start_logged_in(&server, "alice", &mut [&mut bob]);
    // One tmux command: the client reads all three lines in a single read.
    tmux.press(&[
        "typeahead-1",
        "Enter",
        "typeahead-2",
        "Enter",
        "typeahead-3",
        "Enter",
    ]);
    for i in 1..=3 {
        bob.expect_next(&format!("[alice] typeahead-{i}"));
    }
    tmux.wait_for_last_line(PROMPT);
}

#[test]
fn a_30_line_unbracketed_paste_arrives_whole_and_in_order() {
    // Above the default flood burst of 20: this test is about the client, not the limit.
    let server = Server::start(&["--flood-rate", "0"]);
    let mut bob = server.login("bob");
    let tmux = start_logged_in(&server, "alice", &mut [&mut bob]);
    let lines: Vec<String> = (1..=30).map(|i| format!("pasted line {i:02}")).collect();
    tmux.paste_unbracketed(&(lines.join("\n") + "\n"));
    for line in &lines {
        bob.expect_next(&format!("[alice] {line}"));
    }
    tmux.wait_for_last_line(PROMPT);
}

#[test]
fn tab_completes_names_of_the_room_and_commands() {
    let server = Server::start(&[]);
    let mut bob = server.login("bob");
    let tmux = start_logged_in(&server, "alice", &mut [&mut bob]);
    // Joined after alice: known from the join notice.
    let mut bernadette = server.login("bernadette");
    tmux.wait_for("bernadette joining", |s| s.contains("* bernadette joined"));

    tmux.type_text("/ms");
    tmux.press(&["Tab"]);
    tmux.wait_for_last_line("#lobby> /msg");
    tmux.type_text("bern");
    tmux.press(&["Tab"]);
    tmux.wait_for_last_line("#lobby> /msg bernadette");
    tmux.type_text("psst");
    tmux.press(&["Enter"]);
    bernadette.expect_next("[alice -> you] psst");

    tmux.type_text("hi BO");
    tmux.press(&["Tab"]);
    tmux.wait_for_last_line("#lobby> hi bob");
    tmux.press(&["Enter"]);
    bob.expect_line_eq("[alice] hi bob");
}

#[test]
fn a_mention_is_highlighted_and_rings_the_bell() {
    let server = Server::start(&[]);
    let mut bob = server.login("bob");
    let tmux = start_logged_in(&server, "alice", &mut [&mut bob]);
    bob.send_line("nothing for you");
    tmux.wait_for("the first message", |s| s.contains("[bob] nothing for you"));
    assert!(!tmux.bell_rang(), "the bell rang without a mention");

    bob.send_line("are you there, Alice?");
    tmux.wait_for("the mention", |s| s.contains("[bob] are you there, Alice?"));
    let screen = tmux.screen_with_escapes();
    let line = screen
        .lines()
        .find(|l| l.contains("are you there"))
        .unwrap_or_default();
    // Reverse video around the name, and nowhere on the line without a mention.
    assert!(line.contains("\u{1b}[7mAlice"), "not highlighted: {line:?}");
    let plain = screen
        .lines()
        .find(|l| l.contains("nothing for you"))
        .unwrap_or_default();
    assert!(!plain.contains("\u{1b}[7m"), "{plain:?}");
    tmux.wait_until("the bell", || tmux.bell_rang());
}

#[test]
fn no_bell_keeps_the_highlight_but_not_the_bell() {
    let server = Server::start(&[]);
    let mut bob = server.login("bob");
    let [host, port] = addr_args(server.addr());
    let command = client_command(&[
        "--host",
        &host,
        "--port",
        &port,
        "--no-bell",
        "--name",
        "alice",
    ]);
    let tmux = Tmux::start(WIDTH, HEIGHT, &command);
    tmux.wait_for_last_line(PROMPT);
    bob.expect_joined("alice");
    bob.send_line("alice: ping");
    tmux.wait_for("the mention", |s| s.contains("[bob] alice: ping"));
    // Another line after it: by then the bell, had it been sent, was handled too.
    bob.send_line("/me waits");
    tmux.wait_for("the action", |s| s.contains("* bob waits"));
    assert!(!tmux.bell_rang(), "--no-bell still rang");
}

#[test]
fn the_prompt_follows_the_room() {
    let server = Server::start(&[]);
    let mut bob = server.login("bob");
    let tmux = start_logged_in(&server, "alice", &mut [&mut bob]);
    tmux.type_text("/join #Dev");
    tmux.press(&["Enter"]);
    tmux.wait_for_last_line("#Dev>");
    tmux.type_text("/join lobby");
    tmux.press(&["Enter"]);
    tmux.wait_for_last_line(PROMPT);
}

#[test]
fn history_is_kept_across_runs_unless_turned_off() {
    let server = Server::start(&[]);
    let mut bob = server.login("bob");
    let [host, port] = addr_args(server.addr());
    let command = |extra: &[&str]| {
        let mut args = vec![host.as_str(), port.as_str(), "--name", "alice"];
        args.extend_from_slice(extra);
        client_command(&args)
    };
    let tmux = Tmux::start(WIDTH, HEIGHT, &command(&[]));
    tmux.wait_for_last_line(PROMPT);
    tmux.type_text("remember me");
    tmux.press(&["Enter"]);
    bob.expect_line_eq("[alice] remember me");
    tmux.press(&["C-d"]);
    assert_eq!(tmux.wait_exit_status(), 0);
    let file = tmux.data_dir().join("chat-client").join("history");
    assert!(file.is_file(), "no history file at {}", file.display());

    tmux.respawn(&command(&[]));
    tmux.wait_for_last_line(PROMPT);
    tmux.press(&["Up"]);
    tmux.wait_for_last_line("#lobby> remember me");
    tmux.press(&["C-c", "C-d"]);
    assert_eq!(tmux.wait_exit_status(), 0);

    std::fs::remove_file(&file).expect("removing the history file");
    tmux.respawn(&command(&["--no-history-file"]));
    tmux.wait_for_last_line(PROMPT);
    tmux.type_text("forget me");
    tmux.press(&["Enter"]);
    bob.expect_line_eq("[alice] forget me");
    tmux.press(&["C-d"]);
    assert_eq!(tmux.wait_exit_status(), 0);
    assert!(!file.exists(), "--no-history-file wrote {}", file.display());
}

#[test]
fn server_going_away_leaves_no_empty_prompt_line() {
    let mut server = Server::start(&[]);
    let mut bob = server.login("bob");
    let tmux = start_logged_in(&server, "alice", &mut [&mut bob]);
    server.send_signal(libc::SIGTERM);
    assert_eq!(tmux.wait_exit_status(), 1);
    let screen = tmux.screen();
    let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
    let at = lines
        .iter()
        .position(|l| *l == "chat-client: connection closed by server")
        .unwrap_or_else(|| panic!("no closing line in\n{screen}"));
    assert_eq!(lines[at - 1], "* server shutting down", "{screen}");
    assert!(!lines.contains(&PROMPT), "{screen}");
}
