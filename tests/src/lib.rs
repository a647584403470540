//! End-to-end test harness for `chat-server`.
//!
//! Every test starts its own server on `--port 0` ([`Server::start`]) and talks to it over raw
//! TCP ([`Client`]), holding it to `shared/PROTOCOL.md` and the exact wording of
//! `notes/server-lines.md`.
//!
//! Rules the harness keeps so the suite can run in parallel on a busy machine:
//! - every read has a deadline ([`T`] by default) and a test fails instead of hanging;
//! - nothing sleeps and hopes: tests wait for a condition (a line, a close, an exit);
//! - a failure message shows what was received (recent lines and any partial bytes).

pub mod bench;
mod binary;
mod client;
pub mod client_harness;
pub mod redis;
mod server;
pub mod slow;
mod temp;
mod text;
pub mod tls;
pub mod web;

use std::time::Duration;

pub use binary::{binary, server_binary};
pub use client::{is_word_prefix, stream_from, Client, End};
pub use redis::RedisServer;
pub use server::Server;
pub use temp::TempFile;
pub use text::{parse_rooms, parse_who, show, Who};
pub use web::{http_raw, http_request, HttpResponse, WsClient, WsEnd};

/// The default deadline for anything the server should do "at once". Generous on purpose:
/// tests run in parallel on a loaded 2-core machine.
pub const T: Duration = Duration::from_secs(15);

/// The login prompt, sent without a line ending.
pub const PROMPT: &[u8] = b"Username: ";

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`, ...).
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {path}:\n{status}"));
    line[field.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("bad {field} line {line:?} in {path}: {e}"))
}

/// Looks a program up in `PATH`.
pub fn find_in_path(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// One row of `/proc/net/tcp` (IPv4 sockets of this network namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRow {
    /// Bytes written but not yet acknowledged by the peer.
    pub tx_queue: u64,
    /// Bytes received but not yet read by the owner.
    pub rx_queue: u64,
    /// Pending timer: 0 none, 1 retransmit, 2 keepalive (or other sk timer), 4 zero window probe.
    pub timer: u8,
    /// Clock ticks (USER_HZ, 100 a second) until that timer fires.
    pub timer_ticks: u64,
}

/// The row of the TCP socket whose local port is `local` and remote port is `remote`.
pub fn tcp_row(local: u16, remote: u16) -> Option<TcpRow> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("reading /proc/net/tcp");
    let port = |addr: &str| {
        addr.rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
    };
    let pair = |field: &str| {
        let (a, b) = field.split_once(':')?;
        Some((
            u64::from_str_radix(a, 16).ok()?,
            u64::from_str_radix(b, 16).ok()?,
        ))
    };
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 5 && port(f[1]) == Some(local) && port(f[2]) == Some(remote) {
            let (tx_queue, rx_queue) = pair(f[4])?;
            let (timer, timer_ticks) = pair(f[5])?;
            Some(TcpRow {
                tx_queue,
                rx_queue,
                timer: u8::try_from(timer).ok()?,
                timer_ticks,
            })
        } else {
            None
        }
    })
}
