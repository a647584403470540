//! Settings from a `--config` TOML file and `CHAT_*` variables, under the command line;
//! `--check-config`; SIGHUP reloading the file; JSON logs. All against the real binary.

use std::net::{IpAddr, TcpListener};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use chat_tests::{server_binary, Client, RedisServer, Server, TempFile, T};

/// `chat-server ARGS` run to its end, with `env` set and no CHAT_* from the test's own.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(server_binary());
    for (key, _) in std::env::vars() {
        if key.starts_with("CHAT_") {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `! line too long (max N bytes)` a server says to an overlong line: its --max-line.
fn max_line_of(s: &Server) -> String {
    let mut c = s.login("probe");
    c.send_line(&"x".repeat(200));
    c.expect_line("line too long", |l| l.starts_with("! line too long"))
}

#[test]
fn the_command_line_beats_the_file_which_beats_the_environment() {
    let file = TempFile::new("config", "max-line = 100\n");
    let env = |cmd: &mut Command| {
        cmd.env("CHAT_MAX_LINE", "50");
    };
    let from_file = Server::start_with(&["--config", file.as_str()], env);
    assert_eq!(max_line_of(&from_file), "! line too long (max 100 bytes)");
    let from_cli = Server::start_with(&["--config", file.as_str(), "--max-line", "70"], env);
    assert_eq!(max_line_of(&from_cli), "! line too long (max 70 bytes)");
    let from_env = Server::start_with(&[], env);
    assert_eq!(max_line_of(&from_env), "! line too long (max 50 bytes)");

    // Variables take what a shell or a unit would write: 1/yes for a flag, a comma list.
    let out = run(
        &["--check-config", "--port", "0"],
        &[("CHAT_NO_WEB", "1"), ("CHAT_TRUSTED", "10.0.0.0/8,::1")],
    );
    let settings = text(&out.stdout);
    assert!(
        settings.contains("no-web = true  # environment"),
        "{settings}"
    );
    assert!(
        settings.contains("trusted = [\"10.0.0.0/8\", \"::1\"]  # environment"),
        "{settings}"
    );

    // --check-config says where each came from.
    let file = TempFile::new(
        "config",
        "flood-rate = 3\nno-web = true\ntrusted = [\"10.0.0.0/8\", \"::1\"]\n",
    );
    let out = run(
        &[
            "--check-config",
            "--config",
            file.as_str(),
            "--port",
            "0",
            "--flood-burst",
            "4",
        ],
        &[("CHAT_FLOOD_RATE", "7"), ("CHAT_MAX_LINE", "60")],
    );
    let settings = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{settings}{}",
        text(&out.stderr)
    );
    for line in [
        "flood-rate = 3  # file",
        "flood-burst = 4  # command line",
        "max-line = 60  # environment",
        "login-timeout = 60  # default",
        "no-web = true  # file",
        "trusted = [\"10.0.0.0/8\", \"::1\"]  # file",
    ] {
        assert!(
            settings.lines().any(|l| l == line),
            "no {line:?} in:\n{settings}"
        );
    }
}

#[test]
fn unknown_keys_and_bad_values_name_the_key_and_the_line() {
    let cases = [
        (
            "port = 0\n\nmax_clients = 5\n",
            "line 3: unknown key `max_clients` (did you mean max-clients?)",
        ),
        (
            "port = 0\nflood-rate = \"fast\"\n",
            "line 2: flood-rate: invalid value 'fast'",
        ),
        (
            "port = 0\nno-web = \"yes\"\n",
            "line 2: no-web = \"yes\": expected true or false",
        ),
        (
            "port = 0\nhost = [\"a\", \"b\"]\n",
            "line 2: host = [\"a\", \"b\"]: expected one value",
        ),
        ("port =\n", "line 1: not TOML"),
    ];
    for (contents, expected) in cases {
        let file = TempFile::new("config", contents);
        for extra in [&[][..], &["--check-config"][..]] {
            let mut args = vec!["--config", file.as_str()];
            args.extend_from_slice(extra);
            let out = run(&args, &[]);
            let stderr = text(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{contents:?} {extra:?}: {stderr}"
            );
            let want = format!("chat-server: {}: {expected}", file.as_str());
            assert!(
                stderr.starts_with(&want),
                "{contents:?}:\nwant {want}\ngot  {stderr}"
            );
            assert!(out.stdout.is_empty(), "{contents:?}");
        }
    }
    let out = run(&["--config", "/nonexistent/chat.toml"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read /nonexistent/chat.toml"));
}

#[test]
fn check_config_passes_a_good_config_and_fails_a_broken_one() {
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("chat-config-data-{}", std::process::id()));
    let good = TempFile::new(
        "config",
        &format!("port = 0\nno-web = true\ncluster = \"{}\"\n", redis.url()),
    );
    let out = run(&["--check-config", "--config", good.as_str()], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("ok     Redis at {}: PONG", redis.url())),
        "{stderr}"
    );

    // A password is never shown: this Redis has none, so the check fails, masked.
    let secret = TempFile::new(
        "config",
        &format!(
            "port = 0\nno-web = true\ncluster = \"redis://:hunter2@127.0.0.1:{}\"\n",
            redis.port()
        ),
    );
    let out = run(&["--check-config", "--config", secret.as_str()], &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !stdout.contains("hunter2") && !stderr.contains("hunter2"),
        "{stdout}{stderr}"
    );
    assert!(
        stdout.contains("cluster = \"redis://:****@127.0.0.1:"),
        "{stdout}"
    );
    assert!(
        stderr.contains("error  Redis at redis://:****@127.0.0.1:"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(1));

    let data = TempFile::new(
        "config",
        &format!(
            "port = 0\nno-web = true\ndata-dir = \"{}\"\n",
            dir.display()
        ),
    );
    let out = run(&["--check-config", "--config", data.as_str()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&format!("ok     data dir {} writable", dir.display())));
    let _ = std::fs::remove_dir_all(&dir);

    // A port in use, a missing certificate, an unreachable Redis: each named, exit 1.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let broken = TempFile::new(
        "config",
        &format!(
        "host = \"127.0.0.1\"\nport = {port}\nno-web = true\ntls-cert = \"/nonexistent/cert.pem\"\n\
         tls-key = \"/nonexistent/key.pem\"\ncluster = \"redis://127.0.0.1:1\"\n"
    ),
    );
    let out = run(
        &[
            "--check-config",
            "--config",
            broken.as_str(),
            "--tls-port",
            "0",
        ],
        &[],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for what in [
        format!("error  line port 127.0.0.1:{port} free"),
        "error  TLS certificate and key".to_owned(),
        "error  Redis at redis://127.0.0.1:1".to_owned(),
    ] {
        assert!(stderr.contains(&what), "no {what:?} in:\n{stderr}");
    }
    assert!(
        stderr.contains("ok     TLS port 127.0.0.1:0 free"),
        "{stderr}"
    );
}

#[test]
fn check_config_before_a_reload_accepts_the_ports_of_the_running_server() {
    let s = Server::start(&["--no-web"]);
    let port = s.addr().port().to_string();
    let out = run(
        &[
            "--check-config",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--no-web",
        ],
        &[],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "ok     line port 127.0.0.1:{port} free (held by the chat-server running there)"
        )),
        "{stderr}"
    );
}

