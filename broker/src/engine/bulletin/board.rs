//! One board: its items in publish order, which of them are free to retrieve, its bounds and its
//! dead-letter list.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use bytes::Bytes;

use super::filter::{Compiled, index_key};

/// Most equality indexes a board builds (one per field path that WHERE ... = ... has used).
const MAX_INDEXES: usize = 8;

/// Item seqs by the value at one field path: lets `WHERE path = value` find its matches without
/// scanning the board.
#[derive(Debug)]
struct EqIndex {
    path: Vec<String>,
    by_value: HashMap<String, BTreeSet<u64>>,
}

impl EqIndex {
    fn key_of(&self, item: &Item) -> Option<String> {
        Compiled::value_at(&self.path, &item.raw).map(|v| index_key(&v))
    }

    fn add(&mut self, item: &Item) {
        if let Some(k) = self.key_of(item) {
            self.by_value.entry(k).or_default().insert(item.seq);
        }
    }

    fn drop_item(&mut self, item: &Item) {
        if let Some(k) = self.key_of(item)
            && let Some(set) = self.by_value.get_mut(&k)
        {
            set.remove(&item.seq);
            if set.is_empty() {
                self.by_value.remove(&k);
            }
        }
    }
}

/// What a full board does with a new item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    DropOldest,
    RejectNew,
}

/// A board's settings (BL.CONFIG).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoardConfig {
    /// Most items (0: unbounded).
    pub max_len: usize,
    pub overflow: Overflow,
    /// Failed leases after which an item is dead-lettered (0: never).
    pub max_leases: u32,
}

/// A retrieve's hold on an item. The token is unique and never reused, so a stale holder is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub token: u64,
    pub expires_ms: u64,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub id: Bytes,
    pub seq: u64,
    /// The JSON text as published: what readers get back, and what filters read (parsing only the
    /// parts a filter's path passes through). Not kept parsed: a parsed copy cost more than the
    /// text itself (docs/benchmarks.md).
    pub raw: Bytes,
    pub published_ms: u64,
    pub expires_ms: Option<u64>,
    pub lease: Option<Lease>,
    /// Leases that ended without a remove (released or expired).
    pub failed_leases: u32,
}

#[derive(Debug)]
pub struct Board {
    pub items: BTreeMap<u64, Item>,
    pub by_id: HashMap<Bytes, u64>,
    /// Items not under a lease, in publish order.
    pub available: BTreeSet<u64>,
    pub max_len: usize,
    pub overflow: Overflow,
    /// Failed leases after which an item is dead-lettered (0: never).
    pub max_leases: u32,
    pub dead: VecDeque<Item>,
    indexes: Vec<EqIndex>,
}

impl Board {
    pub fn new(max_len: usize, max_leases: u32) -> Self {
        Board {
            items: BTreeMap::new(),
            by_id: HashMap::new(),
            available: BTreeSet::new(),
            max_len,
            overflow: Overflow::RejectNew,
            max_leases,
            dead: VecDeque::new(),
            indexes: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn config(&self) -> BoardConfig {
        BoardConfig { max_len: self.max_len, overflow: self.overflow, max_leases: self.max_leases }
    }

    pub fn insert(&mut self, item: Item) {
        for index in &mut self.indexes {
            index.add(&item);
        }
        self.by_id.insert(item.id.clone(), item.seq);
        self.available.insert(item.seq);
        self.items.insert(item.seq, item);
    }

    pub fn take(&mut self, seq: u64) -> Option<Item> {
        let item = self.items.remove(&seq)?;
        for index in &mut self.indexes {
            index.drop_item(&item);
        }
        self.by_id.remove(&item.id);
        self.available.remove(&seq);
        Some(item)
    }

    pub fn seq_of(&self, id: &[u8]) -> Option<u64> {
        self.by_id.get(id).copied()
    }

    pub fn item_mut(&mut self, id: &[u8]) -> Option<&mut Item> {
        let seq = self.seq_of(id)?;
        self.items.get_mut(&seq)
    }

    /// The index for `path`, built on first use (up to [`MAX_INDEXES`] per board).
    fn index_for(&mut self, path: &[String]) -> Option<&EqIndex> {
        if let Some(i) = self.indexes.iter().position(|x| x.path == path) {
            return Some(&self.indexes[i]);
        }
        if self.indexes.len() >= MAX_INDEXES {
            return None;
        }
        let mut index = EqIndex { path: path.to_vec(), by_value: HashMap::new() };
        for item in self.items.values() {
            index.add(item);
        }
        self.indexes.push(index);
        self.indexes.last()
    }

    /// Item seqs in publish order that may match `filters`, from an equality filter's index; `None`
    /// when no filter can use one (the caller scans). Every returned seq still has to be checked.
    pub fn indexed_candidates(&mut self, filters: &[Compiled], only_available: bool) -> Option<Vec<u64>> {
        let seqs = filters.iter().filter_map(|f| f.equality()).find_map(|(path, key)| {
            let index = self.index_for(path)?;
            Some(index.by_value.get(&key).map(|s| s.iter().copied().collect::<Vec<_>>()).unwrap_or_default())
        })?;
        Some(if only_available { seqs.into_iter().filter(|s| self.available.contains(s)).collect() } else { seqs })
    }

    /// Ends an item's lease without a remove: back to the board, or to the dead letters once it has
    /// failed `max_leases` times. True if it was dead-lettered.
    pub fn lease_failed(&mut self, seq: u64, max_dead: usize) -> bool {
        let Some(item) = self.items.get_mut(&seq) else { return false };
        item.lease = None;
        item.failed_leases += 1;
        if self.max_leases > 0 && item.failed_leases >= self.max_leases {
            let item = self.take(seq).expect("present");
            self.dead.push_back(item);
            if max_dead > 0 && self.dead.len() > max_dead {
                self.dead.pop_front();
            }
            true
        } else {
            self.available.insert(seq);
            false
        }
    }
}
