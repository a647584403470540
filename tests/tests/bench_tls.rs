//! `chat-bench --tls [--ca FILE]`: every scenario against the real server's TLS port
//! (PROTOCOL.md section 10), and WSS on its web port, held to the same exact counts as over
//! TCP (`bench_e2e.rs`) and WebSocket (`bench_ws.rs`); a certificate that does not verify is
//! one clear line.

use chat_tests::bench::{assert_exact_fanout, assert_no_faults, run, u};
use chat_tests::tls::TestCerts;
use chat_tests::Server;
use serde_json::Value;

/// A server with TLS on (certificates from `certs`) and the flood limit off.
fn tls_server(certs: &TestCerts) -> Server {
    let mut args = certs.server_args();
    args.extend(["--flood-rate".to_owned(), "0".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&args)
}

fn ca(certs: &TestCerts) -> String {
    certs.ca().to_str().expect("a UTF-8 temp path").to_owned()
}

/// `chat-bench ARGS --tls --ca CA -p PORT --json`; its JSON object, checked to name
/// `transport`.
fn bench(certs: &TestCerts, port: u16, transport: &str, args: &[&str]) -> Value {
    let (port, ca) = (port.to_string(), ca(certs));
    let out = run(&[args, &["--tls", "--ca", &ca, "-p", &port, "--json"]].concat());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chat-bench {args:?} failed ({}):\n{}\n{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("bad JSON ({e}):\n{stdout}"));
    assert_eq!(v["transport"], transport, "{v}");
    v
}

#[test]
fn fanout_over_tls_counts_every_delivery_exactly() {
    let certs = TestCerts::new("bench-fanout");
    let s = tls_server(&certs);
    let port = s.tls_addr().port();
    let pid = s.pid().to_string();
    let v = bench(
        &certs,
        port,
        "tls",
        &["fanout", "-n", "20", "-k", "3", "-m", "50"],
    );
    assert_exact_fanout(&v, 20, 3, 50);
    // Batched writes and long lines: many lines per TLS record, lines across records.
    let v = bench(
        &certs,
        port,
        "tls",
        &[
            "fanout",
            "-n",
            "12",
            "-k",
            "2",
            "-m",
            "500",
            "--batch",
            "16",
            "--payload",
            "1000",
            "--prefix",
            "big",
            "--server-pid",
            &pid,
        ],
    );
    assert_exact_fanout(&v, 12, 2, 500);
    assert!(v["cpu"]["server_pct"].is_number(), "{v}");
}

#[test]
fn fanout_over_wss_counts_every_delivery_exactly() {
    let certs = TestCerts::new("bench-wss");
    let s = tls_server(&certs);
    let web = s.web_addr().port();
    let v = bench(
        &certs,
        web,
        "wss",
        &["fanout", "--ws", "-n", "20", "-k", "3", "-m", "50"],
    );
    assert_exact_fanout(&v, 20, 3, 50);
}

#[test]
fn rtt_over_tls_takes_every_sample() {
    let certs = TestCerts::new("bench-rtt");
    let s = tls_server(&certs);
    let v = bench(
        &certs,
        s.tls_addr().port(),
        "tls",
        &[
            "rtt",
            "-n",
            "5",
            "--step",
            "5",
            "--max-clients",
            "15",
            "-s",
            "10",
        ],
    );
    let steps = v["steps"].as_array().expect("steps");
    let got: Vec<(u64, u64, u64)> = steps
        .iter()
        .map(|s| (u(s, "clients"), u(s, "samples"), u(s, "timeouts")))
        .collect();
    assert_eq!(got, [(5, 10, 0), (10, 10, 0), (15, 10, 0)], "{v}");
    assert_eq!(u(&v, "max_clients_held"), 15, "{v}");
    assert_no_faults(&v);
}

#[test]
fn idle_over_tls_holds_every_client() {
    let certs = TestCerts::new("bench-idle");
    let s = tls_server(&certs);
    let pid = s.pid().to_string();
    let v = bench(
        &certs,
        s.tls_addr().port(),
        "tls",
        &[
            "idle",
            "-n",
            "30",
            "--settle-ms",
            "300",
            "--server-pid",
            &pid,
        ],
    );
    assert_eq!((u(&v, "clients"), u(&v, "disconnects")), (30, 0), "{v}");
    assert!(u(&v, "server_threads") > 30, "{v}");
}

#[test]
fn the_table_names_the_transport() {
    let certs = TestCerts::new("bench-table");
    let s = tls_server(&certs);
    let port = s.tls_addr().port().to_string();
    let ca = ca(&certs);
    let out = run(&[
        "fanout", "--tls", "--ca", &ca, "-p", &port, "-n", "4", "-k", "1", "-m", "5",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "transport     tls (lines over TLS on 127.0.0.1:{port})"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("received      15 of 15 expected"),
        "{stdout}"
    );
}

/// The last line of stderr after a run that must fail with status 1.
fn failure_line(args: &[&str]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    stderr.lines().last().unwrap_or_default().to_owned()
}

#[test]
fn a_wrong_ca_is_one_clear_line() {
    let certs = TestCerts::new("bench-served");
    let other = TestCerts::new("bench-other");
    let s = tls_server(&certs);
    let port = s.tls_addr().port().to_string();
    let web = s.web_addr().port().to_string();
    let wrong = ca(&other);
    for extra in [&[][..], &["--ws"][..]] {
        let p = if extra.is_empty() { &port } else { &web };
        let args = [
            &["idle", "--tls", "--ca", &wrong, "-p", p, "-n", "3"][..],
            extra,
        ]
        .concat();
        let last = failure_line(&args);
        assert!(
            last.starts_with("chat-bench: the TLS certificate of 127.0.0.1 does not verify")
                && last.contains(&format!("--ca {wrong}")),
            "{args:?}: {last}"
        );
    }
    // The plain line port answers in clear text: the line says which port to use.
    let plain = s.addr().port().to_string();
    let last = failure_line(&[
        "idle",
        "--tls",
        "--ca",
        &ca(&certs),
        "-p",
        &plain,
        "-n",
        "3",
    ]);
    assert!(
        last.starts_with("chat-bench: TLS handshake with 127.0.0.1") && last.contains("`tls on`"),
        "{last}"
    );
}
