//! The shapes of the lines the server sends (PROTOCOL.md section 1), built by the server and
//! recognised by the client, so both ends agree on one definition.

/// The login prompt: the only thing the server sends without a line ending.
pub const PROMPT: &str = "Username: ";

/// The password prompt for a registered name (PROTOCOL.md section 12), sent like [`PROMPT`].
pub const PASSWORD_PROMPT: &str = "Password: ";

/// Every server line ends with CRLF.
pub const LINE_END: &str = "\r\n";

/// Default TCP port.
pub const DEFAULT_PORT: u16 = 9009;

/// `* text`: a notice from the server.
pub fn notice(text: &str) -> String {
    format!("* {text}")
}

/// `! text`: an error for the client that caused it.
pub fn error(text: &str) -> String {
    format!("! {text}")
}

/// `[from] text`: a room message.
pub fn message(from: &str, text: &str) -> String {
    format!("[{from}] {text}")
}

/// `[from -> you] text`: a private message as its recipient sees it.
pub fn private_received(from: &str, text: &str) -> String {
    format!("[{from} -> you] {text}")
}

/// `[you -> to] text`: a private message as its sender sees it.
pub fn private_sent(to: &str, text: &str) -> String {
    format!("[you -> {to}] {text}")
}

/// A server line, recognised by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerLine<'a> {
    Notice(&'a str),
    Error(&'a str),
    Message {
        from: &'a str,
        text: &'a str,
    },
    PrivateReceived {
        from: &'a str,
        text: &'a str,
    },
    PrivateSent {
        to: &'a str,
        text: &'a str,
    },
    /// Anything else (another server, or a line this version does not know).
    Other(&'a str),
}

impl<'a> ServerLine<'a> {
    /// Classifies one line, given without its line ending.
    pub fn parse(line: &'a str) -> Self {
        if let Some(text) = line.strip_prefix("* ") {
            return Self::Notice(text);
        }
        if let Some(text) = line.strip_prefix("! ") {
            return Self::Error(text);
        }
        if let Some(rest) = line.strip_prefix('[') {
            if let Some((head, text)) = rest.split_once("] ") {
                if let Some(from) = head.strip_suffix(" -> you") {
                    return Self::PrivateReceived { from, text };
                }
                if let Some(to) = head.strip_prefix("you -> ") {
                    return Self::PrivateSent { to, text };
                }
                return Self::Message { from: head, text };
            }
        }
        Self::Other(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_lines_parse_back() {
        assert_eq!(ServerLine::parse(&notice("hi")), ServerLine::Notice("hi"));
        assert_eq!(ServerLine::parse(&error("no")), ServerLine::Error("no"));
        assert_eq!(
            ServerLine::parse(&message("alice", "a] b")),
            ServerLine::Message {
                from: "alice",
                text: "a] b"
            }
        );
        assert_eq!(
            ServerLine::parse(&private_received("bob", "psst")),
            ServerLine::PrivateReceived {
                from: "bob",
                text: "psst"
            }
        );
        assert_eq!(
            ServerLine::parse(&private_sent("bob", "psst")),
            ServerLine::PrivateSent {
                to: "bob",
                text: "psst"
            }
        );
        assert_eq!(ServerLine::parse("[oops"), ServerLine::Other("[oops"));
    }
}
