//! Number parsing and printing with Redis's exact rules.
//!
//! Redis accepts integers only in canonical form (`string2ll`): an optional `-`, no `+`, no spaces, no
//! leading zeros. Clients rely on that (a stored "01" is not an integer to INCR), so we match it rather
//! than using `str::parse`, which is more lenient.

/// Parses a canonical signed 64-bit decimal as Redis's `string2ll` does.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    if bytes == b"0" {
        return Some(0);
    }
    let (negative, digits) = match bytes[0] {
        b'-' => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    // First digit must be 1-9: this rejects "", "-", "-0", leading zeros.
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut value: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    if negative {
        if value > i64::MAX as u64 + 1 { None } else { Some((value as i64).wrapping_neg()) }
    } else if value > i64::MAX as u64 {
        None
    } else {
        Some(value as i64)
    }
}

/// Appends the decimal text of `value` without going through `fmt` (this is on every reply's hot path).
pub fn push_i64(out: &mut Vec<u8>, value: i64) {
    let mut buf = [0u8; 20];
    let text = format_i64(&mut buf, value);
    out.extend_from_slice(text);
}

/// Writes `value` into the tail of `buf` and returns the digits.
pub fn format_i64(buf: &mut [u8; 20], value: i64) -> &[u8] {
    let mut n = value.unsigned_abs();
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if value < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    &buf[pos..]
}

/// Formats a double reply's value (RESP3 `,`, JSON): plain decimal digits, never an exponent, `inf` /
/// `-inf` for infinities; Rust's `Display` is the shortest text that reads back as the same `f64`.
pub fn format_f64(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 { "inf".into() } else { "-inf".into() };
    }
    format!("{value}")
}

/// A double as Redis 7.0 replies it (`addReplyDouble`, `d2string`): `%.17g`, so 1.1 is
/// `1.1000000000000001` and 3e30 is `2.9999999999999998e+30`; `inf` / `-inf`. (Redis 7.2 moved to the
/// shortest round-trip text; 7.0 is the behaviour Herald implements.)
pub fn format_double(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    if value.is_nan() {
        return "nan".into();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // 17 significant digits, correctly rounded; the exponent is the one after rounding, as %g uses.
    let sci = format!("{value:.16e}");
    let (mantissa, exp) = sci.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent digits");
    if !(-4..17).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip_fraction_zeros(mantissa), exp.unsigned_abs())
    } else {
        strip_fraction_zeros(&format!("{value:.*}", (16 - exp) as usize)).to_string()
    }
}

/// A double as Redis 7.0 writes it into a listpack or a ZSCAN reply (`d2string`): an integral value
/// within ±2^62 as an integer (`123456789012345680`, where a reply says `1.2345678901234568e+17`),
/// zero keeping its sign, anything else as [`format_double`].
pub fn format_double_compact(value: f64) -> String {
    const LIMIT: f64 = (i64::MAX / 2) as f64;
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.into();
    }
    if (-LIMIT..=LIMIT).contains(&value) && (value as i64) as f64 == value {
        return (value as i64).to_string();
    }
    format_double(value)
}

fn strip_fraction_zeros(text: &str) -> &str {
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { text }
}

