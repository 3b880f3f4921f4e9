//! The two kinds of failure a request can meet.
//!
//! A [`FramingError`] means the byte stream itself is broken: Redis answers it once with
//! `-ERR Protocol error: ...` and closes the connection, because there is no reliable place to resume
//! parsing. A [`CommandError`] means a well-formed request was refused (unknown command, arity, syntax,
//! wrong type...): the error becomes the reply and the connection carries on.

use std::borrow::Cow;

/// A broken request stream. The `Display` text is exactly what Redis 7 sends before closing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedBulk(char),
    #[error("Protocol error: too big mbulk count string")]
    MultibulkCountTooLong,
    #[error("Protocol error: too big bulk count string")]
    BulkCountTooLong,
    #[error("Protocol error: too big inline request")]
    InlineTooBig,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// The connection's unparsed input passed `client-query-buffer-limit`. Redis closes without a reply.
    #[error("query buffer limit reached")]
    QueryBufferLimit,
}

impl FramingError {
    /// Whether Redis writes the error to the client before closing (it does not for the query buffer limit).
    pub fn replies(&self) -> bool {
        !matches!(self, FramingError::QueryBufferLimit)
    }
}

/// A refused command: the full Redis error line, prefix included (`ERR ...`, `WRONGTYPE ...`).
///
/// Kept as one string because that is what both wire formats need: RESP sends it verbatim, JSON splits
/// off the first word as the error `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError(pub Cow<'static, str>);

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CommandError {}

impl CommandError {
    pub const fn fixed(text: &'static str) -> Self {
        CommandError(Cow::Borrowed(text))
    }

    pub fn new(text: impl Into<String>) -> Self {
        CommandError(Cow::Owned(text.into()))
    }

    /// The first word of the message: `ERR`, `WRONGTYPE`, `NOAUTH`, ...
    pub fn code(&self) -> &str {
        self.0.split(' ').next().unwrap_or("ERR")
    }

    /// The message without its code.
    pub fn message(&self) -> &str {
        self.0.split_once(' ').map(|(_, m)| m).unwrap_or("")
    }

    pub const fn syntax() -> Self {
        Self::fixed("ERR syntax error")
    }

    pub const fn not_integer() -> Self {
        Self::fixed("ERR value is not an integer or out of range")
    }

    pub const fn not_float() -> Self {
        Self::fixed("ERR value is not a valid float")
    }

    pub const fn wrong_type() -> Self {
        Self::fixed("WRONGTYPE Operation against a key holding the wrong kind of value")
    }

    pub const fn no_such_key() -> Self {
        Self::fixed("ERR no such key")
    }

    pub fn arity(name: &str) -> Self {
        Self::new(format!("ERR wrong number of arguments for '{}' command", name.to_ascii_lowercase()))
    }

    pub fn invalid_expire(command: &str) -> Self {
        Self::new(format!("ERR invalid expire time in '{}' command", command.to_ascii_lowercase()))
    }

    /// Redis's text for an unknown command: the name, then the arguments quoted until 128 characters.
    pub fn unknown_command(name: &[u8], args: &[bytes::Bytes]) -> Self {
        let mut quoted = String::new();
        for arg in args {
            if quoted.len() >= 128 {
                break;
            }
            let room = 128 - quoted.len();
            quoted.push('\'');
            quoted.push_str(&printable(arg, room));
            quoted.push_str("' ");
        }
        Self::new(format!("ERR unknown command '{}', with args beginning with: {}", printable(name, 128), quoted))
    }

    pub fn unknown_subcommand(container: &str, sub: &[u8]) -> Self {
        Self::new(format!("ERR unknown subcommand '{}'. Try {} HELP.", printable(sub, 128), container.to_ascii_uppercase()))
    }
}

/// Lossy, length-capped text of a client-supplied argument, as Redis quotes it in error messages.
fn printable(bytes: &[u8], max: usize) -> String {
    let cut = &bytes[..bytes.len().min(max)];
    String::from_utf8_lossy(cut).replace(['\r', '\n'], " ")
}
