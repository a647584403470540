//! Mentions of the user's own name in what others say.
//!
//! A mention is the name as a whole word, in any case (names are case-insensitive): `alice`,
//! `@Alice:` and `ALICE!` mention alice, `malice` and `alice_2` do not. Only `_` and `-` join a
//! word beyond letters and digits; `.` ends a sentence more often than it spells a name.

use std::ops::Range;

/// Reverse video on and off: it survives the colours and bold around it.
const REVERSE_ON: &str = "\x1b[7m";
const REVERSE_OFF: &str = "\x1b[27m";

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// Byte ranges of `text` where `name` is mentioned.
pub fn mentions(text: &str, name: &str) -> Vec<Range<usize>> {
    let name_chars: Vec<char> = name.chars().flat_map(char::to_lowercase).collect();
    if name_chars.is_empty() {
        return Vec::new();
    }
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let after_word_char = i > 0 && is_word_char(chars[i - 1].1);
        if !after_word_char {
            if let Some(end) = match_at(&chars, i, &name_chars) {
                let before_word_char = chars.get(end).is_some_and(|&(_, c)| is_word_char(c));
                if !before_word_char {
                    let end_byte = chars.get(end).map_or(text.len(), |&(at, _)| at);
                    found.push(chars[i].0..end_byte);
                    i = end;
                    continue;
                }
            }
        }
        i += 1;
    }
    found
}

/// Index after the match of `name` (lower-case chars) starting at `chars[start]`.
fn match_at(chars: &[(usize, char)], start: usize, name: &[char]) -> Option<usize> {
    let mut at = start;
    let mut matched = 0;
    while matched < name.len() {
        let &(_, c) = chars.get(at)?;
        for lower in c.to_lowercase() {
            if name.get(matched) != Some(&lower) {
                return None;
            }
            matched += 1;
        }
        at += 1;
    }
    Some(at)
}

/// `text` with every mention in reverse video.
pub fn highlight(text: &str, ranges: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(text.len() + ranges.len() * 10);
    let mut from = 0;
    for range in ranges {
        out.push_str(&text[from..range.start]);
        out.push_str(REVERSE_ON);
        out.push_str(&text[range.clone()]);
        out.push_str(REVERSE_OFF);
        from = range.end;
    }
    out.push_str(&text[from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str, name: &str) -> Vec<String> {
        mentions(text, name)
            .into_iter()
            .map(|r| text[r].to_owned())
            .collect()
    }

    #[test]
    fn whole_words_in_any_case() {
        assert_eq!(words("hi alice", "alice"), ["alice"]);
        assert_eq!(words("@Alice: look, ALICE!", "alice"), ["Alice", "ALICE"]);
        assert_eq!(words("alice.", "alice"), ["alice"]);
        assert_eq!(words("민수야 민수", "민수"), ["민수"]);
    }

    #[test]
    fn parts_of_other_words_are_not_mentions() {
        for text in ["malice", "alice_2", "alices", "x-alice", "nobody here", ""] {
            assert!(words(text, "alice").is_empty(), "{text}");
        }
        assert!(mentions("anything", "").is_empty());
    }

    #[test]
    fn highlight_wraps_each_mention() {
        let text = "hi alice and ALICE";
        assert_eq!(
            highlight(text, &mentions(text, "alice")),
            "hi \x1b[7malice\x1b[27m and \x1b[7mALICE\x1b[27m"
        );
        assert_eq!(highlight("plain", &[]), "plain");
    }
}
