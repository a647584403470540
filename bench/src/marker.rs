//! The marker every benchmark message starts with, and its check on arrival.
//!
//! A payload is `K:SSSSS:QQQQQQQQ:TTTTTTTTTTTT:CCCCCCCC:` (39 bytes: kind, then fixed-width
//! lower-case hex: sender index, sequence number, send time in ns since the run's epoch, check
//! value) followed by letters from a fixed pseudo-random pattern up to the payload size. K is
//! `m` for a measured message and `p` for a barrier probe (the sequence is then its round).
//! Fixed widths make the check branch-free and cheap: a receiver verifies millions of these
//! per second, and the tool must not become the bottleneck it measures.
//!
//! Why so much checking: a server that cuts lines at read boundaries, or interleaves two
//! senders' bytes, produces lines that still look like messages. Counting those as deliveries
//! would report a broken server as a fast one, with latencies computed from a time field that
//! belongs to another message. So the check value covers every field and the payload length,
//! the padding starts at an offset taken from the check (a splice inside the padding shows),
//! and the receiver also compares the `[NAME]` the server put in front with the sender index.
//! A line that fails any of this is garbled: counted as such, and its message as lost.

use std::sync::OnceLock;

use memchr::memchr;

/// Measured message or barrier probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Msg,
    Probe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub kind: Kind,
    /// Client index of the sender (its name is prefix + index), at most [`MAX_SENDER`].
    pub sender: u32,
    /// 1, 2, 3... per sender (the round for a probe), at most [`MAX_SEQ`].
    pub seq: u64,
    /// Send time, ns since the run's epoch (`sys::now_ns`), below 2^48 (78 hours).
    pub sent_ns: u64,
}

/// Hex digits of the sender, sequence, time and check fields.
const WIDTHS: [usize; 4] = [5, 8, 12, 8];
/// Bytes of the marker: kind, and each field with the ':' before it, and a final ':'.
pub const MARKER_LEN: usize = 1 + 5 + 1 + 8 + 1 + 12 + 1 + 8 + 1 + 1;
pub const MAX_SENDER: u32 = (1 << 20) - 1;
pub const MAX_SEQ: u64 = (1 << 32) - 1;
const TIME_MASK: u64 = (1 << 48) - 1;

/// Why a line did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// Not a marker of the fixed shape at the start of the payload.
    Shape,
    /// The check value does not match the fields and the length.
    Check,
    /// The padding is not the pattern it should be.
    Padding,
    /// The `[NAME]` does not name the sender of the marker.
    Name,
}

impl Bad {
    pub fn as_str(self) -> &'static str {
        match self {
            Bad::Shape => "no marker",
            Bad::Check => "check value wrong",
            Bad::Padding => "padding damaged",
            Bad::Name => "name does not match sender",
        }
    }
}

/// Longest payload the tool writes (the server's default line limit is 4096 bytes).
pub const MAX_PAYLOAD: usize = 4000;
/// Offsets into the padding pattern (a prime, so offsets from different checks rarely align).
const OFFSETS: usize = 251;

/// Letters the padding is cut from: long enough for any payload from any offset.
fn pattern() -> &'static [u8] {
    static P: OnceLock<Vec<u8>> = OnceLock::new();
    P.get_or_init(|| {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..MAX_PAYLOAD + OFFSETS)
            .map(|_| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                b'a' + ((x >> 33) % 26) as u8
            })
            .collect()
    })
}

/// 32 bits of a hash over every field and the payload's total length.
fn check(m: &Marker, len: usize) -> u32 {
    let kind = match m.kind {
        Kind::Msg => 1u64,
        Kind::Probe => 2,
    };
    let mut h = kind ^ ((len as u64) << 8);
    for v in [u64::from(m.sender), m.seq, m.sent_ns] {
        h = (h ^ v).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 31;
    }
    h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    (h ^ (h >> 29)) as u32
}

