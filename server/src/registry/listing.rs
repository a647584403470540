//! `/who`, `/rooms` and `/join` replies: lists as `* ` notices of bounded length.

use chat_common::wire;

/// Longest `* ` line body for lists (`/who`), so huge rooms span several lines.
const LIST_LINE_BYTES: usize = 900;

pub(super) fn plural<'a>(count: usize, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 {
        one
    } else {
        many
    }
}

/// `* HEAD a, b, c` split into lines of bounded length, each a complete `* ` notice.
pub(super) fn list_lines(head: &str, items: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = head.trim_end().to_owned();
    let mut first_item = true;
    for item in items {
        if !first_item && current.len() + item.len() + 2 > LIST_LINE_BYTES {
            lines.push(wire::notice(&format!("{current},")));
            current = String::from("  ");
        } else if first_item {
            current.push(' ');
        } else {
            current.push_str(", ");
        }
        current.push_str(item);
        first_item = false;
    }
    lines.push(wire::notice(&current));
    lines
}

/// The welcome line of a login; `users` counts the lobby with the newcomer.
pub fn welcome_line(name: &str, users: usize) -> String {
    wire::notice(&format!(
        "welcome, {name}! you are in {} with {users} {}; /help lists the commands",
        super::LOBBY,
        plural(users, "user", "users"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lists_fit_on_one_line() {
        let items = vec!["alice".to_owned(), "bob".to_owned()];
        assert_eq!(
            list_lines("2 users in lobby: ", &items),
            vec!["* 2 users in lobby: alice, bob"]
        );
    }

    #[test]
    fn long_lists_wrap_into_notices() {
        let items: Vec<String> = (0..500).map(|i| format!("user{i:04}")).collect();
        let lines = list_lines("500 users in lobby: ", &items);
        assert!(lines.len() > 1);
        for line in &lines {
            assert!(line.starts_with("* "), "{line}");
            assert!(line.len() <= LIST_LINE_BYTES + 16, "{}", line.len());
        }
        let joined = lines.join(" ");
        for item in &items {
            assert!(joined.contains(item.as_str()));
        }
    }
}
