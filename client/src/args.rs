//! Command line: `chat-client [HOST] [PORT] [--name NAME]` (PROTOCOL.md section 8), with
//! `--host/-H` and `--port/-p` as chat-server and chat-bench spell them, and `--tls [--ca FILE]`
//! (PROTOCOL.md section 10).

use std::path::PathBuf;

use chat_common::wire::DEFAULT_PORT;
use clap::Parser;

const DEFAULT_HOST: &str = "127.0.0.1";

/// A terminal client for chat-server.
///
/// On a terminal, incoming lines appear above the line being typed, with history on the arrow
/// keys, Tab completion of names and commands, and colours. With stdin from a pipe it sends
/// each line, then `/quit` at the end of input, and prints everything the server sends until
/// it closes.
#[derive(Debug, Parser)]
#[command(name = "chat-client", version)]
pub struct Args {
    /// Server host name or address [default: 127.0.0.1].
    #[arg(value_name = "HOST")]
    host_arg: Option<String>,

    /// Server port [default: 9009].
    #[arg(value_name = "PORT")]
    port_arg: Option<u16>,

    /// Server host name or address (instead of the HOST argument).
    #[arg(
        short = 'H',
        long = "host",
        value_name = "HOST",
        conflicts_with = "host_arg"
    )]
    host_flag: Option<String>,

    /// Server port (instead of the PORT argument).
    #[arg(
        short = 'p',
        long = "port",
        value_name = "PORT",
        conflicts_with = "port_arg"
    )]
    port_flag: Option<u16>,

    /// Log in with this name without asking; if the server refuses it, ask (or, with piped
    /// input, use the next input line).
    #[arg(long, value_name = "NAME", value_parser = parse_name)]
    pub name: Option<String>,

    /// Do not ring the terminal bell when a message mentions your name.
    #[arg(long)]
    pub no_bell: bool,

    /// Keep input history for this run only (by default it is kept in
    /// `chat-client/history` under your data directory, at most 1000 lines).
    #[arg(long)]
    pub no_history_file: bool,

    /// Connect over TLS, checking the server's certificate against the system's trusted roots
    /// (or --ca). chat-server's TLS port is 9443 by default: `chat-client --tls HOST 9443`.
    #[arg(long)]
    pub tls: bool,

    /// With --tls: trust only the CA certificate(s) in this PEM file.
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub ca: Option<PathBuf>,
}

impl Args {
    pub fn host(&self) -> &str {
        self.host_flag
            .as_deref()
            .or(self.host_arg.as_deref())
            .unwrap_or(DEFAULT_HOST)
    }

    pub fn port(&self) -> u16 {
        self.port_flag.or(self.port_arg).unwrap_or(DEFAULT_PORT)
    }
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

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("chat-client").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_the_protocol() {
        let args = parse(&[]).unwrap();
        assert_eq!((args.host(), args.port()), ("127.0.0.1", 9009));
        assert_eq!(args.name, None);
        assert!(!args.no_bell && !args.no_history_file);
        assert!(!args.tls && args.ca.is_none());
    }

    #[test]
    fn tls_keeps_the_default_port() {
        let args = parse(&["--tls", "chat.example"]).unwrap();
        assert!(args.tls);
        assert_eq!((args.host(), args.port()), ("chat.example", 9009));
        let args = parse(&["--tls", "--ca", "ca.pem", "localhost", "9443"]).unwrap();
        assert_eq!(args.ca, Some(PathBuf::from("ca.pem")));
        assert_eq!(args.port(), 9443);
    }

    #[test]
    fn ca_needs_tls() {
        assert!(parse(&["--ca", "ca.pem"]).is_err());
    }

    #[test]
    fn host_port_and_name() {
        let args = parse(&["::1", "4000", "--name", "민수"]).unwrap();
        assert_eq!((args.host(), args.port()), ("::1", 4000));
        assert_eq!(args.name.as_deref(), Some("민수"));
    }

    #[test]
    fn host_and_port_flags() {
        let args = parse(&["--port", "9010"]).unwrap();
        assert_eq!((args.host(), args.port()), ("127.0.0.1", 9010));
        let args = parse(&["-H", "chat.example", "-p", "4000"]).unwrap();
        assert_eq!((args.host(), args.port()), ("chat.example", 4000));
        let args = parse(&["--host", "::1"]).unwrap();
        assert_eq!((args.host(), args.port()), ("::1", 9009));
        // A positional host with the port flag.
        let args = parse(&["chat.example", "-p", "4000"]).unwrap();
        assert_eq!((args.host(), args.port()), ("chat.example", 4000));
    }

    #[test]
    fn the_same_thing_twice_is_refused() {
        assert!(parse(&["a", "--host", "b"]).is_err());
        assert!(parse(&["a", "4000", "--port", "4001"]).is_err());
    }

    #[test]
    fn a_name_with_a_line_ending_is_refused() {
        assert!(parse(&["--name", "a\nb"]).is_err());
    }

    #[test]
    fn a_bad_port_is_refused() {
        assert!(parse(&["localhost", "99999"]).is_err());
        assert!(parse(&["--port", "x"]).is_err());
    }
}
