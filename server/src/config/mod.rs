//! The settings (PROTOCOL.md section 8): the command line, a TOML file (`--config`), and
//! `CHAT_*` environment variables, in that order of precedence, over the defaults.
//!
//! Every option is defined once, below, for clap; the file and the environment reuse those
//! definitions (see [`file`]), so a key, a variable and an option cannot drift apart.

mod check;
mod file;

pub use check::check;
pub use file::{load, reload, LoadError, Settings};

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ipnet::IpNet;

/// A multi-threaded line-chat server for nc, telnet and chat-client.
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(name = "chat-server", version, about)]
pub struct Config {
    /// TOML file of settings: each key is an option's long name (`max-clients = 20000`); the
    /// command line wins over it, it wins over CHAT_* environment variables.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Checks the settings (files, certificate and key, ports, data dir, Redis), prints them
    /// with secrets masked, and exits 0 if all is well, 1 if not.
    #[arg(long)]
    pub check_config: bool,

    /// How log lines on standard error look: `text` for people, `json` (one object a line) for
    /// log shippers.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub host: String,

    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = chat_common::wire::DEFAULT_PORT)]
    pub port: u16,

    /// Connections held at once, logged in or not [default: 10000, lowered to fit the open-file limit]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_clients: Option<u32>,

    /// Longest accepted line, in bytes.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=16_777_216))]
    pub max_line: u32,

    /// Seconds a new connection has to pick a valid name.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub login_timeout: u64,

    /// Unsent output per client, in bytes, before it is dropped as too slow.
    #[arg(long, default_value_t = 1_048_576, value_parser = clap::value_parser!(u64).range(1024..))]
    pub outbuf_limit: u64,

    /// Lines a user may send at once.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub flood_burst: u32,

    /// Lines per second after the burst; 0 turns the flood limit off.
    #[arg(long, default_value_t = 10)]
    pub flood_rate: u32,

    /// Milliseconds before an unterminated partial line counts as a line; 0 never.
    #[arg(long, default_value_t = 200)]
    pub partial_flush_ms: u64,

    /// Idle seconds before TCP keepalive probes start, and before a silent WebSocket is pinged.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=32767))]
    pub keepalive_secs: u64,

    /// Port of the web page and WebSocket [default: the chat port + 1; 0 with --port 0]
    #[arg(long, help_heading = "Web")]
    pub web_port: Option<u16>,

    /// Turns the web port off.
    #[arg(long, help_heading = "Web", conflicts_with = "web_port")]
    pub no_web: bool,

    /// Another origin whose pages may open WebSocket connections (repeatable; * allows any).
    #[arg(long, value_name = "ORIGIN", help_heading = "Web")]
    pub web_origin: Vec<String>,

    /// Turns GET /metrics off.
    #[arg(long, help_heading = "Web")]
    pub no_metrics: bool,

    /// Certificate chain (PEM) for TLS on --tls-port and HTTPS/WSS on the web port.
    #[arg(long, value_name = "FILE", requires = "tls_key", help_heading = "TLS")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert", help_heading = "TLS")]
    pub tls_key: Option<PathBuf>,

    /// Port of the line protocol over TLS [default: 9443; 0 with --port 0]
    #[arg(long, help_heading = "TLS")]
    pub tls_port: Option<u16>,

    /// Messages each room keeps for newcomers and /history; 0 keeps none.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(0..=100_000), help_heading = "History and accounts")]
    pub history: u32,

    /// Messages shown on entering a room.
    #[arg(long, default_value_t = 20, help_heading = "History and accounts")]
    pub history_on_join: u32,

    /// Directory of the SQLite database that keeps history, topics, accounts, bans and mutes
    /// across restarts [default: memory only]
    #[arg(long, value_name = "DIR", help_heading = "History and accounts")]
    pub data_dir: Option<PathBuf>,

    /// Connections one address may hold at once, logged in or not; 0 turns the limit off.
    #[arg(
        long,
        default_value_t = 10,
        help_heading = "Abuse limits and operators"
    )]
    pub max_per_ip: u32,

    /// Addresses exempt from --max-per-ip, whose --web-real-ip-header is believed (repeatable;
    /// giving it replaces the default; "" trusts nobody) [default: 127.0.0.0/8 and ::1]
    #[arg(long, value_name = "CIDR", value_parser = parse_net, help_heading = "Abuse limits and operators")]
    pub trusted: Vec<Option<IpNet>>,

    /// Connections to the line port from --trusted addresses (a load balancer such as HAProxy
    /// with send-proxy) start with a PROXY protocol v1 header; the user's address in it counts
    /// for limits, bans and logs.
    #[arg(long, help_heading = "Abuse limits and operators")]
    pub proxy_protocol: bool,

    /// Header a trusted reverse proxy puts the user's address in (e.g. X-Forwarded-For).
    #[arg(long, value_name = "NAME", help_heading = "Web")]
    pub web_real_ip_header: Option<String>,

    /// File holding the operator password (one line: an argon2 hash, or the password itself).
    #[arg(long, value_name = "FILE", help_heading = "Abuse limits and operators")]
    pub oper_password_file: Option<PathBuf>,

    /// Redis that makes every chat-server given the same one a single chat (redis://HOST:PORT[/DB]);
    /// it then keeps history, topics, accounts, bans and mutes instead of --data-dir.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "data_dir",
        help_heading = "Cluster"
    )]
    pub cluster: Option<String>,

    /// Prefix of every Redis key and channel the cluster uses: several clusters can share a Redis.
    #[arg(
        long,
        default_value = "chat",
        value_name = "PREFIX",
        help_heading = "Cluster"
    )]
    pub cluster_prefix: String,

    /// Threads that write to client sockets [default: half the CPUs, at least 1, at most 4]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub writer_threads: Option<u32>,
}

