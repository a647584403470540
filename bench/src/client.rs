//! One simulated client: connect, log in per PROTOCOL.md section 2, then read lines until told
//! to stop.
//!
//! Reading is where a load tool spends its time (a fan-out to 1000 clients is 1000 copies of
//! every message), so it is built to be cheap. Instead of a read buffer per client, a reader
//! waits for readiness and then reads with `try_read` into a large buffer owned by the thread:
//! no task awaits while holding it, so one 256 KiB buffer serves every client on that thread,
//! and a client itself keeps only the unfinished tail of a line. Lines are split with memchr
//! and checked in place; the shared counters are touched once per read, not once per line.

use std::cell::RefCell;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::*;
use std::sync::Arc;

use memchr::{memchr, memmem};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::marker::{self, Kind};
use crate::shared::Shared;
use crate::sys::now_ns;

const PROMPT: &[u8] = b"Username: ";
/// Bytes read per `try_read`.
const SCRATCH: usize = 256 * 1024;
/// A "line" longer than this without a newline is dropped as garbage.
const MAX_LINE: usize = 64 * 1024;

thread_local! {
    static BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH + MAX_LINE]);
}

/// Why a login did not succeed. The first three end the whole run: retrying cannot help.
#[derive(Debug)]
pub enum LoginFail {
    Refused(SocketAddr),
    Rejected { name: String, line: String },
    Full,
    Other(String),
}

impl LoginFail {
    pub fn is_fatal(&self) -> bool {
        !matches!(self, LoginFail::Other(_))
    }
}

impl std::fmt::Display for LoginFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginFail::Refused(a) => write!(
                f,
                "cannot connect to {a}: connection refused (is chat-server running there? \
                 pick the server with --host and -p)"
            ),
            LoginFail::Rejected { name, line } if line.contains("taken") => write!(
                f,
                "login as {name} rejected: the server said {line:?}; another client holds \
                 these names, pick another name prefix with --prefix"
            ),
            LoginFail::Rejected { name, line } => {
                write!(f, "login as {name} rejected: the server said {line:?}")
            }
            LoginFail::Full => write!(
                f,
                "the server answered `! server full`: start it with a larger --max-clients"
            ),
            LoginFail::Other(s) => f.write_str(s),
        }
    }
}

/// True if `name` occurs in `line` as a whole name, not inside a longer one. A '.' right
/// after it may end a sentence.
pub fn has_word(line: &[u8], name: &[u8]) -> bool {
    let name_byte =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.') || b >= 0x80;
    let ends = |i: usize| i >= line.len() || !name_byte(line[i]);
    memmem::find_iter(line, name).any(|p| {
        let after = p + name.len();
        (p == 0 || !name_byte(line[p - 1]))
            && (ends(after) || (line[after] == b'.' && ends(after + 1)))
    })
}

fn io_fail(e: io::Error, what: &str) -> LoginFail {
    LoginFail::Other(format!("{what}: {e}"))
}

/// Connects and logs in as `name`. Returns the stream and whatever arrived after the
/// welcome line.
pub async fn login(addr: SocketAddr, name: &str) -> Result<(TcpStream, Vec<u8>), LoginFail> {
    let mut s = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Err(LoginFail::Refused(addr)),
        Err(e) => return Err(io_fail(e, &format!("connect to {addr}"))),
    };
    // Our own Nagle delays must not be charged to the server.
    s.set_nodelay(true).map_err(|e| io_fail(e, "TCP_NODELAY"))?;
    let mut buf = Vec::with_capacity(512);
    // 1. Banner lines, then the prompt (no line ending).
    loop {
        if let Some(p) = memmem::find(&buf, PROMPT) {
            buf.drain(..p + PROMPT.len());
            break;
        }
        let complete = memchr::memrchr(b'\n', &buf).map_or(&buf[..0], |nl| &buf[..nl]);
        if let Some(l) = complete
            .split(|&b| b == b'\n')
            .find(|l| l.starts_with(b"! "))
        {
            let l = String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l));
            return Err(if l == "! server full" {
                LoginFail::Full
            } else {
                LoginFail::Other(l.into())
            });
        }
        fill(&mut s, &mut buf, "waiting for the `Username: ` prompt").await?;
    }
    // 2. The name; 3. a `* ` line naming us, or a `! ` refusal.
    let mut line = Vec::with_capacity(name.len() + 2);
    line.extend_from_slice(name.as_bytes());
    line.extend_from_slice(b"\r\n");
    s.write_all(&line)
        .await
        .map_err(|e| io_fail(e, "sending the name"))?;
    loop {
        while let Some(nl) = memchr(b'\n', &buf) {
            let l = &buf[..nl];
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            if l.starts_with(b"! ") {
                let line = String::from_utf8_lossy(l).into_owned();
                return Err(LoginFail::Rejected {
                    name: name.to_owned(),
                    line,
                });
            }
            let ok = l.starts_with(b"* ") && has_word(l, name.as_bytes());
            buf.drain(..=nl);
            if ok {
                return Ok((s, buf));
            }
        }
        fill(&mut s, &mut buf, "waiting for the welcome line").await?;
    }
}

