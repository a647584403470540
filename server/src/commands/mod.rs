//! What a logged-in user's line means: a message, a command, or nothing.
//!
//! Parsing works on the raw line so names can be checked as typed (a name with a control
//! character is refused, not cleaned); free text is sanitised when it is relayed.

/// One line from a logged-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<'a> {
    /// Blank (after trimming): ignored.
    Blank,
    /// Text for the room; `//text` arrives here as `/text`.
    Message(&'a str),
    Command(Command<'a>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    Quit(Option<&'a str>),
    Who,
    Help,
    Me(&'a str),
    Msg {
        to: &'a str,
        text: &'a str,
    },
    Nick(&'a str),
    Join(&'a str),
    Rooms,
    /// A known command without the argument it needs; holds the usage text.
    Usage(&'static str),
    /// An unknown command word, such as `/x`.
    Unknown(&'a str),
}

/// The `/help` text: one line per command.
pub const HELP: &[&str] = &[
    "commands:",
    "/quit [reason]      leave the chat (alias /exit)",
    "/exit [reason]      same as /quit",
    "/who                list the users in your room",
    "/help               show this list",
    "/me ACTION          tell your room what you are doing",
    "/msg NAME TEXT      send a private message",
    "/nick NEW           change your name",
    "/join ROOM          move to another room (created on first join)",
    "/rooms              list the rooms and how many are in each",
    "//text              send a message that starts with /",
];

pub fn parse(line: &str) -> Input<'_> {
    let line = line.trim_end();
    if line.trim_start().is_empty() {
        return Input::Blank;
    }
    if line.starts_with("//") {
        return Input::Message(&line[1..]);
    }
    if !line.starts_with('/') {
        return Input::Message(line);
    }
    let (word, rest) = match line.find(char::is_whitespace) {
        Some(at) => (&line[..at], line[at..].trim_start()),
        None => (line, ""),
    };
    let arg = (!rest.is_empty()).then_some(rest);
    let command = match word.to_ascii_lowercase().as_str() {
        "/quit" | "/exit" => Command::Quit(arg),
        "/who" => Command::Who,
        "/help" => Command::Help,
        "/rooms" => Command::Rooms,
        "/me" => arg.map_or(Command::Usage("/me ACTION"), Command::Me),
        "/nick" => arg.map_or(Command::Usage("/nick NEW"), Command::Nick),
        "/join" => arg.map_or(Command::Usage("/join ROOM"), Command::Join),
        "/msg" => match rest.split_once(char::is_whitespace) {
            Some((to, text)) if !text.trim().is_empty() => Command::Msg {
                to,
                text: text.trim_start(),
            },
            _ => Command::Usage("/msg NAME TEXT"),
        },
        _ => Command::Unknown(word),
    };
    Input::Command(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_blanks() {
        assert_eq!(parse("hello  \t"), Input::Message("hello"));
        assert_eq!(parse("   "), Input::Blank);
        assert_eq!(parse(""), Input::Blank);
        assert_eq!(parse("//shrug"), Input::Message("/shrug"));
        assert_eq!(parse("  /who"), Input::Message("  /who"));
    }

    #[test]
    fn commands_with_arguments() {
        assert_eq!(parse("/quit"), Input::Command(Command::Quit(None)));
        assert_eq!(
            parse("/EXIT gone fishing "),
            Input::Command(Command::Quit(Some("gone fishing")))
        );
        assert_eq!(parse("/me waves"), Input::Command(Command::Me("waves")));
        assert_eq!(
            parse("/msg bob  hi there"),
            Input::Command(Command::Msg {
                to: "bob",
                text: "hi there"
            })
        );
        assert_eq!(parse("/nick Ada.L"), Input::Command(Command::Nick("Ada.L")));
        assert_eq!(parse("/join #dev"), Input::Command(Command::Join("#dev")));
        assert_eq!(parse("/who"), Input::Command(Command::Who));
        assert_eq!(parse("/rooms"), Input::Command(Command::Rooms));
        assert_eq!(parse("/help"), Input::Command(Command::Help));
    }

    #[test]
    fn missing_arguments_give_usage() {
        assert_eq!(parse("/me"), Input::Command(Command::Usage("/me ACTION")));
        assert_eq!(
            parse("/msg bob"),
            Input::Command(Command::Usage("/msg NAME TEXT"))
        );
        assert_eq!(
            parse("/msg bob   "),
            Input::Command(Command::Usage("/msg NAME TEXT"))
        );
        assert_eq!(parse("/nick"), Input::Command(Command::Usage("/nick NEW")));
        assert_eq!(parse("/join"), Input::Command(Command::Usage("/join ROOM")));
    }

    #[test]
    fn unknown_command_is_the_word_alone() {
        assert_eq!(
            parse("/dance wildly"),
            Input::Command(Command::Unknown("/dance"))
        );
        assert_eq!(parse("/"), Input::Command(Command::Unknown("/")));
    }

    #[test]
    fn help_names_every_command() {
        let help = HELP.join("\n");
        for command in [
            "/quit", "/exit", "/who", "/help", "/me", "/msg", "/nick", "/join", "/rooms",
        ] {
            assert!(help.contains(command), "{command}");
        }
    }
}
