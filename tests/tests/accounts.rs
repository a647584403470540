//! PROTOCOL.md section 12: registered names, the `Password: ` step, and password changes.

use chat_tests::Server;

const PASSWORD_PROMPT: &[u8] = b"Password: ";

fn register(s: &Server, name: &str, password: &str) {
    let mut c = s.login(name);
    c.send_line(&format!("/register {password}"));
    c.expect_next(&format!("* {name} is now registered"));
    c.send_line("/quit");
    c.expect_closed();
}

#[test]
fn a_registered_name_needs_its_password_in_any_case() {
    let s = Server::start(&[]);
    let mut alice = s.login("alice");
    alice.send_line("/register short");
    alice.expect_next("! passwords are 8 to 128 bytes");
    alice.send_line("/register s3cret-pass");
    alice.expect_next("* alice is now registered");
    alice.send_line("/register again-pass");
    alice.expect_next("! alice is already registered");

    // Online, it is taken like any name: no password asked.
    let mut other = s.connect();
    other.expect_prompt();
    other.send_line("ALICE");
    other.expect_line("a refusal", |l| l.starts_with("! ") && l.contains("taken"));
    alice.send_line("/quit");
    alice.expect_closed();

    // Offline: the password step, case-insensitively.
    other.expect_prompt();
    other.send_line("Alice");
    other.expect_prompt_of(PASSWORD_PROMPT);
    other.send_line("wrong-pass");
    other.expect_next("! wrong password");
    other.expect_prompt();
    other.send_line("alice");
    other.expect_prompt_of(PASSWORD_PROMPT);
    other.send_line("s3cret-pass");
    let welcome = other.next_line();
    assert!(welcome.starts_with("* welcome, alice!"), "{welcome}");
}

#[test]
fn password_change_and_unregister() {
    let s = Server::start(&[]);
    register(&s, "bob", "first-pass");
    let mut bob = s.connect();
    bob.expect_prompt();
    bob.send_line("bob");
    bob.expect_prompt_of(PASSWORD_PROMPT);
    bob.send_line("first-pass");
    bob.expect_line("the welcome", |l| l.starts_with("* welcome, bob!"));
    bob.send_line("/password wrong-pass second-pass");
    bob.expect_next("! wrong password");
    bob.send_line("/password first-pass second-pass");
    bob.expect_next("* password changed");
    bob.send_line("/quit");
    bob.expect_closed();

    let mut again = s.connect();
    again.expect_prompt();
    again.send_line("bob");
    again.expect_prompt_of(PASSWORD_PROMPT);
    again.send_line("first-pass");
    again.expect_next("! wrong password");
    again.expect_prompt();
    again.send_line("bob");
    again.expect_prompt_of(PASSWORD_PROMPT);
    again.send_line("second-pass");
    again.expect_line("the welcome", |l| l.starts_with("* welcome, bob!"));
    again.send_line("/unregister second-pass");
    again.expect_next("* bob is no longer registered");
    again.send_line("/quit");
    again.expect_closed();

    // Free again: no password asked.
    s.login("bob");
}

#[test]
fn nick_to_a_registered_name_asks_its_password() {
    let s = Server::start(&[]);
    register(&s, "carol", "carols-pass");
    let [mut dave, mut eve] = s.users(["dave", "eve"]);
    dave.send_line("/nick CAROL");
    dave.expect_prompt_of(PASSWORD_PROMPT);
    dave.send_line("guess-pass");
    dave.expect_next("! wrong password");
    dave.send_line("/nick carol");
    dave.expect_prompt_of(PASSWORD_PROMPT);
    dave.send_line("carols-pass");
    dave.expect_next("* dave is now known as carol");
    eve.expect_next("* dave is now known as carol");
    // The password line was not a message: eve saw nothing else.
    assert_eq!(eve.sync(), Vec::<String>::new());
}
