//! What the client knows about its room, worked out from the server's notices alone: the room
//! it is in (for the prompt), the names of the users there (for Tab completion), and its own
//! name (for mentions; `/nick` changes it).
//!
//! The notices read are those of PROTOCOL.md and the server's wording: the welcome
//! (`welcome, NAME! you are in ROOM with ...`), the `/join` reply (`you are now in ROOM; N users
//! here: a, b`), the `/who` reply (`N users in ROOM: a, b`), and `NAME joined`, `NAME left ...`,
//! `OLD is now known as NEW`. Long lists come as several notices, every one but the last ending
//! with a comma, the rest starting with spaces. Anything else is left alone, so another server's
//! wording only costs completion and the room in the prompt.

use std::collections::BTreeMap;

use chat_common::names::{key, validate_name};

#[derive(Debug, Default)]
pub struct Roster {
    me: Option<String>,
    room: Option<String>,
    /// Users of the room by their case-folded key, each with its spelling.
    names: BTreeMap<String, String>,
    /// The last list notice ended with a comma: the next one continues it.
    list_continues: bool,
}

/// What a notice changed that the main thread cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    Room,
    /// `OLD is now known as NEW` about ourselves.
    Renamed,
}

impl Roster {
    /// The name the server accepted at login.
    pub fn set_me(&mut self, name: &str) {
        if !name.is_empty() {
            self.me = Some(name.to_owned());
            self.add(name);
        }
    }

    pub fn me(&self) -> Option<&str> {
        self.me.as_deref()
    }

    /// The input prompt: `#room> ` once the room is known.
    pub fn prompt(&self) -> String {
        match &self.room {
            Some(room) => format!("#{room}> "),
            None => "> ".to_owned(),
        }
    }

