//! Client-to-server line framing.
//!
//! Clients are `nc`, `telnet`, scripts and our own client, so the framer accepts every line
//! ending they produce (LF, CRLF, a lone CR, telnet's CR NUL), strips telnet command sequences,
//! and never holds more than `max_line` bytes of one line however long the line is: a line over
//! the limit is reported once and then discarded up to its terminator.
//!
//! The framer is a pure state machine over bytes, so feeding a stream in any chunking yields the
//! same frames; the property tests below hold it to that.

/// One unit of input produced by [`LineFramer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its terminator, decoded as UTF-8 (invalid bytes become U+FFFD).
    Line(String),
    /// A line exceeded the maximum length. It is dropped whole; this is reported once per line,
    /// as soon as the limit is passed.
    TooLong,
}

const IAC: u8 = 255;
const SB: u8 = 250;
const SE: u8 = 240;
const WILL: u8 = 251;
const DONT: u8 = 254;

/// Where the framer is inside a telnet command sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Telnet {
    /// Plain data.
    Data,
    /// Just saw IAC.
    Iac,
    /// Saw IAC WILL/WONT/DO/DONT; the next byte is the option.
    Option,
    /// Inside a subnegotiation (IAC SB ... IAC SE).
    Sub,
    /// Saw IAC inside a subnegotiation.
    SubIac,
}

/// Splits a byte stream into lines with bounded memory.
#[derive(Debug)]
pub struct LineFramer {
    max_line: usize,
    line: Vec<u8>,
    /// The current line passed `max_line` and is being skipped up to its terminator.
    discarding: bool,
    /// The previous byte ended a line with CR; a following LF or NUL belongs to that ending.
    after_cr: bool,
    telnet: Telnet,
}

