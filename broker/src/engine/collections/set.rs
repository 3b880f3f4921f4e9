//! A set's members, in Redis 7.0's two encodings.
//!
//! A set whose members are all integers (Redis's canonical form, `string2ll`) and that has at most 512
//! of them is a sorted vector of `i64` (Redis's intset: SMEMBERS then answers in numeric order, and so
//! do we); the first other member, or the 513th, turns it into a [`Dict`] for good. OBJECT ENCODING
//! reports `intset` / `hashtable` (Redis 7.0 has no listpack sets; 7.2 added them). A table member
//! is the dict's inline key with no value: one node per member.

use bytes::Bytes;
use herald_protocol::number::{format_i64, parse_i64};

use crate::engine::dict::Dict;

pub const MAX_INTSET_ENTRIES: usize = 512;

#[derive(Clone)]
pub enum Set {
    Ints(Vec<i64>),
    Table(Box<Dict<()>>),
}

impl Default for Set {
    fn default() -> Self {
        Set::Ints(Vec::new())
    }
}

/// An integer member's text.
fn int_bytes(n: i64) -> Bytes {
    let mut buf = [0u8; 20];
    Bytes::copy_from_slice(format_i64(&mut buf, n))
}

impl Set {
    pub fn len(&self) -> usize {
        match self {
            Set::Ints(v) => v.len(),
            Set::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Set::Ints(_) => "intset",
            Set::Table(_) => "hashtable",
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match self {
            Set::Ints(v) => parse_i64(member).is_some_and(|n| v.binary_search(&n).is_ok()),
            Set::Table(d) => d.contains_key(member),
        }
    }

    fn convert(&mut self) {
        if let Set::Ints(v) = self {
            let mut dict = Dict::new();
            let mut buf = [0u8; 20];
            for n in v.iter() {
                dict.insert_new(format_i64(&mut buf, *n), ());
            }
            *self = Set::Table(Box::new(dict));
        }
    }

    /// Adds a member; true when it is new.
    pub fn add(&mut self, member: &[u8]) -> bool {
        if let Set::Ints(v) = self {
            match parse_i64(member) {
                Some(n) => {
                    let Err(pos) = v.binary_search(&n) else { return false };
                    v.insert(pos, n);
                    if v.len() > MAX_INTSET_ENTRIES {
                        self.convert();
                    }
                    return true;
                }
                None => self.convert(),
            }
        }
        match self {
            Set::Table(d) => d.insert(member, ()).is_none(),
            Set::Ints(_) => unreachable!("converted above"),
        }
    }

    /// Removes a member; true when it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            Set::Ints(v) => match parse_i64(member).map(|n| v.binary_search(&n)) {
                Some(Ok(pos)) => {
                    v.remove(pos);
                    true
                }
                _ => false,
            },
            Set::Table(d) => d.remove(member).is_some(),
        }
    }

    /// Every member: ascending for an intset, table order otherwise.
    pub fn for_each(&self, mut f: impl FnMut(&[u8])) {
        match self {
            Set::Ints(v) => {
                let mut buf = [0u8; 20];
                v.iter().for_each(|n| f(format_i64(&mut buf, *n)));
            }
            Set::Table(d) => d.iter().for_each(|(k, _)| f(k)),
        }
    }

    pub fn members(&self) -> Vec<Bytes> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each(|m| out.push(Bytes::copy_from_slice(m)));
        out
    }

    /// A random member.
    pub fn random(&self, rand: &mut impl FnMut() -> u64) -> Option<Bytes> {
        match self {
            Set::Ints(v) if v.is_empty() => None,
            Set::Ints(v) => Some(int_bytes(v[(rand() % v.len() as u64) as usize])),
            Set::Table(d) => d.random(rand).map(|(k, _)| Bytes::copy_from_slice(k)),
        }
    }

    /// Removes and returns a random member.
    pub fn pop(&mut self, rand: &mut impl FnMut() -> u64) -> Option<Bytes> {
        let member = self.random(rand)?;
        self.remove(&member);
        Some(member)
    }

    /// One SSCAN step: an intset answers everything at once with cursor 0, as Redis does.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8])) -> u64 {
        match self {
            Set::Ints(_) => {
                self.for_each(f);
                0
            }
            Set::Table(d) => d.scan(cursor, |k, _| f(k)),
        }
    }

    /// What the members cost the allocator beyond the `Set` itself (MEMORY USAGE), sampled.
    pub fn memory(&self, samples: usize) -> usize {
        use crate::engine::memory::{chunk, vec};
        match self {
            Set::Ints(v) => vec::<i64>(v.capacity()),
            Set::Table(d) => chunk(std::mem::size_of::<Dict<()>>()) + d.memory(samples, |_| 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intset_until_a_string_or_too_many() {
        let mut s = Set::default();
        assert!(s.add(b"3") && s.add(b"-1") && !s.add(b"3"));
        assert_eq!(s.members(), [Bytes::from("-1"), Bytes::from("3")]);
        assert_eq!(s.encoding(), "intset");
        assert!(!s.contains(b"03"), "not canonical, so not the integer 3");
        assert!(s.add(b"03"));
        assert_eq!(s.encoding(), "hashtable");
        assert!(s.contains(b"3") && s.contains(b"03"));
        let mut big = Set::default();
        for i in 0..=MAX_INTSET_ENTRIES {
            big.add(i.to_string().as_bytes());
        }
        assert_eq!((big.len(), big.encoding()), (513, "hashtable"));
        let mut next = 7u64;
        let mut rand = move || {
            next = next.wrapping_mul(6364136223846793005).wrapping_add(1);
            next >> 11
        };
        let popped = big.pop(&mut rand).unwrap();
        assert!(!big.contains(&popped) && big.len() == 512);
    }
}
