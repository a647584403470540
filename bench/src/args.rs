//! The command line: one subcommand per scenario, plus the options they all share.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chat_common::MAX_NAME_CHARS;
use clap::{Args, Parser, Subcommand};

use crate::marker::{MAX_PAYLOAD, MAX_SENDER};
use crate::servers::Target;

#[derive(Parser, Debug)]
#[command(
    name = "chat-bench",
    version,
    about = "Load tool for chat-server: fan-out throughput and latency, broadcast round trips, \
             idle memory per connection",
    after_help = "Start the server with `--flood-rate 0` (its flood limit would refuse the \
                  messages) and under `ulimit -n` large enough for the clients."
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The order check, in `fanout --help`.
const FANOUT_AFTER_HELP: &str = "\
One order: beyond each sender's own order (`out of order`), the receivers that do not send \
(clients K to N-1) are compared for one order of all the messages. Each folds (sender, seq) in \
arrival order into a 64-bit digest; the report counts the distinct digests among those that \
got every message exactly once: `orders seen` in the table, `orders` in --json (with \
`orders_compared`, how many receivers were compared). 1 is one order for everybody; n/a \
(null) when no receiver could be compared (-k equals -n, or all of the others lost messages). \
With --also the receivers on every server are compared with each other.";

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// N clients log in, K of them send M messages each; everyone counts what arrives
    #[command(after_help = FANOUT_AFTER_HELP)]
    Fanout(FanoutArgs),
    /// K broadcasters time how long one message takes to reach every client; --step grows N
    Rtt(RttArgs),
    /// N clients log in and stay idle; server memory and threads per connection
    Idle(IdleArgs),
}

impl Cmd {
    pub fn common(&self) -> &Common {
        match self {
            Cmd::Fanout(a) => &a.common,
            Cmd::Rtt(a) => &a.common,
            Cmd::Idle(a) => &a.common,
        }
    }
}

/// Options every scenario takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Server host name or address
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Server port (with --ws: the web port, chat-server's `web on` line)
    #[arg(short, long, default_value_t = chat_common::wire::DEFAULT_PORT)]
    pub port: u16,
    /// Another server to spread the clients over, such as a cluster's second server
    /// (repeatable): client i (sender or not) connects to address i % (1 + the number of
    /// --also), the first being --host/-p. Same port kind as -p; with --tls the certificate is
    /// checked for this HOST; IPv6 as [::1]:9009. Messages that do not cross between the
    /// servers count as lost
    #[arg(long, value_name = "ADDR", value_parser = crate::servers::parse_target)]
    pub also: Vec<Target>,
    /// Speak WebSocket (ws://HOST:PORT/ws, one text message per line) instead of plain lines
    #[arg(long)]
    pub ws: bool,
    /// Speak TLS: -p is then the TLS port (`tls on` line); with --ws, WSS to the web port of a
    /// server with TLS on. The certificate is checked for --host (for --also, its HOST)
    #[arg(long)]
    pub tls: bool,
    /// With --tls: trust the CA certificates in this PEM file instead of the system's roots
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub ca: Option<std::path::PathBuf>,
    /// Number of clients (for `rtt --step`: the first step)
    #[arg(short = 'n', long = "clients", default_value_t = 100)]
    pub clients: usize,
    /// Logins in flight at once
    #[arg(short = 'c', long, default_value_t = 64)]
    pub concurrency: usize,
    /// Client names are PREFIX + index (b0, b1, ...); change it if those names are taken
    #[arg(long, default_value = "b")]
    pub prefix: String,
    /// Bytes per message payload: the 39-byte marker padded to this size
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// PID of the server on this machine: its CPU, memory and threads are read from /proc
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Print one JSON object on stdout instead of the table
    #[arg(long)]
    pub json: bool,
    /// Hard limit for the whole run in seconds; past it chat-bench exits with an error
    #[arg(long, default_value_t = 300.0)]
    pub timeout_s: f64,
    /// Seconds one client may take to connect and log in
    #[arg(long, default_value_t = 30.0)]
    pub login_timeout_s: f64,
    /// Runtime threads (1 = a single-threaded event loop)
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

impl Common {
    /// The servers the clients are spread over: --host/-p, then every --also.
    pub fn targets(&self) -> Vec<Target> {
        let main = Target {
            host: self.host.clone(),
            port: self.port,
        };
        std::iter::once(main)
            .chain(self.also.iter().cloned())
            .collect()
    }

    /// Resolves every server address, in the order of [`Common::targets`].
    pub fn addrs(&self) -> Result<Vec<SocketAddr>> {
        self.targets()
            .iter()
            .enumerate()
            .map(|(i, t)| match i {
                0 => t.resolve(),
                _ => t.resolve().with_context(|| format!("--also {}", t.shown())),
            })
            .collect()
    }

    pub fn transport(&self) -> crate::net::Transport {
        crate::net::Transport::new(self.ws, self.tls)
    }

    pub fn login_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.login_timeout_s.max(0.1))
    }

    /// Checks what can be checked before connecting; `max_n` is the most clients the run
    /// may reach (names must stay valid up to it). A failure is a [`BadArgs`].
    pub fn validate(&self, min_n: usize, max_n: usize) -> Result<()> {
        self.check_values(min_n, max_n)
            .map_err(|e| BadArgs(format!("{e:#}")).into())
    }

    fn check_values(&self, min_n: usize, max_n: usize) -> Result<()> {
        if self.clients < min_n {
            let clients = if min_n == 1 { "client" } else { "clients" };
            bail!("this scenario needs at least {min_n} {clients} (-n)");
        }
        if self.payload > MAX_PAYLOAD {
            bail!(
                "--payload {} is over the {MAX_PAYLOAD}-byte maximum",
                self.payload
            );
        }
        if self.payload < crate::marker::MARKER_LEN {
            bail!(
                "--payload {} is under the {}-byte marker every message carries",
                self.payload,
                crate::marker::MARKER_LEN
            );
        }
        if max_n > MAX_SENDER as usize + 1 {
            bail!(
                "at most {} clients: the marker holds a 5-digit hex sender index",
                MAX_SENDER as usize + 1
            );
        }
        // Send times are 48-bit ns counts (78 hours); no run may come near that.
        if !(self.timeout_s > 0.0 && self.timeout_s <= 72.0 * 3600.0) {
            bail!("--timeout-s must be between 0 and 259200 (72 hours)");
        }
        if self.concurrency == 0 || self.threads == 0 {
            bail!("--concurrency and --threads must be at least 1");
        }
        check_prefix(&self.prefix, max_n)
    }
}

