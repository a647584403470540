//! `chat-client`: the terminal client for chat-server.
//!
//! Two threads: the socket reader prints what the server sends the moment it arrives, and the
//! main thread reads the keyboard (rustyline, [`interactive`], with Tab completion
//! from [`roster`] and mentions from [`mention`]) or a pipe ([`piped`]). Which one
//! depends on whether stdin and stdout are both terminals. Both threads share one
//! [`transport::Transport`]: plain TCP, or one TLS session with `--tls` ([`tls`]).

mod args;
mod complete;
mod connection;
mod decode;
mod editor;
mod history;
mod interactive;
mod mention;
mod piped;
mod roster;
mod session;
mod style;
mod tls;
mod transport;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = args::Args::parse();
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("chat-client: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(args: args::Args) -> anyhow::Result<u8> {
    let style = style::Style::detect();
    let terminal = if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        // A terminal rustyline cannot drive (TERM=dumb) gets the plain line mode.
        editor::Terminal::open().ok()
    } else {
        None
    };
    // A bad --ca file is reported before anything goes on the network.
    let tls = match args.tls {
        true => Some(tls::config(args.ca.as_deref())?),
        false => None,
    };
    let transport = connection::connect(args.host(), args.port(), tls)?;
    match terminal {
        Some(terminal) => {
            let options = interactive::Options {
                name: args.name,
                bell: !args.no_bell,
                history_file: !args.no_history_file,
            };
            interactive::run(terminal, transport, options, style)
        }
        None => piped::run(transport, args.name, style),
    }
}
