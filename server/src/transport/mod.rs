//! The ways a client reaches the chat, and the one output path they share.
//!
//! Every connection, whichever way it came in, is a [`Peer`](crate::peer::Peer) with one output
//! queue, drained by the flusher threads and dropped past `--outbuf-limit`. What differs between
//! transports is only how a protocol line becomes bytes in that queue ([`Framing`]) and how input
//! becomes lines (a [`LineSource`](crate::connection::LineSource): [`tcp`] reads raw bytes,
//! [`ws`] reads WebSocket messages). So the queue, the flushers and the slow-client drop exist
//! once, and a new framing is a new arm here, not a new server.

pub mod input;
pub mod proxy;
pub mod socket;
pub mod tcp;
pub mod tls;
pub mod ws;

use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame, FrameHeader};

/// How protocol lines are written to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// Raw TCP: each line ends with CRLF; the prompt has no ending (PROTOCOL.md section 1).
    #[default]
    Lines,
    /// WebSocket: each line, and the prompt, is one text message without a line ending.
    WebSocket,
}

/// Why the server closes a connection, for framings that can say so (WebSocket close codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// `/quit`: 1000.
    Normal,
    /// Shutdown: 1001.
    GoingAway,
    /// Dropped (too slow, login timeout, kicked): 1008.
    Policy,
    /// A message too large to take: 1009.
    TooBig,
}

impl CloseReason {
    fn code(self) -> CloseCode {
        match self {
            Self::Normal => CloseCode::Normal,
            Self::GoingAway => CloseCode::Away,
            Self::Policy => CloseCode::Policy,
            Self::TooBig => CloseCode::Size,
        }
    }
}

impl Framing {
    /// Appends one protocol line (given without its ending).
    pub fn push_line(self, line: &str, out: &mut Vec<u8>) {
        match self {
            Self::Lines => {
                out.reserve(line.len() + 2);
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Self::WebSocket => push_text_message(line, out),
        }
    }

    /// Appends the login prompt (or any text sent without a line ending).
    pub fn push_prompt(self, prompt: &str, out: &mut Vec<u8>) {
        match self {
            Self::Lines => out.extend_from_slice(prompt.as_bytes()),
            Self::WebSocket => push_text_message(prompt, out),
        }
    }

    /// Appends what tells the client the server is closing, if this framing has such a thing.
    pub fn push_close(self, reason: CloseReason, out: &mut Vec<u8>) {
        match self {
            Self::Lines => {}
            Self::WebSocket => {
                let frame = Frame::close(Some(CloseFrame {
                    code: reason.code(),
                    reason: "".into(),
                }));
                // Writing into a Vec cannot fail.
                let _ = frame.format(out);
            }
        }
    }

    /// Bytes [`push_line`](Self::push_line) adds for a line of `len` bytes.
    pub fn line_len(self, len: usize) -> usize {
        match self {
            Self::Lines => len + 2,
            Self::WebSocket => text_header().len(len as u64) + len,
        }
    }
}

fn text_header() -> FrameHeader {
    FrameHeader {
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    }
}

/// A server-to-client text frame (unmasked, final), written straight into the queue so a
/// broadcast costs no allocation per recipient.
fn push_text_message(text: &str, out: &mut Vec<u8>) {
    let header = text_header();
    out.reserve(header.len(text.len() as u64) + text.len());
    // Writing into a Vec cannot fail.
    let _ = header.format(text.len() as u64, out);
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn lines_end_with_crlf_and_the_prompt_does_not() {
        let mut out = Vec::new();
        Framing::Lines.push_line("* hi", &mut out);
        Framing::Lines.push_prompt("Username: ", &mut out);
        Framing::Lines.push_close(CloseReason::Normal, &mut out);
        assert_eq!(out, b"* hi\r\nUsername: ");
        assert_eq!(Framing::Lines.line_len(4), 6);
    }

    /// Parses what we write with tungstenite's own frame parser.
    fn frames(bytes: &[u8]) -> Vec<(FrameHeader, Vec<u8>)> {
        let mut cursor = Cursor::new(bytes);
        let mut frames = Vec::new();
        while (cursor.position() as usize) < bytes.len() {
            let (header, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            let start = cursor.position() as usize;
            let end = start + len as usize;
            frames.push((header, bytes[start..end].to_vec()));
            cursor.set_position(end as u64);
        }
        frames
    }

    #[test]
    fn websocket_lines_are_unmasked_text_messages_of_any_length() {
        let long = "x".repeat(70_000);
        let mut out = Vec::new();
        for line in ["[a] hi", "", &"y".repeat(200), &long] {
            Framing::WebSocket.push_line(line, &mut out);
        }
        Framing::WebSocket.push_prompt("Username: ", &mut out);
        let got = frames(&out);
        let payloads: Vec<&[u8]> = got.iter().map(|(_, p)| p.as_slice()).collect();
        assert_eq!(
            payloads,
            [
                b"[a] hi".as_slice(),
                b"",
                "y".repeat(200).as_bytes(),
                long.as_bytes(),
                b"Username: "
            ]
        );
        for (header, _) in &got {
            assert!(header.is_final && header.mask.is_none());
            assert_eq!(header.opcode, OpCode::Data(Data::Text));
        }
        assert_eq!(
            Framing::WebSocket.line_len(long.len()),
            frames_len(&long, Framing::WebSocket)
        );
    }

    fn frames_len(line: &str, framing: Framing) -> usize {
        let mut out = Vec::new();
        framing.push_line(line, &mut out);
        out.len()
    }

    #[test]
    fn websocket_close_carries_the_code() {
        for (reason, code) in [
            (CloseReason::Normal, 1000u16),
            (CloseReason::GoingAway, 1001),
            (CloseReason::Policy, 1008),
            (CloseReason::TooBig, 1009),
        ] {
            let mut out = Vec::new();
            Framing::WebSocket.push_close(reason, &mut out);
            let got = frames(&out);
            assert_eq!(got.len(), 1);
            assert_eq!(
                got[0].0.opcode,
                OpCode::Control(tungstenite::protocol::frame::coding::Control::Close)
            );
            assert_eq!(got[0].1, code.to_be_bytes());
        }
    }
}
