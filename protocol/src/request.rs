//! A decoded request and the cursor commands use to read their arguments.

use bytes::Bytes;

use crate::error::CommandError;
use crate::number::parse_i64;

/// One request as it came off the wire: the command name followed by its arguments, binary-safe.
///
/// RESP and the WebSocket JSON envelope both produce this; everything after it is shared.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    args: Vec<Bytes>,
}

impl Request {
    pub fn new(args: Vec<Bytes>) -> Self {
        Request { args }
    }

    /// Builds a request from text parts, for tests and internal callers.
    pub fn from_strs(parts: &[&str]) -> Self {
        Request::new(parts.iter().map(|p| Bytes::copy_from_slice(p.as_bytes())).collect())
    }

    pub fn name(&self) -> &[u8] {
        self.args.first().map(|b| b.as_ref()).unwrap_or(b"")
    }

    /// Every part, name included.
    pub fn parts(&self) -> &[Bytes] {
        &self.args
    }

    /// Number of parts, name included (what Redis calls `argc`).
    pub fn len(&self) -> usize {
        self.args.len()
    }

    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    pub fn into_parts(self) -> Vec<Bytes> {
        self.args
    }
}

/// A forward-only cursor over a command's arguments (the name already consumed).
///
/// It borrows the [`Request`], so the request outlives its parse: what is still needed after the
/// command ran (the SLOWLOG entry, MONITOR's line) reads the arguments as they came. Arguments a
/// command keeps are cloned out (a reference count); numbers and keywords are read in place.
///
/// Each `next_*` reports a missing argument as a syntax error; commands check arity from the table
/// before parsing, so a missing required argument here means an option was cut short.
#[derive(Debug)]
pub struct Args<'a> {
    items: std::slice::Iter<'a, Bytes>,
    /// A subcommand's name as the client typed it (Redis quotes it so in some errors).
    sub: Option<&'a Bytes>,
}

impl<'a> Args<'a> {
    /// Wraps the arguments after the command name.
    pub fn new(parts: &'a [Bytes]) -> Self {
        Args { items: parts.get(1..).unwrap_or_default().iter(), sub: None }
    }

    /// Consumes a subcommand's name, remembering it for [`Args::subcommand`].
    pub fn skip_subcommand(&mut self) {
        self.sub = self.items.next();
    }

    /// The subcommand's name as typed (empty for a plain command).
    pub fn subcommand(&self) -> &[u8] {
        self.sub.map(|b| &b[..]).unwrap_or_default()
    }

    pub fn remaining(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.len() == 0
    }

    pub fn peek(&self) -> Option<&'a Bytes> {
        self.items.as_slice().first()
    }

    pub fn next_bytes(&mut self) -> Result<Bytes, CommandError> {
        self.items.next().cloned().ok_or(CommandError::syntax())
    }

    /// The next argument, read in place (for numbers and keywords, which are not kept).
    pub fn next_ref(&mut self) -> Result<&'a [u8], CommandError> {
        self.items.next().map(|b| &b[..]).ok_or(CommandError::syntax())
    }

    /// Next argument, or `None` at the end (for optional trailing arguments).
    pub fn next_opt(&mut self) -> Option<Bytes> {
        self.items.next().cloned()
    }

    pub fn next_i64(&mut self) -> Result<i64, CommandError> {
        let raw = self.next_ref()?;
        parse_i64(raw).ok_or(CommandError::not_integer())
    }

    /// An integer of at least `min`, read as Redis's `getRangeLongFromObjectOrReply` does when given a
    /// message: `error` both for text that is no integer and for a value below `min`.
    pub fn next_i64_at_least(&mut self, min: i64, error: CommandError) -> Result<i64, CommandError> {
        let raw = self.next_ref()?;
        parse_i64(raw).filter(|n| *n >= min).ok_or(error)
    }

    /// A non-negative integer (counts, timeouts in ms); negatives are "out of range".
    pub fn next_u64(&mut self) -> Result<u64, CommandError> {
        let v = self.next_i64()?;
        u64::try_from(v).map_err(|_| CommandError::fixed("ERR value is out of range, must be positive"))
    }

    /// Consumes the next argument if it equals `word` (ASCII case-insensitive).
    pub fn eat(&mut self, word: &str) -> bool {
        match self.peek() {
            Some(b) if b.eq_ignore_ascii_case(word.as_bytes()) => {
                self.items.next();
                true
            }
            _ => false,
        }
    }

    /// Everything not consumed yet.
    pub fn rest(self) -> Vec<Bytes> {
        self.items.cloned().collect()
    }

    /// Errors with `syntax error` if anything is left over.
    pub fn finish(self) -> Result<(), CommandError> {
        if self.items.len() == 0 { Ok(()) } else { Err(CommandError::syntax()) }
    }
}

/// Whether `arg` equals `word`, ignoring ASCII case: how every Redis keyword is compared.
pub fn is_word(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}
