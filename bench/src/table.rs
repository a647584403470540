//! The human summary: a title line and aligned `label  value` rows per scenario, with the
//! numbers grouped and rounded for reading; `--json` has the same fields unrounded.

use std::fmt::Write;

use crate::report::{FanoutReport, IdleReport, Latency, Login, Report};
use crate::sys::{CpuUse, ProcMem};

fn latency(l: &Option<Latency>) -> String {
    match l {
        Some(l) => format!(
            "p50 {}  p95 {}  p99 {}  max {}",
            ms(l.p50_ms),
            ms(l.p95_ms),
            ms(l.p99_ms),
            ms(l.max_ms)
        ),
        None => "-".into(),
    }
}

fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// 1234567 -> "1,234,567".
pub fn grouped(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The login phase and the barrier after it.

#[derive(Default)]
struct Rows(Vec<(String, String)>);

impl Rows {
    fn add(&mut self, k: &str, v: impl Into<String>) -> &mut Self {
        self.0.push((k.into(), v.into()));
        self
    }

    fn render(&self, title: &str) -> String {
        let w = self.0.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut s = format!("{title}\n");
        for (k, v) in &self.0 {
            let _ = writeln!(s, "  {k:<w$}  {v}");
        }
        s
    }
}

fn cpu(c: &CpuUse, threads: usize) -> String {
    let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
    format!(
        "chat-bench {:.0} ({} thread{}{})  server {}  box {}",
        c.bench_pct,
        threads,
        if threads == 1 { "" } else { "s" },
        if c.bench_bound {
            ", SATURATED: results are bench-bound"
        } else {
            ""
        },
        opt(c.server_pct),
        opt(c.box_pct),
    )
}

fn mem(m: &Option<ProcMem>) -> String {
    match m {
        Some(m) => format!(
            "RSS {:.1} MiB, {} threads",
            m.rss_kib as f64 / 1024.0,
            m.threads
        ),
        None => "- (pass --server-pid)".into(),
    }
}

fn login(r: &mut Rows, l: &Login) {
    r.add(
        "logins",
        format!(
            "{} in {:.2} s ({:.0}/s, slowest {:.0} ms), barrier {:.0} ms",
            grouped(l.clients as u64),
            l.secs,
            l.per_s,
            l.max_login_ms,
            l.barrier_ms
        ),
    );
}

/// With `--also`: every server and how many clients each had (client i on server i % S).
fn servers(r: &mut Rows, servers: &[String], clients: usize) {
    if servers.len() < 2 {
        return;
    }
    let per = crate::servers::clients_per_server(clients, servers.len());
    let list: Vec<String> = servers
        .iter()
        .zip(per)
        .map(|(s, n)| format!("{s} ({} clients)", grouped(n as u64)))
        .collect();
    r.add(
        "servers",
        format!("{}, round-robin: {}", servers.len(), list.join(", ")),
    );
}

/// The title's server: the main one, and how many more with `--also`.
fn title_server(servers: &[String]) -> String {
    match servers {
        [] => String::new(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} +{}", rest.len()),
    }
}

/// `orders seen`: how many orders of all the messages the receivers saw.
fn orders(f: &FanoutReport) -> String {
    match f.orders {
        Some(1) => format!(
            "1: one order for everybody ({} receivers that do not send, each got every message)",
            grouped(f.orders_compared as u64)
        ),
        Some(n) => format!(
            "{n}: the {} receivers that do not send and got every message saw {n} different \
             orders",
            grouped(f.orders_compared as u64)
        ),
        None if f.senders >= f.clients => "n/a (every client sends)".into(),
        None => "n/a (no receiver that does not send got every message)".into(),
    }
}

fn problems(r: &mut Rows, notes: &[String]) {
    for n in notes {
        r.add("note", n.as_str());
    }
}

impl Report {
    pub fn table(&self) -> String {
        let mut r = Rows::default();
        match self {
            Report::Fanout(f) => {
                r.add("transport", f.transport.describe(&f.server));
                servers(&mut r, &f.servers, f.clients);
                login(&mut r, &f.login);
                let pace = if f.rate > 0.0 {
                    format!("{} msg/s per sender", f.rate)
                } else {
                    "unpaced".into()
                };
                r.add(
                    "sent",
                    format!(
                        "{} messages in {:.3} s ({pace}, batch {})",
                        grouped(f.sent),
                        f.send_s,
                        f.batch
                    ),
                )
                .add(
                    "received",
                    format!(
                        "{} of {} expected",
                        grouped(f.received),
                        grouped(f.expected)
                    ),
                )
                .add(
                    "lost",
                    format!(
                        "{}  (garbled lines {}, clients short {}, duplicates {})",
                        grouped(f.lost),
                        f.garbled,
                        f.clients_short,
                        f.duplicates
                    ),
                )
                .add("out of order", f.out_of_order.to_string())
                .add("orders seen", orders(f))
                .add(
                    "throughput",
                    format!(
                        "{} deliveries/s over {:.3} s (first send to last delivery)",
                        grouped(f.deliveries_per_s as u64),
                        f.window_s
                    ),
                )
                .add("latency ms", latency(&f.latency))
                .add("cpu %/core", cpu(&f.cpu, f.threads))
                .add("server", mem(&f.server_mem));
                if f.disconnects + f.server_errors + f.echoes > 0 {
                    r.add(
                        "problems",
                        format!(
                            "disconnects {}, server errors {}, echoes {}",
                            f.disconnects, f.server_errors, f.echoes
                        ),
                    );
                }
                problems(&mut r, &f.notes);
                r.render(&format!(
                    "chat-bench fanout  {}  n={} k={} m={} payload={} B",
                    title_server(&f.servers),
                    f.clients,
                    f.senders,
                    f.messages_per_sender,
                    f.payload
                ))
            }
            Report::Rtt(t) => {
                r.add("transport", t.transport.describe(&t.server));
                let last = t.steps.last().map_or(t.login.clients, |s| s.clients);
                servers(&mut r, &t.servers, last);
                login(&mut r, &t.login);
                for s in &t.steps {
                    r.add(
                        &format!("n={}", s.clients),
                        format!(
                            "{} {}  ({} samples, {} timeouts; cpu bench {:.0} server {} box {}{})",
                            if s.held { "held" } else { "FAILED" },
                            latency(&s.rtt),
                            s.samples,
                            s.timeouts,
                            s.cpu.bench_pct,
                            s.cpu.server_pct.map_or("-".into(), |v| format!("{v:.0}")),
                            s.cpu.box_pct.map_or("-".into(), |v| format!("{v:.0}")),
                            if s.cpu.bench_bound {
                                ", bench-bound"
                            } else {
                                ""
                            }
                        ),
                    );
                }
                r.add(
                    "max held",
                    match t.max_clients_held {
                        Some(n) => format!(
                            "{} clients with p95 <= {} ms",
                            grouped(n as u64),
                            t.limit_ms
                        ),
                        None => format!("none: the first step passed p95 {} ms", t.limit_ms),
                    },
                )
                .add("stopped by", t.stopped_by.as_str())
                .add("server", mem(&t.server_mem));
                if t.garbled + t.out_of_order + t.disconnects + t.server_errors > 0 {
                    r.add(
                        "problems",
                        format!(
                            "garbled {}, out of order {}, disconnects {}, server errors {}",
                            t.garbled, t.out_of_order, t.disconnects, t.server_errors
                        ),
                    );
                }
                problems(&mut r, &t.notes);
                r.render(&format!(
                    "chat-bench rtt  {}  k={} samples={} step={} limit={} ms (rtt in ms)",
                    title_server(&t.servers),
                    t.senders,
                    t.samples_per_step,
                    t.step,
                    t.limit_ms
                ))
            }
            Report::Idle(i) => {
                r.add("transport", i.transport.describe(&i.server));
                servers(&mut r, &i.servers, i.clients);
                login(&mut r, &i.login);
                let kib = |m: &Option<ProcMem>| {
                    m.map_or("-".into(), |m| {
                        format!("{:.1} MiB", m.rss_kib as f64 / 1024.0)
                    })
                };
                r.add(
                    "server RSS",
                    format!(
                        "{} before, {} after {} ms settling",
                        kib(&i.server_before),
                        kib(&i.server_after),
                        i.settle_ms
                    ),
                )
                .add("per connection", idle_per_connection(i))
                .add(
                    "server threads",
                    i.server_threads.map_or("-".into(), |t| t.to_string()),
                )
                .add(
                    "chat-bench",
                    format!("{:.1} KiB RSS per connection", i.bench_rss_per_conn_kib),
                );
                if i.disconnects > 0 {
                    r.add("problems", format!("disconnects {}", i.disconnects));
                }
                problems(&mut r, &i.notes);
                r.render(&format!(
                    "chat-bench idle  {}  n={}",
                    title_server(&i.servers),
                    i.clients
                ))
            }
        }
    }
}

/// The per-connection figure, with what limits it.
fn idle_per_connection(i: &IdleReport) -> String {
    let Some(fresh) = i.server_baseline_fresh else {
        return "- (pass --server-pid)".into();
    };
    let peak = i
        .server_before
        .map_or(0.0, |m| m.peak_rss_kib as f64 / 1024.0);
    let served_before = format!(
        "the server has served before (its RSS peaked at {peak:.1} MiB) and reuses that memory; \
         start a fresh server for the whole cost"
    );
    match (i.server_rss_per_conn_kib, fresh) {
        (Some(v), true) => format!("{v:.1} KiB of server RSS"),
        (Some(v), false) => format!("at least {v:.1} KiB of server RSS: {served_before}"),
        (None, true) => "not measured: the server's RSS did not grow".into(),
        (None, false) => format!("not measured: {served_before}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(3_996_000), "3,996,000");
        assert_eq!(ms(1.234), "1.23");
        assert_eq!(ms(12.34), "12.3");
        assert_eq!(ms(1234.5), "1234");
    }

    #[test]
    fn servers_are_listed_only_when_several() {
        let one = vec!["127.0.0.1:9009".to_owned()];
        let two = vec!["127.0.0.1:9009".to_owned(), "127.0.0.1:9109".to_owned()];
        let mut r = Rows::default();
        servers(&mut r, &one, 5);
        assert!(r.0.is_empty());
        servers(&mut r, &two, 5);
        assert_eq!(
            r.0,
            [(
                "servers".to_owned(),
                "2, round-robin: 127.0.0.1:9009 (3 clients), 127.0.0.1:9109 (2 clients)".to_owned()
            )]
        );
        assert_eq!(title_server(&one), "127.0.0.1:9009");
        assert_eq!(title_server(&two), "127.0.0.1:9009 +1");
    }
}
