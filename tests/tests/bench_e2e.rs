//! `chat-bench` against the real server on `--port 0`: small runs whose counts must be exact,
//! and the clear errors it promises (refused connection, taken names, the flood limit, too
//! many clients for the open-file limit).

use std::path::Path;
use std::process::{Command, Output};

use chat_tests::bench::{assert_exact_fanout, assert_no_faults, json, run as bench, u};
use chat_tests::Server;

/// `chat-bench`, built like the harness builds `chat-server`.
fn bench_binary() -> &'static Path {
    chat_tests::binary("chat-bench")
}

fn port(s: &Server) -> String {
    s.addr().port().to_string()
}

/// The run failed with exit status 1, a single `chat-bench: ...` line, and nothing on stdout.
fn one_line_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "exit status; stderr:\n{stderr}");
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let last = stderr.lines().last().unwrap_or_default().to_owned();
    assert!(last.starts_with("chat-bench: "), "stderr:\n{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    last
}

#[test]
fn fanout_counts_every_delivery_exactly() {
    let s = Server::start(&["--flood-rate", "0"]);
    let pid = s.pid().to_string();
    let out = bench(&[
        "fanout",
        "-p",
        &port(&s),
        "-n",
        "20",
        "-k",
        "3",
        "-m",
        "50",
        "--json",
        "--server-pid",
        &pid,
    ]);
    let v = json(&out);
    assert_eq!(v["scenario"], "fanout");
    assert_eq!(v["transport"], "tcp", "{v}");
    assert_exact_fanout(&v, 20, 3, 50);
    assert_eq!(u(&v["login"], "clients"), 20);
    assert!(u(&v["server_mem"], "rss_kib") > 0, "{v}");
    assert!(v["cpu"]["server_pct"].is_number(), "{v}");
}

#[test]
fn fanout_batched_and_paced_senders_are_exact_too() {
    let s = Server::start(&["--flood-rate", "0"]);
    let v = json(&bench(&[
        "fanout",
        "-p",
        &port(&s),
        "-n",
        "12",
        "-k",
        "2",
        "-m",
        "200",
        "--batch",
        "16",
        "--json",
    ]));
    assert_exact_fanout(&v, 12, 2, 200);
    // Paced: 40 messages at 200/s take about 0.2 s per sender.
    let v = json(&bench(&[
        "fanout",
        "-p",
        &port(&s),
        "-n",
        "8",
        "-k",
        "2",
        "-m",
        "40",
        "--rate",
        "200",
        "--prefix",
        "paced",
        "--json",
    ]));
    assert_exact_fanout(&v, 8, 2, 40);
    assert!(v["send_s"].as_f64().unwrap() > 0.15, "{v}");
}