async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>, what: &str) -> Result<(), LoginFail> {
    if buf.len() > MAX_LINE {
        return Err(LoginFail::Other(format!(
            "{what}: {} bytes without it",
            buf.len()
        )));
    }
    let mut chunk = [0u8; 1024];
    match s.read(&mut chunk).await {
        Ok(0) => Err(LoginFail::Other(format!(
            "{what}: the server closed the connection"
        ))),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Err(e) => Err(io_fail(e, what)),
    }
}

/// What one receiver counted, returned when it stops.
#[derive(Debug, Clone, Default)]
pub struct RecvStats {
    /// Per sender index (0..senders): messages received and the highest seq seen.
    pub count: Vec<u64>,
    pub last_seq: Vec<u64>,
    pub out_of_order: u64,
    last_probe: u64,
}

impl RecvStats {
    pub fn new(senders: usize) -> Self {
        RecvStats {
            count: vec![0; senders],
            last_seq: vec![0; senders],
            ..Default::default()
        }
    }
}

/// Reads and checks every line the server sends to client `me` until `stop` changes (or
/// its sender is dropped) or the connection ends.
pub async fn read_loop(
    sh: Arc<Shared>,
    me: usize,
    rd: OwnedReadHalf,
    mut carry: Vec<u8>,
    mut stop: watch::Receiver<bool>,
) -> RecvStats {
    let mut st = RecvStats::new(sh.senders);
    // Lines that came with the welcome.
    let used = lines(&sh, me, &mut st, &carry, now_ns());
    carry.drain(..used);
    if carry.len() > MAX_LINE {
        carry.clear();
    }
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return st,
            r = rd.readable() => if let Err(e) = r {
                lost(&sh, me, &format!("read error: {e}"));
                return st;
            }
        }
        let res: io::Result<usize> = BUF.with(|b| {
            let mut b = b.borrow_mut();
            let keep = carry.len();
            b[..keep].copy_from_slice(&carry);
            let n = rd.try_read(&mut b[keep..keep + SCRATCH])?;
            if n == 0 {
                return Ok(0);
            }
            let end = keep + n;
            let used = lines(&sh, me, &mut st, &b[..end], now_ns());
            carry.clear();
            if end - used > MAX_LINE {
                sh.garbled.fetch_add(1, Relaxed);
                sh.note(format!(
                    "client {me}: over {MAX_LINE} bytes without a line end"
                ));
            } else {
                carry.extend_from_slice(&b[used..end]);
            }
            Ok(n)
        });
        match res {
            Ok(0) => {
                lost(&sh, me, "the server closed the connection");
                return st;
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => {
                lost(&sh, me, &format!("read error: {e}"));
                return st;
            }
        }
    }
}

fn lost(sh: &Shared, me: usize, why: &str) {
    if !sh.stopping.load(Acquire) {
        sh.disconnects.fetch_add(1, Relaxed);
        sh.note(format!("client {}: {why}", sh.name(me)));
    }
}

