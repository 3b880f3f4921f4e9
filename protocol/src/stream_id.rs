//! Redis stream entry IDs (`<ms>-<seq>`), parsed and printed with Redis's exact rules.
//!
//! Like `number`, this is a rule of the data model that both the command parser (which must reject a
//! bad ID at the point Redis does, before or after looking the key up) and the engine (which parses
//! the IDs Redis reads only once the key is known) follow, so it lives here once.
//!
//! Redis reads each part with `string2ull`: a canonical integer, or failing that whatever `strtoull`
//! accepts in full (leading blanks, a `+`, even a `-` that negates), so `+5-1` and ` 5-1` are valid
//! IDs and `-1` is not. Texts longer than 127 bytes are invalid.

use std::fmt;

/// A stream entry ID. Ordered as Redis orders them: by milliseconds, then sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    pub const fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    /// The next ID, `None` after [`StreamId::MAX`] (Redis's `streamIncrID` failing).
    pub fn next(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (u64::MAX, u64::MAX) => None,
            (ms, u64::MAX) => Some(StreamId::new(ms + 1, 0)),
            (ms, seq) => Some(StreamId::new(ms, seq + 1)),
        }
    }

    /// The previous ID, `None` before [`StreamId::MIN`] (Redis's `streamDecrID` failing).
    pub fn prev(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (0, 0) => None,
            (ms, 0) => Some(StreamId::new(ms - 1, u64::MAX)),
            (ms, seq) => Some(StreamId::new(ms, seq - 1)),
        }
    }

    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    /// The 16-byte big-endian form Redis keys its radix trees with (sorts as the ID does).
    pub fn to_be_bytes(self) -> [u8; 16] {
        let mut out = [0; 16];
        out[..8].copy_from_slice(&self.ms.to_be_bytes());
        out[8..].copy_from_slice(&self.seq.to_be_bytes());
        out
    }

    /// The ID as text (`<ms>-<seq>`) in `buf`, without the formatting machinery (every XADD replies
    /// with one): two digits at a time, from the end.
    pub fn format(self, buf: &mut [u8; 41]) -> &[u8] {
        const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
            2021222324252627282930313233343536373839\
            4041424344454647484950515253545556575859\
            6061626364656667686970717273747576777879\
            8081828384858687888990919293949596979899";
        fn put(mut n: u64, buf: &mut [u8; 41], end: &mut usize) {
            let mut at = *end;
            while n >= 100 {
                let pair = (n % 100) as usize * 2;
                n /= 100;
                at -= 2;
                buf[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
            }
            if n >= 10 {
                at -= 2;
                buf[at..at + 2].copy_from_slice(&PAIRS[n as usize * 2..n as usize * 2 + 2]);
            } else {
                at -= 1;
                buf[at] = b'0' + n as u8;
            }
            *end = at;
        }
        let mut end = buf.len();
        put(self.seq, buf, &mut end);
        end -= 1;
        buf[end] = b'-';
        put(self.ms, buf, &mut end);
        &buf[end..]
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0; 41];
        f.write_str(std::str::from_utf8(self.format(&mut buf)).expect("digits and a dash"))
    }
}

/// The one error text Redis gives for any malformed ID.
pub const INVALID: &str = "ERR Invalid stream ID specified as stream command argument";

/// An XADD ID: fully given, or `<ms>-*` (the sequence is chosen by the stream). `*` alone is
/// recognised by the command parser before an ID is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddId {
    Explicit(StreamId),
    Ms(u64),
}

/// Redis's `string2ull`: canonical digits, else the whole text as `strtoull` reads it.
fn parse_u64(raw: &[u8]) -> Option<u64> {
    if let Some(v) = crate::number::parse_i64(raw) {
        return u64::try_from(v).ok();
    }
    // strtoull: leading whitespace, an optional sign, decimal digits, nothing after them.
    let mut i = raw.iter().take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)).count();
    let negative = match raw.get(i) {
        Some(b'+') => {
            i += 1;
            false
        }
        Some(b'-') => {
            i += 1;
            true
        }
        _ => false,
    };
    let digits = &raw[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: u64 = 0;
    for &d in digits {
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if negative { value.wrapping_neg() } else { value })
}

