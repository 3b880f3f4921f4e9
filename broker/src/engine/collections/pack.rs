//! Pairs of byte strings packed back to back in one buffer: the small encoding of hashes and sorted
//! sets (Redis's listpack).
//!
//! Why: most hashes and sorted sets are small (a user's profile, a leaderboard of ten), and a table
//! per key costs a node, a bucket and two allocations per field. Here a pair costs its bytes plus two
//! length bytes, in one allocation per key, and a lookup is a linear scan of a few cache lines,
//! which is as fast as hashing for the sizes this encoding is kept for (Redis's thresholds: 128
//! entries, 64 bytes a string; see `hash.rs`, `zset.rs`).
//!
//! Each string is preceded by its length as a LEB128 varint (one byte up to 127).

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pack {
    buf: Vec<u8>,
    /// Pairs held.
    pairs: u32,
}

/// One pair: where it starts in the buffer, and its two strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair<'a> {
    pub at: usize,
    pub first: &'a [u8],
    pub second: &'a [u8],
}

fn read_len(buf: &[u8], mut at: usize) -> (usize, usize) {
    let (mut len, mut shift) = (0usize, 0);
    loop {
        let b = buf[at];
        at += 1;
        len |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return (len, at);
        }
        shift += 7;
    }
}

fn write_len(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let b = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn encode_pair(first: &[u8], second: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(first.len() + second.len() + 4);
    write_len(&mut out, first.len());
    out.extend_from_slice(first);
    write_len(&mut out, second.len());
    out.extend_from_slice(second);
    out
}

impl Pack {
    pub fn len(&self) -> usize {
        self.pairs as usize
    }

    pub fn is_empty(&self) -> bool {
        self.pairs == 0
    }

    /// What the buffer costs the allocator (the encoding's cost besides the struct).
    pub fn memory(&self) -> usize {
        crate::engine::memory::chunk(self.buf.capacity())
    }

    fn string_at(&self, at: usize) -> (&[u8], usize) {
        let (len, start) = read_len(&self.buf, at);
        (&self.buf[start..start + len], start + len)
    }

    fn pair_at(&self, at: usize) -> (Pair<'_>, usize) {
        let (first, mid) = self.string_at(at);
        let (second, end) = self.string_at(mid);
        (Pair { at, first, second }, end)
    }

    /// The pairs in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Pair<'_>> + '_ {
        let mut starts = Vec::with_capacity(self.len());
        let mut at = 0;
        while at < self.buf.len() {
            starts.push(at);
            at = self.pair_at(at).1;
        }
        starts.into_iter().map(|at| self.pair_at(at).0)
    }

    /// The pairs in order, without collecting their positions first (forward scans, lookups).
    pub fn scan(&self) -> impl Iterator<Item = Pair<'_>> + '_ {
        let mut at = 0;
        std::iter::from_fn(move || {
            if at >= self.buf.len() {
                return None;
            }
            let (pair, end) = self.pair_at(at);
            at = end;
            Some(pair)
        })
    }

    /// The first pair whose first string is `first`.
    pub fn find(&self, first: &[u8]) -> Option<Pair<'_>> {
        self.scan().find(|p| p.first == first)
    }

    pub fn push(&mut self, first: &[u8], second: &[u8]) {
        write_len(&mut self.buf, first.len());
        self.buf.extend_from_slice(first);
        write_len(&mut self.buf, second.len());
        self.buf.extend_from_slice(second);
        self.pairs += 1;
    }

    /// Inserts a pair before the one at `at` (or at the end when `at` is the buffer's length).
    pub fn insert(&mut self, at: usize, first: &[u8], second: &[u8]) {
        let bytes = encode_pair(first, second);
        self.buf.splice(at..at, bytes);
        self.pairs += 1;
    }

    /// Removes the pair starting at `at`.
    pub fn remove(&mut self, at: usize) {
        let end = self.pair_at(at).1;
        self.buf.drain(at..end);
        self.pairs -= 1;
    }

    /// Replaces the second string of the pair starting at `at`.
    pub fn set_second(&mut self, at: usize, second: &[u8]) {
        let mid = self.string_at(at).1;
        let (old, end) = self.string_at(mid);
        if old.len() == second.len() {
            // Same length, same length prefix: overwrite in place (HSET of a counter, a flag...).
            self.buf[end - second.len()..end].copy_from_slice(second);
            return;
        }
        let mut bytes = Vec::with_capacity(second.len() + 2);
        write_len(&mut bytes, second.len());
        bytes.extend_from_slice(second);
        self.buf.splice(mid..end, bytes);
    }

    /// The end of the buffer: where [`Pack::insert`] appends.
    pub fn end(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_in_order_through_edits() {
        let mut p = Pack::default();
        p.push(b"a", b"1");
        p.push(b"b", &[7u8; 200]);
        p.push(b"", b"");
        assert_eq!(p.len(), 3);
        let b = p.find(b"b").unwrap();
        assert_eq!(b.second.len(), 200);
        p.set_second(b.at, b"2");
        let c = p.find(b"").unwrap();
        p.insert(c.at, b"x", b"9");
        let firsts: Vec<&[u8]> = p.iter().map(|q| q.first).collect();
        assert_eq!(firsts, [&b"a"[..], b"b", b"x", b""]);
        assert_eq!(p.find(b"b").unwrap().second, b"2");
        p.remove(p.find(b"a").unwrap().at);
        assert_eq!(p.iter().rev().map(|q| q.second).collect::<Vec<_>>(), [&b""[..], b"9", b"2"]);
        assert_eq!(p.scan().count(), 3);
        assert_eq!(p.len(), 3);
    }
}
