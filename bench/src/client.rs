//! One simulated client after its login (see `login.rs`): read lines until told to stop.
//!
//! Reading is where a load tool spends its time (a fan-out to 1000 clients is 1000 copies of
//! every message), so it is built to be cheap. Instead of a read buffer per client, a reader
//! waits for readiness and then reads with `try_read` into a large buffer owned by the thread:
//! no task awaits while holding it, so one 256 KiB buffer serves every client on that thread,
//! and a client itself keeps only the unfinished tail of a line. Lines are split with memchr
//! and checked in place; the shared counters are touched once per read, not once per line.
//! With `--ws` the raw bytes are read a little further into that buffer and rewritten in place
//! as lines (`ws::Decoder`), so the checking is the same for both transports.
//! With `--tls` the socket holds records, not lines, so `try_read` cannot be used: the reader
//! polls rustls' `AsyncRead` into the same shared buffer instead (`take` serves both), and
//! the plain TCP path stays exactly as it was.

use std::cell::RefCell;
use std::io::{self, ErrorKind};
use std::sync::atomic::Ordering::*;
use std::sync::Arc;

use std::task::Poll;

use memchr::memchr;
use tokio::sync::watch;

use crate::login::MAX_LINE;
use crate::marker::{self, Kind};
use crate::net::{self, Reader};
use crate::order;
use crate::servers;
use crate::shared::Shared;
use crate::sys::now_ns;
use crate::ws::{self, Decoder};

/// Bytes read per `try_read`.
const SCRATCH: usize = 256 * 1024;

thread_local! {
    static BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_LINE + ws::SLACK + SCRATCH]);
}

/// What one receiver counted, returned when it stops.
#[derive(Debug, Clone, Default)]
pub struct RecvStats {
    /// Per sender index (0..senders): messages received and the highest seq seen.
    pub count: Vec<u64>,
    pub last_seq: Vec<u64>,
    pub out_of_order: u64,
    /// The order the measured messages arrived in, folded (see `order.rs`).
    pub order: u64,
    last_probe: u64,
}

impl RecvStats {
    pub fn new(senders: usize) -> Self {
        RecvStats {
            count: vec![0; senders],
            last_seq: vec![0; senders],
            order: order::START,
            ..Default::default()
        }
    }
}

/// Reads and checks every line the server sends to client `me` until `stop` changes (or
/// its sender is dropped) or the connection ends. `dec` decodes WebSocket frames (`--ws`).
pub async fn read_loop(
    sh: Arc<Shared>,
    me: usize,
    mut rd: Reader,
    mut carry: Vec<u8>,
    mut dec: Option<Decoder>,
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
        if let Some(d) = &mut dec {
            if d.take_pings() > 0 {
                sh.note(ws_ping_note());
            }
            if let Some(why) = d.ended() {
                lost(&sh, me, why);
                return st;
            }
        }
        let res = match &mut rd {
            // The fast path: wait for readiness, then one `try_read` into the shared scratch.
            Reader::Tcp(r) => {
                tokio::select! {
                    biased;
                    _ = stop.changed() => return st,
                    ready = r.readable() => if let Err(e) = ready {
                        lost(&sh, me, &format!("read error: {e}"));
                        return st;
                    }
                }
                take(&sh, me, &mut st, &mut carry, &mut dec, |b| r.try_read(b))
            }
            // TLS: poll the decrypting reader into the same scratch. The buffer is borrowed
            // only inside one poll, never across an await.
            Reader::Tls(r) => tokio::select! {
                biased;
                _ = stop.changed() => return st,
                res = std::future::poll_fn(|cx| {
                    let res = take(&sh, me, &mut st, &mut carry, &mut dec, |b| {
                        match net::poll_tls(r, cx, b) {
                            Poll::Ready(res) => res,
                            Poll::Pending => Err(ErrorKind::WouldBlock.into()),
                        }
                    });
                    match res {
                        Err(e) if e.kind() == ErrorKind::WouldBlock => Poll::Pending,
                        res => Poll::Ready(res),
                    }
                }) => res,
            },
        };
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

/// One read: puts the carried tail of a line in front of the scratch, lets `read` fill the
/// scratch after it (raw frames a little further on with `--ws`, decoded in place), and
/// checks the complete lines. Returns what `read` returned.
fn take(
    sh: &Shared,
    me: usize,
    st: &mut RecvStats,
    carry: &mut Vec<u8>,
    dec: &mut Option<Decoder>,
    read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
) -> io::Result<usize> {
    BUF.with(|b| {
        let mut b = b.borrow_mut();
        let keep = carry.len();
        b[..keep].copy_from_slice(carry);
        let (n, end) = match dec {
            None => {
                let n = read(&mut b[keep..keep + SCRATCH])?;
                (n, keep + n)
            }
            Some(d) => {
                let raw = keep + ws::SLACK;
                let n = read(&mut b[raw..raw + SCRATCH])?;
                (n, keep + d.decode(&mut b[..raw + n], keep, raw))
            }
        };
        if n == 0 {
            return Ok(0);
        }
        let used = lines(sh, me, st, &b[..end], now_ns());
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
    })
}

/// Readers own no write half, so the server's pings go unanswered (see `ws`).
fn ws_ping_note() -> String {
    "the server sent WebSocket pings (it does after --keepalive-secs of a client's silence); \
     chat-bench's readers do not answer them, so silent clients are dropped after about \
     twice that"
        .into()
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
                    // Only the probe of the first client on my own server counts (`--also`).
                    if m.sender as usize == servers::server_of(me, sh.servers) {
                        sh.saw_probe(m.seq, st.last_probe);
                        st.last_probe = st.last_probe.max(m.seq);
                    }
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
                    st.order = order::step(st.order, m.sender, m.seq);
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

    #[test]
    fn the_arrival_order_is_folded_and_probes_count_per_server() {
        let sh = Shared::new("b", 2, 1).with_servers(2);
        let (mut x, mut y) = (RecvStats::new(2), RecvStats::new(2));
        let (a, b) = (msg_line(0, 1), msg_line(1, 1));
        lines(&sh, 4, &mut x, &[a.clone(), b.clone()].concat(), 0);
        lines(&sh, 5, &mut y, &[b, a].concat(), 0);
        assert_eq!(
            (x.count.clone(), x.out_of_order),
            (y.count.clone(), y.out_of_order)
        );
        assert_ne!(x.order, y.order, "the same messages in another order");
        let mut z = RecvStats::new(2);
        lines(
            &sh,
            6,
            &mut z,
            &[msg_line(0, 1), msg_line(1, 1)].concat(),
            0,
        );
        assert_eq!(x.order, z.order);
        // Client 3 is on server 1: only b1's probe is its own.
        sh.probe_base.store(1, Release);
        let probe = |sender: u32| {
            let mut l = format!("[b{sender}] ").into_bytes();
            let m = Marker {
                kind: Kind::Probe,
                sender,
                seq: 1,
                sent_ns: 0,
            };
            marker::encode(&mut l, &m, 64);
            l.extend_from_slice(b"\r\n");
            l
        };
        let mut w = RecvStats::new(2);
        lines(&sh, 3, &mut w, &probe(0), 0);
        assert_eq!(sh.probe_seen.load(Acquire), 0);
        lines(&sh, 3, &mut w, &probe(1), 0);
        assert_eq!(sh.probe_seen.load(Acquire), 1);
        assert_eq!(sh.garbled.load(Acquire), 0);
    }
}
