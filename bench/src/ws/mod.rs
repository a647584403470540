//! `--ws`: chat-bench as a WebSocket client of the server's web port (PROTOCOL.md section 9).
//!
//! Every scenario runs unchanged over either transport. Only the edges differ: a connection
//! starts with the upgrade ([`handshake`]), each line a client sends goes out as one masked
//! text frame ([`push_masked_text`]), and the frames the server sends are turned back into
//! `payload\r\n` lines ([`Decoder`]) in the thread's shared read buffer, so the line checker of
//! the TCP path reads them as it is. Nothing is allocated per message on either side.
//!
//! Readers own no write half, so they cannot answer the server's pings. The server pings a
//! client after `--keepalive-secs` (default 60) of its silence and drops it when the pong does
//! not come within as long again; the clients that only read in a `--ws` run longer than about
//! that are dropped as unresponsive. The first ping is reported as a note.

pub mod decode;
pub mod handshake;

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};

use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

pub use decode::{Decoder, SLACK};

/// One text frame with a fresh mask, as RFC 6455 section 5.3 requires of a client.
pub fn push_masked_text(out: &mut Vec<u8>, text: &[u8]) {
    let key = mask_key();
    let header = FrameHeader {
        is_final: true,
        opcode: OpCode::Data(Data::Text),
        mask: Some(key),
        ..FrameHeader::default()
    };
    // Writing into a Vec cannot fail.
    let _ = header.format(text.len() as u64, out);
    let start = out.len();
    out.extend_from_slice(text);
    for (i, b) in out[start..].iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

thread_local! {
    /// xorshift64* state, seeded from the process's random hash keys.
    static MASK_STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(0u64) | 1);
}

/// A masking key per frame. The mask exists so that a browser's peer cannot steer the bytes a
/// proxy sees; chat-bench needs keys that vary, not secret ones, so a fast generator seeded
/// from the OS-randomised hash keys is enough.
fn mask_key() -> [u8; 4] {
    MASK_STATE.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((r >> 32) as u32).to_ne_bytes()
    })
}

#[cfg(test)]
mod tests {
    use std::io::{self, Cursor, Read, Write};

    use tungstenite::protocol::{Role, WebSocket};
    use tungstenite::Message;

    use super::*;
    use crate::net::Transport;

    /// What a server reads from: the client's bytes; what it writes goes nowhere.
    struct Wire(Cursor<Vec<u8>>);

    impl Read for Wire {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }

    impl Write for Wire {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn masked_lines_read_back_through_tungstenite_as_a_server() {
        let lines: Vec<Vec<u8>> = vec![
            b"alice".to_vec(),
            Vec::new(),
            "m:00001 héllo".as_bytes().to_vec(),
            vec![b'x'; 125],
            vec![b'y'; 126],
            vec![b'z'; 4000],
            vec![b'w'; 70_000],
        ];
        let mut out = Vec::new();
        for l in &lines {
            Transport::Ws.push_line(&mut out, l);
        }
        // A server-role socket refuses unmasked client frames: this checks the masking too.
        let mut ws = WebSocket::from_raw_socket(Wire(Cursor::new(out)), Role::Server, None);
        for l in &lines {
            match ws.read() {
                Ok(Message::Text(t)) => assert_eq!(t.as_bytes(), &l[..]),
                other => panic!(
                    "expected a text message of {} bytes, got {other:?}",
                    l.len()
                ),
            }
        }
        assert!(ws.read().is_err(), "nothing after the last line");
    }

    #[test]
    fn frames_carry_a_mask_that_varies() {
        let mut keys = std::collections::HashSet::new();
        for _ in 0..100 {
            let mut out = Vec::new();
            push_masked_text(&mut out, b"hi");
            let mut c = Cursor::new(&out);
            let (h, len) = FrameHeader::parse(&mut c).unwrap().unwrap();
            assert_eq!(
                (len, h.opcode, h.is_final),
                (2, OpCode::Data(Data::Text), true)
            );
            keys.insert(h.mask.expect("masked"));
        }
        assert!(keys.len() > 90, "{} distinct keys of 100", keys.len());
    }

    #[test]
    fn tcp_lines_end_with_crlf() {
        let mut out = Vec::new();
        Transport::Tcp.push_line(&mut out, b"b1");
        assert_eq!(out, b"b1\r\n");
    }
}
