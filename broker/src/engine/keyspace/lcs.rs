//! LCS: the longest common subsequence of two strings, computed as Redis 7.0 does (the dynamic
//! programming table, walked back from the end), so that ties resolve the same way and the matched
//! ranges come out in the same order.

use bytes::Bytes;

use super::Keyspace;
use crate::engine::Error;

/// One contiguous run of the common subsequence: byte ranges (inclusive) in the first and second
/// string, and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LcsMatch {
    pub a: (u32, u32),
    pub b: (u32, u32),
    pub len: u32,
}

/// What LCS computed: the length, the subsequence itself, and its runs from the last to the first,
/// those shorter than `min_match_len` left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lcs {
    pub len: u32,
    pub sequence: Vec<u8>,
    pub matches: Vec<LcsMatch>,
}

/// The table Redis builds takes `(len(a) + 1) * (len(b) + 1)` 32-bit cells; it refuses tables larger
/// than `max_bytes` (its `proto-max-bulk-len`).
pub fn lcs(a: &[u8], b: &[u8], min_match_len: u64, max_bytes: usize) -> Result<Lcs, Error> {
    if a.len() >= u32::MAX as usize - 1 || b.len() >= u32::MAX as usize - 1 {
        return Err(Error::fixed("ERR String too long for LCS"));
    }
    let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
    if cells.saturating_mul(4) > max_bytes as u64 {
        return Err(Error::fixed("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"));
    }
    let width = b.len() + 1;
    let mut table = vec![0u32; cells as usize];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            table[i * width + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let len = table[a.len() * width + b.len()];
    let mut sequence = vec![0u8; len as usize];
    let mut matches = Vec::new();
    // The run being collected, walking backwards: start and end in a and b.
    let mut run: Option<(usize, usize, usize, usize)> = None;
    let (mut i, mut j, mut idx) = (a.len(), b.len(), len as usize);
    while i > 0 && j > 0 {
        let emit;
        if a[i - 1] == b[j - 1] {
            sequence[idx - 1] = a[i - 1];
            run = Some(match run {
                None => (i - 1, i - 1, j - 1, j - 1),
                Some((_, a_end, _, b_end)) => (i - 1, a_end, j - 1, b_end),
            });
            let (a_start, _, b_start, _) = run.expect("set");
            emit = a_start == 0 || b_start == 0;
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if table[(i - 1) * width + j] > table[i * width + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            emit = run.is_some();
        }
        if emit && let Some((a_start, a_end, b_start, b_end)) = run.take() {
            let run_len = (a_end - a_start + 1) as u32;
            if min_match_len == 0 || u64::from(run_len) >= min_match_len {
                matches.push(LcsMatch { a: (a_start as u32, a_end as u32), b: (b_start as u32, b_end as u32), len: run_len });
            }
        }
    }
    Ok(Lcs { len, sequence, matches })
}

impl Keyspace {
    /// The two strings LCS compares (a missing key is empty); any other type is refused with
    /// Redis's own message rather than WRONGTYPE.
    pub fn lcs_inputs(&mut self, db: usize, a: &[u8], b: &[u8], now: u64) -> Result<(Bytes, Bytes), Error> {
        let refused = || Error::fixed("ERR The specified keys must contain string values");
        let first = self.with_string(db, a, now, Bytes::copy_from_slice).map_err(|_| refused());
        let second = self.with_string(db, b, now, Bytes::copy_from_slice).map_err(|_| refused());
        Ok((first?.unwrap_or_default(), second?.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_documentation_example() {
        let r = lcs(b"ohmytext", b"mynewtext", 0, 1 << 20).unwrap();
        assert_eq!((r.len, &r.sequence[..]), (6, &b"mytext"[..]));
        let runs: Vec<_> = r.matches.iter().map(|m| (m.a, m.b, m.len)).collect();
        assert_eq!(runs, [((4, 7), (5, 8), 4), ((2, 3), (0, 1), 2)]);
        assert_eq!(lcs(b"ohmytext", b"mynewtext", 4, 1 << 20).unwrap().matches.len(), 1);
        assert_eq!(lcs(b"", b"abc", 0, 1 << 20).unwrap().len, 0);
        assert!(lcs(b"abc", b"abc", 0, 15).is_err(), "a table past the bound is refused");
    }
}
