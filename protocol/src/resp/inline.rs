//! Inline commands: a plain text line such as `SET k "hello world"` typed into `nc` or `telnet`.
//!
//! The splitting rules are Redis's `sdssplitargs`: whitespace separates arguments, double quotes allow
//! `\n \r \t \b \a \\ \"` and `\xHH` escapes, single quotes allow only `\'`, and a closing quote must be
//! followed by whitespace or the end of the line.

use bytes::Bytes;

use crate::error::FramingError;

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Splits one inline line (without its line terminator) into arguments.
pub fn split_inline(line: &[u8]) -> Result<Vec<Bytes>, FramingError> {
    let mut args = Vec::new();
    let mut p = 0;
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p >= line.len() || line[p] == 0 {
            return Ok(args);
        }
        let mut current = Vec::new();
        let (mut in_double, mut in_single) = (false, false);
        loop {
            let c = at(p);
            if in_double {
                if c == b'\\'
                    && at(p + 1) == b'x'
                    && let (Some(hi), Some(lo)) = (hex_value(at(p + 2)), hex_value(at(p + 3)))
                {
                    current.push(hi * 16 + lo);
                    p += 4;
                    continue;
                }
                if c == b'\\' && p + 1 < line.len() {
                    p += 1;
                    current.push(match line[p] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if p + 1 < line.len() && !is_space(line[p + 1]) {
                        return Err(FramingError::UnbalancedQuotes);
                    }
                    p += 1;
                    break;
                } else if p >= line.len() {
                    return Err(FramingError::UnbalancedQuotes);
                } else {
                    current.push(c);
                }
            } else if in_single {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    if p + 1 < line.len() && !is_space(line[p + 1]) {
                        return Err(FramingError::UnbalancedQuotes);
                    }
                    p += 1;
                    break;
                } else if p >= line.len() {
                    return Err(FramingError::UnbalancedQuotes);
                } else {
                    current.push(c);
                }
            } else if p >= line.len() || matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0) {
                break;
            } else if c == b'"' {
                in_double = true;
            } else if c == b'\'' {
                in_single = true;
            } else {
                current.push(c);
            }
            p += 1;
        }
        args.push(Bytes::from(current));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Result<Vec<String>, FramingError> {
        split_inline(s.as_bytes()).map(|v| v.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect())
    }

    #[test]
    fn words_and_quotes() {
        assert_eq!(split("SET k v").unwrap(), ["SET", "k", "v"]);
        assert_eq!(split("  PING  ").unwrap(), ["PING"]);
        assert_eq!(split("").unwrap(), Vec::<String>::new());
        assert_eq!(split(r#"SET k "hello world""#).unwrap(), ["SET", "k", "hello world"]);
        assert_eq!(split(r#"SET k "a\nb\x41""#).unwrap(), ["SET", "k", "a\nbA"]);
        assert_eq!(split(r"SET k 'it\'s'").unwrap(), ["SET", "k", "it's"]);
        assert_eq!(split(r#"SET k """#).unwrap(), ["SET", "k", ""]);
    }

    #[test]
    fn unbalanced() {
        assert_eq!(split(r#"SET k "abc"#), Err(FramingError::UnbalancedQuotes));
        assert_eq!(split(r#"SET k "abc"x"#), Err(FramingError::UnbalancedQuotes));
        assert_eq!(split("SET k 'abc"), Err(FramingError::UnbalancedQuotes));
    }
}
