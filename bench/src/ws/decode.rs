//! Server frames into lines, in place in the reader's buffer.
//!
//! The server sends each line as one unmasked text message. [`Decoder::decode`] rewrites the
//! raw bytes of a read as `payload\r\n` per message, so the TCP path's line checker reads
//! them unchanged. It works in place: the raw bytes are read `SLACK` bytes after where the
//! lines go, and as every frame has a header of at least two bytes, the lines written never
//! catch up with the raw bytes still to be read. A frame may end anywhere, in its header
//! too: the state between reads is a few bytes per client.

use std::io::Cursor;

use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// Room left between where decoded lines go and where raw bytes are read. The lines can gain
/// on the raw bytes only by the line ending of a frame whose header came in an earlier read,
/// so 2 would do.
pub const SLACK: usize = 16;
/// Longest frame header (RFC 6455 section 5.2).
const MAX_HEADER: usize = 14;
/// A close frame's payload is at most 125 bytes: a code and a reason.
const MAX_CONTROL: usize = 125;

/// What the bytes being read belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Part {
    #[default]
    Header,
    /// Payload of a text, binary or continuation frame; `fin`: its end ends the message.
    Data { fin: bool },
    /// Payload of a ping or pong: dropped.
    Skip,
    /// Payload of a close frame: kept for the report.
    Close,
}

/// Per-connection decoding state.
#[derive(Debug, Default)]
pub struct Decoder {
    /// The start of a header that ended a read.
    head: [u8; MAX_HEADER],
    head_len: usize,
    part: Part,
    /// Payload bytes of the current frame not read yet.
    left: u64,
    /// A fragmented message is open (its next data frame must be a continuation).
    in_message: bool,
    close: Vec<u8>,
    /// Pings received and not yet taken by [`Decoder::take_pings`].
    pings: u64,
    /// Why the connection is over: a close frame, or a protocol error. Nothing after it counts.
    end: Option<String>,
}

impl Decoder {
    /// Decodes the raw bytes `buf[raw_at..]`; the lines they hold go to `buf[out_at..]`.
    /// Returns the length of those lines. `raw_at - out_at` must be at least [`SLACK`].
    pub fn decode(&mut self, buf: &mut [u8], out_at: usize, raw_at: usize) -> usize {
        assert!(
            raw_at >= out_at + SLACK,
            "decode needs {SLACK} bytes of slack"
        );
        let end = buf.len();
        let (mut r, mut w) = (raw_at, out_at);
        while r < end && self.end.is_none() {
            match self.part {
                Part::Header => {
                    r = self.header(buf, r);
                    if self.part != Part::Header && self.left == 0 {
                        w = self.finish(buf, w, r);
                    }
                }
                part => {
                    let n = self.left.min((end - r) as u64) as usize;
                    match part {
                        Part::Data { .. } => {
                            buf.copy_within(r..r + n, w);
                            w += n;
                        }
                        Part::Close => {
                            let room = MAX_CONTROL.saturating_sub(self.close.len());
                            self.close.extend_from_slice(&buf[r..r + n.min(room)]);
                        }
                        Part::Skip | Part::Header => {}
                    }
                    r += n;
                    self.left -= n as u64;
                    if self.left == 0 {
                        w = self.finish(buf, w, r);
                    }
                }
            }
        }
        w - out_at
    }

    /// Why the connection ended, once a close frame or a protocol error came.
    pub fn ended(&self) -> Option<&str> {
        self.end.as_deref()
    }

    /// Pings seen since the last call.
    pub fn take_pings(&mut self) -> u64 {
        std::mem::take(&mut self.pings)
    }

    /// Reads a header starting at `buf[r]`, or the rest of one begun in an earlier read;
    /// returns where its payload starts.
    fn header(&mut self, buf: &[u8], r: usize) -> usize {
        let end = buf.len();
        let parsed = if self.head_len == 0 {
            let mut c = Cursor::new(&buf[r..]);
            FrameHeader::parse(&mut c).map(|h| h.map(|h| (h, r + c.position() as usize)))
        } else {
            let had = self.head_len;
            let take = (MAX_HEADER - had).min(end - r);
            self.head[had..had + take].copy_from_slice(&buf[r..r + take]);
            let mut c = Cursor::new(&self.head[..had + take]);
            FrameHeader::parse(&mut c).map(|h| h.map(|h| (h, r + c.position() as usize - had)))
        };
        match parsed {
            Ok(Some(((h, len), payload_at))) => {
                self.head_len = 0;
                self.start(h, len);
                payload_at
            }
            Ok(None) => {
                // Shorter than a header: keep it for the next read.
                let had = self.head_len;
                let rest = end - r;
                if had == 0 {
                    self.head[..rest].copy_from_slice(&buf[r..]);
                }
                self.head_len = if had == 0 { rest } else { had + rest };
                end
            }
            Err(e) => {
                self.end = Some(format!("WebSocket protocol error from the server: {e}"));
                end
            }
        }
    }

    /// Sets up for the payload of a frame.
    fn start(&mut self, h: FrameHeader, len: u64) {
        self.left = len;
        let fail = |why: &str| Some(format!("WebSocket protocol error from the server: {why}"));
        if h.mask.is_some() {
            self.end = fail("a masked frame (a server's frames are never masked)");
            return;
        }
        if h.rsv1 || h.rsv2 || h.rsv3 {
            self.end = fail("reserved bits set (no extension was agreed)");
            return;
        }
        self.part = match h.opcode {
            OpCode::Data(d) => {
                let continues = d == Data::Continue;
                if continues != self.in_message {
                    self.end = fail(if continues {
                        "a continuation frame outside a message"
                    } else {
                        "a new message inside a fragmented one"
                    });
                    return;
                }
                self.in_message = !h.is_final;
                Part::Data { fin: h.is_final }
            }
            OpCode::Control(c) if !h.is_final || len > MAX_CONTROL as u64 => {
                self.end = fail(&format!("a fragmented or oversized {c} frame"));
                return;
            }
            OpCode::Control(Control::Ping) => {
                self.pings += 1;
                Part::Skip
            }
            OpCode::Control(Control::Close) => {
                self.close.clear();
                Part::Close
            }
            OpCode::Control(_) => Part::Skip,
        };
    }

    /// The current frame's payload is complete; returns the new write position.
    fn finish(&mut self, buf: &mut [u8], mut w: usize, r: usize) -> usize {
        match self.part {
            Part::Data { fin: true } => {
                debug_assert!(w + 2 <= r, "lines overtook the raw bytes");
                buf[w..w + 2].copy_from_slice(b"\r\n");
                w += 2;
            }
            Part::Close => self.end = Some(close_reason(&self.close)),
            _ => {}
        }
        self.part = Part::Header;
        w
    }
}

/// How a close frame's payload reads in a report.
fn close_reason(payload: &[u8]) -> String {
    let Some((code, reason)) = payload.split_first_chunk::<2>() else {
        return "the server closed the WebSocket (no code)".into();
    };
    let code = u16::from_be_bytes(*code);
    let reason = String::from_utf8_lossy(reason);
    let what = match CloseCode::from(code) {
        CloseCode::Normal => " normal",
        CloseCode::Away => " going away: the server is shutting down",
        CloseCode::Policy => " policy: dropped (too slow, or unresponsive to pings?)",
        CloseCode::Size => " message too big",
        _ => "",
    };
    if reason.is_empty() {
        format!("the server closed the WebSocket (code {code}{what})")
    } else {
        format!("the server closed the WebSocket (code {code}{what}: {reason})")
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
