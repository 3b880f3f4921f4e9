//! A chained hash table with incremental rehashing and a reverse-binary SCAN cursor: Redis's `dict`.
//!
//! Why not `HashMap`: SCAN must return every key present for the whole iteration at least once, even
//! while the table grows or shrinks between calls, and RANDOMKEY must be cheap. Redis gets both from this
//! layout: power-of-two bucket arrays, a cursor that walks bucket indexes in reversed-bit order (so
//! doubling or halving the table never skips a bucket's keys), and rehashing spread over later
//! operations so a resize of millions of keys never stalls the broker. One pointer per bucket also keeps
//! per-key overhead near Redis's.

use super::siphash::SipKey;
use super::small_bytes::SmallBytes;

/// One entry. The low 32 bits of the key's hash are kept so rehashing never hashes again and a probe
/// compares key bytes only when the hashes agree (tables never reach 2^32 buckets).
pub struct Node<V> {
    next: Option<Box<Node<V>>>,
    hash: u32,
    key: SmallBytes,
    pub value: V,
}

impl<V> Node<V> {
    fn is(&self, hash: u32, key: &[u8]) -> bool {
        self.hash == hash && self.key.as_slice() == key
    }
}

struct Table<V> {
    buckets: Vec<Option<Box<Node<V>>>>,
    used: usize,
}

impl<V> Table<V> {
    fn empty() -> Self {
        Table { buckets: Vec::new(), used: 0 }
    }

    fn with_size(size: usize) -> Self {
        let mut buckets = Vec::with_capacity(size);
        buckets.resize_with(size, || None);
        Table { buckets, used: 0 }
    }

    fn mask(&self) -> u64 {
        (self.buckets.len() as u64).wrapping_sub(1)
    }

    fn index(&self, hash: u32) -> usize {
        (u64::from(hash) & self.mask()) as usize
    }
}

const INITIAL_SIZE: usize = 4;
/// Buckets examined per step before giving up on finding a non-empty one (Redis: 10 × n).
const EMPTY_VISITS: usize = 10;

/// A key's place in the table, found with one hash (see [`Dict::slot`]).
pub enum Slot<'a, V> {
    Occupied(&'a mut V),
    Vacant(Vacant<'a, V>),
}

pub struct Vacant<'a, V> {
    dict: &'a mut Dict<V>,
    hash: u32,
}

impl<'a, V> Vacant<'a, V> {
    /// Inserts `key` (the key the slot was looked up with).
    pub fn insert(self, key: &[u8], value: V) -> &'a mut V {
        self.dict.insert_hashed(self.hash, key, value)
    }
}

pub struct Dict<V> {
    tables: [Table<V>; 2],
    /// Next bucket of `tables[0]` to move into `tables[1]`, while rehashing.
    rehash_index: Option<usize>,
    hasher: SipKey,
}

impl<V> Default for Dict<V> {
    fn default() -> Self {
        Dict { tables: [Table::empty(), Table::empty()], rehash_index: None, hasher: SipKey::random() }
    }
}

fn rev(v: u64) -> u64 {
    v.reverse_bits()
}

