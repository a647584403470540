//! Several servers in one run (`--also HOST:PORT`): the clients are spread round-robin over
//! the main server (`--host`/`-p`) and every `--also` address, client i on address
//! i % (1 + also), so a cluster of chat-servers sharing one chat is measured as one.
//!
//! Every client still counts every message of every sender, wherever it connected: over a
//! cluster that shares one chat nothing is lost, while over servers that do not share one
//! (separate servers, a broken link between them) the messages that would have crossed are
//! lost, and [`cross_notes`] says between which servers.

use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::{Context, Result};

use crate::client::RecvStats;
use crate::table::grouped;

/// One server address as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// A name or an address (an IPv6 address without its brackets); with `--tls` the
    /// certificate is checked for it.
    pub host: String,
    pub port: u16,
}

impl Target {
    pub fn resolve(&self) -> Result<SocketAddr> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve host {:?}", self.host))?
            .next()
            .with_context(|| format!("host {:?} has no address", self.host))
    }

    /// `HOST:PORT` as it was given (`[IPV6]:PORT` for an IPv6 address).
    pub fn shown(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Parses `HOST:PORT`, `[IPV6]:PORT` (clap's value parser for `--also`).
pub fn parse_target(s: &str) -> Result<Target, String> {
    let want = "expected HOST:PORT, such as 127.0.0.1:9009 or [::1]:9009";
    let (host, port) = s.rsplit_once(':').ok_or_else(|| want.to_owned())?;
    let host = match host.strip_prefix('[') {
        Some(h) => h
            .strip_suffix(']')
            .ok_or_else(|| format!("unclosed [ in {s:?}; {want}"))?,
        None if host.contains(':') => {
            return Err(format!("an IPv6 address needs brackets: [{host}]:{port}"))
        }
        None => host,
    };
    if host.is_empty() {
        return Err(format!("no host before the port; {want}"));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("{port:?} is not a port (1 to 65535); {want}"))?;
    if port == 0 {
        return Err(format!("port 0 is not a server's port; {want}"));
    }
    Ok(Target {
        host: host.to_owned(),
        port,
    })
}

/// The server (an index into the address list) client `idx` connects to.
pub fn server_of(idx: usize, servers: usize) -> usize {
    idx % servers.max(1)
}

/// How many of `clients` connect to each of `servers` addresses.
pub fn clients_per_server(clients: usize, servers: usize) -> Vec<usize> {
    let s = servers.max(1);
    (0..s)
        .map(|i| clients / s + usize::from(i < clients % s))
        .collect()
}

/// Deliveries expected and received between every pair of servers, `[to][from]`: what the
/// clients on server `to` got of the messages of the senders on server `from`.
pub fn between(stats: &[RecvStats], sent_by: &[u64], servers: usize) -> Vec<Vec<(u64, u64)>> {
    let mut m = vec![vec![(0u64, 0u64); servers]; servers];
    for (r, st) in stats.iter().enumerate() {
        let to = server_of(r, servers);
        for (s, &want) in sent_by.iter().enumerate().filter(|&(s, _)| s != r) {
            let cell = &mut m[to][server_of(s, servers)];
            cell.0 += want;
            cell.1 += st.count[s].min(want);
        }
    }
    m
}

/// One line per pair of servers (`addrs` by index) whose deliveries fell short, such as
/// `clients on B got 0 of 40,000 messages from senders on A`; nothing with one server.
pub fn cross_notes(stats: &[RecvStats], sent_by: &[u64], addrs: &[String]) -> Vec<String> {
    if addrs.len() < 2 {
        return Vec::new();
    }
    let m = between(stats, sent_by, addrs.len());
    let mut out = Vec::new();
    for (to, row) in m.iter().enumerate() {
        for (from, &(want, got)) in row.iter().enumerate() {
            if got < want {
                let hint = if got == 0 && to != from {
                    ": do these servers share one chat?"
                } else {
                    ""
                };
                out.push(format!(
                    "clients on {} got {} of {} deliveries from senders on {}{hint}",
                    addrs[to],
                    grouped(got),
                    grouped(want),
                    addrs[from]
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        let t = |host: &str, port| {
            Ok(Target {
                host: host.into(),
                port,
            })
        };
        assert_eq!(parse_target("127.0.0.1:9009"), t("127.0.0.1", 9009));
        assert_eq!(parse_target("chat.example:1"), t("chat.example", 1));
        assert_eq!(parse_target("[::1]:9443"), t("::1", 9443));
        for bad in [
            "9009",
            ":9009",
            "host:",
            "host:x",
            "host:70000",
            "host:0",
            "::1:9009",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
        assert!(parse_target("::1:9009").unwrap_err().contains("[::1]:9009"));
        assert!(parse_target("[::1:9009").is_err());
    }

    #[test]
    fn clients_go_round_robin() {
        assert_eq!(
            (0..7).map(|i| server_of(i, 3)).collect::<Vec<_>>(),
            [0, 1, 2, 0, 1, 2, 0]
        );
        assert!((0..5).all(|i| server_of(i, 1) == 0));
        assert_eq!(server_of(3, 0), 0, "no --also and no address: one server");
        assert_eq!(clients_per_server(7, 3), [3, 2, 2]);
        assert_eq!(clients_per_server(200, 2), [100, 100]);
        assert_eq!(clients_per_server(1, 2), [1, 0]);
        assert_eq!(clients_per_server(5, 1), [5]);
        // The counts agree with the spreading.
        for (n, s) in [(7, 3), (200, 2), (1, 4)] {
            let mut c = vec![0; s];
            (0..n).for_each(|i| c[server_of(i, s)] += 1);
            assert_eq!(c, clients_per_server(n, s));
        }
    }

    fn got(counts: &[u64]) -> RecvStats {
        let mut st = RecvStats::new(counts.len());
        st.count = counts.to_vec();
        st
    }

    #[test]
    fn losses_are_placed_between_servers() {
        // Two separate servers: clients 0 and 2 on A, 1 and 3 on B; senders 0 and 1 sent 5
        // each; messages never cross.
        let stats = [got(&[0, 0]), got(&[0, 0]), got(&[5, 0]), got(&[0, 5])];
        let m = between(&stats, &[5, 5], 2);
        assert_eq!(m[0], [(5, 5), (10, 0)]);
        assert_eq!(m[1], [(10, 0), (5, 5)]);
        let addrs = ["A".to_owned(), "B".to_owned()];
        let notes = cross_notes(&stats, &[5, 5], &addrs);
        assert_eq!(
            notes,
            [
                "clients on A got 0 of 10 deliveries from senders on B: do these servers share one chat?",
                "clients on B got 0 of 10 deliveries from senders on A: do these servers share one chat?",
            ]
        );
        // One chat: nothing to say.
        let stats = [got(&[0, 5]), got(&[5, 0]), got(&[5, 5]), got(&[5, 5])];
        assert!(cross_notes(&stats, &[5, 5], &addrs).is_empty());
        assert!(cross_notes(&stats, &[5, 5], &addrs[..1]).is_empty());
    }
}