/// How much of `bytes` C's `strtod` reads as a number, and the value: `None` when it reads nothing
/// (then `strtod` returns 0 and leaves the end pointer at the start). Leading white space is skipped;
/// decimal, hexadecimal (`0x1.8p3`), `inf`, `infinity` and `nan` are read as glibc does. A decimal past
/// the range is an infinity, below it a zero (glibc's `ERANGE` results; see [`parse_double`]).
pub fn strtod_prefix(bytes: &[u8]) -> Option<(f64, usize)> {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t'..=b'\r')).unwrap_or(bytes.len());
    let mut i = start;
    let negative = match bytes.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let rest = &bytes[i..];
    let word = |w: &[u8]| rest.len() >= w.len() && rest[..w.len()].eq_ignore_ascii_case(w);
    let signed = |v: f64| if negative { -v } else { v };
    if word(b"infinity") {
        return Some((signed(f64::INFINITY), i + 8));
    }
    if word(b"inf") {
        return Some((signed(f64::INFINITY), i + 3));
    }
    if word(b"nan") {
        let mut end = i + 3;
        if bytes.get(end) == Some(&b'(')
            && let Some(close) = bytes[end..].iter().position(|b| !(b.is_ascii_alphanumeric() || *b == b'_' || *b == b'('))
            && bytes[end + close] == b')'
        {
            end += close + 1;
        }
        return Some((f64::NAN, end));
    }
    let digits =
        |from: usize, hex: bool| bytes[from..].iter().take_while(|b| if hex { b.is_ascii_hexdigit() } else { b.is_ascii_digit() }).count();
    let hex = rest.len() > 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' && {
        let after = &rest[2..];
        after[0].is_ascii_hexdigit() || (after[0] == b'.' && after.get(1).is_some_and(u8::is_ascii_hexdigit))
    };
    let body = if hex { i + 2 } else { i };
    let whole = digits(body, hex);
    let mut end = body + whole;
    let mut fraction = 0;
    if bytes.get(end) == Some(&b'.') {
        fraction = digits(end + 1, hex);
        if whole + fraction > 0 {
            end += 1 + fraction;
        }
    }
    if whole + fraction == 0 {
        return None;
    }
    let marker = if hex { b'p' } else { b'e' };
    if bytes.get(end).is_some_and(|b| b | 0x20 == marker) {
        let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
        let exp_digits = digits(end + 1 + sign, false);
        if exp_digits > 0 {
            end += 1 + sign + exp_digits;
        }
    }
    let text = std::str::from_utf8(&bytes[i..end]).expect("ascii");
    let magnitude = if hex {
        match crate::long_double::parse(text.as_bytes())? {
            crate::long_double::LongDouble::Finite { mantissa, exponent, .. } => {
                // Two steps so that an exponent past f64's range still scales to 0 or infinity.
                let half = exponent / 2;
                mantissa as f64 * 2f64.powi(half) * 2f64.powi(exponent - half)
            }
            crate::long_double::LongDouble::Infinite { .. } => f64::INFINITY,
        }
    } else {
        text.parse::<f64>().ok()?
    };
    Some((signed(magnitude), end))
}

/// A double as Redis reads a score, an increment or a weight (`getDoubleFromObject`): `strtod` over the
/// whole text, no leading space, not NaN, and not out of range (an overflow to infinity, or a non-zero
/// number that reads as 0). Spelled-out `inf` / `-inf` are fine.
pub fn parse_double(bytes: &[u8]) -> Option<f64> {
    if let Some(v) = small_integer(bytes) {
        return Some(v);
    }
    if bytes.first().is_none_or(|b| matches!(b, b' ' | b'\t'..=b'\r')) {
        return None;
    }
    let (value, end) = strtod_prefix(bytes)?;
    if end != bytes.len() || value.is_nan() {
        return None;
    }
    let spelled_infinite = bytes.iter().any(|b| b.eq_ignore_ascii_case(&b'i'));
    // The digits before the exponent: a zero result from any non-zero one is an underflow.
    let unsigned = bytes.strip_prefix(b"-").or(bytes.strip_prefix(b"+")).unwrap_or(bytes);
    let (mantissa, marker) = match unsigned.get(..2) {
        Some(p) if p.eq_ignore_ascii_case(b"0x") => (&unsigned[2..], b'p'),
        _ => (unsigned, b'e'),
    };
    let nonzero_digits = mantissa.iter().take_while(|b| **b | 0x20 != marker).any(|b| b.is_ascii_hexdigit() && *b != b'0');
    if (value.is_infinite() && !spelled_infinite) || (value == 0.0 && nonzero_digits) {
        return None;
    }
    Some(value)
}

/// The common score, `[-]` and at most 15 decimal digits, read without the float parser: such an
/// integer is exact in a double, so this is what `strtod` gives (`-0` included).
fn small_integer(bytes: &[u8]) -> Option<f64> {
    let (negative, digits) = match bytes.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut v: u64 = 0;
    for d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(d - b'0');
    }
    let v = v as f64;
    Some(if negative { -v } else { v })
}

