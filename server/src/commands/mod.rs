//! What a logged-in user's line means: a message, a command, or nothing; and carrying commands
//! out, one file per group ([`chat`] for everyone's, [`oper`] for operators').
//!
//! Parsing works on the raw line so names can be checked as typed (a name with a control
//! character is refused, not cleaned); free text is sanitised when it is relayed.

pub mod account;
pub mod chat;
pub mod oper;

/// One line from a logged-in user.
#[derive(Debug, Clone, PartialEq)]
pub enum Input<'a> {
    /// Blank (after trimming): ignored.
    Blank,
    /// Text for the room; `//text` arrives here as `/text`.
    Message(&'a str),
    Command(Command<'a>),
}

#[derive(Debug, Clone, PartialEq)]
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
    Oper(&'a str),
    Register(&'a str),
    Password {
        old: &'a str,
        new: &'a str,
    },
    Unregister(&'a str),
    /// `/history [N]`.
    History(Option<usize>),
    /// `/topic [TEXT]`.
    Topic(Option<&'a str>),
    Kick {
        name: &'a str,
        reason: Option<&'a str>,
    },
    Ban {
        target: &'a str,
        minutes: Option<f64>,
    },
    Unban(&'a str),
    Bans,
    Mute {
        name: &'a str,
        minutes: Option<f64>,
    },
    Unmute(&'a str),
    /// A known command without the argument it needs; holds the usage text.
    Usage(&'static str),
    /// An unknown command word, such as `/x`.
    Unknown(&'a str),
}

/// The `/help` text: one line per command.
pub const HELP: &[&str] = &[
    "commands:",
    "/quit [reason]        leave the chat (alias /exit)",
    "/exit [reason]        same as /quit",
    "/who                  list the users in your room",
    "/help                 show this list",
    "/me ACTION            tell your room what you are doing",
    "/msg NAME TEXT        send a private message",
    "/nick NEW             change your name",
    "/join ROOM            move to another room (created on first join)",
    "/rooms                list the rooms and how many are in each",
    "//text                send a message that starts with /",
    "/topic [TEXT]         show or set your room's topic",
    "/history [N]          the last N messages of your room",
    "/register PASSWORD    keep your name: nobody else can use it without the password",
    "/password OLD NEW     change your password",
    "/unregister PASSWORD  give your name back",
    "/oper PASSWORD        become an operator",
];

/// More `/help` for operators.
pub const OPER_HELP: &[&str] = &[
    "operator commands:",
    "/kick NAME [reason]      disconnect a user",
    "/ban NAME|ADDR [minutes] disconnect and keep out an address (minutes: until then)",
    "/unban NAME|ADDR         lift a ban",
    "/bans                    list the bans in force",
    "/mute NAME [minutes]     nobody hears the user's messages",
    "/unmute NAME             lift a mute",
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
        "/oper" => arg.map_or(Command::Usage("/oper PASSWORD"), Command::Oper),
        "/register" => arg.map_or(Command::Usage("/register PASSWORD"), Command::Register),
        "/unregister" => arg.map_or(Command::Usage("/unregister PASSWORD"), Command::Unregister),
        "/password" => match rest.split_once(char::is_whitespace) {
            Some((old, new)) if !new.trim().is_empty() => Command::Password {
                old,
                new: new.trim(),
            },
            _ => Command::Usage("/password OLD NEW"),
        },
        "/history" => match arg.map(str::parse::<usize>) {
            None => Command::History(None),
            Some(Ok(n)) if n > 0 => Command::History(Some(n)),
            Some(_) => Command::Usage("/history [N]"),
        },
        "/topic" => Command::Topic(arg),
        "/kick" => match split_word(rest) {
            Some((name, reason)) => Command::Kick { name, reason },
            None => Command::Usage("/kick NAME [reason]"),
        },
        "/ban" => match split_word(rest).map(|(t, m)| (t, minutes(m))) {
            Some((target, Ok(minutes))) => Command::Ban { target, minutes },
            _ => Command::Usage("/ban NAME|ADDR [minutes]"),
        },
        "/unban" => arg.map_or(Command::Usage("/unban NAME|ADDR"), Command::Unban),
        "/bans" => Command::Bans,
        "/mute" => match split_word(rest).map(|(n, m)| (n, minutes(m))) {
            Some((name, Ok(minutes))) => Command::Mute { name, minutes },
            _ => Command::Usage("/mute NAME [minutes]"),
        },
        "/unmute" => arg.map_or(Command::Usage("/unmute NAME"), Command::Unmute),
        _ => Command::Unknown(word),
    };
    Input::Command(command)
}

/// The first word and what follows it (none if empty).
fn split_word(text: &str) -> Option<(&str, Option<&str>)> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(match text.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, Some(rest.trim()).filter(|r| !r.is_empty())),
        None => (text, None),
    })
}

/// The longest timed ban or mute: a year. Longer is "until lifted".
const MAX_MINUTES: f64 = 366.0 * 24.0 * 60.0;

/// An optional number of minutes, more than 0 (`1.5` is 90 seconds).
fn minutes(text: Option<&str>) -> Result<Option<f64>, ()> {
    match text {
        None => Ok(None),
        Some(text) => match text.parse::<f64>() {
            Ok(m) if m > 0.0 && m <= MAX_MINUTES => Ok(Some(m)),
            _ => Err(()),
        },
    }
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
    fn operator_commands() {
        assert_eq!(
            parse("/oper s3cret"),
            Input::Command(Command::Oper("s3cret"))
        );
        assert_eq!(
            parse("/kick bob  spamming links"),
            Input::Command(Command::Kick {
                name: "bob",
                reason: Some("spamming links")
            })
        );
        assert_eq!(
            parse("/kick bob"),
            Input::Command(Command::Kick {
                name: "bob",
                reason: None
            })
        );
        assert_eq!(
            parse("/ban 10.0.0.1 30"),
            Input::Command(Command::Ban {
                target: "10.0.0.1",
                minutes: Some(30.0)
            })
        );
        assert_eq!(
            parse("/ban bob"),
            Input::Command(Command::Ban {
                target: "bob",
                minutes: None
            })
        );
        for bad in [
            "/ban bob soon",
            "/ban bob 0",
            "/ban",
            "/mute bob -1",
            "/mute bob NaN",
            "/ban x 1e12",
        ] {
            assert!(
                matches!(parse(bad), Input::Command(Command::Usage(_))),
                "{bad}"
            );
        }
        assert_eq!(
            parse("/mute bob 5"),
            Input::Command(Command::Mute {
                name: "bob",
                minutes: Some(5.0)
            })
        );
        assert_eq!(parse("/unmute bob"), Input::Command(Command::Unmute("bob")));
        assert_eq!(parse("/unban bob"), Input::Command(Command::Unban("bob")));
        assert_eq!(parse("/bans"), Input::Command(Command::Bans));
        assert_eq!(
            parse("/kick"),
            Input::Command(Command::Usage("/kick NAME [reason]"))
        );
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
