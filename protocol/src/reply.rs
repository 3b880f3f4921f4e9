//! The one reply model every command produces and every wire format renders.
//!
//! Commands build a [`Reply`] without knowing who asked; `resp::encode` renders it as RESP2 or RESP3 and
//! `ws` renders it as JSON. RESP3-only shapes (maps, sets, doubles, booleans, pushes) have the same
//! fallbacks Redis uses when the session speaks RESP2.

use std::borrow::Cow;

use bytes::Bytes;

use crate::error::CommandError;

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`-style status line.
    Status(Cow<'static, str>),
    Error(CommandError),
    Int(i64),
    Bulk(Bytes),
    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    Nil,
    /// A missing aggregate (BLPOP timeout, EXEC aborted by WATCH): `*-1` in RESP2, `_` in RESP3.
    NilArray,
    Array(Vec<Reply>),
    /// Key/value pairs: a RESP3 map, a flat array in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// A RESP3 set, an array in RESP2.
    Set(Vec<Reply>),
    /// A RESP3 double, a bulk string in RESP2; both printed as Redis 7.0 does (`%.17g`, see
    /// `number::format_double`).
    Double(f64),
    /// A RESP3 boolean, the integer 1 or 0 in RESP2.
    Bool(bool),
    /// RESP3 verbatim text (`txt`), a bulk string in RESP2 (INFO, CLIENT LIST).
    Verbatim(Bytes),
    /// Out-of-band data (pub-sub messages, invalidations): `>` in RESP3, an array in RESP2.
    Push(Vec<Reply>),
}

impl Reply {
    pub const fn ok() -> Reply {
        Reply::Status(Cow::Borrowed("OK"))
    }

    pub const fn status(text: &'static str) -> Reply {
        Reply::Status(Cow::Borrowed(text))
    }

    pub fn bulk(data: impl Into<Bytes>) -> Reply {
        Reply::Bulk(data.into())
    }

    /// A bulk string of static text (field names, event names).
    pub const fn text(text: &'static str) -> Reply {
        Reply::Bulk(Bytes::from_static(text.as_bytes()))
    }

    pub fn bulk_or_nil(data: Option<impl Into<Bytes>>) -> Reply {
        match data {
            Some(d) => Reply::Bulk(d.into()),
            None => Reply::Nil,
        }
    }

    pub fn error(text: &'static str) -> Reply {
        Reply::Error(CommandError::fixed(text))
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// An array of bulk strings.
    pub fn bulks<I, B>(items: I) -> Reply
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        Reply::Array(items.into_iter().map(|b| Reply::Bulk(b.into())).collect())
    }

    /// A map with text field names, the usual shape of a STATS / INFO-like reply.
    pub fn fields(pairs: Vec<(&'static str, Reply)>) -> Reply {
        Reply::Map(pairs.into_iter().map(|(k, v)| (Reply::text(k), v)).collect())
    }
}

impl From<CommandError> for Reply {
    fn from(e: CommandError) -> Self {
        Reply::Error(e)
    }
}

impl From<i64> for Reply {
    fn from(v: i64) -> Self {
        Reply::Int(v)
    }
}

impl From<Result<Reply, CommandError>> for Reply {
    fn from(r: Result<Reply, CommandError>) -> Self {
        r.unwrap_or_else(Reply::Error)
    }
}
