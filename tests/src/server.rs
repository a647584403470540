//! A `chat-server` child process started for one test.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{server_binary, Client, T};

static LOG_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A running server. Dropping it kills (SIGKILL) and reaps the child if it is still running.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    exited: Option<ExitStatus>,
    stderr_path: PathBuf,
    /// The web port, from the `web on HOST:PORT` line (none with `--no-web`).
    web_addr: Option<SocketAddr>,
    /// The TLS line port, from the `tls on HOST:PORT` line (with `--tls-cert`).
    tls_addr: Option<SocketAddr>,
    /// Reads whatever the server writes to stdout after its ready lines.
    stdout_rest: Option<JoinHandle<Vec<u8>>>,
}

/// A unique file in the temp dir for one child's standard error.
fn new_log_path(tag: &str) -> PathBuf {
    let n = LOG_COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("chat-e2e-{}-{n}-{tag}.log", std::process::id()))
}

impl Server {
    /// Starts `chat-server --host 127.0.0.1 --port 0 EXTRA...` and waits for its
    /// `listening on HOST:PORT` line, its `web on HOST:PORT` line unless `--no-web`, and its
    /// `tls on HOST:PORT` line with `--tls-cert`.
    pub fn start(extra_args: &[&str]) -> Server {
        Self::start_with(extra_args, |_| {})
    }

