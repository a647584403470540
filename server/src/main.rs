//! `chat-server`: a multi-threaded line-chat server, over raw TCP and from the browser. See PROTOCOL.md for the wire
//! contract and the README for how to run it.

mod access;
mod accounts;
mod cluster;
mod commands;
mod config;
mod connection;
mod flood;
mod flusher;
mod housekeeping;
mod limits;
mod listener;
mod peer;
mod registry;
mod reload;
mod server;
mod shared;
mod stack;
mod store;
mod transport;
mod web;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let settings = match config::load(&args) {
        Ok(settings) => settings,
        Err(config::LoadError::Usage(e)) => e.exit(),
        Err(config::LoadError::File(e)) => {
            eprintln!("chat-server: {e}");
            std::process::exit(1);
        }
    };
    if settings.config.check_config {
        std::process::exit(if config::check(&settings) { 0 } else { 1 });
    }
    let config = settings.config;
    init_logs(config.log_format);
    // Past a file-size limit (`ulimit -f`) a write then fails with EFBIG, which the database
    // writer logs and survives, instead of the signal killing the whole server.
    // SAFETY: setting a signal's disposition to "ignore" has no preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    if let Err(e) = server::run(config, args) {
        eprintln!("chat-server: {e:#}");
        std::process::exit(1);
    }
}

fn init_logs(format: config::LogFormat) {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // A log line that cannot be written (stderr closed) is dropped: by default the
        // subscriber reports it with `eprintln!`, which panics on a closed stderr and would
        // take the logging thread (a connection, or the signal handler) down with it.
        .log_internal_errors(false);
    match format {
        config::LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        // One JSON object a line, the event's fields flattened beside `message`.
        config::LogFormat::Json => logs.json().flatten_event(true).with_ansi(false).init(),
    }
}
