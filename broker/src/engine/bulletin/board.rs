//! One board: its items in publish order, which of them are free to retrieve, its bounds and its
//! dead-letter list.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use bytes::Bytes;
use herald_protocol::command::Overflow;
use serde_json::Value;

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
    /// The JSON text as published (what readers get back).
    pub raw: Bytes,
    /// The same, parsed once for filtering.
    pub json: Value,
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
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn insert(&mut self, item: Item) {
        self.by_id.insert(item.id.clone(), item.seq);
        self.available.insert(item.seq);
        self.items.insert(item.seq, item);
    }

    pub fn take(&mut self, seq: u64) -> Option<Item> {
        let item = self.items.remove(&seq)?;
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