    /// [`Server::start`], with a last say over the command (environment, limits).
    pub fn start_with(extra_args: &[&str], configure: impl FnOnce(&mut Command)) -> Server {
        let web = !extra_args.contains(&"--no-web");
        let tls = extra_args.contains(&"--tls-cert");
        let stderr_path = new_log_path("server");
        let stderr = File::create(&stderr_path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", stderr_path.display()));
        let mut command = Command::new(server_binary());
        command
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        configure(&mut command);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", server_binary().display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let ready_lines = 1 + usize::from(web) + usize::from(tls);
        let stdout_rest = std::thread::spawn(move || read_stdout(stdout, ready_lines, tx));
        let first = rx.recv_timeout(T);
        let mut server = Server {
            child,
            // Replaced below once the line is parsed.
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            web_addr: None,
            tls_addr: None,
            exited: None,
            stderr_path,
            stdout_rest: Some(stdout_rest),
        };
        let line = match first {
            Ok(line) => line,
            Err(e) => {
                let status = server.wait_exit(Duration::from_millis(200));
                panic!(
                    "chat-server {extra_args:?} printed no `listening on` line ({e:?}); \
                     exit status {status:?}; stderr:\n{}",
                    server.stderr()
                );
            }
        };
        let addr = line
            .strip_suffix('\n')
            .and_then(|l| l.strip_prefix("listening on "))
            .and_then(|a| a.parse::<SocketAddr>().ok());
        match addr {
            Some(addr) if addr.ip().to_string() == "127.0.0.1" && addr.port() != 0 => {
                server.addr = addr;
                if web {
                    server.web_addr = Some(server.read_ready_line(&rx, "web on "));
                }
                if tls {
                    server.tls_addr = Some(server.read_ready_line(&rx, "tls on "));
                }
                server
            }
            _ => panic!(
                "chat-server {extra_args:?}: first stdout line should be \
                 `listening on 127.0.0.1:PORT` with a real port, got {line:?}; stderr:\n{}",
                server.stderr()
            ),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The web port's address; panics if the server was started with `--no-web`.
    pub fn web_addr(&self) -> SocketAddr {
        self.web_addr.expect("the server was started with --no-web")
    }

    /// The TLS line port's address; panics if the server was started without `--tls-cert`.
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls_addr
            .expect("the server was started without --tls-cert")
    }

    /// Reads the next ready line, `PREFIX127.0.0.1:PORT`, with a real port.
    fn read_ready_line(&mut self, lines: &mpsc::Receiver<String>, prefix: &str) -> SocketAddr {
        let line = lines.recv_timeout(T);
        let addr = line
            .as_deref()
            .ok()
            .and_then(|l| l.strip_suffix('\n'))
            .and_then(|l| l.strip_prefix(prefix))
            .and_then(|a| a.parse::<SocketAddr>().ok());
        match addr {
            Some(addr) if addr.ip().to_string() == "127.0.0.1" && addr.port() != 0 => addr,
            _ => panic!(
                "chat-server: expected a `{prefix}127.0.0.1:PORT` line, got {line:?}; stderr:\n{}",
                self.stderr()
            ),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` to the child (only while it has not been reaped, so the PID is still ours).
    pub fn send_signal(&mut self, sig: libc::c_int) {
        assert!(
            self.poll_exit().is_none(),
            "cannot signal chat-server: it already exited with {:?}; stderr:\n{}",
            self.exited,
            self.stderr()
        );
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) has no memory-safety preconditions; pid is our unreaped child.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(
            rc,
            0,
            "kill({pid}, {sig}): {}",
            std::io::Error::last_os_error()
        );
    }

    /// Kills the child with SIGKILL (no chance to say goodbye) and waits until it is gone.
    pub fn kill(&mut self) {
        self.send_signal(libc::SIGKILL);
        if self.wait_exit(T).is_none() {
            panic!(
                "chat-server (pid {}) still running {T:?} after SIGKILL",
                self.pid()
            );
        }
    }

    fn poll_exit(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().expect("try_wait on chat-server");
        }
        self.exited
    }

    /// Waits up to `timeout` for the child to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.poll_exit() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything written to stdout after the ready lines; only once it has exited.
    pub fn stdout_after_listening(&mut self) -> Vec<u8> {
        assert!(self.exited.is_some(), "stdout_after_listening before exit");
        self.stdout_rest
            .take()
            .expect("stdout_after_listening called once")
            .join()
            .expect("stdout reader thread")
    }

    /// Waits (up to [`T`]) until the server's whole log holds `what` at least `times` times,
    /// and returns its tail ([`Server::stderr`]).
    pub fn wait_for_log(&self, what: &str, times: usize) -> String {
        let deadline = Instant::now() + T;
        loop {
            let log = std::fs::read(&self.stderr_path).unwrap_or_default();
            if String::from_utf8_lossy(&log).matches(what).count() >= times {
                return self.stderr();
            }
            assert!(
                Instant::now() < deadline,
                "{what:?} not {times} time(s) in the log:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's standard error so far (its log).
    pub fn stderr(&self) -> String {
        let bytes = std::fs::read(&self.stderr_path).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        const KEEP: usize = 8000;
        if text.len() > KEEP {
            let mut start = text.len() - KEEP;
            while !text.is_char_boundary(start) {
                start += 1;
            }
            format!("[... {} bytes before]\n{}", start, &text[start..])
        } else {
            text.into_owned()
        }
    }

    /// A new connection (nothing read yet).
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// A new connection logged in as `name` (welcome line read).
    pub fn login(&self, name: &str) -> Client {
        let mut c = self.connect();
        c.login(name);
        c
    }

    /// Logs every name in, in order, and reads on each client the `* NAME joined` lines of the
    /// ones after it, so every returned client has nothing pending.
    pub fn users<const N: usize>(&self, names: [&str; N]) -> [Client; N] {
        match self.users_vec(&names).try_into() {
            Ok(array) => array,
            Err(_) => unreachable!("one client per name"),
        }
    }

    /// [`Server::users`] for a list.
    pub fn users_vec(&self, names: &[&str]) -> Vec<Client> {
        let mut clients: Vec<Client> = Vec::new();
        for name in names {
            let c = self.login(name);
            for earlier in &mut clients {
                earlier.expect_joined(name);
            }
            clients.push(c);
        }
        clients
    }

    /// Connects until the server answers with the prompt rather than `! server full` (a slot
    /// frees up only once the server has noticed a leaving connection).
    pub fn connect_until_prompt(&self) -> Client {
        let deadline = Instant::now() + T;
        let mut refusals = 0;
        loop {
            let mut c = self.connect();
            match c.prompt_or_line(|l| l == "! server full") {
                Ok(_) => return c,
                Err(lines) => {
                    refusals += 1;
                    c.expect_closed();
                    assert!(
                        Instant::now() < deadline,
                        "still `! server full` after {refusals} tries in {T:?} (last: {lines:?})"
                    );
                    std::thread::sleep(Duration::from_millis(25));
                }
            }
        }
    }
}

/// Sends the first `ready_lines` lines to `start()`, then collects the rest.
fn read_stdout(stdout: ChildStdout, ready_lines: usize, ready: mpsc::Sender<String>) -> Vec<u8> {
    let mut reader = BufReader::new(stdout);
    for _ in 0..ready_lines {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.is_empty() {
            return Vec::new(); // dropping `ready` tells start() there was no line
        }
        let _ = ready.send(line);
    }
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    rest
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.poll_exit().is_none() {
            // Only our own child, by its handle (SIGKILL to its PID), then reaped.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- chat-server (pid {}, {}) stderr ---\n{}\n--- end of stderr ---",
                self.child.id(),
                self.addr,
                self.stderr()
            );
        }
        let _ = std::fs::remove_file(&self.stderr_path);
    }
}
