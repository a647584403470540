use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};

use super::*;

fn frame(f: Frame) -> Vec<u8> {
    let mut out = Vec::new();
    f.format(&mut out).expect("into a Vec");
    out
}

fn text(s: &[u8]) -> Vec<u8> {
    frame(Frame::message(s.to_vec(), OpCode::Data(Data::Text), true))
}

/// Decodes `chunks` as successive reads, the way the reader does; returns the lines.
fn feed(d: &mut Decoder, chunks: &[&[u8]]) -> Vec<u8> {
    let mut lines = Vec::new();
    for c in chunks {
        let mut buf = vec![0xAA; SLACK];
        buf.extend_from_slice(c);
        let n = d.decode(&mut buf, 0, SLACK);
        lines.extend_from_slice(&buf[..n]);
    }
    lines
}

/// A server's output: the prompt, lines of every length class, a ping and a pong between
/// them, an empty message, and one message in three fragments with a ping inside.
fn stream() -> (Vec<u8>, Vec<u8>) {
    let mut raw = Vec::new();
    let mut want = Vec::new();
    let msg = |(raw, want): (&mut Vec<u8>, &mut Vec<u8>), s: &[u8]| {
        raw.extend(text(s));
        want.extend_from_slice(s);
        want.extend_from_slice(b"\r\n");
    };
    msg((&mut raw, &mut want), b"* welcome");
    msg((&mut raw, &mut want), b"Username: ");
    raw.extend(frame(Frame::ping(b"p".to_vec())));
    msg((&mut raw, &mut want), &[b'a'; 125]);
    msg((&mut raw, &mut want), &[b'b'; 126]);
    raw.extend(frame(Frame::pong(Vec::new())));
    msg((&mut raw, &mut want), b"");
    msg((&mut raw, &mut want), "[b1] m:00001 é".as_bytes());
    raw.extend(frame(Frame::message(
        b"[b2] fir".to_vec(),
        OpCode::Data(Data::Text),
        false,
    )));
    raw.extend(frame(Frame::ping(Vec::new())));
    raw.extend(frame(Frame::message(
        b"st ".to_vec(),
        OpCode::Data(Data::Continue),
        false,
    )));
    raw.extend(frame(Frame::message(
        b"part".to_vec(),
        OpCode::Data(Data::Continue),
        true,
    )));
    want.extend_from_slice(b"[b2] first part\r\n");
    msg((&mut raw, &mut want), b"! slow down");
    (raw, want)
}

#[test]
fn whole_stream_in_one_read() {
    let (raw, want) = stream();
    let mut d = Decoder::default();
    assert_eq!(feed(&mut d, &[&raw]), want);
    assert_eq!(d.take_pings(), 2);
    assert_eq!(d.take_pings(), 0);
    assert!(d.ended().is_none());
}

#[test]
fn split_at_every_byte() {
    let (raw, want) = stream();
    for at in 0..=raw.len() {
        let mut d = Decoder::default();
        let got = feed(&mut d, &[&raw[..at], &raw[at..]]);
        assert_eq!(got, want, "split at {at}");
        assert!(d.ended().is_none(), "split at {at}");
        assert_eq!(d.take_pings(), 2);
    }
}

#[test]
fn one_byte_per_read_and_long_frames() {
    let (mut raw, mut want) = stream();
    // 16-bit and 64-bit lengths.
    for len in [65_535, 70_000] {
        let big: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        raw.extend(text(&big));
        want.extend_from_slice(&big);
        want.extend_from_slice(b"\r\n");
    }
    let chunks: Vec<&[u8]> = raw.chunks(1).collect();
    assert_eq!(feed(&mut Decoder::default(), &chunks), want);
    let chunks: Vec<&[u8]> = raw.chunks(7).collect();
    assert_eq!(feed(&mut Decoder::default(), &chunks), want);
}

#[test]
fn in_place_between_a_carry_and_the_raw_bytes() {
    // As the reader lays it out: an unfinished line, the slack, then the read.
    let mut buf = b"[b1] par".to_vec();
    buf.extend([0; SLACK]);
    buf.extend(text(b"x"));
    buf.extend(text(b"yz"));
    let mut d = Decoder::default();
    let n = d.decode(&mut buf, 8, 8 + SLACK);
    assert_eq!(&buf[..8 + n], b"[b1] parx\r\nyz\r\n");
}

#[test]
fn a_close_frame_ends_the_stream_with_its_code() {
    let mut raw = text(b"* server shutting down");
    raw.extend(frame(Frame::close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "bye".into(),
    }))));
    raw.extend(text(b"after the close"));
    for at in 0..=raw.len() {
        let mut d = Decoder::default();
        let got = feed(&mut d, &[&raw[..at], &raw[at..]]);
        assert_eq!(got, b"* server shutting down\r\n", "split at {at}");
        let why = d.ended().expect("ended");
        assert!(why.contains("1001") && why.contains("bye"), "{why}");
    }
    let mut d = Decoder::default();
    feed(&mut d, &[&frame(Frame::close(None))]);
    assert!(d.ended().expect("ended").contains("no code"));
}

#[test]
fn protocol_errors_end_the_stream() {
    let mut masked = Frame::message(b"hi".to_vec(), OpCode::Data(Data::Text), true);
    masked.header_mut().mask = Some([1, 2, 3, 4]);
    let cont = frame(Frame::message(
        b"x".to_vec(),
        OpCode::Data(Data::Continue),
        true,
    ));
    let mut open = frame(Frame::message(
        b"x".to_vec(),
        OpCode::Data(Data::Text),
        false,
    ));
    open.extend(text(b"y"));
    let reserved_opcode = vec![0x83, 0x00];
    let rsv = vec![0xC1, 0x01, b'x'];
    for (raw, what) in [
        (frame(masked), "masked"),
        (cont, "continuation"),
        (open, "inside a fragmented"),
        (reserved_opcode, "opcode"),
        (rsv, "reserved bits"),
    ] {
        let mut d = Decoder::default();
        let mut got = feed(&mut d, &[&raw]);
        got.retain(|&b| b != b'x');
        assert!(got.is_empty(), "{what}: {got:?}");
        let why = d.ended().unwrap_or_else(|| panic!("{what}: not ended"));
        assert!(why.contains(what), "{what}: {why}");
    }
}
