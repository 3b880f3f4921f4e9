//! Redis's glob matching (`stringmatchlen`), shared by KEYS, SCAN MATCH, PSUBSCRIBE and every watch.
//!
//! A faithful port, including its quirks: `[a-z]` ranges may be written backwards, `\` escapes inside
//! and outside brackets, an unterminated `[` matches what it has seen so far, and a nesting limit plus
//! the "skip longer matches" cut-off keep patterns like `a*a*a*a*b` from taking exponential time.

/// Whether `text` matches the glob `pattern` (case-sensitive, byte-wise).
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, text, false, &mut skip_longer, 0)
}

/// Case-insensitive variant (CONFIG GET patterns).
pub fn glob_match_nocase(pattern: &[u8], text: &[u8]) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, text, true, &mut skip_longer, 0)
}

fn eq(a: u8, b: u8, nocase: bool) -> bool {
    if nocase { a.eq_ignore_ascii_case(&b) } else { a == b }
}

fn match_impl(pat: &[u8], s: &[u8], nocase: bool, skip_longer: &mut bool, nesting: u32) -> bool {
    if nesting > 1000 {
        return false;
    }
    let (mut p, mut i) = (0usize, 0usize);
    while p < pat.len() && i < s.len() {
        match pat[p] {
            b'*' => {
                while p + 1 < pat.len() && pat[p + 1] == b'*' {
                    p += 1;
                }
                if p + 1 == pat.len() {
                    return true;
                }
                while i < s.len() {
                    if match_impl(&pat[p + 1..], &s[i..], nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    i += 1;
                }
                *skip_longer = true;
                return false;
            }
            b'?' => i += 1,
            b'[' => {
                p += 1;
                let negate = p < pat.len() && pat[p] == b'^';
                if negate {
                    p += 1;
                }
                let c = s[i];
                let mut matched = false;
                loop {
                    if p < pat.len() && pat[p] == b'\\' && pat.len() - p >= 2 {
                        p += 1;
                        if pat[p] == c {
                            matched = true;
                        }
                    } else if p < pat.len() && pat[p] == b']' {
                        break;
                    } else if p >= pat.len() {
                        // Unterminated class: step back so the outer advance lands at the end.
                        p -= 1;
                        break;
                    } else if pat.len() - p >= 3 && pat[p + 1] == b'-' {
                        // Redis compares as C `char`, signed on x86.
                        let (mut start, mut end) = (pat[p] as i8 as i32, pat[p + 2] as i8 as i32);
                        let mut ch = c as i8 as i32;
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = lower(start);
                            end = lower(end);
                            ch = lower(ch);
                        }
                        p += 2;
                        if ch >= start && ch <= end {
                            matched = true;
                        }
                    } else if eq(pat[p], c, nocase) {
                        matched = true;
                    }
                    p += 1;
                }
                if negate {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                i += 1;
            }
            b'\\' => {
                if pat.len() - p >= 2 {
                    p += 1;
                }
                if !eq(pat[p], s[i], nocase) {
                    return false;
                }
                i += 1;
            }
            other => {
                if !eq(other, s[i], nocase) {
                    return false;
                }
                i += 1;
            }
        }
        p += 1;
        if i == s.len() {
            while p < pat.len() && pat[p] == b'*' {
                p += 1;
            }
            break;
        }
    }
    p >= pat.len() && i == s.len()
}

fn lower(c: i32) -> i32 {
    if (b'A' as i32..=b'Z' as i32).contains(&c) { c + 32 } else { c }
}

/// Whether a pattern has no glob metacharacters, so it can only match itself.
pub fn is_literal(pattern: &[u8]) -> bool {
    !pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes())
    }

    #[test]
    fn stars_and_questions() {
        assert!(!m("*", ""), "Redis: nothing matches the empty string (KEYS * special-cases it)");
        assert!(m("*", "anything"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("a*b*c", "aXbYc"));
        assert!(!m("a*b*c", "aXbY"));
        assert!(m("news.*", "news.art"));
        assert!(!m("", "x"));
        assert!(m("", ""));
    }

    #[test]
    fn classes_ranges_and_escapes() {
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hbllo"), "reversed ranges work as in Redis");
        assert!(m(r"h\*llo", "h*llo"));
        assert!(!m(r"h\*llo", "hello"));
        assert!(m(r"[\]]", "]"));
        assert!(m("[abc", "a"), "an unterminated class matches what it listed");
        assert!(m(r"a\", r"a\"), "a trailing backslash matches itself");
    }

    #[test]
    fn pathological_patterns_finish() {
        let text = "a".repeat(60);
        assert!(!m("a*a*a*a*a*a*a*a*a*a*a*a*b", &text));
    }

    #[test]
    fn nocase() {
        assert!(glob_match_nocase(b"MAX*", b"maxmemory"));
        assert!(!glob_match(b"MAX*", b"maxmemory"));
    }
}
