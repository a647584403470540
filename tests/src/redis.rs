//! A real `redis-server` child process for one test, for the cluster tests (PROTOCOL.md
//! section 15).
//!
//! It listens on a free loopback port, keeps nothing on disk (`--save ""`, `--appendonly no`,
//! its working directory a temp dir of its own), and can be stopped and started again on the
//! same port to play an outage. Dropping it kills (SIGKILL) and reaps the child and removes the
//! temp dir.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::{find_in_path, T};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    /// Redis's working directory (it writes nothing there, but never the test's cwd either).
    dir: PathBuf,
    /// Its log (stdout and stderr), shown when a test fails.
    log: PathBuf,
}

impl RedisServer {
    /// Starts `redis-server` on a free port of 127.0.0.1 and waits until it answers `PING`.
    /// Panics if `redis-server` is not installed (`scripts/test` installs it).
    pub fn start() -> RedisServer {
        let program = find_in_path("redis-server").unwrap_or_else(|| {
            panic!(
                "redis-server is not installed: the cluster tests need a real Redis \
                 (scripts/test installs it; by hand: apt-get install redis-server)"
            )
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!("chat-e2e-redis-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(&tag);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let log = std::env::temp_dir().join(format!("{tag}.log"));
        let mut redis = RedisServer {
            child: None,
            port: free_port(),
            dir,
            log,
        };
        let deadline = Instant::now() + T;
        loop {
            redis.spawn(&program);
            if redis.wait_ready(deadline) {
                return redis;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start within {T:?}; its log:\n{}",
                redis.log_text()
            );
            // The free port was taken between looking and listening: try another one.
            redis.kill();
            redis.port = free_port();
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `GET key` (inline command; keys without spaces): the value, or None if unset.
    pub fn get(&self, key: &str) -> Option<String> {
        use std::io::{BufRead, BufReader, Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("Redis");
        stream.set_read_timeout(Some(T)).expect("timeout");
        stream
            .write_all(format!("GET {key}\r\n").as_bytes())
            .expect("GET");
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        reader.read_line(&mut head).expect("a reply");
        let len: i64 = head
            .trim_end()
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("GET {key}: unexpected reply {head:?}"));
        let len = usize::try_from(len).ok()?;
        let mut value = vec![0; len + 2];
        reader.read_exact(&mut value).expect("the value");
        value.truncate(len);
        Some(String::from_utf8(value).expect("UTF-8"))
    }

    /// Stops Redis with SIGTERM and waits for it to exit (SIGKILL if it takes over [`T`]).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            panic!("RedisServer::stop: redis-server is not running");
        };
        if child
            .try_wait()
            .expect("try_wait on redis-server")
            .is_none()
        {
            let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
            // SAFETY: kill(2) has no memory-safety preconditions; pid is our unreaped child.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + T;
            while child
                .try_wait()
                .expect("try_wait on redis-server")
                .is_none()
            {
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "redis-server did not exit within {T:?} of SIGTERM; its log:\n{}",
                        self.log_text()
                    );
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Starts Redis again on the same port (empty: it keeps nothing) and waits until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "RedisServer::restart while running");
        let program = find_in_path("redis-server").expect("redis-server in PATH");
        let deadline = Instant::now() + T;
        loop {
            self.spawn(&program);
            if self.wait_ready(deadline) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start again on port {} within {T:?}; its log:\n{}",
                self.port,
                self.log_text()
            );
            self.kill();
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn spawn(&mut self, program: &std::path::Path) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.log.display()));
        let log2 = log.try_clone().expect("cloning a file handle");
        let child = Command::new(program)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dir", self.dir.to_str().expect("a UTF-8 temp dir")])
            .args(["--daemonize", "no", "--logfile", ""])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", program.display()));
        self.child = Some(child);
    }

    /// Waits until Redis answers `PING` with `+PONG`; false if it exited or `deadline` passed.
    fn wait_ready(&mut self, deadline: Instant) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if ping(addr) {
                return true;
            }
            let exited = match self.child.as_mut() {
                Some(child) => child
                    .try_wait()
                    .expect("try_wait on redis-server")
                    .is_some(),
                None => true,
            };
            if exited || Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Redis's log so far.
    pub fn log_text(&self) -> String {
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// A port of 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// True if a Redis at `addr` answers `PING` with `+PONG`.
fn ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    let mut got = 0;
    while got < reply.len() {
        match stream.read(&mut reply[got..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    &reply == b"+PONG\r\n"
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- redis-server (port {}) log ---\n{}\n--- end of redis log ---",
                self.port,
                self.log_text()
            );
        }
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
