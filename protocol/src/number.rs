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
}