/// Redis's `streamGenericParseIDOrReply`: `-` and `+` (unless `strict`), `<ms>`, `<ms>-<seq>`; a
/// missing sequence is `missing_seq`. With `allow_auto`, `<ms>-*` parses as [`AddId::Ms`].
fn parse_generic(raw: &[u8], missing_seq: u64, strict: bool, allow_auto: bool) -> Option<AddId> {
    if raw.len() > 127 {
        return None;
    }
    // Redis copies the argument into a C string: anything after a NUL byte is not seen.
    let raw = raw.split(|b| *b == 0).next().unwrap_or_default();
    match raw {
        b"-" if !strict => return Some(AddId::Explicit(StreamId::MIN)),
        b"+" if !strict => return Some(AddId::Explicit(StreamId::MAX)),
        b"-" | b"+" => return None,
        _ => {}
    }
    match raw.iter().position(|b| *b == b'-') {
        None => Some(AddId::Explicit(StreamId::new(parse_u64(raw)?, missing_seq))),
        Some(dash) => {
            let ms = parse_u64(&raw[..dash])?;
            match &raw[dash + 1..] {
                b"*" if allow_auto => Some(AddId::Ms(ms)),
                seq => Some(AddId::Explicit(StreamId::new(ms, parse_u64(seq)?))),
            }
        }
    }
}

fn explicit(id: Option<AddId>) -> Option<StreamId> {
    match id? {
        AddId::Explicit(id) => Some(id),
        AddId::Ms(_) => None,
    }
}

/// An ID where `-` and `+` mean the smallest and largest (XRANGE bounds, XGROUP SETID).
pub fn parse(raw: &[u8], missing_seq: u64) -> Option<StreamId> {
    explicit(parse_generic(raw, missing_seq, false, false))
}

/// An ID that must be a real one: no `-` or `+` (XDEL, XACK, XCLAIM, XREAD, MINID...).
pub fn parse_strict(raw: &[u8]) -> Option<StreamId> {
    explicit(parse_generic(raw, 0, true, false))
}

/// XADD's ID: strict, and `<ms>-*` lets the stream pick the sequence.
pub fn parse_add(raw: &[u8]) -> Option<AddId> {
    parse_generic(raw, 0, true, true)
}

/// A range bound: `(` before an ID excludes it (strictly parsed then), `-`/`+` are the ends.
/// Returns the ID and whether it was exclusive.
pub fn parse_bound(raw: &[u8], missing_seq: u64) -> Option<(StreamId, bool)> {
    match raw {
        [b'(', rest @ ..] if !rest.is_empty() => Some((explicit(parse_generic(rest, missing_seq, true, false))?, true)),
        _ => Some((parse(raw, missing_seq)?, false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId::new(ms, seq)
    }

    #[test]
    fn ids_parse_as_redis_reads_them() {
        assert_eq!(parse_strict(b"1-2"), Some(id(1, 2)));
        assert_eq!(parse_strict(b"5"), Some(id(5, 0)));
        assert_eq!(parse(b"5", u64::MAX), Some(id(5, u64::MAX)));
        assert_eq!(parse_strict(b"18446744073709551615-18446744073709551615"), Some(StreamId::MAX));
        assert_eq!(parse_strict(b"+5-1"), Some(id(5, 1)), "strtoull takes a plus sign");
        assert_eq!(parse_strict(b" 5-1"), Some(id(5, 1)), "and leading blanks");
        assert_eq!(parse_strict(b"-0-1"), None, "the dash splits before the sign");
        for bad in [&b""[..], b"-1", b"1-2-3", b"0x10", b"1-x", b"18446744073709551616-1", b"1-", b"-", b"+", b"1-*"] {
            assert_eq!(parse_strict(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse(b"-", 0), Some(StreamId::MIN));
        assert_eq!(parse(b"+", 0), Some(StreamId::MAX));
        assert_eq!(parse_add(b"7-*"), Some(AddId::Ms(7)));
        assert_eq!(parse_add(b"7"), Some(AddId::Explicit(id(7, 0))));
        assert_eq!(parse_bound(b"(1-1", 0), Some((id(1, 1), true)));
        assert_eq!(parse_bound(b"(-", 0), None);
        assert_eq!(parse_bound(b"(", 0), None);
        assert_eq!(parse_bound(b"(5", u64::MAX), Some((id(5, u64::MAX), true)));
        assert_eq!(parse_strict(&[b'1'; 128]), None, "too long for Redis's buffer");
    }

    #[test]
    fn neighbours_and_text() {
        assert_eq!(id(1, u64::MAX).next(), Some(id(2, 0)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(id(2, 0).prev(), Some(id(1, u64::MAX)));
        assert_eq!(StreamId::MIN.prev(), None);
        assert_eq!(id(12, 3).to_string(), "12-3");
        assert_eq!(StreamId::MAX.to_string(), "18446744073709551615-18446744073709551615");
        assert_eq!(StreamId::MIN.to_string(), "0-0");
        for (ms, seq) in [(9, 10), (99, 100), (1796456221683, 255), (100, 7)] {
            assert_eq!(id(ms, seq).to_string(), format!("{ms}-{seq}"));
        }
        assert!(id(1, 9) < id(2, 0));
    }
}
