//! The server's bytes into lines.
//!
//! Server lines end with CRLF, but the prompts `Username: ` and `Password: ` come with no line
//! ending so that `nc` users type on them. The decoder therefore reports two things: whole
//! lines, and a prompt as soon as the unterminated rest of the stream spells it. Any other
//! unterminated rest stays pending; the reader takes it with [`LineDecoder::take_partial`] after
//! a pause, which is how a prompt from a server other than ours still shows.
//!
//! Text is decoded lossily (invalid UTF-8 becomes U+FFFD) and a line is cut at [`MAX_LINE`]
//! bytes, so a hostile server cannot make the client hold unbounded memory.

use chat_common::wire::{PASSWORD_PROMPT, PROMPT};

/// Longest line kept whole; longer ones are split into pieces of this size.
pub const MAX_LINE: usize = 64 * 1024;

/// One unit of server output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A line without its line ending, not yet sanitised.
    Line(String),
    /// The login prompt, `Username: `.
    Prompt,
    /// The password prompt for a registered name (PROTOCOL.md section 12), `Password: `.
    PasswordPrompt,
}

#[derive(Debug, Default)]
pub struct LineDecoder {
    partial: Vec<u8>,
}

impl LineDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes, appending what they complete to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Incoming>) {
        for &byte in bytes {
            if byte == b'\n' {
                if self.partial.last() == Some(&b'\r') {
                    self.partial.pop();
                }
                out.push(Incoming::Line(self.take()));
                continue;
            }
            self.partial.push(byte);
            // Every other server line starts with `* `, `! ` or `[`, so this can only be a
            // prompt, even when more bytes follow in the same read.
            if self.partial == PROMPT.as_bytes() {
                self.partial.clear();
                out.push(Incoming::Prompt);
            } else if self.partial == PASSWORD_PROMPT.as_bytes() {
                self.partial.clear();
                out.push(Incoming::PasswordPrompt);
            } else if self.partial.len() >= MAX_LINE {
                out.push(Incoming::Line(self.take()));
            }
        }
    }

    /// True while bytes of an unterminated line are waiting.
    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty()
    }

    /// Takes the unterminated rest as text (after a pause, or at the end of the stream).
    pub fn take_partial(&mut self) -> Option<String> {
        self.has_partial().then(|| self.take())
    }

    fn take(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> (Vec<Incoming>, LineDecoder) {
        let mut decoder = LineDecoder::new();
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.feed(chunk, &mut out);
        }
        (out, decoder)
    }

    fn line(s: &str) -> Incoming {
        Incoming::Line(s.to_owned())
    }

    #[test]
    fn crlf_and_lf_end_lines() {
        let (out, rest) = decode(&[b"* a\r\n! b\n[c] d\r\n"]);
        assert_eq!(out, vec![line("* a"), line("! b"), line("[c] d")]);
        assert!(!rest.has_partial());
    }

    #[test]
    fn crlf_split_across_reads() {
        let (out, _) = decode(&[b"* a\r", b"\n* b", b"\r\n"]);
        assert_eq!(out, vec![line("* a"), line("* b")]);
    }

    #[test]
    fn prompt_is_reported_without_a_line_ending() {
        let (out, rest) = decode(&[b"* welcome to chat-server\r\nUsername: "]);
        assert_eq!(
            out,
            vec![line("* welcome to chat-server"), Incoming::Prompt]
        );
        assert!(!rest.has_partial());
    }

    #[test]
    fn prompt_split_across_reads() {
        let (out, rest) = decode(&[b"User", b"name", b": "]);
        assert_eq!(out, vec![Incoming::Prompt]);
        assert!(!rest.has_partial());
    }

    #[test]
    fn prompt_followed_by_more_in_the_same_read() {
        let (out, _) = decode(&[b"Username: ! login timed out\r\n"]);
        assert_eq!(out, vec![Incoming::Prompt, line("! login timed out")]);
    }

    #[test]
    fn refusal_then_prompt_again() {
        let (out, _) = decode(&[b"! the name bob is taken\r\nUsername: "]);
        assert_eq!(out, vec![line("! the name bob is taken"), Incoming::Prompt]);
    }

    #[test]
    fn password_prompt_after_a_name_and_split_across_reads() {
        let (out, rest) = decode(&[b"Pass", b"word: "]);
        assert_eq!(out, vec![Incoming::PasswordPrompt]);
        assert!(!rest.has_partial());
        let (out, _) = decode(&[b"Password: ! wrong password\r\nUsername: "]);
        assert_eq!(
            out,
            vec![
                Incoming::PasswordPrompt,
                line("! wrong password"),
                Incoming::Prompt
            ]
        );
    }

    #[test]
    fn other_partials_wait_to_be_taken() {
        let (out, mut rest) = decode(&[b"Name? "]);
        assert!(out.is_empty());
        assert_eq!(rest.take_partial().as_deref(), Some("Name? "));
        assert_eq!(rest.take_partial(), None);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let (out, _) = decode(&[b"[a] \xff\xfe ok\r\n", "[민수] 안녕\r\n".as_bytes()]);
        assert_eq!(
            out,
            vec![line("[a] \u{fffd}\u{fffd} ok"), line("[민수] 안녕")]
        );
    }

    #[test]
    fn multibyte_character_split_across_reads() {
        let bytes = "[a] 민\r\n".as_bytes();
        let (out, _) = decode(&[&bytes[..5], &bytes[5..]]);
        assert_eq!(out, vec![line("[a] 민")]);
    }

    #[test]
    fn an_endless_line_is_cut_into_bounded_pieces() {
        let chunk = vec![b'x'; 10_000];
        let mut decoder = LineDecoder::new();
        let mut out = Vec::new();
        for _ in 0..20 {
            decoder.feed(&chunk, &mut out);
            assert!(decoder.partial.len() < MAX_LINE);
        }
        assert_eq!(out.len(), 200_000 / MAX_LINE);
        assert!(out
            .iter()
            .all(|i| matches!(i, Incoming::Line(l) if l.len() == MAX_LINE)));
    }

    #[test]
    fn control_characters_pass_through_for_the_sanitiser() {
        // The decoder keeps bytes as they are; cleaning is the renderer's job.
        let (out, _) = decode(&[b"[a] \x1b[2Jhi\r\n"]);
        assert_eq!(out, vec![line("[a] \u{1b}[2Jhi")]);
    }
}
