//! A hash's fields, in Redis's two encodings.
//!
//! Small hashes are a [`Pack`] of (field, value) pairs in insertion order (Redis's listpack: HGETALL
//! answers in that order, and so do we); past 128 fields, or once a field or value longer than 64
//! bytes arrives through HSET / HSETNX / HMSET, the hash becomes a [`Dict`] for good, as Redis converts
//! one way only. OBJECT ENCODING reports which (`listpack` / `hashtable`). The thresholds are Redis's
//! defaults (`hash-max-listpack-entries`, `hash-max-listpack-value`). In the table, fields are the
//! dict's inline keys and values are [`SmallBytes`], so a field and a short value cost one node.

use super::pack::Pack;
use crate::engine::dict::Dict;
use crate::engine::small_bytes::SmallBytes;

pub const MAX_PACK_ENTRIES: usize = 128;
pub const MAX_PACK_VALUE: usize = 64;

#[derive(Clone)]
pub enum Hash {
    Pack(Pack),
    Table(Box<Dict<SmallBytes>>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Pack(Pack::default())
    }
}

impl Hash {
    pub fn len(&self) -> usize {
        match self {
            Hash::Pack(p) => p.len(),
            Hash::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Hash::Pack(_) => "listpack",
            Hash::Table(_) => "hashtable",
        }
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Pack(p) => p.find(field).map(|pair| pair.second),
            Hash::Table(d) => d.get(field).map(SmallBytes::as_slice),
        }
    }

    fn convert(&mut self) {
        if let Hash::Pack(p) = self {
            let mut dict = Dict::new();
            for pair in p.scan() {
                dict.insert_new(pair.first, SmallBytes::new(pair.second));
            }
            *self = Hash::Table(Box::new(dict));
        }
    }

    /// Sets a field; true when it is new. A field or value too long for the packed encoding converts
    /// the hash first, as Redis 7.0's `hashTypeSet` does (HSET, HINCRBYFLOAT's result alike).
    pub fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        if field.len() > MAX_PACK_VALUE || value.len() > MAX_PACK_VALUE {
            self.convert();
        }
        match self {
            Hash::Pack(p) => {
                if let Some(pair) = p.find(field) {
                    let at = pair.at;
                    p.set_second(at, value);
                    return false;
                }
                p.push(field, value);
                if p.len() > MAX_PACK_ENTRIES {
                    self.convert();
                }
                true
            }
            Hash::Table(d) => d.insert(field, SmallBytes::new(value)).is_none(),
        }
    }

    /// Removes a field; true when it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Pack(p) => match p.find(field) {
                Some(pair) => {
                    let at = pair.at;
                    p.remove(at);
                    true
                }
                None => false,
            },
            Hash::Table(d) => d.remove(field).is_some(),
        }
    }

    /// Every (field, value): insertion order when packed, table order otherwise.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &[u8])) {
        match self {
            Hash::Pack(p) => p.scan().for_each(|pair| f(pair.first, pair.second)),
            Hash::Table(d) => d.iter().for_each(|(k, v)| f(k, v.as_slice())),
        }
    }

    /// The pair at a position of the packed order, or a random one of the table.
    pub fn random(&self, rand: &mut impl FnMut() -> u64) -> Option<(&[u8], &[u8])> {
        match self {
            Hash::Pack(p) if p.is_empty() => None,
            Hash::Pack(p) => p.scan().nth((rand() % p.len() as u64) as usize).map(|pair| (pair.first, pair.second)),
            Hash::Table(d) => d.random(rand).map(|(k, v)| (k, v.as_slice())),
        }
    }

    /// One HSCAN step: a packed hash answers everything at once with cursor 0, as Redis does.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        match self {
            Hash::Pack(_) => {
                self.for_each(f);
                0
            }
            Hash::Table(d) => d.scan(cursor, |k, v| f(k, v.as_slice())),
        }
    }

    /// What the fields cost the allocator beyond the `Hash` itself (MEMORY USAGE), sampled.
    pub fn memory(&self, samples: usize) -> usize {
        use crate::engine::memory::chunk;
        match self {
            Hash::Pack(p) => p.memory(),
            Hash::Table(d) => chunk(std::mem::size_of::<Dict<SmallBytes>>()) + d.memory(samples, |v| chunk(v.heap_bytes())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_until_redis_converts_it() {
        let mut h = Hash::default();
        assert!(h.set(b"a", b"1"));
        assert!(!h.set(b"a", b"2"));
        assert_eq!(h.get(b"a"), Some(&b"2"[..]));
        assert_eq!(h.encoding(), "listpack");
        for i in 0..MAX_PACK_ENTRIES - 1 {
            h.set(format!("f{i}").as_bytes(), b"v");
        }
        assert_eq!((h.len(), h.encoding()), (128, "listpack"));
        h.set(b"one more", b"v");
        assert_eq!((h.len(), h.encoding()), (129, "hashtable"));
        assert!(h.remove(b"a"));
        assert_eq!(h.get(b"a"), None);
        let mut small = Hash::default();
        small.set(b"x", b"y");
        small.set(b"x", &[b'v'; 65]);
        assert_eq!(small.encoding(), "hashtable");
        assert_eq!(small.get(b"x").map(<[u8]>::len), Some(65));
    }
}