/// Handles every complete line in `data` (all received at `now`); returns the bytes used.
fn lines(sh: &Shared, me: usize, st: &mut RecvStats, data: &[u8], now: u64) -> usize {
    let mut pos = 0;
    let mut delivered = 0u64;
    let mut hist = None;
    while let Some(nl) = memchr(b'\n', &data[pos..]) {
        let line = &data[pos..pos + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += nl + 1;
        match line.first() {
            Some(b'[') => match marker::check_line(line, &sh.prefix) {
                Ok(m) if m.kind == Kind::Probe => {
                    sh.saw_probe(m.seq, st.last_probe);
                    st.last_probe = st.last_probe.max(m.seq);
                }
                Ok(m) if m.sender as usize == me => {
                    sh.echoes.fetch_add(1, Relaxed);
                }
                Ok(m) if (m.sender as usize) < st.count.len() => {
                    let s = m.sender as usize;
                    st.count[s] += 1;
                    if m.seq <= st.last_seq[s] {
                        st.out_of_order += 1;
                    }
                    st.last_seq[s] = st.last_seq[s].max(m.seq);
                    delivered += 1;
                    let h = hist.get_or_insert_with(|| sh.hist(me));
                    Shared::record_latency(h, now.saturating_sub(m.sent_ns));
                    sh.rtt_arrival(s, m.seq, now);
                }
                Ok(m) => garbled(sh, me, line, &format!("unknown sender index {}", m.sender)),
                Err(bad) => garbled(sh, me, line, bad.as_str()),
            },
            Some(b'!') if line == b"! slow down" => {
                sh.slow_down.fetch_add(1, Relaxed);
            }
            Some(b'!') => {
                sh.server_errors.fetch_add(1, Relaxed);
                sh.note(format!(
                    "server said to {}: {}",
                    sh.name(me),
                    String::from_utf8_lossy(line)
                ));
            }
            Some(b'*') if line.ends_with(b" left (too slow)") => {
                sh.note(format!("server: {}", String::from_utf8_lossy(line)));
            }
            Some(b'*') | None => {}
            Some(_) => garbled(sh, me, line, "no `* `, `! ` or `[` prefix"),
        }
    }
    drop(hist);
    if delivered > 0 {
        sh.delivered.fetch_add(delivered, Relaxed);
        sh.last_delivery_ns.fetch_max(now, Relaxed);
    }
    pos
}

fn garbled(sh: &Shared, me: usize, line: &[u8], why: &str) {
    sh.garbled.fetch_add(1, Relaxed);
    let shown: String = String::from_utf8_lossy(line).chars().take(100).collect();
    sh.note(format!(
        "garbled line at {} ({why}): {shown:?}",
        sh.name(me)
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marker::Marker;

    #[test]
    fn whole_words() {
        assert!(has_word(b"* welcome, b1! you are in lobby", b"b1"));
        assert!(!has_word(b"* welcome, b10! you are in lobby", b"b1"));
        assert!(!has_word(b"* welcome, xb1! you", b"b1"));
        assert!(has_word(b"* hello b1.", b"b1"));
        assert!(!has_word(b"* hello b1.x", b"b1"));
        assert!(has_word(b"b1", b"b1"));
        assert!(has_word(b"* b10 b1 joined", b"b1"));
    }

    fn msg_line(sender: u32, seq: u64) -> Vec<u8> {
        let mut l = format!("[b{sender}] ").into_bytes();
        marker::encode(
            &mut l,
            &Marker {
                kind: Kind::Msg,
                sender,
                seq,
                sent_ns: 0,
            },
            64,
        );
        l.extend_from_slice(b"\r\n");
        l
    }

    #[test]
    fn counts_order_echoes_garbage_and_slow_down() {
        let sh = Shared::new("b", 2, 1);
        let mut st = RecvStats::new(2);
        let mut data = Vec::new();
        for (s, q) in [(0, 1), (1, 1), (0, 2), (0, 2), (1, 3), (1, 2)] {
            data.extend(msg_line(s, q));
        }
        data.extend(msg_line(5, 1)); // myself: an echo
        data.extend(msg_line(7, 1)); // not a sender
        data.extend_from_slice(b"* b9 joined\r\n! slow down\r\n! what\r\n[b0] m:junk\r\n");
        let mut tail = msg_line(1, 4);
        tail.truncate(20);
        data.extend_from_slice(&tail);
        let used = lines(&sh, 5, &mut st, &data, 1_000_000);
        assert_eq!(used, data.len() - 20, "the partial line is kept");
        assert_eq!(st.count, vec![3, 3]);
        assert_eq!(st.last_seq, vec![2, 3]);
        assert_eq!(st.out_of_order, 2);
        assert_eq!(sh.delivered.load(Relaxed), 6);
        assert_eq!(sh.echoes.load(Relaxed), 1);
        assert_eq!(sh.garbled.load(Relaxed), 2);
        assert_eq!(sh.slow_down.load(Relaxed), 1);
        assert_eq!(sh.server_errors.load(Relaxed), 1);
        let h = sh.latency();
        assert_eq!(h.len(), 6);
        assert!(sh
            .slow_down_error()
            .unwrap()
            .to_string()
            .contains("--flood-rate 0"));
    }
}
