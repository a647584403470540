//! `chat-bench --ws`: every scenario against the real server's web port (PROTOCOL.md section
//! 9), held to the same exact counts as over TCP (`bench_e2e.rs`), plus what is particular to
//! WebSocket: the wrong port named, and the pings its silent readers leave unanswered.

use chat_tests::bench::{assert_exact_fanout, assert_no_faults, run, u};
use chat_tests::Server;
use serde_json::Value;

/// `chat-bench ARGS --ws -p WEBPORT --json`; its JSON object, checked to say `ws`.
fn ws(s: &Server, args: &[&str]) -> Value {
    let web = s.web_addr().port().to_string();
    let out = run(&[args, &["--ws", "-p", &web, "--json"]].concat());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chat-bench {args:?} failed ({}):\n{}\n{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("bad JSON ({e}):\n{stdout}"));
    assert_eq!(v["transport"], "ws", "{v}");
    v
}

#[test]
fn fanout_over_websocket_counts_every_delivery_exactly() {
    let s = Server::start(&["--flood-rate", "0"]);
    let pid = s.pid().to_string();
    let v = ws(&s, &["fanout", "-n", "20", "-k", "3", "-m", "50"]);
    assert_exact_fanout(&v, 20, 3, 50);
    // Batched writes of several frames, payloads past 125 bytes (16-bit frame lengths).
    let v = ws(
        &s,
        &[
            "fanout",
            "-n",
            "12",
            "-k",
            "2",
            "-m",
            "300",
            "--batch",
            "16",
            "--payload",
            "300",
            "--prefix",
            "big",
            "--server-pid",
            &pid,
        ],
    );
    assert_exact_fanout(&v, 12, 2, 300);
    assert!(v["cpu"]["server_pct"].is_number(), "{v}");
}

#[test]
fn rtt_over_websocket_takes_every_sample() {
    let s = Server::start(&["--flood-rate", "0"]);
    let v = ws(
        &s,
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
fn idle_over_websocket_holds_every_client() {
    let s = Server::start(&["--flood-rate", "0"]);
    let pid = s.pid().to_string();
    let v = ws(
        &s,
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
    // chat-server runs a thread per connection, on the web port too.
    assert!(u(&v, "server_threads") > 30, "{v}");
}

#[test]
fn the_table_names_the_transport() {
    let s = Server::start(&["--flood-rate", "0"]);
    let web = s.web_addr().port().to_string();
    let out = run(&[
        "fanout", "--ws", "-p", &web, "-n", "4", "-k", "1", "-m", "5",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "transport     ws (WebSocket, ws://127.0.0.1:{web}/ws)"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("received      15 of 15 expected"),
        "{stdout}"
    );
}

#[test]
fn websocket_to_the_line_port_is_one_clear_line() {
    let s = Server::start(&["--flood-rate", "0"]);
    let line_port = s.addr().port().to_string();
    let out = run(&[
        "idle",
        "--ws",
        "-p",
        &line_port,
        "-n",
        "3",
        "--settle-ms",
        "0",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("chat-bench: WebSocket upgrade failed") && last.contains("web port"),
        "{stderr}"
    );
}

/// Readers cannot answer pings (they own no write half): past the server's keepalive a silent
/// client is pinged, then dropped; the report says so rather than hiding it.
#[test]
fn unanswered_pings_are_reported() {
    let s = Server::start(&["--flood-rate", "0", "--keepalive-secs", "1"]);
    let v = ws(
        &s,
        &["idle", "-n", "3", "--settle-ms", "0", "--hold-s", "3.5"],
    );
    let notes = v["notes"].to_string();
    assert!(notes.contains("WebSocket pings"), "{v}");
    assert_eq!(u(&v, "disconnects"), 3, "{v}");
}
