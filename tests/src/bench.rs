//! Running `chat-bench` in tests and reading its `--json` report.

use std::process::{Command, Output};

use serde_json::Value;

/// Runs chat-bench with a watchdog of its own, so a hang fails the test instead of blocking.
pub fn run(args: &[&str]) -> Output {
    Command::new(crate::binary("chat-bench"))
        .args(args)
        .args(["--timeout-s", "90"])
        .output()
        .expect("running chat-bench")
}

/// The single JSON object a successful `--json` run prints.
pub fn json(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chat-bench failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    assert_eq!(
        stdout.lines().count(),
        1,
        "--json prints one line:\n{stdout}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("bad JSON ({e}):\n{stdout}"))
}

/// An integer field of a report.
pub fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no integer {key:?} in {v}"))
}

/// Every copy arrived, once, in order, unharmed: k x m messages, each to the n - 1 others.
pub fn assert_exact_fanout(v: &Value, n: u64, k: u64, m: u64) {
    let expected = k * m * (n - 1);
    assert_eq!((u(v, "sent"), u(v, "expected")), (k * m, expected), "{v}");
    assert_eq!(u(v, "received"), expected, "{v}");
    for zero in [
        "lost",
        "out_of_order",
        "garbled",
        "duplicates",
        "echoes",
        "clients_short",
        "disconnects",
        "server_errors",
    ] {
        assert_eq!(u(v, zero), 0, "{zero}: {v}");
    }
    assert_eq!(u(&v["latency"], "count"), expected, "{v}");
}

/// No garbled, reordered or lost-connection trouble and no server errors in a report.
pub fn assert_no_faults(v: &Value) {
    for zero in ["garbled", "out_of_order", "disconnects", "server_errors"] {
        assert_eq!(u(v, zero), 0, "{zero}: {v}");
    }
}