pub const DEFAULT_MAX_CLIENTS: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A CIDR block, or a single address (taken as /32 or /128); empty for none.
fn parse_net(text: &str) -> Result<Option<IpNet>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map(Some)
        .map_err(|_| format!("not an address or CIDR block: {text}"))
}

impl Config {
    pub fn login_timeout(&self) -> Duration {
        Duration::from_secs(self.login_timeout)
    }

    /// `--trusted`, or its default: loopback.
    pub fn trusted_nets(&self) -> Vec<IpNet> {
        if self.trusted.is_empty() {
            ["127.0.0.0/8", "::1/128"]
                .iter()
                .filter_map(|net| net.parse().ok())
                .collect()
        } else {
            self.trusted.iter().flatten().copied().collect()
        }
    }

    pub fn keepalive(&self) -> Duration {
        Duration::from_secs(self.keepalive_secs)
    }

    /// The web port to listen on, or None with `--no-web`.
    pub fn web_port(&self) -> anyhow::Result<Option<u16>> {
        if self.no_web {
            return Ok(None);
        }
        match (self.web_port, self.port) {
            (Some(port), _) => Ok(Some(port)),
            (None, 0) => Ok(Some(0)),
            (None, port) => port.checked_add(1).map(Some).ok_or_else(|| {
                anyhow::anyhow!(
                    "--port {port} leaves no default web port: give --web-port or --no-web"
                )
            }),
        }
    }

    /// The TLS port to listen on, or None without a certificate.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_cert.as_ref()?;
        Some(match (self.tls_port, self.port) {
            (Some(port), _) => port,
            (None, 0) => 0,
            (None, _) => 9443,
        })
    }

    pub fn partial_flush(&self) -> Option<Duration> {
        (self.partial_flush_ms > 0).then(|| Duration::from_millis(self.partial_flush_ms))
    }

    pub fn writer_threads(&self) -> usize {
        match self.writer_threads {
            Some(n) => n as usize,
            // Fewer writers batch more lines per send and leave cores to the readers: on 2 cores,
            // one writer gave 1.5x the fan-out rate and half the round trip of two.
            None => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).clamp(1, 4)),
        }
    }
}