/// A command line that parses but cannot run (`-n 0`, a payload too short...): reported like
/// clap's own errors, with the usage and exit status 2.
#[derive(Debug)]
pub struct BadArgs(pub String);

impl std::fmt::Display for BadArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadArgs {}

/// Names are PREFIX + index and must be valid chat names (PROTOCOL.md section 2).
pub fn check_prefix(prefix: &str, max_n: usize) -> Result<()> {
    if let Some(c) = prefix
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        bail!("--prefix {prefix:?}: names may hold only letters, digits and _ - . (not {c:?})");
    }
    let digits = max_n.saturating_sub(1).to_string().len();
    if prefix.chars().count() + digits > MAX_NAME_CHARS {
        bail!("--prefix {prefix:?} is too long: with {digits} index digits a name passes {MAX_NAME_CHARS} characters");
    }
    Ok(())
}

#[derive(Args, Debug, Clone)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: Common,
    /// Sending clients (the first K logged in)
    #[arg(short = 'k', long = "senders", default_value_t = 4)]
    pub senders: usize,
    /// Messages per sender
    #[arg(short = 'm', long = "messages", default_value_t = 1000)]
    pub messages: u64,
    /// Messages per second per sender (0 = as fast as the socket takes them)
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Messages per write for unpaced senders
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// After sending, stop waiting when nothing arrived for this many seconds
    #[arg(long, default_value_t = 5.0)]
    pub drain_s: f64,
}

#[derive(Args, Debug, Clone)]
pub struct RttArgs {
    #[command(flatten)]
    pub common: Common,
    /// Concurrent broadcasters
    #[arg(short = 'k', long = "senders", default_value_t = 4)]
    pub senders: usize,
    /// Round trips per step, shared among the K broadcasters
    #[arg(short = 's', long, default_value_t = 100)]
    pub samples: u64,
    /// Clients added after each step that held (0 = one step at N)
    #[arg(long, default_value_t = 0)]
    pub step: usize,
    /// A step holds while its p95 stays at or under this many ms
    #[arg(long, default_value_t = 250.0)]
    pub limit_ms: f64,
    /// Never step past this many clients
    #[arg(long, default_value_t = 10000)]
    pub max_clients: usize,
    /// A round trip not complete after this many ms fails its step
    #[arg(long, default_value_t = 5000)]
    pub sample_timeout_ms: u64,
}

#[derive(Args, Debug, Clone)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: Common,
    /// Wait this long after the logins before reading the server's memory (ms)
    #[arg(long, default_value_t = 1000)]
    pub settle_ms: u64,
    /// Keep the clients connected this much longer after the reading (s)
    #[arg(long, default_value_t = 0.0)]
    pub hold_s: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert!(check_prefix("b", 20000).is_ok());
        assert!(check_prefix("민수_.-", 100).is_ok());
        assert!(check_prefix("a b", 10).is_err());
        assert!(check_prefix("x/", 10).is_err());
        assert!(check_prefix(&"a".repeat(20), 10000).is_ok());
        assert!(check_prefix(&"a".repeat(20), 10001).is_err());
    }

    #[test]
    fn cli_parses() {
        let c = Cli::try_parse_from(["chat-bench", "fanout", "-n", "20", "-k", "3", "-m", "50"])
            .expect("parses");
        let Cmd::Fanout(f) = c.cmd else {
            panic!("not fanout")
        };
        assert_eq!((f.common.clients, f.senders, f.messages), (20, 3, 50));
        assert_eq!((f.common.port, f.common.prefix.as_str()), (9009, "b"));
        assert!(f.common.also.is_empty());
        Cli::command_check();
    }

    #[test]
    fn also_adds_servers_in_order() {
        let argv = [
            "chat-bench",
            "rtt",
            "--host",
            "localhost",
            "-p",
            "9443",
            "--also",
            "127.0.0.1:9444",
            "--also",
            "[::1]:9445",
        ];
        let c = Cli::try_parse_from(argv)
            .expect("parses")
            .cmd
            .common()
            .clone();
        let shown: Vec<String> = c.targets().iter().map(Target::shown).collect();
        assert_eq!(shown, ["localhost:9443", "127.0.0.1:9444", "[::1]:9445"]);
        let addrs = c.addrs().expect("resolves");
        assert_eq!(addrs[1], "127.0.0.1:9444".parse().unwrap());
        assert_eq!(addrs[2], "[::1]:9445".parse().unwrap());
        for bad in ["9009", "host:x", "::1:9009"] {
            assert!(Cli::try_parse_from(["chat-bench", "idle", "--also", bad]).is_err());
        }
    }

    impl Cli {
        fn command_check() {
            <Cli as clap::CommandFactory>::command().debug_assert();
        }
    }
}
