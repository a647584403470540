//! User and room names.
//!
//! A name is 1 to 24 characters, each a Unicode letter or digit or one of `_ - .`. Names compare
//! case-insensitively, so each has a [`key`] used for lookups while the spelling the user chose
//! is kept for display. A name with a control character is refused, never cleaned: a cleaned
//! name would be one the user did not ask for.

use thiserror::Error;

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 24;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("a name cannot be empty")]
    Empty,
    #[error("a name is at most {MAX_NAME_CHARS} characters")]
    TooLong,
    #[error("a name may only hold letters, digits and _ - . (no spaces or symbols)")]
    BadCharacter,
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Checks a user name as typed (surrounding spaces and tabs are ignored).
pub fn validate_name(raw: &str) -> Result<&str, NameError> {
    let name = raw.trim_matches([' ', '\t']);
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    if !name.chars().all(is_name_char) {
        return Err(NameError::BadCharacter);
    }
    Ok(name)
}

/// Checks a room name: the user-name rules, after an optional leading `#`.
pub fn validate_room(raw: &str) -> Result<&str, NameError> {
    let trimmed = raw.trim_matches([' ', '\t']);
    validate_name(trimmed.strip_prefix('#').unwrap_or(trimmed))
}

/// The case-insensitive identity of a valid name.
pub fn key(name: &str) -> String {
    name.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_protocol_examples() {
        for name in ["민수", "bob_2", "Ada.L", "a", "x-y", "ÉLODIE", "٣٤"] {
            assert_eq!(validate_name(name), Ok(name), "{name}");
        }
        assert_eq!(validate_name(&"n".repeat(24)).map(str::len), Ok(24));
        assert_eq!(validate_name("  padded\t"), Ok("padded"));
    }

    #[test]
    fn refuses_what_the_protocol_refuses() {
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert_eq!(validate_name("   "), Err(NameError::Empty));
        assert_eq!(validate_name("a b"), Err(NameError::BadCharacter));
        assert_eq!(validate_name("/x"), Err(NameError::BadCharacter));
        assert_eq!(validate_name("bad\u{1b}[31m"), Err(NameError::BadCharacter));
        assert_eq!(validate_name("nul\u{0}"), Err(NameError::BadCharacter));
        assert_eq!(validate_name(&"n".repeat(25)), Err(NameError::TooLong));
        // 24 characters is fine even when it is many more bytes.
        assert!(validate_name(&"민".repeat(24)).is_ok());
        assert_eq!(validate_name(&"민".repeat(25)), Err(NameError::TooLong));
    }

    #[test]
    fn rooms_may_carry_a_hash() {
        assert_eq!(validate_room("#dev"), Ok("dev"));
        assert_eq!(validate_room("dev"), Ok("dev"));
        assert_eq!(validate_room("#"), Err(NameError::Empty));
        assert_eq!(validate_room("##x"), Err(NameError::BadCharacter));
    }

    #[test]
    fn keys_ignore_case() {
        assert_eq!(key("Alice"), key("aLICE"));
        assert_eq!(key("ÉLODIE"), key("élodie"));
    }
}