#[test]
fn the_table_is_the_default_output() {
    let s = Server::start(&["--flood-rate", "0"]);
    let out = bench(&["fanout", "-p", &port(&s), "-n", "5", "-k", "1", "-m", "10"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("chat-bench fanout"), "{stdout}");
    assert!(
        stdout.contains("received      40 of 40 expected"),
        "{stdout}"
    );
    // Piped stderr: no progress bar escape codes.
    assert!(
        !out.stderr.contains(&0x1b),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rtt_takes_every_sample() {
    let s = Server::start(&["--flood-rate", "0"]);
    let v = json(&bench(&[
        "rtt",
        "-p",
        &port(&s),
        "-n",
        "10",
        "-k",
        "2",
        "-s",
        "20",
        "--json",
    ]));
    assert_eq!(v["scenario"], "rtt");
    let steps = v["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1, "{v}");
    assert_eq!(u(&steps[0], "clients"), 10);
    assert_eq!(u(&steps[0], "samples"), 20, "{v}");
    assert_eq!(u(&steps[0], "timeouts"), 0, "{v}");
    assert_eq!(steps[0]["held"], true, "{v}");
    assert_eq!(u(&v, "max_clients_held"), 10, "{v}");
    assert_no_faults(&v);
}

#[test]
fn rtt_steps_up_to_the_cap() {
    let s = Server::start(&["--flood-rate", "0"]);
    let v = json(&bench(&[
        "rtt",
        "-p",
        &port(&s),
        "-n",
        "5",
        "--step",
        "5",
        "--max-clients",
        "15",
        "-s",
        "8",
        "--json",
    ]));
    let clients: Vec<u64> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| u(s, "clients"))
        .collect();
    assert_eq!(clients, [5, 10, 15], "{v}");
    assert_eq!(u(&v, "max_clients_held"), 15, "{v}");
    assert!(
        v["stopped_by"]
            .as_str()
            .unwrap()
            .contains("--max-clients 15"),
        "{v}"
    );
}

#[test]
fn idle_reports_server_memory_and_threads() {
    let s = Server::start(&["--flood-rate", "0"]);
    let pid = s.pid().to_string();
    let n = 50;
    let v = json(&bench(&[
        "idle",
        "-p",
        &port(&s),
        "-n",
        &n.to_string(),
        "--server-pid",
        &pid,
        "--settle-ms",
        "300",
        "--json",
    ]));
    assert_eq!(v["scenario"], "idle");
    assert_eq!(u(&v, "clients"), n);
    let per_conn = v["server_rss_per_conn_kib"]
        .as_f64()
        .expect("per-connection RSS");
    assert!(per_conn > 0.0, "{v}");
    assert_eq!(v["server_baseline_fresh"], true, "{v}");
    // chat-server runs a thread per connection.
    assert!(u(&v, "server_threads") > n, "{v}");
}

#[test]
fn a_refused_connection_is_one_clear_line() {
    // A port that was just free: nothing listens there.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = bench(&["fanout", "-p", &free.to_string(), "-n", "10"]);
    let line = one_line_error(&out);
    assert!(line.contains("connection refused"), "{line}");
    assert!(line.contains(&format!("127.0.0.1:{free}")), "{line}");
}

#[test]
fn the_flood_limit_is_named_with_its_fix() {
    let s = Server::start(&["--flood-rate", "10"]);
    let out = bench(&["fanout", "-p", &port(&s), "-n", "5", "-k", "2", "-m", "100"]);
    let line = one_line_error(&out);
    assert!(line.contains("! slow down"), "{line}");
    assert!(line.contains("--flood-rate 0"), "{line}");
}

#[test]
fn a_taken_name_points_to_prefix() {
    let s = Server::start(&["--flood-rate", "0"]);
    let _holder = s.login("b1");
    let out = bench(&["idle", "-p", &port(&s), "-n", "3", "--settle-ms", "0"]);
    let line = one_line_error(&out);
    assert!(line.contains("! the name b1 is taken"), "{line}");
    assert!(line.contains("--prefix"), "{line}");
    // With another prefix the same run works.
    let v = json(&bench(&[
        "idle",
        "-p",
        &port(&s),
        "-n",
        "3",
        "--settle-ms",
        "0",
        "--prefix",
        "x",
        "--json",
    ]));
    assert_eq!(u(&v, "clients"), 3);
}

#[test]
fn a_full_server_is_named() {
    let s = Server::start(&["--flood-rate", "0", "--max-clients", "3"]);
    let out = bench(&[
        "idle",
        "-p",
        &port(&s),
        "-n",
        "6",
        "-c",
        "1",
        "--settle-ms",
        "0",
    ]);
    let line = one_line_error(&out);
    assert!(
        line.contains("`! server full`") && line.contains("--max-clients"),
        "{line}"
    );
}

#[test]
fn more_clients_than_open_files_are_refused_before_connecting() {
    // Under a hard limit of 512 open files chat-bench cannot raise its own far enough.
    let out = Command::new("sh")
        .args([
            "-c",
            r#"ulimit -Sn 256 && ulimit -Hn 512 && exec "$0" "$@""#,
        ])
        .arg(bench_binary())
        .args(["idle", "-p", "9", "-n", "1000", "--timeout-s", "30"])
        .output()
        .expect("running chat-bench under sh");
    let line = one_line_error(&out);
    assert!(line.contains("1000 clients need 1032 open files"), "{line}");
    assert!(
        line.contains("limit is 512") && line.contains("ulimit -n"),
        "{line}"
    );
}

#[test]
fn idle_on_a_server_that_served_before_says_so_and_is_never_negative() {
    let s = Server::start(&["--flood-rate", "0"]);
    let pid = s.pid().to_string();
    let threads_at_start = chat_tests::proc_status_kib(s.pid(), "Threads");
    let run = |n: &str, prefix: &str| {
        bench(&[
            "idle",
            "-p",
            &port(&s),
            "-n",
            n,
            "--server-pid",
            &pid,
            "--settle-ms",
            "0",
            "--prefix",
            prefix,
        ])
    };
    let first = run("400", "a");
    assert!(first.status.success(), "{first:?}");
    // Wait until the server has let the first run's connections go.
    let deadline = std::time::Instant::now() + chat_tests::T;
    while chat_tests::proc_status_kib(s.pid(), "Threads") > threads_at_start {
        assert!(
            std::time::Instant::now() < deadline,
            "the server kept the old threads"
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let out = run("20", "b");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with("per connection"))
        .unwrap_or_else(|| panic!("no per-connection line in\n{table}"));
    assert!(line.contains("the server has served before"), "{table}");
    assert!(
        line.contains("at least") || line.contains("not measured"),
        "{table}"
    );
    let numbers: Vec<f64> = line
        .split([' ', '(', ')'])
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(numbers.iter().all(|&n| n > 0.0), "{table}");
}

#[test]
fn impossible_numbers_are_a_bad_command_line() {
    for args in [
        &["fanout", "-p", "9", "-n", "0"][..],
        &["fanout", "-p", "9", "-n", "1"],
        &["idle", "-p", "9", "-n", "0"],
        &["fanout", "-p", "9", "--payload", "4"],
    ] {
        let out = bench(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(stderr.contains("Usage:"), "{args:?}: {stderr}");
    }
}

/// The README's recipe for starting a server to benchmark, as written there.
fn readme_recipe() -> (String, String) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("reading README.md");
    let after = |prefix: &str| {
        readme
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?} in README.md"))
            .to_owned()
    };
    let limit = after("ulimit -n ");
    let server = after("target/release/chat-server ");
    let limit = limit
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    (limit, server.trim_end_matches(" &").to_owned())
}

#[test]
fn the_readme_benchmark_recipe_starts_the_server_without_a_warning() {
    let (limit, args) = readme_recipe();
    let hard = Command::new("sh")
        .args(["-c", "ulimit -Hn"])
        .output()
        .expect("running sh");
    let hard = String::from_utf8_lossy(&hard.stdout).trim().to_owned();
    let wanted: u64 = limit
        .parse()
        .expect("a number after `ulimit -n` in the README");
    if hard != "unlimited" && hard.parse::<u64>().is_ok_and(|h| h < wanted) {
        // Not even root may raise a hard limit without CAP_SYS_RESOURCE: the recipe cannot run.
        eprintln!("hard open-file limit {hard} < {wanted}: the README recipe cannot run here");
        return;
    }
    // The same options, on a free port.
    let args = args.replace("--port 9009", "--port 0");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" {args}"))
        .arg(chat_tests::server_binary())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting chat-server under sh");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).expect("reading stdout");
    let _ = child.kill();
    let out = child.wait_with_output().expect("reaping chat-server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        first.starts_with("listening on "),
        "ulimit -n {limit}; chat-server {args}:\n{first}{stderr}"
    );
    assert!(
        !stderr.contains("WARN"),
        "ulimit -n {limit}; chat-server {args}:\n{stderr}"
    );
}
