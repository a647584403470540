//! `chat-bench`: the load tool that ships with chat-server.
//!
//! It speaks PROTOCOL.md to any chat-server, over TCP or (`--ws`) WebSocket, either of them
//! over TLS with `--tls`, and measures it from the outside:
//! `fanout` (throughput, loss, order and latency of a burst of messages to a full room),
//! `rtt` (broadcast round trips, and with `--step` how many clients the server holds under a
//! latency limit) and `idle` (the server's memory and threads per connection).
//!
//! A load tool must not be the bottleneck it measures, so all clients live on one event loop
//! (a single-threaded tokio runtime unless `--threads`), and every result carries the CPU use
//! of chat-bench beside the server's: a reader can tell which side was saturated.

mod args;
mod client;
mod fanout;
mod idle;
mod login;
mod marker;
mod net;
mod order;
mod progress;
mod report;
mod rtt;
mod servers;
mod shared;
mod swarm;
mod sys;
mod table;
mod ws;

use std::time::Duration;

use anyhow::Result;
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use crate::args::{Cli, Cmd};
use crate::report::Report;

fn main() {
    let cli = Cli::parse();
    let common = cli.cmd.common().clone();
    let lim = sys::raise_nofile();
    watchdog(common.timeout_s);
    match run(&cli.cmd, common.threads, lim) {
        Ok(report) => {
            if common.json {
                println!("{}", report.json());
            } else {
                print!("{}", report.table());
            }
            std::process::exit(0);
        }
        Err(e) => {
            if let Some(bad) = e.downcast_ref::<args::BadArgs>() {
                // Exits with status 2, as for any other bad command line.
                Cli::command().error(ErrorKind::ValueValidation, bad).exit();
            }
            // One line: the context chain joined, no backtrace.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("chat-bench: {msg}");
            std::process::exit(1);
        }
    }
}

fn run(cmd: &Cmd, threads: usize, lim: sys::Nofile) -> Result<Report> {
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    rt.block_on(async {
        match cmd {
            Cmd::Fanout(a) => fanout::run(a, lim).await,
            Cmd::Rtt(a) => rtt::run(a, lim).await,
            Cmd::Idle(a) => idle::run(a, lim).await,
        }
    })
}

/// Ends the process when the run outlives `--timeout-s`, whatever the runtime is doing.
fn watchdog(secs: f64) {
    let limit = Duration::from_secs_f64(secs.max(1.0));
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!(
            "chat-bench: no result after --timeout-s {}: giving up (is the server stuck, or the run too big?)",
            limit.as_secs_f64()
        );
        std::process::exit(1);
    });
}
