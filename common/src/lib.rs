//! Pieces of the chat wire protocol (PROTOCOL.md) shared by `chat-server` and `chat-client`.
//!
//! - [`framing`]: bytes from a client into lines, with every line ending, telnet commands
//!   removed and bounded memory.
//! - [`names`]: the rules for user and room names.
//! - [`sanitize`]: control characters and terminal escape sequences out of relayed text.
//! - [`wire`]: the shapes of the server's lines.

pub mod framing;
pub mod names;
pub mod sanitize;
pub mod wire;

pub use framing::{Frame, LineFramer};
pub use names::{key, validate_name, validate_room, NameError, MAX_NAME_CHARS};
pub use sanitize::{is_banned_control, sanitize};