/// A score range bound as Redis 7.0's `zslParseRange` reads one: `strtod` up to the end of the text
/// (so leading space, and an empty text, which reads as 0, are accepted), not NaN.
pub fn parse_double_lax(bytes: &[u8]) -> Option<f64> {
    // The argument is a C string to strtod: it ends at the first NUL.
    let text = &bytes[..bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len())];
    match strtod_prefix(text) {
        // Nothing read leaves the end pointer at the start: fine only when that is the end.
        None => text.is_empty().then_some(0.0),
        Some((v, end)) if end == text.len() && !v.is_nan() => Some(v),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_integers_only() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b""[..], b"-", b"-0", b"01", b"+1", b" 1", b"1 ", b"1.0", b"9223372036854775808", b"abc"] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn small_integers_read_as_strtod_reads_them() {
        for text in ["0", "-0", "7", "-12", "007", "123456789012345", "-999999999999999"] {
            let fast = parse_double(text.as_bytes()).unwrap();
            let general: f64 = text.parse().unwrap();
            assert_eq!(fast.to_bits(), general.to_bits(), "{text}");
        }
        for bad in ["", "-", "1a", "--1", " 1"] {
            assert_eq!(parse_double(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(parse_double(b"1234567890123456789"), Some(1234567890123456789.0), "past 15 digits: the float parser");
    }

    #[test]
    fn floats() {
        assert_eq!(format_f64(10.5), "10.5");
        assert_eq!(format_f64(3.0), "3");
        assert_eq!(format_f64(f64::INFINITY), "inf");
    }

    #[test]
    fn integer_text() {
        let mut buf = [0u8; 20];
        assert_eq!(format_i64(&mut buf, i64::MIN), b"-9223372036854775808");
        assert_eq!(format_i64(&mut buf, 0), b"0");
        assert_eq!(format_i64(&mut buf, 42), b"42");
    }

    #[test]
    fn doubles_as_redis_7_0_prints_them() {
        for (v, text) in [
            (1.1, "1.1000000000000001"),
            (2.0, "2"),
            (3e30, "2.9999999999999998e+30"),
            (1e-5, "1.0000000000000001e-05"),
            (0.0001, "0.0001"),
            (-0.0, "-0"),
            (1.5, "1.5"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (12345678901234567.0, "12345678901234568"),
            (f64::NEG_INFINITY, "-inf"),
            (0.1 + 0.2, "0.30000000000000004"),
        ] {
            assert_eq!(format_double(v), text, "{v}");
        }
    }

    #[test]
    fn compact_doubles() {
        assert_eq!(format_double_compact(123456789012345678.0), "123456789012345680");
        assert_eq!(format_double_compact(4611686018427387904.0), "4611686018427387904");
        assert_eq!(format_double_compact(4611686018427388904.0), "4.6116860184273889e+18");
        assert_eq!(format_double_compact(-0.0), "-0");
        assert_eq!(format_double_compact(0.5), "0.5");
        assert_eq!(format_double_compact(f64::INFINITY), "inf");
    }

    #[test]
    fn doubles_as_redis_reads_them() {
        for (text, v) in [
            ("1.5", 1.5),
            ("+2", 2.0),
            ("-inf", f64::NEG_INFINITY),
            ("Infinity", f64::INFINITY),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("0x10", 16.0),
            ("0x1p-1", 0.5),
            ("0", 0.0),
            ("0e500", 0.0),
        ] {
            assert_eq!(parse_double(text.as_bytes()), Some(v), "{text}");
        }
        for bad in ["", " 1", "1 ", "nan", "abc", "1e400", "1e-400", "1e", "--1", "."] {
            assert_eq!(parse_double(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(parse_double_lax(b""), Some(0.0));
        assert_eq!(parse_double_lax(b" 2"), Some(2.0));
        assert_eq!(parse_double_lax(b"1e400"), Some(f64::INFINITY));
        assert_eq!(parse_double_lax(b"1e"), None, "strtod stops before a bare e");
        assert_eq!(parse_double_lax(b"x"), None);
        assert_eq!(parse_double_lax(b"nan"), None);
    }
}