/// Value of each byte as a hex digit; anything else has bit 4 set.
static HEX_VALUE: [u8; 256] = {
    let mut t = [0x10u8; 256];
    let mut i = 0;
    while i < 16 {
        t[b"0123456789abcdef"[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// The marker text alone (without padding), for a payload of `len` bytes in total.
fn push_marker(out: &mut Vec<u8>, m: &Marker, len: usize) -> u32 {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let c = check(m, len);
    out.push(match m.kind {
        Kind::Msg => b'm',
        Kind::Probe => b'p',
    });
    let values = [u64::from(m.sender), m.seq, m.sent_ns, u64::from(c)];
    for (v, w) in values.into_iter().zip(WIDTHS) {
        out.push(b':');
        for i in (0..w).rev() {
            out.push(HEX[((v >> (i * 4)) & 0xf) as usize]);
        }
    }
    out.push(b':');
    c
}

/// Appends the payload for `m`: the marker, then padding up to `size` bytes (a payload
/// never gets shorter than its marker, [`MARKER_LEN`] bytes). Fields out of range are cut
/// to their width (callers keep them in range).
pub fn encode(out: &mut Vec<u8>, m: &Marker, size: usize) {
    let m = Marker {
        sender: m.sender & MAX_SENDER,
        seq: m.seq & MAX_SEQ,
        sent_ns: m.sent_ns & TIME_MASK,
        ..*m
    };
    let len = size.clamp(MARKER_LEN, MAX_PAYLOAD);
    let c = push_marker(out, &m, len);
    let off = c as usize % OFFSETS;
    out.extend_from_slice(&pattern()[off..off + len - MARKER_LEN]);
}

/// Verifies a payload and returns its marker.
pub fn decode(payload: &[u8]) -> Result<Marker, Bad> {
    let Some(head) = payload.get(..MARKER_LEN) else {
        return Err(Bad::Shape);
    };
    let kind = match head[0] {
        b'm' => Kind::Msg,
        b'p' => Kind::Probe,
        _ => return Err(Bad::Shape),
    };
    let mut values = [0u64; 4];
    let mut bad = 0u8;
    let mut pos = 1;
    for (v, w) in values.iter_mut().zip(WIDTHS) {
        bad |= head[pos] ^ b':';
        for &c in &head[pos + 1..pos + 1 + w] {
            let d = HEX_VALUE[c as usize];
            bad |= d & 0xf0;
            *v = (*v << 4) | u64::from(d);
        }
        pos += 1 + w;
    }
    bad |= head[pos] ^ b':';
    if bad != 0 {
        return Err(Bad::Shape);
    }
    let [sender, seq, sent_ns, got] = values;
    let m = Marker {
        kind,
        sender: sender as u32,
        seq,
        sent_ns,
    };
    let c = check(&m, payload.len());
    if u64::from(c) != got {
        return Err(Bad::Check);
    }
    let pad = &payload[MARKER_LEN..];
    let off = c as usize % OFFSETS;
    match pattern().get(off..off + pad.len()) {
        Some(want) if same(want, pad) => {}
        _ => return Err(Bad::Padding),
    }
    Ok(m)
}

/// Whether `name` is `prefix` followed by the decimal `index` (no leading zeros).
pub fn name_is(name: &[u8], prefix: &[u8], index: u32) -> bool {
    let Some(digits) = name.strip_prefix(prefix) else {
        return false;
    };
    if digits.is_empty() || digits.len() > 10 || (digits[0] == b'0' && digits.len() > 1) {
        return false;
    }
    let mut v = 0u64;
    for &c in digits {
        if !c.is_ascii_digit() {
            return false;
        }
        v = v * 10 + u64::from(c - b'0');
    }
    v == u64::from(index)
}

/// `a == b` for slices of equal length, without a library call per short compare.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = 0u64;
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let x = u64::from_ne_bytes(x.try_into().unwrap_or([0; 8]));
        let y = u64::from_ne_bytes(y.try_into().unwrap_or([0; 8]));
        diff |= x ^ y;
    }
    for (x, y) in ra.iter().zip(rb) {
        diff |= u64::from(x ^ y);
    }
    diff == 0
}

/// Splits a user message line `[NAME] PAYLOAD` (CRLF already removed) and verifies it.
pub fn check_line(line: &[u8], prefix: &[u8]) -> Result<Marker, Bad> {
    let body = line.strip_prefix(b"[").ok_or(Bad::Shape)?;
    // Names cannot hold ']', so the first one closes the name.
    let close = memchr(b']', body).ok_or(Bad::Shape)?;
    if body.get(close + 1) != Some(&b' ') {
        return Err(Bad::Shape);
    }
    let (name, payload) = (&body[..close], &body[close + 2..]);
    let m = decode(payload)?;
    if !name_is(name, prefix, m.sender) {
        return Err(Bad::Name);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(sender: u32, seq: u64, sent_ns: u64) -> Marker {
        Marker {
            kind: Kind::Msg,
            sender,
            seq,
            sent_ns,
        }
    }

    fn payload(m: &Marker, size: usize) -> Vec<u8> {
        let mut v = Vec::new();
        encode(&mut v, m, size);
        v
    }

    fn line(name: &str, p: &[u8]) -> Vec<u8> {
        let mut l = format!("[{name}] ").into_bytes();
        l.extend_from_slice(p);
        l
    }

    #[test]
    fn round_trip_at_many_sizes() {
        for size in [0, 10, 39, 40, 64, 200, 4000, 9000] {
            for m in [
                msg(0, 1, 0),
                msg(7, 42, 123_456_789_012),
                msg(MAX_SENDER, MAX_SEQ, TIME_MASK),
                Marker {
                    kind: Kind::Probe,
                    sender: 0,
                    seq: 3,
                    sent_ns: 5,
                },
            ] {
                let p = payload(&m, size);
                assert_eq!(p.len(), size.clamp(MARKER_LEN, MAX_PAYLOAD), "size {size}");
                assert!(p.iter().all(|b| b.is_ascii_graphic()), "{p:?}");
                assert_eq!(decode(&p), Ok(m), "{}", String::from_utf8_lossy(&p));
            }
        }
    }

    #[test]
    fn the_default_payload_reads_plainly() {
        let p = payload(&msg(3, 1000, 987_654_321_000), 64);
        assert_eq!(p.len(), 64);
        assert!(
            p.starts_with(b"m:00003:000003e8:00e5f4c8f368:"),
            "{}",
            String::from_utf8_lossy(&p)
        );
        assert!(p[MARKER_LEN..].iter().all(u8::is_ascii_lowercase));
    }

    #[test]
    fn a_line_verifies_with_its_own_name_only() {
        let p = payload(&msg(12, 5, 99), 64);
        assert_eq!(check_line(&line("b12", &p), b"b"), Ok(msg(12, 5, 99)));
        assert_eq!(check_line(&line("b1", &p), b"b"), Err(Bad::Name));
        assert_eq!(check_line(&line("b012", &p), b"b"), Err(Bad::Name));
        assert_eq!(check_line(&line("x12", &p), b"b"), Err(Bad::Name));
        assert_eq!(check_line(b"* b12 joined", b"b"), Err(Bad::Shape));
        assert_eq!(check_line(b"[b12 -> you] m:1", b"b"), Err(Bad::Shape));
        assert_eq!(check_line(&line("b12]x", &p), b"b"), Err(Bad::Shape));
    }

    #[test]
    fn spliced_messages_are_rejected() {
        // Two messages cut at the same place and glued crosswise, as a server that relays raw
        // reads from two senders can do: no cut point may produce a valid line.
        let a = payload(&msg(1, 5, 1_700_000_111), 64);
        let b = payload(&msg(2, 9, 1_700_000_222), 64);
        // Also the same sender's consecutive messages (fields differ in few digits).
        let c = payload(&msg(1, 6, 1_700_000_333), 64);
        let mut tried = 0;
        for (x, y) in [(&a, &b), (&b, &a), (&a, &c), (&c, &a)] {
            for cut in 1..64 {
                let mut glued = x[..cut].to_vec();
                glued.extend_from_slice(&y[cut..]);
                if glued == *x || glued == *y {
                    continue; // the cut fell where both are alike: no splice
                }
                tried += 1;
                assert!(
                    decode(&glued).is_err(),
                    "cut {cut}: {}",
                    String::from_utf8_lossy(&glued)
                );
            }
        }
        assert!(tried > 200, "{tried}");
    }

    #[test]
    fn truncated_or_extended_or_damaged_payloads_are_rejected() {
        let p = payload(&msg(4, 77, 31_337), 64);
        for len in 0..p.len() {
            assert!(decode(&p[..len]).is_err(), "truncated to {len}");
        }
        let mut longer = p.clone();
        longer.push(b'a');
        assert_eq!(decode(&longer), Err(Bad::Check));
        for i in 0..p.len() {
            let mut d = p.clone();
            d[i] = if d[i] == b'z' { b'y' } else { b'z' };
            assert!(decode(&d).is_err(), "byte {i} changed");
        }
        let mut d = p.clone();
        d[60] = if d[60] == b'a' { b'b' } else { b'a' };
        assert_eq!(decode(&d), Err(Bad::Padding));
        let mut d = p.clone();
        d[12] = if d[12] == b'0' { b'1' } else { b'0' };
        assert_eq!(decode(&d), Err(Bad::Check));
    }

    #[test]
    fn malformed_markers_are_shape_errors() {
        let good = payload(&msg(1, 2, 3), 39);
        assert!(decode(&good).is_ok());
        let swap = |i: usize, c: u8| {
            let mut v = good.clone();
            v[i] = c;
            v
        };
        for bad in [
            Vec::new(),
            good[..38].to_vec(),
            swap(0, b'x'),
            swap(1, b';'),
            swap(3, b'G'),
            swap(3, b'A'), // upper case is not ours
            swap(10, b' '),
            swap(38, b'a'),
            b"m:1:2:3:00000000:aaaaaaaaaaaaaaaaaaaaaaaa".to_vec(),
        ] {
            assert_eq!(
                decode(&bad),
                Err(Bad::Shape),
                "{}",
                String::from_utf8_lossy(&bad)
            );
        }
    }

    #[test]
    fn name_matching() {
        assert!(name_is(b"b0", b"b", 0));
        assert!(name_is(b"bench_4294967295", b"bench_", u32::MAX));
        assert!(name_is(b"b1048575", b"b", MAX_SENDER));
        assert!(!name_is(b"b00", b"b", 0));
        assert!(!name_is(b"b", b"b", 0));
        assert!(!name_is(b"c1", b"b", 1));
    }
}
