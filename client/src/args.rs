//! Command line: `chat-client [HOST] [PORT] [--name NAME]` (PROTOCOL.md section 8).

use chat_common::wire::DEFAULT_PORT;
use clap::Parser;

/// A terminal client for chat-server.
///
/// On a terminal, incoming lines appear above the line being typed, with history on the arrow
/// keys and colours. With stdin from a pipe it sends each line, then `/quit` at the end of input,
/// and prints everything the server sends until it closes.
#[derive(Debug, Parser)]
#[command(name = "chat-client", version)]
pub struct Args {
    /// Server host name or address.
    #[arg(default_value = "127.0.0.1")]
    pub host: String,

    /// Server port.
    #[arg(default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// Log in with this name without asking; if the server refuses it, ask (or, with piped
    /// input, use the next input line).
    #[arg(long, value_name = "NAME", value_parser = parse_name)]
    pub name: Option<String>,
}

/// The server is the judge of names; this only keeps a name from smuggling in a line ending.
fn parse_name(raw: &str) -> Result<String, String> {
    if raw.chars().any(char::is_control) {
        return Err("a name cannot hold control characters".into());
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_protocol() {
        let args = Args::try_parse_from(["chat-client"]).unwrap();
        assert_eq!(args.host, "127.0.0.1");
        assert_eq!(args.port, 9009);
        assert_eq!(args.name, None);
    }

    #[test]
    fn host_port_and_name() {
        let args = Args::try_parse_from(["chat-client", "::1", "4000", "--name", "민수"]).unwrap();
        assert_eq!(args.host, "::1");
        assert_eq!(args.port, 4000);
        assert_eq!(args.name.as_deref(), Some("민수"));
    }

    #[test]
    fn a_name_with_a_line_ending_is_refused() {
        assert!(Args::try_parse_from(["chat-client", "--name", "a\nb"]).is_err());
    }

    #[test]
    fn a_bad_port_is_refused() {
        assert!(Args::try_parse_from(["chat-client", "localhost", "99999"]).is_err());
    }
}
