//! Reading the shapes of server lines, and showing bytes in failure messages.

/// Bytes as a readable, escaped string, cut to a few hundred characters.
pub fn show(bytes: &[u8]) -> String {
    const MAX: usize = 600;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]);
    let mut out = format!("\"{}\"", text.escape_debug());
    if bytes.len() > MAX {
        out.push_str(&format!("... ({} bytes in all)", bytes.len()));
    }
    out
}

/// A `/who` reply: `* N users in ROOM: a, b, c` (or `* 1 user in ROOM: a`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub count: usize,
    pub room: String,
    pub names: Vec<String>,
}

/// Parses a one-line `/who` reply.
pub fn parse_who(line: &str) -> Option<Who> {
    let rest = line.strip_prefix("* ")?;
    let (count, rest) = rest.split_once(' ')?;
    let count: usize = count.parse().ok()?;
    let word = if count == 1 { "user in " } else { "users in " };
    let rest = rest.strip_prefix(word)?;
    let (room, names) = rest.split_once(": ")?;
    Some(Who {
        count,
        room: room.to_owned(),
        names: names.split(", ").map(str::to_owned).collect(),
    })
}

/// Parses a `/rooms` reply, `* N rooms: dev (1), lobby (3)` (`* 1 room: lobby (2)`), into its
/// count and `(room, users)` pairs.
pub fn parse_rooms(line: &str) -> Option<(usize, Vec<(String, usize)>)> {
    let rest = line.strip_prefix("* ")?;
    let (count, rest) = rest.split_once(' ')?;
    let count: usize = count.parse().ok()?;
    let word = if count == 1 { "room: " } else { "rooms: " };
    let list = rest.strip_prefix(word)?;
    let mut rooms = Vec::new();
    for item in list.split(", ") {
        let (name, n) = item.strip_suffix(')')?.rsplit_once(" (")?;
        rooms.push((name.to_owned(), n.parse().ok()?));
    }
    Some((count, rooms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_and_rooms_parse() {
        assert_eq!(
            parse_who("* 2 users in lobby: a, b"),
            Some(Who {
                count: 2,
                room: "lobby".into(),
                names: vec!["a".into(), "b".into()]
            })
        );
        assert_eq!(parse_who("* 1 user in dev: a").map(|w| w.count), Some(1));
        assert_eq!(parse_who("* 1 users in dev: a"), None);
        assert_eq!(
            parse_rooms("* 2 rooms: dev (1), lobby (3)"),
            Some((2, vec![("dev".into(), 1), ("lobby".into(), 3)]))
        );
        assert_eq!(
            parse_rooms("* 1 room: lobby (2)"),
            Some((1, vec![("lobby".into(), 2)]))
        );
        assert_eq!(parse_rooms("* 1 rooms: lobby (2)"), None);
    }
}
