//! Text cleaning for anything relayed to another user's terminal.
//!
//! Removing only the ESC byte of `ESC [ 2 J` would still print `[2J`, so whole escape sequences
//! (CSI, OSC, DCS and the two-byte forms, in their 7-bit and C1 spellings) go, then every
//! remaining control character: U+0000 to U+001F except TAB, and U+007F to U+009F.

/// True for the characters PROTOCOL.md bans from relayed text.
pub fn is_banned_control(c: char) -> bool {
    (c.is_ascii_control() && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    /// After ESC.
    Escape,
    /// Inside a CSI sequence: parameters until a final byte in `@`..=`~`.
    Csi,
    /// Inside an OSC/DCS/SOS/PM/APC string, ended by BEL or ST (`ESC \` or U+009C).
    String,
    /// After ESC inside a string (maybe the start of ST).
    StringEscape,
}

/// Returns `text` without escape sequences and control characters.
pub fn sanitize(text: &str) -> String {
    if !text.chars().any(is_banned_control) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut state = State::Text;
    for c in text.chars() {
        state = match state {
            State::Text => match c {
                '\u{1b}' => State::Escape,
                '\u{9b}' => State::Csi,
                '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => State::String,
                c if is_banned_control(c) => State::Text,
                c => {
                    out.push(c);
                    State::Text
                }
            },
            State::Escape => match c {
                '[' => State::Csi,
                ']' | 'P' | 'X' | '^' | '_' => State::String,
                '\u{1b}' => State::Escape,
                // Intermediate bytes (`ESC ( B` and friends) continue the sequence.
                ' '..='/' => State::Escape,
                _ => State::Text,
            },
            State::Csi => match c {
                '@'..='~' => State::Text,
                '\u{1b}' => State::Escape,
                c if c.is_ascii() => State::Csi,
                // Not a well-formed CSI: end it here and keep the character if it is text.
                c => {
                    if !is_banned_control(c) {
                        out.push(c);
                    }
                    State::Text
                }
            },
            State::String => match c {
                '\u{7}' | '\u{9c}' => State::Text,
                '\u{1b}' => State::StringEscape,
                _ => State::String,
            },
            State::StringEscape => match c {
                '\\' => State::Text,
                '\u{1b}' => State::StringEscape,
                _ => State::String,
            },
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(sanitize("hello, 민수! \ttab"), "hello, 민수! \ttab");
    }

    #[test]
    fn csi_sequences_are_removed_whole() {
        assert_eq!(sanitize("\u{1b}[31mred\u{1b}[0m"), "red");
        assert_eq!(sanitize("a\u{1b}[2J\u{1b}[Hb"), "ab");
        assert_eq!(sanitize("a\u{9b}1;2Hb"), "ab");
    }

    #[test]
    fn osc_sequences_are_removed_whole() {
        assert_eq!(sanitize("a\u{1b}]0;pwned\u{7}b"), "ab");
        assert_eq!(
            sanitize("a\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\b"),
            "alinkb"
        );
    }

    #[test]
    fn bare_controls_are_removed() {
        assert_eq!(
            sanitize("a\u{0}b\u{7}c\u{8}d\u{7f}e\u{85}f\rg\nh"),
            "abcdefgh"
        );
    }

    #[test]
    fn charset_designation_is_removed() {
        assert_eq!(sanitize("\u{1b}(0lqk\u{1b}(B"), "lqk");
    }

    proptest! {
        #[test]
        fn output_never_contains_a_control_character(text in any::<String>()) {
            let clean = sanitize(&text);
            prop_assert!(!clean.chars().any(is_banned_control));
            prop_assert!(clean.len() <= text.len());
        }

        #[test]
        fn text_without_controls_is_kept(text in "[^\\p{Cc}]*") {
            prop_assert_eq!(sanitize(&text), text);
        }

        #[test]
        fn sanitizing_is_idempotent(text in any::<String>()) {
            let once = sanitize(&text);
            prop_assert_eq!(sanitize(&once), once.clone());
        }
    }
}
