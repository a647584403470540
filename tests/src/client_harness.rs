//! Running `chat-client` in end-to-end tests: with piped standard input ([`PipedClient`]), and
//! on a real terminal inside a private tmux server ([`Tmux`]).
//!
//! The client is built like the server ([`crate::binary`]): `cargo build --bin chat-client`
//! into the same target directory and profile as the test run.
//! Every wait has a deadline ([`T`]) and polls a condition; a failure shows what the client
//! printed (or what the screen held).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{find_in_path, T};

/// The path of a freshly built `chat-client`; panics with cargo's output if the build fails.
pub fn client_binary() -> &'static Path {
    crate::binary("chat-client")
}

/// The host and port arguments for a server address.
pub fn addr_args(addr: SocketAddr) -> [String; 2] {
    [addr.ip().to_string(), addr.port().to_string()]
}

/// What a finished client printed.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Panics unless stdout holds a line equal to `line`.
    pub fn expect_stdout_line(&self, line: &str) {
        assert!(
            self.stdout.lines().any(|l| l == line),
            "chat-client stdout has no line {line:?}\n{self}"
        );
    }
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- chat-client {} ---\nstdout:\n{}\nstderr:\n{}\n---",
            self.status, self.stdout, self.stderr
        )
    }
}

/// `chat-client` with standard input, output and error on pipes.
pub struct PipedClient {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

impl PipedClient {
    /// Starts `chat-client ARGS...` (`NO_COLOR` unset: colour must stay off on a pipe anyway).
    pub fn spawn(args: &[&str]) -> PipedClient {
        PipedClient::spawn_with_env(args, &[])
    }

    /// [`PipedClient::spawn`] with extra environment variables.
    pub fn spawn_with_env(args: &[&str], env: &[(&str, &Path)]) -> PipedClient {
        let mut child = Command::new(client_binary())
            .args(args)
            .envs(env.iter().copied())
            .env_remove("NO_COLOR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", client_binary().display()));
        let stdout = drain(child.stdout.take().expect("piped stdout"));
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        PipedClient {
            stdin: child.stdin.take(),
            child,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// Writes to the client's standard input; fails if the client has closed it (exited).
    pub fn try_write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin.write_all(bytes).and_then(|()| stdin.flush())
    }

    /// Ends the client's standard input (EOF).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits up to `timeout` for the client to exit (killing it if it does not) and returns
    /// what it printed.
    pub fn finish_within(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => break None,
            }
        };
        let status = match status {
            Some(status) => status,
            None => {
                let _ = self.child.kill();
                let status = self.child.wait().expect("reaping chat-client");
                let out = self.collect(status);
                panic!("chat-client did not exit within {timeout:?}; killed it\n{out}");
            }
        };
        self.collect(status)
    }

    /// [`PipedClient::finish_within`] with [`T`].
    pub fn finish(self) -> Finished {
        self.finish_within(T)
    }

    fn collect(&mut self, status: ExitStatus) -> Finished {
        let text = |h: Option<JoinHandle<String>>| h.map(|h| h.join().unwrap_or_default());
        Finished {
            status,
            stdout: text(self.stdout.take()).unwrap_or_default(),
            stderr: text(self.stderr.take()).unwrap_or_default(),
        }
    }
}

impl Drop for PipedClient {
    fn drop(&mut self) {
        // Only our own child, by its handle.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `chat-client ARGS...` with `input` on standard input (then EOF) until it exits.
pub fn run_piped(args: &[&str], input: &[u8]) -> Finished {
    let mut client = PipedClient::spawn(args);
    // A client that could not connect exits without reading its input: its status and output
    // tell the story, not the broken pipe.
    let _ = client.try_write(input);
    client.close_stdin();
    client.finish()
}

static TMUX_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A private tmux server (its own socket, `tmux -L NAME`) holding one window of a fixed size.
/// Dropping it kills that server, and only that one.
pub struct Tmux {
    socket: String,
    config: PathBuf,
    /// `XDG_DATA_HOME` of everything run in it, so the client's history file stays private to
    /// the test.
    data_dir: PathBuf,
    /// The server's socket file, which `kill-server` leaves behind.
    socket_path: Option<PathBuf>,
}

/// Fails with a clear message when tmux is missing (`.ci/run` installs it).
pub fn require_tmux() {
    assert!(
        find_in_path("tmux").is_some(),
        "tmux is not installed; these tests drive chat-client on a real terminal through it \
         (`apt-get install tmux`; .ci/run installs it)"
    );
}

impl Tmux {
    /// Starts `command` (run by `sh -c`) in a detached `width` x `height` window. The pane stays
    /// after the command exits, so its last screen and exit status can be read.
    pub fn start(width: u16, height: u16, command: &str) -> Tmux {
        require_tmux();
        let n = TMUX_COUNTER.fetch_add(1, Ordering::Relaxed);
        let socket = format!("chat-e2e-{}-{n}", std::process::id());
        let config = std::env::temp_dir().join(format!("{socket}.conf"));
        std::fs::write(&config, "set -g remain-on-exit on\nset -g status off\n")
            .unwrap_or_else(|e| panic!("writing {}: {e}", config.display()));
        let data_dir = std::env::temp_dir().join(format!("{socket}.data"));
        let mut tmux = Tmux {
            socket,
            config,
            data_dir,
            socket_path: None,
        };
        tmux.run(&[
            "new-session",
            "-d",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ]);
        let path = tmux.run(&["display-message", "-p", "#{socket_path}"]);
        tmux.socket_path = Some(PathBuf::from(path.trim_end()));
        tmux
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-L")
            .arg(&self.socket)
            .arg("-f")
            .arg(&self.config)
            .env_remove("NO_COLOR")
            .env_remove("TMUX")
            .env("XDG_DATA_HOME", &self.data_dir)
            .env("TERM", "xterm-256color");
        cmd
    }

    /// Runs a tmux command and returns its stdout; panics if it fails.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self
            .command()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running tmux {args:?}: {e}"));
        assert!(
            out.status.success(),
            "tmux {args:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` literally (no Enter).
    pub fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "0", "-l", text]);
    }