impl LineFramer {
    pub fn new(max_line: usize) -> Self {
        Self {
            max_line,
            line: Vec::new(),
            discarding: false,
            after_cr: false,
            telnet: Telnet::Data,
        }
    }

    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Feeds bytes, appending every frame they complete to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<Frame>) {
        for &byte in input {
            self.push_byte(byte, out);
        }
    }

    /// True when bytes of an unterminated line are waiting.
    pub fn has_partial(&self) -> bool {
        !self.line.is_empty()
    }

    /// Takes the unterminated line waiting in the buffer as a whole line (used after a pause
    /// and at end of stream, for clients that never send a line ending).
    pub fn take_partial(&mut self) -> Option<Frame> {
        if self.discarding {
            // The too-long line was already reported; a pause ends it.
            self.discarding = false;
            return None;
        }
        if self.line.is_empty() {
            return None;
        }
        Some(self.finish_line())
    }

    fn push_byte(&mut self, byte: u8, out: &mut Vec<Frame>) {
        match self.telnet {
            Telnet::Data => {}
            Telnet::Iac => {
                self.telnet = match byte {
                    WILL..=DONT => Telnet::Option,
                    SB => Telnet::Sub,
                    // IAC IAC is an escaped 0xFF data byte, which is never valid UTF-8 text:
                    // it is dropped like the commands around it.
                    _ => Telnet::Data,
                };
                return;
            }
            Telnet::Option => {
                self.telnet = Telnet::Data;
                return;
            }
            Telnet::Sub => {
                if byte == IAC {
                    self.telnet = Telnet::SubIac;
                }
                return;
            }
            Telnet::SubIac => {
                self.telnet = if byte == SE {
                    Telnet::Data
                } else {
                    Telnet::Sub
                };
                return;
            }
        }
        if byte == IAC {
            self.telnet = Telnet::Iac;
            return;
        }
        if std::mem::take(&mut self.after_cr) && (byte == b'\n' || byte == 0) {
            return;
        }
        match byte {
            b'\n' | b'\r' => {
                self.after_cr = byte == b'\r';
                if self.discarding {
                    self.discarding = false;
                } else {
                    out.push(self.finish_line());
                }
            }
            _ if self.discarding => {}
            _ if self.line.len() >= self.max_line => {
                self.discarding = true;
                self.line = Vec::new();
                out.push(Frame::TooLong);
            }
            _ => self.line.push(byte),
        }
    }

    fn finish_line(&mut self) -> Frame {
        let text = String::from_utf8_lossy(&self.line).into_owned();
        // Keep a small buffer for the next line, but give back what a long one grew.
        if self.line.capacity() > 1024 {
            self.line = Vec::new();
        } else {
            self.line.clear();
        }
        Frame::Line(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames(max: usize, chunks: &[&[u8]]) -> Vec<Frame> {
        let mut framer = LineFramer::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            framer.feed(chunk, &mut out);
        }
        out
    }

    fn line(s: &str) -> Frame {
        Frame::Line(s.to_string())
    }

    #[test]
    fn every_line_ending_ends_a_line() {
        assert_eq!(
            frames(100, &[b"a\nb\r\nc\rd\r\0e\n"]),
            vec![line("a"), line("b"), line("c"), line("d"), line("e")]
        );
    }

    #[test]
    fn crlf_split_across_reads_is_one_ending() {
        assert_eq!(frames(100, &[b"a\r", b"\nb\n"]), vec![line("a"), line("b")]);
        assert_eq!(
            frames(100, &[b"a\r", b"\0", b"b\n"]),
            vec![line("a"), line("b")]
        );
    }

    #[test]
    fn empty_lines_are_reported() {
        assert_eq!(
            frames(100, &[b"\n\r\n\r"]),
            vec![line(""), line(""), line("")]
        );
    }

    #[test]
    fn telnet_commands_are_removed() {
        // IAC DO ECHO, IAC WILL SGA, IAC IP, IAC SB NAWS ... IAC SE, IAC IAC.
        let input =
            b"h\xff\xfd\x01i\xff\xfb\x03!\xff\xf4\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0\xff\xff\n";
        assert_eq!(frames(100, &[input]), vec![line("hi!")]);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_character() {
        assert_eq!(frames(100, &[b"a\xc3(b\n"]), vec![line("a\u{fffd}(b")]);
        assert_eq!(frames(100, &["민수\n".as_bytes()]), vec![line("민수")]);
    }

    #[test]
    fn line_at_the_limit_passes_and_one_byte_more_is_dropped() {
        assert_eq!(frames(4, &[b"abcd\n"]), vec![line("abcd")]);
        assert_eq!(
            frames(4, &[b"abcde\nok\n"]),
            vec![Frame::TooLong, line("ok")]
        );
    }

    #[test]
    fn huge_line_is_reported_once_and_memory_stays_bounded() {
        let mut framer = LineFramer::new(4096);
        let mut out = Vec::new();
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..64 {
            framer.feed(&chunk, &mut out);
            assert!(framer.line.capacity() <= 4096 * 2);
        }
        framer.feed(b"\nafter\n", &mut out);
        assert_eq!(out, vec![Frame::TooLong, line("after")]);
    }

    #[test]
    fn partial_line_can_be_taken() {
        let mut framer = LineFramer::new(100);
        let mut out = Vec::new();
        framer.feed(b"hello", &mut out);
        assert!(out.is_empty());
        assert!(framer.has_partial());
        assert_eq!(framer.take_partial(), Some(line("hello")));
        assert_eq!(framer.take_partial(), None);
        framer.feed(b"\n", &mut out);
        assert_eq!(out, vec![line("")]);
    }

    #[test]
    fn partial_of_a_too_long_line_is_not_taken() {
        let mut framer = LineFramer::new(3);
        let mut out = Vec::new();
        framer.feed(b"abcdef", &mut out);
        assert_eq!(framer.take_partial(), None);
        framer.feed(b"ok\n", &mut out);
        assert_eq!(out, vec![Frame::TooLong, line("ok")]);
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_frames(
            data in proptest::collection::vec(
                prop_oneof![
                    4 => any::<u8>(),
                    2 => Just(b'\n'),
                    2 => Just(b'\r'),
                    1 => Just(0u8),
                    1 => Just(255u8),
                ],
                0..600,
            ),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
            max in 1usize..64,
        ) {
            let whole = frames(max, &[&data]);
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for p in points {
                chunks.push(&data[start..p]);
                start = p;
            }
            chunks.push(&data[start..]);
            prop_assert_eq!(frames(max, &chunks), whole);
        }

        #[test]
        fn lines_never_exceed_the_limit_nor_hold_terminators(
            data in proptest::collection::vec(any::<u8>(), 0..2000),
            max in 1usize..128,
        ) {
            let mut framer = LineFramer::new(max);
            let mut out = Vec::new();
            for chunk in data.chunks(7) {
                framer.feed(chunk, &mut out);
                prop_assert!(framer.line.len() <= max);
            }
            for frame in out {
                if let Frame::Line(text) = frame {
                    // Lossy decoding may widen bytes into U+FFFD, so count the raw bytes' bound.
                    prop_assert!(text.chars().count() <= max);
                    prop_assert!(!text.contains('\n') && !text.contains('\r'));
                }
            }
        }
    }
}