    /// Users of the room other than ourselves, sorted by key.
    pub fn others(&self) -> Vec<String> {
        let me = self.me.as_deref().map(key);
        self.names
            .iter()
            .filter(|(k, _)| Some(k.as_str()) != me.as_deref())
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// Someone spoke in the room (`[NAME] text`), so NAME is here.
    pub fn saw_speaker(&mut self, name: &str) {
        if validate_name(name).is_ok() && !name.contains(' ') {
            self.add(name);
        }
    }

    /// Reads one notice (the text after `* `).
    pub fn observe(&mut self, text: &str) -> Change {
        if self.list_continues {
            if let Some(rest) = text.strip_prefix("  ") {
                self.add_list(rest);
                return Change::None;
            }
            self.list_continues = false;
        }
        if let Some(rest) = text.strip_prefix("welcome, ") {
            if let Some((_, room)) = rest.split_once("! you are in ") {
                let room = room.split(" with ").next().unwrap_or(room);
                self.names.clear();
                if let Some(me) = self.me.clone() {
                    self.add(&me);
                }
                return self.enter(room);
            }
        }
        if let Some(rest) = text.strip_prefix("you are now in ") {
            if let Some((room, list)) = rest.split_once("; ") {
                self.names.clear();
                self.take_list(list);
                return self.enter(room);
            }
        }
        if let Some((head, list)) = text.split_once(": ") {
            // `N users in ROOM` (`/who`).
            let words: Vec<&str> = head.split(' ').collect();
            if let [count, "user" | "users", "in", room] = words[..] {
                if count.parse::<usize>().is_ok() {
                    self.names.clear();
                    self.add_list(list);
                    return self.enter(room);
                }
            }
        }
        self.membership(text)
    }

    /// `NAME joined`, `NAME left [(reason)]`, `OLD is now known as NEW`.
    fn membership(&mut self, text: &str) -> Change {
        let mut words = text.splitn(3, ' ');
        let (Some(name), Some(verb)) = (words.next(), words.next()) else {
            return Change::None;
        };
        if validate_name(name).is_err() {
            return Change::None;
        }
        let rest = words.next();
        match (verb, rest) {
            ("joined", None) => self.add(name),
            ("left", None) => self.remove(name),
            ("left", Some(reason)) if reason.starts_with('(') && reason.ends_with(')') => {
                self.remove(name)
            }
            ("is", Some(rest)) => {
                if let Some(new) = rest.strip_prefix("now known as ") {
                    if validate_name(new).is_ok() && !new.contains(' ') && self.rename(name, new) {
                        return Change::Renamed;
                    }
                }
            }
            _ => {}
        }
        Change::None
    }

    /// `N users here: a, b,` (the head is skipped up to the colon).
    fn take_list(&mut self, text: &str) {
        if let Some((_, list)) = text.split_once(": ") {
            self.add_list(list);
        }
    }

    fn add_list(&mut self, list: &str) {
        self.list_continues = list.trim_end().ends_with(',');
        for name in list.split(',').map(str::trim) {
            if validate_name(name).is_ok() {
                self.add(name);
            }
        }
    }

    fn enter(&mut self, room: &str) -> Change {
        let room = room.trim().trim_start_matches('#');
        if validate_name(room).is_err() || self.room.as_deref() == Some(room) {
            return Change::None;
        }
        self.room = Some(room.to_owned());
        Change::Room
    }

    fn add(&mut self, name: &str) {
        self.names.insert(key(name), name.to_owned());
    }

    fn remove(&mut self, name: &str) {
        self.names.remove(&key(name));
    }

    /// True if it was us.
    fn rename(&mut self, old: &str, new: &str) -> bool {
        self.remove(old);
        self.add(new);
        let me = self.me.as_deref().map(key) == Some(key(old));
        if me {
            self.me = Some(new.to_owned());
        }
        me
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged_in(me: &str) -> Roster {
        let mut roster = Roster::default();
        roster.set_me(me);
        let welcome =
            format!("welcome, {me}! you are in lobby with 3 users; /help lists the commands");
        assert_eq!(roster.observe(&welcome), Change::Room);
        roster
    }

    #[test]
    fn welcome_sets_the_room_and_prompt() {
        let roster = logged_in("alice");
        assert_eq!(roster.prompt(), "#lobby> ");
        assert!(roster.others().is_empty());
        assert_eq!(Roster::default().prompt(), "> ");
    }

    #[test]
    fn who_reply_replaces_the_names_and_continues_over_lines() {
        let mut roster = logged_in("alice");
        roster.observe("bob joined");
        assert_eq!(
            roster.observe("4 users in lobby: alice, Carol,"),
            Change::None
        );
        roster.observe("  dave, 민수");
        assert_eq!(roster.others(), ["Carol", "dave", "민수"]);
        // A line that does not continue the list is read as itself.
        roster.observe("eve joined");
        assert_eq!(roster.others(), ["Carol", "dave", "eve", "민수"]);
        roster.observe("  frank");
        assert!(!roster.others().contains(&"frank".to_owned()));
    }

    #[test]
    fn join_reply_changes_room_and_names() {
        let mut roster = logged_in("alice");
        roster.observe("bob joined");
        let change = roster.observe("you are now in Dev; 2 users here: alice, zed");
        assert_eq!(change, Change::Room);
        assert_eq!(roster.prompt(), "#Dev> ");
        assert_eq!(roster.others(), ["zed"]);
        // The same room again is no change.
        assert_eq!(roster.observe("1 user in Dev: alice"), Change::None);
        assert!(roster.others().is_empty());
    }

    #[test]
    fn joins_leaves_and_renames() {
        let mut roster = logged_in("alice");
        roster.observe("bob joined");
        roster.observe("carol joined");
        roster.observe("bob left (moved to dev)");
        roster.observe("carol is now known as Caro");
        assert_eq!(roster.others(), ["Caro"]);
        roster.observe("Caro left");
        assert!(roster.others().is_empty());
    }

    #[test]
    fn own_rename_changes_me() {
        let mut roster = logged_in("alice");
        assert_eq!(
            roster.observe("ALICE is now known as ally"),
            Change::Renamed
        );
        assert_eq!(roster.me(), Some("ally"));
        assert!(roster.others().is_empty());
    }

    #[test]
    fn actions_and_other_notices_are_not_membership() {
        let mut roster = logged_in("alice");
        for text in [
            "bob left the building",
            "bob waves",
            "bye, alice",
            "rooms: lobby (2)",
            "server shutting down",
            "a b is now known as c",
        ] {
            assert_eq!(roster.observe(text), Change::None, "{text}");
        }
        assert!(roster.others().is_empty(), "{:?}", roster.others());
        assert_eq!(roster.prompt(), "#lobby> ");
    }
}