    /// Presses keys by tmux name (`Enter`, `C-c`, `C-d`, `Up`, ...).
    pub fn press(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Runs `command` in the window again, once the last one has exited (the screen is
    /// cleared first). The data directory stays, so this is how a test runs the client twice.
    pub fn respawn(&self, command: &str) {
        self.run(&["respawn-pane", "-t", "0", command]);
        self.run(&["clear-history", "-t", "0"]);
    }

    /// The `XDG_DATA_HOME` the programs in this window see.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// True once the terminal bell has rung in the window (tmux's `window_bell_flag`).
    pub fn bell_rang(&self) -> bool {
        self.run(&["display-message", "-p", "-t", "0", "#{window_bell_flag}"])
            .trim()
            == "1"
    }

    /// Pastes `text` as a terminal without bracketed paste does: `tmux paste-buffer` without
    /// `-p` writes the whole buffer to the pane at once, each LF turned into the CR that Enter
    /// sends.
    pub fn paste_unbracketed(&self, text: &str) {
        self.run(&["set-buffer", "-b", "chat-paste", "--", text]);
        self.run(&["paste-buffer", "-d", "-b", "chat-paste", "-t", "0"]);
    }

    /// The visible screen as text, wrapped lines joined, trailing blank lines removed (spaces
    /// at the end of a line stay).
    pub fn screen(&self) -> String {
        let text = self.run(&["capture-pane", "-p", "-J", "-t", "0"]);
        text.trim_end_matches('\n').to_owned()
    }

    /// The visible screen with its escape sequences (colours).
    pub fn screen_with_escapes(&self) -> String {
        self.run(&["capture-pane", "-p", "-e", "-J", "-t", "0"])
    }

    /// Polls the screen until `pred` holds for it (within [`T`]) and returns that screen.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + T;
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "screen never showed {what} within {T:?}; it shows:\n{screen}\n[end of screen]"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Polls `cond` until it holds (within [`T`]); the screen is shown if it never does.
    pub fn wait_until(&self, what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + T;
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "{what} did not happen within {T:?}; the screen shows:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until the last non-blank screen line is exactly `line` (the input line).
    pub fn wait_for_last_line(&self, line: &str) -> String {
        self.wait_for(&format!("{line:?} as the last line"), |s| {
            last_line(s) == line
        })
    }

    /// Waits until the screen ends with the input line `text`, however it is wrapped (see
    /// [`ends_with_input`]).
    pub fn wait_for_input(&self, text: &str) -> String {
        self.wait_for(&format!("{text:?} as the input line"), |s| {
            ends_with_input(s, text)
        })
    }

    /// The exit status of a [`client_command`], from the line it prints when the client has
    /// exited (tmux's own `pane_dead_status` is not always filled in).
    pub fn wait_exit_status(&self) -> i32 {
        const MARK: &str = "[chat-client exited with ";
        let screen = self.wait_for("the client exiting", |s| s.contains(MARK));
        let rest = &screen[screen.find(MARK).unwrap_or(0) + MARK.len()..];
        rest.split(']')
            .next()
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no exit status after {MARK:?} in\n{screen}"))
    }
}

/// The last line of a screen that is not blank, without trailing spaces (`capture-pane -J`
/// keeps them).
pub fn last_line(screen: &str) -> &str {
    screen
        .lines()
        .rev()
        .map(str::trim_end)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// True if the last screen rows, put together, are exactly `text`. An input line longer than
/// the window wraps, and `capture-pane -J` joins only the rows the terminal wrapped itself, not
/// those rustyline ended with its own line feed, so the rows are put together here.
pub fn ends_with_input(screen: &str, text: &str) -> bool {
    let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
    (1..=lines.len().min(8)).any(|rows| lines[lines.len() - rows..].concat().trim_end() == text)
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Ok(out) = self
                .command()
                .args(["capture-pane", "-p", "-J", "-t", "0"])
                .output()
            {
                eprintln!(
                    "--- tmux screen ---\n{}\n--- end of screen ---",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
        }
        let _ = self.command().arg("kill-server").output();
        let _ = std::fs::remove_file(&self.config);
        let _ = std::fs::remove_dir_all(&self.data_dir);
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A shell command line that runs `chat-client ARGS...`, then reports its exit status and
/// whether it left the terminal in raw mode.
pub fn client_command(args: &[&str]) -> String {
    let mut cmd = quote(&client_binary().to_string_lossy());
    for arg in args {
        cmd.push(' ');
        cmd.push_str(&quote(arg));
    }
    format!(
        "{cmd}; code=$?; \
         if stty -a | grep -q -- -icanon; then echo '[terminal left raw]'; fi; \
         echo \"[chat-client exited with $code]\"; exit $code"
    )
}

fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}
