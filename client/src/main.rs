//! `chat-client`: the terminal client for chat-server.
//!
//! Two threads: the socket reader prints what the server sends the moment it arrives, and the
//! main thread reads the keyboard (rustyline, [`interactive`]) or a pipe ([`piped`]). Which one
//! depends on whether stdin and stdout are both terminals.

mod args;
mod connection;
mod decode;
mod interactive;
mod piped;
mod session;
mod style;

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
        interactive::Terminal::open().ok()
    } else {
        None
    };
    let stream = connection::connect(&args.host, args.port)?;
    match terminal {
        Some(terminal) => interactive::run(terminal, stream, args.name, style),
        None => piped::run(stream, args.name, style),
    }
}
