//! `GET /metrics`: the registry's counters and gauges in the Prometheus text format (0.0.4).

use std::fmt::Write;

use crate::registry::Snapshot;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn render(s: &Snapshot) -> String {
    let metrics: [(&str, &str, &str, u64); 12] = [
        ("chat_users", "gauge", "Users logged in.", s.users),
        (
            "chat_connections",
            "gauge",
            "Connections held, logged in or not.",
            s.connections,
        ),
        ("chat_rooms", "gauge", "Rooms that exist.", s.rooms),
        (
            "chat_messages_relayed_total",
            "counter",
            "Messages, actions and private messages accepted from users.",
            s.messages_relayed,
        ),
        (
            "chat_lines_delivered_total",
            "counter",
            "Lines queued to users (messages, notices and replies).",
            s.lines_delivered,
        ),
        (
            "chat_clients_dropped_slow_total",
            "counter",
            "Clients dropped for not reading their output.",
            s.dropped_slow,
        ),
        ("chat_logins_total", "counter", "Logins accepted.", s.logins),
        (
            "chat_logins_refused_total",
            "counter",
            "Names refused at login (invalid or taken).",
            s.logins_refused,
        ),
        (
            "chat_connections_total",
            "counter",
            "Connections accepted since start.",
            s.connections_total,
        ),
        (
            "chat_store_dropped_total",
            "counter",
            "Rows the data dir did not take: queue full or writes failed.",
            s.store_dropped,
        ),
        (
            "chat_cluster_up",
            "gauge",
            "1 while this server is in sync with its cluster's Redis (--cluster), else 0.",
            s.cluster_up,
        ),
        (
            "chat_remote_users",
            "gauge",
            "Users logged in on the cluster's other servers.",
            s.remote_users,
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, value) in metrics {
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Holds the output to the text format: every sample follows its HELP and TYPE, names are
    /// valid metric names, counters end in `_total`, values parse.
    #[test]
    fn the_output_follows_the_text_format() {
        let snapshot = Snapshot {
            users: 3,
            connections: 5,
            messages_relayed: 7,
            ..Snapshot::default()
        };
        let text = render(&snapshot);
        let mut typed = std::collections::HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(matches!(kind, "gauge" | "counter"));
                typed.insert(name.to_owned(), kind.to_owned());
            } else if line.starts_with("# HELP ") {
            } else {
                let (name, value) = line.split_once(' ').unwrap();
                assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                assert!(name.starts_with(|c: char| c.is_ascii_alphabetic()));
                value.parse::<f64>().unwrap();
                let kind = typed.get(name).expect("TYPE before the sample");
                assert_eq!(kind == "counter", name.ends_with("_total"), "{name}");
            }
        }
        assert!(text.contains("\nchat_users 3\n"));
        assert!(text.contains("\nchat_messages_relayed_total 7\n"));
        assert!(text.ends_with('\n'));
    }
}