#[test]
fn sighup_changes_the_operator_password_and_the_trusted_addresses() {
    let first = TempFile::new("oper-first", "first password\n");
    let second = TempFile::new("oper-second", "second password\n");
    let settings = |oper: &str, trusted: &str| {
        format!("max-per-ip = 1\ntrusted = [\"{trusted}\"]\noper-password-file = \"{oper}\"\n")
    };
    let file = TempFile::new("config", &settings(first.as_str(), ""));
    let mut s = Server::start(&["--config", file.as_str(), "--no-web"]);
    let addr = s.addr();
    let from = |n: u8| Client::connect_from(addr, IpAddr::from([127, 0, 0, n]));
    let mut op = from(21);
    op.login("op");
    let mut held = from(22);
    held.expect_prompt();
    let mut over = from(22);
    over.expect_next("! too many connections from your address");

    file.write(&settings(second.as_str(), "127.0.0.22/32"));
    s.send_signal(libc::SIGHUP);
    s.wait_for_log("new settings in force", 1);
    // The new password, not the old one; the address is now trusted, so not limited.
    op.send_line("/oper first password");
    op.expect_next("! wrong password");
    op.send_line("/oper second password");
    op.expect_next("* you are now an operator");
    from(22).expect_prompt();

    // A password file that cannot be read keeps everything as it was.
    file.write(&settings("/nonexistent/oper", ""));
    s.send_signal(libc::SIGHUP);
    let log = s.wait_for_log("the running settings stay", 1);
    assert!(log.contains("cannot read the operator password"), "{log}");
    from(22).expect_prompt();
}