impl<V> Dict<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.tables[0].used + self.tables[1].used
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn hash(&self, key: &[u8]) -> u32 {
        self.hasher.hash(key) as u32
    }

    fn rehashing(&self) -> bool {
        self.rehash_index.is_some()
    }

    /// Moves up to `n` buckets from the old table to the new one.
    fn rehash_step(&mut self, n: usize) {
        let Some(mut idx) = self.rehash_index else { return };
        let mut empty_visits = n * EMPTY_VISITS;
        let mut moved = 0;
        while moved < n && self.tables[0].used > 0 {
            while self.tables[0].buckets[idx].is_none() {
                idx += 1;
                empty_visits -= 1;
                if empty_visits == 0 {
                    self.rehash_index = Some(idx);
                    return;
                }
            }
            let mut chain = self.tables[0].buckets[idx].take();
            while let Some(mut node) = chain {
                chain = node.next.take();
                let dst = self.tables[1].index(node.hash);
                node.next = self.tables[1].buckets[dst].take();
                self.tables[1].buckets[dst] = Some(node);
                self.tables[0].used -= 1;
                self.tables[1].used += 1;
            }
            idx += 1;
            moved += 1;
        }
        if self.tables[0].used == 0 {
            self.tables[0] = std::mem::replace(&mut self.tables[1], Table::empty());
            self.rehash_index = None;
        } else {
            self.rehash_index = Some(idx);
        }
    }

    /// Background progress for idle tables (the timer calls this so a quiet db still finishes).
    pub fn rehash_some(&mut self, buckets: usize) {
        self.rehash_step(buckets);
    }

    fn start_resize(&mut self, size: usize) {
        if self.rehashing() {
            return;
        }
        let size = size.max(INITIAL_SIZE).next_power_of_two();
        if size == self.tables[0].buckets.len() {
            return;
        }
        if self.tables[0].buckets.is_empty() {
            self.tables[0] = Table::with_size(size);
            return;
        }
        self.tables[1] = Table::with_size(size);
        self.rehash_index = Some(0);
    }

    fn grow_if_needed(&mut self) {
        let size = self.tables[0].buckets.len();
        if size == 0 {
            self.start_resize(INITIAL_SIZE);
        } else if self.tables[0].used >= size {
            self.start_resize(self.tables[0].used + 1);
        }
    }

    /// Shrinks once fewer than 1 in 10 buckets are used (Redis's HASHTABLE_MIN_FILL).
    fn shrink_if_needed(&mut self) {
        let size = self.tables[0].buckets.len();
        let used = self.len();
        if !self.rehashing() && size > INITIAL_SIZE && used * 10 < size {
            self.start_resize(used);
        }
    }

    fn find_in(&self, t: usize, hash: u32, key: &[u8]) -> Option<&Node<V>> {
        let table = &self.tables[t];
        if table.buckets.is_empty() {
            return None;
        }
        let mut cur = table.buckets[table.index(hash)].as_deref();
        while let Some(node) = cur {
            if node.is(hash, key) {
                return Some(node);
            }
            cur = node.next.as_deref();
        }
        None
    }

    fn find(&self, hash: u32, key: &[u8]) -> Option<&Node<V>> {
        self.find_in(0, hash, key).or_else(|| self.find_in(1, hash, key))
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.find(self.hash(key), key).map(|n| &n.value)
    }

    pub fn get_key_value(&self, key: &[u8]) -> Option<(&[u8], &V)> {
        self.find(self.hash(key), key).map(|n| (n.key.as_slice(), &n.value))
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Where `key` is: its table and depth in the bucket's chain.
    fn locate(&self, hash: u32, key: &[u8]) -> Option<(usize, usize)> {
        for t in 0..2 {
            let table = &self.tables[t];
            if table.buckets.is_empty() {
                continue;
            }
            let mut chain = std::iter::successors(table.buckets[table.index(hash)].as_deref(), |n| n.next.as_deref());
            if let Some(depth) = chain.position(|n| n.is(hash, key)) {
                return Some((t, depth));
            }
        }
        None
    }

    fn value_at(&mut self, hash: u32, (t, depth): (usize, usize)) -> &mut V {
        let table = &mut self.tables[t];
        let idx = table.index(hash);
        let mut node = table.buckets[idx].as_deref_mut().expect("located");
        for _ in 0..depth {
            node = node.next.as_deref_mut().expect("located");
        }
        &mut node.value
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        self.rehash_step(1);
        let h = self.hash(key);
        let at = self.locate(h, key)?;
        Some(self.value_at(h, at))
    }

    /// The key's slot, hashing it once: its value if present, or a place to insert it.
    pub fn slot(&mut self, key: &[u8]) -> Slot<'_, V> {
        self.rehash_step(1);
        let hash = self.hash(key);
        match self.locate(hash, key) {
            Some(at) => Slot::Occupied(self.value_at(hash, at)),
            None => Slot::Vacant(Vacant { dict: self, hash }),
        }
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: &[u8], value: V) -> Option<V> {
        match self.slot(key) {
            Slot::Occupied(slot) => Some(std::mem::replace(slot, value)),
            Slot::Vacant(vacant) => {
                vacant.insert(key, value);
                None
            }
        }
    }

    /// Inserts a key known to be absent. Moves a rehash along, as every other write does (a table
    /// filled only through here would otherwise never finish growing, and its chains would lengthen).
    pub fn insert_new(&mut self, key: &[u8], value: V) -> &mut V {
        self.rehash_step(1);
        let hash = self.hash(key);
        self.insert_hashed(hash, key, value)
    }

    fn insert_hashed(&mut self, hash: u32, key: &[u8], value: V) -> &mut V {
        self.grow_if_needed();
        let t = if self.rehashing() { 1 } else { 0 };
        let table = &mut self.tables[t];
        let idx = table.index(hash);
        let next = table.buckets[idx].take();
        table.buckets[idx] = Some(Box::new(Node { next, hash, key: SmallBytes::new(key), value }));
        table.used += 1;
        &mut table.buckets[idx].as_mut().expect("just inserted").value
    }

    /// Removes a key, returning its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        self.rehash_step(1);
        let h = self.hash(key);
        for t in 0..2 {
            let table = &mut self.tables[t];
            if table.buckets.is_empty() {
                continue;
            }
            let idx = table.index(h);
            let mut link = &mut table.buckets[idx];
            loop {
                match link {
                    None => break,
                    Some(node) if node.is(h, key) => {
                        let mut node = link.take().expect("matched Some");
                        *link = node.next.take();
                        table.used -= 1;
                        let value = node.value;
                        self.shrink_if_needed();
                        return Some(value);
                    }
                    Some(node) => link = &mut node.next,
                }
            }
        }
        None
    }

    pub fn clear(&mut self) {
        // Drop chains iteratively: a long chain dropped recursively could overflow the stack.
        for t in &mut self.tables {
            for bucket in &mut t.buckets {
                let mut chain = bucket.take();
                while let Some(mut node) = chain {
                    chain = node.next.take();
                }
            }
        }
        self.tables = [Table::empty(), Table::empty()];
        self.rehash_index = None;
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> {
        self.tables
            .iter()
            .flat_map(|t| t.buckets.iter())
            .flat_map(|bucket| std::iter::successors(bucket.as_deref(), |n| n.next.as_deref()).map(|n| (n.key.as_slice(), &n.value)))
    }

    /// What the bucket arrays (both, while rehashing) cost the allocator.
    fn bucket_memory(&self) -> usize {
        self.tables.iter().map(|t| crate::engine::memory::vec::<Option<Box<Node<V>>>>(t.buckets.capacity())).sum()
    }

    /// The table's own cost (MEMORY STATS' `overhead.hashtable.main`): bucket arrays and one node per
    /// entry, the values' heap aside.
    pub fn overhead(&self) -> usize {
        use crate::engine::memory::chunk;
        self.bucket_memory() + self.len() * chunk(std::mem::size_of::<Node<V>>())
    }

    /// What one entry under `key` costs the allocator besides its value's own heap: its node, its key
    /// when too long to sit inline, and its share of the bucket arrays.
    pub fn entry_memory(&self, key: &[u8]) -> usize {
        use crate::engine::memory::chunk;
        chunk(std::mem::size_of::<Node<V>>()) + chunk(SmallBytes::heap_len(key.len())) + self.bucket_memory() / self.len().max(1)
    }

    /// What the table costs the allocator (MEMORY USAGE): its bucket arrays exactly, and its nodes (with
    /// a key too long to sit inline, and `value`'s heap beyond the node) sampled as
    /// [`crate::engine::memory::sampled`] says.
    pub fn memory(&self, samples: usize, value: impl Fn(&V) -> usize) -> usize {
        use crate::engine::memory::{chunk, sampled};
        let node = chunk(std::mem::size_of::<Node<V>>());
        let nodes = self
            .tables
            .iter()
            .flat_map(|t| t.buckets.iter())
            .flat_map(|bucket| std::iter::successors(bucket.as_deref(), |n| n.next.as_deref()))
            .map(|n| node + chunk(n.key.heap_bytes()) + value(&n.value));
        self.bucket_memory() + sampled(self.len(), samples, nodes)
    }

    fn visit_bucket<'a>(table: &'a Table<V>, idx: usize, f: &mut impl FnMut(&'a [u8], &'a V)) {
        let mut cur = table.buckets[idx].as_deref();
        while let Some(n) = cur {
            f(n.key.as_slice(), &n.value);
            cur = n.next.as_deref();
        }
    }

    /// One SCAN step from `cursor`: calls `f` for every entry of the visited bucket(s) and returns the
    /// next cursor (0 when the iteration is complete).
    pub fn scan<'a>(&'a self, cursor: u64, mut f: impl FnMut(&'a [u8], &'a V)) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let mut v = cursor;
        if !self.rehashing() {
            let t0 = &self.tables[0];
            let m0 = t0.mask();
            Self::visit_bucket(t0, (v & m0) as usize, &mut f);
            v |= !m0;
            v = rev(rev(v).wrapping_add(1));
        } else {
            let (small, big) = if self.tables[0].buckets.len() <= self.tables[1].buckets.len() {
                (&self.tables[0], &self.tables[1])
            } else {
                (&self.tables[1], &self.tables[0])
            };
            let (m0, m1) = (small.mask(), big.mask());
            Self::visit_bucket(small, (v & m0) as usize, &mut f);
            loop {
                Self::visit_bucket(big, (v & m1) as usize, &mut f);
                v |= !m1;
                v = rev(rev(v).wrapping_add(1));
                if v & (m0 ^ m1) == 0 {
                    break;
                }
            }
        }
        v
    }

    /// A random entry: a random non-empty bucket, then a random node of its chain.
    pub fn random(&self, mut rand: impl FnMut() -> u64) -> Option<(&[u8], &V)> {
        if self.is_empty() {
            return None;
        }
        let head = loop {
            let t = if self.rehashing() && rand() % 2 == 1 { 1 } else { 0 };
            let table = &self.tables[t];
            if table.used == 0 {
                continue;
            }
            let idx = (rand() & table.mask()) as usize;
            if let Some(node) = table.buckets[idx].as_deref() {
                break node;
            }
        };
        let len = std::iter::successors(Some(head), |n| n.next.as_deref()).count();
        let pick = (rand() % len as u64) as usize;
        std::iter::successors(Some(head), |n| n.next.as_deref()).nth(pick).map(|n| (n.key.as_slice(), &n.value))
    }
}

