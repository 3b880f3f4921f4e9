//! Why an engine refused an operation.
//!
//! An engine's refusals are part of the semantics it implements: Redis's operations refuse with
//! Redis's exact texts (`WRONGTYPE ...`, `ERR value is not an integer or out of range`), Herald's
//! domains with their documented codes (`LEASE ...`, `NOJOB ...`). So an [`Error`] carries the whole
//! error line, code first, and dispatch turns it into the reply of whatever wire asked. Engines do not
//! depend on the protocol crate's error type: a second engine implementation (on Redis/Valkey) answers
//! with the same values.

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(Cow<'static, str>);

impl Error {
    /// A refusal whose text never varies.
    pub const fn fixed(text: &'static str) -> Self {
        Error(Cow::Borrowed(text))
    }

    pub fn new(text: impl Into<String>) -> Self {
        Error(Cow::Owned(text.into()))
    }

    pub const fn wrong_type() -> Self {
        Self::fixed("WRONGTYPE Operation against a key holding the wrong kind of value")
    }

    pub const fn not_integer() -> Self {
        Self::fixed("ERR value is not an integer or out of range")
    }

    pub const fn not_float() -> Self {
        Self::fixed("ERR value is not a valid float")
    }

    pub const fn no_such_key() -> Self {
        Self::fixed("ERR no such key")
    }

    pub const fn syntax() -> Self {
        Self::fixed("ERR syntax error")
    }

    pub fn invalid_expire(command: &str) -> Self {
        Self::new(format!("ERR invalid expire time in '{}' command", command.to_ascii_lowercase()))
    }

    /// The whole error line, code first.
    pub fn text(&self) -> &str {
        &self.0
    }

    /// The first word: `ERR`, `WRONGTYPE`, `LEASE`, ...
    pub fn code(&self) -> &str {
        self.0.split(' ').next().unwrap_or("ERR")
    }

    pub fn into_text(self) -> Cow<'static, str> {
        self.0
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