#[test]
fn sighup_changes_the_flood_rate_for_new_connections() {
    let file = TempFile::new("config", "flood-rate = 0\n");
    let mut s = Server::start(&["--config", file.as_str(), "--no-web"]);
    let mut before = s.login("before");
    // The flood limit applies live; history (how much each room keeps) takes a restart.
    file.write("flood-rate = 1\nflood-burst = 2\nhistory = 50\n");
    s.send_signal(libc::SIGHUP);
    let log = s.wait_for_log("new settings in force", 1);
    assert!(
        log.contains("flood-rate") && log.contains("flood-burst"),
        "{log}"
    );
    let restart = log
        .lines()
        .find(|l| l.contains("take a restart"))
        .unwrap_or_else(|| panic!("no restart warning:\n{log}"));
    assert!(restart.contains("history"), "{restart}");

    // A connection from after the reload gets the new limit...
    let mut after = s.login("after");
    for i in 0..4 {
        after.send_line(&format!("burst {i}"));
    }
    after.expect_line("the flood limit", |l| l == "! slow down");
    // ...one from before keeps the limit it started with (none).
    for i in 0..4 {
        before.send_line(&format!("burst {i}"));
    }
    let seen = before.sync();
    assert!(!seen.iter().any(|l| l == "! slow down"), "{seen:?}");

    // A file that does not parse keeps the running settings and says why.
    file.write("flood-rate = [\n");
    s.send_signal(libc::SIGHUP);
    let log = s.wait_for_log("kept the running settings", 1);
    assert!(log.contains("not TOML"), "{log}");
}

#[test]
fn sighup_reports_a_port_change_as_needing_a_restart() {
    // Started from the file alone (the harness always gives --port on the command line).
    let file = TempFile::new("config", "host = \"127.0.0.1\"\nport = 0\nno-web = true\n");
    let log_path =
        std::env::temp_dir().join(format!("chat-config-port-{}.log", std::process::id()));
    let mut child = Command::new(server_binary())
        .args(["--config", file.as_str()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert!(first.starts_with("listening on 127.0.0.1:"), "{first}");
    let addr = first.trim().trim_start_matches("listening on ").to_owned();
    file.write("host = \"127.0.0.1\"\nport = 1\nno-web = true\nmax-line = 100\n");
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: a signal to our own child process.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    let deadline = Instant::now() + T;
    let log = loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains("new settings in force") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Still listening where it was.
    let still_there = std::net::TcpStream::connect(&addr).is_ok();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&log_path);
    let restart = log.lines().find(|l| l.contains("take a restart"));
    assert!(restart.is_some_and(|l| l.contains("port")), "{log}");
    assert!(log.contains("max-line"), "{log}");
    assert!(still_there, "nothing listens on {addr} after the reload");
}

#[test]
fn json_logs_are_one_object_a_line() {
    let mut s = Server::start(&["--log-format", "json", "--no-web"]);
    let mut alice = s.login("alice");
    alice.send_line("/quit");
    alice.expect_line("goodbye", |l| l.starts_with("* bye"));
    s.send_signal(libc::SIGTERM);
    s.wait_exit(T).expect("exits on SIGTERM");
    let log = s.stderr();
    let mut messages = Vec::new();
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        messages.push((v["message"].as_str().unwrap_or("").to_owned(), v));
    }
    let (_, login) = messages
        .iter()
        .find(|(m, _)| m == "logged in")
        .unwrap_or_else(|| panic!("no login in:\n{log}"));
    assert_eq!(login["name"], "alice", "{login}");
    assert!(messages.iter().any(|(m, _)| m == "shutting down"), "{log}");
}