/// A copy with the same entries (COPY of an aggregate value); sized for them at once.
impl<V: Clone> Clone for Dict<V> {
    fn clone(&self) -> Self {
        let mut copy = Dict::new();
        copy.start_resize(self.len());
        for (key, value) in self.iter() {
            copy.insert_new(key, value.clone());
        }
        copy
    }
}

impl<V> Drop for Dict<V> {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn key(i: usize) -> Vec<u8> {
        format!("key:{i}").into_bytes()
    }

    #[test]
    fn a_table_filled_only_by_insert_new_keeps_growing() {
        let mut d = Dict::new();
        for i in 0..100_000 {
            d.insert_new(&key(i), i);
        }
        let buckets = d.tables[0].buckets.len() + d.tables[1].buckets.len();
        assert!(buckets >= 65_536, "{buckets} buckets for 100,000 keys: the rehash stalled");
        assert_eq!(d.get(&key(99_999)), Some(&99_999));
    }

    #[test]
    fn insert_get_remove_through_resizes() {
        let mut d = Dict::new();
        for i in 0..10_000 {
            assert!(d.insert(&key(i), i).is_none());
        }
        assert_eq!(d.len(), 10_000);
        for i in 0..10_000 {
            assert_eq!(d.get(&key(i)), Some(&i));
        }
        assert_eq!(d.insert(&key(5), 55), Some(5));
        for i in 0..9_990 {
            assert_eq!(d.remove(&key(i)), Some(if i == 5 { 55 } else { i }));
        }
        assert_eq!(d.len(), 10);
        assert!(d.get(&key(0)).is_none());
        assert_eq!(d.iter().count(), 10);
    }

    #[test]
    fn scan_covers_every_key_while_the_table_resizes() {
        let mut d = Dict::new();
        for i in 0..1000 {
            d.insert(&key(i), i);
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            let mut batch = Vec::new();
            cursor = d.scan(cursor, |k, _| batch.push(k.to_vec()));
            seen.extend(batch);
            // Grow the table mid-scan, then shrink it: keys present throughout must still be seen.
            round += 1;
            if round == 50 {
                for i in 1000..5000 {
                    d.insert(&key(i), i);
                }
            }
            if round == 200 {
                for i in 1000..5000 {
                    d.remove(&key(i));
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..1000 {
            assert!(seen.contains(&key(i)), "key {i} missed");
        }
    }

    #[test]
    fn random_returns_members() {
        let mut d = Dict::new();
        assert!(d.random(|| 7).is_none());
        for i in 0..100 {
            d.insert(&key(i), i);
        }
        let mut x = 12345u64;
        for _ in 0..100 {
            let (k, v) = d
                .random(|| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x
                })
                .unwrap();
            assert_eq!(k, key(*v).as_slice());
        }
    }
}
