//! deploy/: the systemd unit passes `systemd-analyze verify` and agrees with the example config,
//! the example config names every option of `chat-server --help` (and nothing else) and passes
//! `--check-config`, and every binary answers `--version`.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chat_tests::{binary, find_in_path, server_binary, T};

/// Where the unit looks for the server.
const INSTALLED: &str = "/usr/local/bin/chat-server";

/// Options of `--help` that are not settings, so not keys of the config file.
const NOT_KEYS: [&str; 4] = ["help", "version", "config", "check-config"];

/// Keys whose example values name files or services that only exist on a real installation.
const NEEDS_FILES_OR_SERVICES: [&str; 5] = [
    "tls-cert",
    "tls-key",
    "oper-password-file",
    "cluster",
    "data-dir",
];

fn deploy_file(name: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
        .join("deploy")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    (path, text)
}

/// A fresh directory of this test process.
fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("chat-deploy-{}-{n}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn show(&self) -> String {
        format!(
            "exit {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs a command to its end; kills it and fails if it takes longer than `T`.
fn run(cmd: &mut Command) -> Run {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let out = read_all(Box::new(child.stdout.take().expect("stdout")));
    let err = read_all(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + T;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {T:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Every option of `chat-server --help` with the heading it is listed under.
fn help_options() -> Vec<(String, String)> {
    let help = run(Command::new(server_binary()).arg("--help"));
    assert!(
        help.status.success(),
        "chat-server --help:\n{}",
        help.show()
    );
    let mut heading = String::new();
    let mut options = Vec::new();
    for line in help.stdout.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            heading = line.trim_end_matches(':').to_owned();
            continue;
        }
        // `      --max-clients <MAX_CLIENTS>` or `  -h, --help`: an option's own line.
        let trimmed = line.trim_start();
        let trimmed = match trimmed.split_once(", ") {
            Some((short, rest)) if short.len() == 2 && short.starts_with('-') => rest,
            _ => trimmed,
        };
        if let Some(rest) = trimmed.strip_prefix("--") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            options.push((heading.clone(), name));
        }
    }
    assert!(
        options.len() > 10,
        "too few options found in chat-server --help:\n{}",
        help.stdout
    );
    options
}

/// A `key = value` line of the config file, commented out (`# key = value`) or not.
#[derive(Debug)]
struct Key {
    /// 0-based line index.
    line: usize,
    key: String,
    value: String,
    commented: bool,
    /// The `# --- Heading ---` it is under ("Options" before the first).
    heading: String,
}

fn config_keys(text: &str) -> Vec<Key> {
    let mut heading = "Options".to_owned();
    let mut keys = Vec::new();
    for (line, raw) in text.lines().enumerate() {
        let commented = raw.starts_with('#');
        let body = raw.trim_start_matches('#').trim();
        if let Some(h) = body
            .strip_prefix("--- ")
            .and_then(|h| h.strip_suffix(" ---"))
        {
            heading = h.to_owned();
            continue;
        }
        let key: String = body
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
            .collect();
        let Some(value) = body[key.len()..].trim_start().strip_prefix('=') else {
            continue;
        };
        if key.is_empty() {
            continue;
        }
        keys.push(Key {
            line,
            key,
            value: value.trim().to_owned(),
            commented,
            heading: heading.clone(),
        });
    }
    keys
}

/// The value of a `Key=value` line of the unit; panics unless there is exactly one.
fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    let values: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect();
    assert_eq!(values.len(), 1, "expected one {key}= line in the unit");
    values[0]
}

/// The unit with its ExecStart pointing at the freshly built server, written as
/// `DIR/chat-server.service`; nothing else changes.
fn unit_for_this_build(dir: &Path, unit: &str) -> PathBuf {
    let server = server_binary().to_str().expect("a UTF-8 path");
    assert!(
        !server.contains(char::is_whitespace),
        "{server}: systemd would need it quoted"
    );
    let prefix = format!("ExecStart={INSTALLED} ");
    let mut rewritten = 0;
    let copy: String = unit
        .lines()
        .map(|line| match line.strip_prefix(&prefix) {
            Some(args) => {
                rewritten += 1;
                format!("ExecStart={server} {args}\n")
            }
            None => format!("{line}\n"),
        })
        .collect();
    assert_eq!(rewritten, 1, "expected one `{prefix}...` line in the unit");
    let path = dir.join("chat-server.service");
    std::fs::write(&path, copy).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

fn systemd_analyze_verify(unit: &Path) -> Run {
    let program = find_in_path("systemd-analyze").unwrap_or_else(|| {
        panic!(
            "systemd-analyze is not installed: the unit test needs it \
             (scripts/test installs it; by hand: apt-get install systemd)"
        )
    });
    run(Command::new(program).arg("verify").arg(unit))
}

/// The lines of `systemd-analyze verify`'s stderr about `unit` (warnings name its path or
/// `chat-server.service`).
fn complaints(run: &Run, unit: &Path) -> Vec<String> {
    let path = unit.to_string_lossy();
    run.stderr
        .lines()
        .filter(|l| l.contains(path.as_ref()) || l.contains("chat-server"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let (_, unit) = deploy_file("chat-server.service");
    let dir = temp_dir("unit");
    let path = unit_for_this_build(&dir, &unit);
    let verify = systemd_analyze_verify(&path);
    let found = complaints(&verify, &path);
    assert!(
        verify.status.success() && found.is_empty(),
        "systemd-analyze verify {}:\n{}",
        path.display(),
        verify.show()
    );

    // systemd-analyze only warns about a misspelt setting (and exits 0): check that this
    // systemd's warnings do name the unit, so the check above would see them.
    let misspelt = unit.replace("ProtectSystem=", "ProtectSystm=");
    let bad_dir = temp_dir("bad-unit");
    let bad = unit_for_this_build(&bad_dir, &misspelt);
    let verify_bad = systemd_analyze_verify(&bad);
    assert!(
        complaints(&verify_bad, &bad)
            .iter()
            .any(|l| l.contains("ProtectSystm")),
        "systemd-analyze verify did not warn about a misspelt setting:\n{}",
        verify_bad.show()
    );
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(bad_dir);
}

#[test]
fn unit_and_example_config_agree() {
    let (_, unit) = deploy_file("chat-server.service");
    let (_, config) = deploy_file("chat-server.toml");

    // The unit reads the example config from its configuration directory...
    let dir = unit_value(&unit, "ConfigurationDirectory");
    assert_eq!(
        unit_value(&unit, "ExecStart"),
        format!("{INSTALLED} --config /etc/{dir}/chat-server.toml")
    );
    // ...which keeps the database in the unit's state directory, its only writable place.
    let keys = config_keys(&config);
    let data_dir = keys.iter().find(|k| !k.commented && k.key == "data-dir");
    let state = unit_value(&unit, "StateDirectory");
    assert_eq!(
        data_dir.map(|k| k.value.as_str()),
        Some(format!("\"/var/lib/{state}\"").as_str()),
        "the example config's data-dir is not the unit's StateDirectory"
    );

    // Open files: one per connection plus about 32 of the server's own, for the default
    // --max-clients.
    let help = run(Command::new(server_binary()).arg("--help")).stdout;
    let max_clients: u64 = help
        .split("--max-clients")
        .nth(1)
        .and_then(|rest| rest.split("[default: ").nth(1))
        .and_then(|d| d.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .unwrap_or_else(|| panic!("no [default: N] for --max-clients in:\n{help}"));
    let nofile: u64 = unit_value(&unit, "LimitNOFILE")
        .parse()
        .expect("LimitNOFILE= a number");
    assert!(
        nofile >= max_clients + 32,
        "LimitNOFILE={nofile} is too low for the default --max-clients {max_clients}"
    );
}

#[test]
fn example_config_has_every_option_and_nothing_else() {
    let options = help_options();
    let (path, config) = deploy_file("chat-server.toml");
    let keys = config_keys(&config);
    let mut seen = HashSet::new();
    for k in &keys {
        assert!(
            seen.insert(k.key.as_str()),
            "{}:{}: {} is there twice",
            path.display(),
            k.line + 1,
            k.key
        );
        let option = options.iter().find(|(_, name)| *name == k.key);
        let Some((heading, _)) = option.filter(|(_, name)| !NOT_KEYS.contains(&name.as_str()))
        else {
            panic!(
                "{}:{}: {} is not an option of chat-server --help",
                path.display(),
                k.line + 1,
                k.key
            );
        };
        assert_eq!(
            &k.heading,
            heading,
            "{}:{}: {} belongs under the heading --help lists it under",
            path.display(),
            k.line + 1,
            k.key
        );
    }
    let missing: Vec<&str> = options
        .iter()
        .map(|(_, name)| name.as_str())
        .filter(|name| !NOT_KEYS.contains(name) && !seen.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "{} lacks options of chat-server --help: {missing:?}",
        path.display()
    );
}

/// The example config with every key set (uncommented) but those in `NEEDS_FILES_OR_SERVICES`
/// (commented out), and those keys with their values.
fn example_with_all_keys_set() -> (String, Vec<Key>) {
    let (_, config) = deploy_file("chat-server.toml");
    let keys = config_keys(&config);
    let mut lines: Vec<String> = config.lines().map(str::to_owned).collect();
    let mut set = Vec::new();
    for k in keys {
        if NEEDS_FILES_OR_SERVICES.contains(&k.key.as_str()) {
            lines[k.line] = format!("# {} = {}", k.key, k.value);
        } else {
            lines[k.line] = format!("{} = {}", k.key, k.value);
            set.push(k);
        }
    }
    (lines.join("\n") + "\n", set)
}

/// `chat-server --check-config --config FILE --port 0 --web-port 0 --max-clients 100`, without
/// any `CHAT_*` variable of this environment (ports that may be taken here, and a client limit
/// that fits any open-file limit, come from the command line, which wins over the file).
fn check_config(file: &Path) -> Run {
    let mut cmd = Command::new(server_binary());
    cmd.arg("--check-config").arg("--config").arg(file).args([
        "--port",
        "0",
        "--web-port",
        "0",
        "--max-clients",
        "100",
    ]);
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("CHAT_") {
            cmd.env_remove(var);
        }
    }
    run(&mut cmd)
}

/// `value` without whitespace and without a trailing `# comment` (outside quotes).
fn normalized(value: &str) -> String {
    let mut quoted = false;
    let mut out = String::new();
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => break,
            c if c.is_whitespace() && !quoted => continue,
            _ => {}
        }
        out.push(c);
    }
    out
}

#[test]
fn example_config_passes_check_config() {
    let (text, set) = example_with_all_keys_set();
    let dir = temp_dir("check");
    let file = dir.join("chat-server.toml");
    std::fs::write(&file, &text).expect("writing the config");
    let check = check_config(&file);
    assert_eq!(
        check.status.code(),
        Some(0),
        "--check-config refused the example config with every key set:\n{text}\n{}",
        check.show()
    );
    // The effective settings are printed as `key = value`: the file's, where the command line
    // does not override them.
    let printed = |key: &str| {
        check.stdout.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| normalized(v))
        })
    };
    assert_eq!(printed("port").as_deref(), Some("0"), "{}", check.show());
    for k in set
        .iter()
        .filter(|k| !["port", "web-port", "max-clients"].contains(&k.key.as_str()))
    {
        assert_eq!(
            printed(&k.key),
            Some(normalized(&k.value)),
            "--check-config does not show {} = {} from the file:\n{}",
            k.key,
            k.value,
            check.show()
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn unknown_key_fails_check_config_naming_it_and_its_line() {
    let (text, _) = example_with_all_keys_set();
    let mut lines: Vec<&str> = text.lines().collect();
    let at = lines.len() / 2;
    lines.insert(at, "max-client = 5");
    let dir = temp_dir("unknown-key");
    let file = dir.join("chat-server.toml");
    std::fs::write(&file, lines.join("\n") + "\n").expect("writing the config");
    let check = check_config(&file);
    assert_eq!(check.status.code(), Some(1), "{}", check.show());
    let line = format!("line {}", at + 1);
    assert!(
        check.stderr.contains("max-client") && check.stderr.contains(&line),
        "stderr should name the key max-client and {line}:\n{}",
        check.show()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_binary_prints_its_name_and_the_workspace_version() {
    for name in ["chat-server", "chat-client", "chat-bench"] {
        let version = run(Command::new(binary(name)).arg("--version"));
        assert!(
            version.status.success(),
            "{name} --version:\n{}",
            version.show()
        );
        assert_eq!(
            version.stdout,
            format!("{name} {}\n", env!("CARGO_PKG_VERSION")),
            "{name} --version:\n{}",
            version.show()
        );
    }
}
