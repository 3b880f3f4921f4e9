//! Redis Streams as a key's value: entries with `<ms>-<seq>` IDs, tombstones, trimming, and consumer
//! groups with their pending entries lists, following Redis 7.0's semantics.
//!
//! Why not Herald's own stream log (`engine::stream`, behind `STREAM.*`): that log numbers entries
//! with consecutive integer offsets, holds one opaque payload per entry and retains by count and age
//! from the front only. A Redis stream's IDs are chosen by the client (or the clock), sparse and
//! compared as `(ms, seq)`; entries are field lists; XDEL punches holes anywhere (readers and the
//! consumer-group lag must see the tombstones); and consumer groups need a pending list per group
//! and per consumer. Sharing the log would have meant a second index over it for every one of those,
//! so this is a dedicated structure, built for Redis's memory profile: entries packed into nodes of
//! up to 100 (`node.rs`, a byte buffer like Redis's listpacks) in a `BTreeMap` keyed by each node's
//! first ID (Redis uses a radix tree of the same 128-bit keys), and groups (`group.rs`) whose
//! pending entries are a `BTreeMap<id, (consumer, delivery time, count)>` plus a per-consumer set.
//!
//! Everything here is the value's own bookkeeping; the keyspace (`keyspace/xstreams.rs`,
//! `keyspace/xgroups.rs`) looks keys up, announces every change through its one hook and knows the
//! time.

mod group;
mod listpacks;
mod node;
mod replay;

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;

pub use group::{Consumer, Group, GroupRead, Nack};
pub use herald_protocol::stream_id::{AddId, StreamId};
pub use listpacks::Counters;
use node::{Node, Slot};

/// Redis's `stream-node-max-bytes` and `stream-node-max-entries` defaults: when a node is full.
pub const NODE_MAX_BYTES: usize = 4096;
pub const NODE_MAX_ENTRIES: u32 = 100;

/// An entry as read: its ID and its fields and values, flat.
pub type XEntry = (StreamId, Vec<Bytes>);

/// Why XADD cannot give an ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoId {
    /// Not above the stream's last ID.
    NotAbove,
    /// `<ms>-*` when the last ID's sequence is already the largest in that millisecond.
    TooLarge,
    /// The last ID is the largest possible.
    Exhausted,
}

/// How to trim (engine-side form of `MAXLEN|MINID [=|~] threshold [LIMIT n]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trim {
    pub max_len: Option<u64>,
    pub min_id: Option<StreamId>,
    pub approx: bool,
    /// 0: no limit.
    pub limit: u64,
}

/// What a trim removed: how many live entries, and the last ID (tombstone or not) of the removed
/// prefix, which replays the trim exactly ([`XStream::trim_through`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trimmed {
    pub removed: u64,
    pub through: StreamId,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct XStream {
    /// Nodes by their master (first) ID.
    nodes: BTreeMap<StreamId, Node>,
    len: u64,
    pub last_id: StreamId,
    /// The first live entry's ID when the stream last changed at its front (0-0 when empty).
    pub first_id: StreamId,
    pub max_deleted: StreamId,
    pub entries_added: u64,
    /// By name, in byte order (Redis's radix tree order).
    groups: BTreeMap<Bytes, Group>,
}

impl XStream {
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Radix-tree keys in Redis's terms: how many nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// How many radix-tree nodes Redis's rax would have for these node keys: the root, every key, and
    /// every branching prefix with the prefixes one byte past it (rax is a compressed trie whose
    /// shape is fixed by its keys).
    pub fn radix_nodes(&self) -> usize {
        let keys: Vec<[u8; 16]> = self.nodes.keys().map(|k| k.to_be_bytes()).collect();
        let mut prefixes: HashSet<&[u8]> = HashSet::with_capacity(keys.len() * 3 + 1);
        prefixes.insert(&[]);
        for k in &keys {
            prefixes.insert(k);
        }
        for pair in keys.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
            prefixes.insert(&a[..common]);
            prefixes.insert(&a[..common + 1]);
            prefixes.insert(&b[..common + 1]);
        }
        prefixes.len()
    }

    /// The ID XADD would give for `id` (`None`: `*`) at `now`, or why it cannot. A clock behind the
    /// last ID keeps the last ID's milliseconds and bumps the sequence.
    pub fn next_id(&self, id: Option<AddId>, now: u64) -> Result<StreamId, NoId> {
        let last = self.last_id;
        match id {
            None if now > last.ms => Ok(StreamId::new(now, 0)),
            None => last.next().ok_or(NoId::Exhausted),
            // Redis 7.0 reports a sequence that would overflow its millisecond this way.
            Some(AddId::Ms(ms)) if ms == last.ms => last.next().filter(|n| n.ms == ms).ok_or(NoId::TooLarge),
            Some(AddId::Ms(ms)) => Some(StreamId::new(ms, 0)).filter(|n| *n > last).ok_or(NoId::NotAbove),
            Some(AddId::Explicit(id)) => Some(id).filter(|n| *n > last).ok_or(NoId::NotAbove),
        }
    }

    /// Appends an entry; `id` must be above [`XStream::last_id`].
    pub fn append(&mut self, id: StreamId, fields: &[Bytes]) {
        debug_assert!(id > self.last_id);
        let new_bytes: usize = fields.iter().map(|f| f.len()).sum();
        match self.nodes.last_entry() {
            Some(mut tail) if tail.get().lp_bytes() + new_bytes < NODE_MAX_BYTES && tail.get().stored() < NODE_MAX_ENTRIES => {
                let master = *tail.key();
                tail.get_mut().push(master, id, fields);
            }
            tail => {
                if let Some(mut tail) = tail {
                    tail.get_mut().seal();
                }
                self.nodes.insert(id, Node::new(id, fields));
            }
        }
        self.len += 1;
        if self.len == 1 {
            self.first_id = id;
        }
        self.last_id = id;
        self.entries_added += 1;
    }

    /// Live entries between `start` and `end` inclusive, at most `count` (0: all), oldest first or
    /// (`rev`) newest first.
    pub fn range(&self, start: StreamId, end: StreamId, count: u64, rev: bool) -> Vec<XEntry> {
        let mut out = Vec::new();
        if start > end {
            return out;
        }
        let limit = if count == 0 { u64::MAX } else { count };
        let from = self.nodes.range(..=start).next_back().map_or(start, |(k, _)| *k);
        let mut take = |node: &Node, slot: &Slot| {
            if !slot.deleted && slot.id >= start && slot.id <= end {
                out.push((slot.id, node.fields(slot)));
            }
            (out.len() as u64) < limit
        };
        if rev {
            for (master, node) in self.nodes.range(from..=end).rev() {
                let slots: Vec<Slot> = node.slots(*master).collect();
                for slot in slots.iter().rev() {
                    if slot.id < start || !take(node, slot) {
                        return out;
                    }
                }
            }
        } else {
            for (master, node) in self.nodes.range(from..=end) {
                for slot in node.slots(*master) {
                    if slot.id > end || !take(node, &slot) {
                        return out;
                    }
                }
            }
        }
        out
    }

    /// One live entry's fields.
    pub fn get(&self, id: StreamId) -> Option<Vec<Bytes>> {
        let (master, node) = self.nodes.range(..=id).next_back()?;
        node.slots(*master).find(|s| s.id == id && !s.deleted).map(|s| node.fields(&s))
    }

    pub fn contains(&self, id: StreamId) -> bool {
        self.nodes.range(..=id).next_back().is_some_and(|(master, node)| node.slots(*master).any(|s| s.id == id && !s.deleted))
    }

    /// The first and last live entries.
    pub fn first_entry(&self) -> Option<XEntry> {
        self.range(StreamId::MIN, StreamId::MAX, 1, false).pop()
    }

    pub fn last_entry(&self) -> Option<XEntry> {
        self.range(StreamId::MIN, StreamId::MAX, 1, true).pop()
    }

    /// The last live entry's ID (0-0 when empty): Redis's `streamLastValidID`.
    pub fn last_valid_id(&self) -> StreamId {
        for (master, node) in self.nodes.iter().rev() {
            if let Some(slot) = node.slots(*master).filter(|s| !s.deleted).last() {
                return slot.id;
            }
        }
        StreamId::MIN
    }

    fn refresh_first_id(&mut self) {
        self.first_id = self.first_entry().map_or(StreamId::MIN, |(id, _)| id);
    }

    /// XDEL of one ID: whether a live entry went. A node whose last live entry goes is dropped.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, node)) = self.nodes.range_mut(..=id).next_back() else { return false };
        let Some(slot) = node.slots(master).find(|s| s.id == id && !s.deleted) else { return false };
        node.mark_deleted(&slot);
        if node.live == 0 {
            self.nodes.remove(&master);
        }
        self.len -= 1;
        if id > self.max_deleted {
            self.max_deleted = id;
        }
        if self.len == 0 {
            self.first_id = StreamId::MIN;
        } else if id == self.first_id {
            self.refresh_first_id();
        }
        true
    }

    /// Trims as XTRIM / XADD's MAXLEN and MINID do (Redis's `streamTrim`): whole nodes from the front
    /// while they fit, then (unless `~`) entries of the next node marked deleted.
    pub fn trim(&mut self, trim: &Trim) -> Option<Trimmed> {
        let mut removed = 0;
        let mut through = None;
        while let Some(mut first) = self.nodes.first_entry() {
            if trim.max_len.is_some_and(|max| self.len <= max) {
                break;
            }
            let master = *first.key();
            let live = u64::from(first.get().live);
            if trim.limit != 0 && removed + live > trim.limit {
                break;
            }
            let whole = match (trim.max_len, trim.min_id) {
                (Some(max), _) => self.len - live >= max,
                (None, Some(min)) => first.get().last_id(master) < min,
                (None, None) => false,
            };
            if whole {
                through = Some(first.get().last_id(master));
                first.remove();
                self.len -= live;
                removed += live;
                continue;
            }
            if trim.approx {
                break;
            }
            let node = first.get_mut();
            let slots: Vec<Slot> = node.slots(master).collect();
            for slot in slots {
                let stop = match trim.max_len {
                    Some(max) => self.len <= max,
                    None => trim.min_id.is_some_and(|min| slot.id >= min),
                };
                if stop {
                    break;
                }
                if !slot.deleted {
                    node.mark_deleted(&slot);
                    self.len -= 1;
                    removed += 1;
                    through = Some(slot.id);
                }
            }
            break;
        }
        let through = through?;
        self.refresh_first_id();
        Some(Trimmed { removed, through })
    }

    /// Replays a trim: removes every node that ends at or before `through`, then marks the live
    /// entries up to `through` in the next one, which is what [`XStream::trim`] did.
    pub fn trim_through(&mut self, through: StreamId) {
        while let Some(mut first) = self.nodes.first_entry() {
            let master = *first.key();
            if master > through {
                break;
            }
            let node = first.get_mut();
            if node.last_id(master) <= through {
                self.len -= u64::from(node.live);
                first.remove();
                continue;
            }
            let slots: Vec<Slot> = node.slots(master).take_while(|s| s.id <= through).filter(|s| !s.deleted).collect();
            for slot in slots {
                node.mark_deleted(&slot);
                self.len -= 1;
            }
            break;
        }
        self.refresh_first_id();
    }

    pub fn groups(&self) -> impl Iterator<Item = (&Bytes, &Group)> {
        self.groups.iter()
    }

    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    pub fn group(&self, name: &[u8]) -> Option<&Group> {
        self.groups.get(name)
    }

    pub fn group_mut(&mut self, name: &[u8]) -> Option<&mut Group> {
        self.groups.get_mut(name)
    }

    /// Creates a group; false if the name is taken.
    pub fn create_group(&mut self, name: &[u8], last_id: StreamId, entries_read: Option<u64>) -> bool {
        if self.groups.contains_key(name) {
            return false;
        }
        self.groups.insert(Bytes::copy_from_slice(name), Group::new(last_id, entries_read));
        true
    }

    pub fn destroy_group(&mut self, name: &[u8]) -> bool {
        self.groups.remove(name).is_some()
    }

    /// The nodes as stored (master ID and bytes), for a snapshot; [`XStream::restore`] reads them back.
    pub fn raw_nodes(&self) -> impl Iterator<Item = (StreamId, &[u8])> {
        self.nodes.iter().map(|(master, node)| (*master, node.raw()))
    }

    /// A stream rebuilt from a snapshot: its nodes, counters and groups. `None` if a node's bytes are
    /// not well formed or the nodes are out of order.
    pub fn restore(
        nodes: Vec<(StreamId, Vec<u8>)>,
        last_id: StreamId,
        first_id: StreamId,
        max_deleted: StreamId,
        entries_added: u64,
        groups: Vec<(Bytes, Group)>,
    ) -> Option<XStream> {
        let nodes = nodes.into_iter().map(|(master, raw)| Some((master, Node::from_raw(master, raw)?)));
        XStream::assemble(nodes, Counters { len: 0, last_id, first_id, max_deleted, entries_added }, groups)
    }

    /// A stream of these nodes (`None` for one that could not be read), counters (its length
    /// counted from the nodes) and groups; `None` if a node is missing or they are out of order.
    fn assemble(nodes: impl Iterator<Item = Option<(StreamId, Node)>>, counters: Counters, groups: Vec<(Bytes, Group)>) -> Option<XStream> {
        let Counters { last_id, first_id, max_deleted, entries_added, .. } = counters;
        let mut s = XStream { last_id, first_id, max_deleted, entries_added, ..XStream::default() };
        for node in nodes {
            let (master, node) = node?;
            if s.nodes.last_key_value().is_some_and(|(last, _)| *last >= master) {
                return None;
            }
            s.len += u64::from(node.live);
            s.nodes.insert(master, node);
        }
        s.groups = groups.into_iter().collect();
        Some(s)
    }

    /// What the stream costs the allocator beyond the `XStream` itself (MEMORY USAGE): its nodes
    /// sampled as Redis samples a stream's listpacks, its groups counted whole.
    pub fn memory(&self, samples: usize) -> usize {
        use crate::engine::memory::{btree_entry, chunk, sampled};
        let node = btree_entry::<StreamId, Node>();
        let nodes = sampled(self.nodes.len(), samples, self.nodes.values().map(|n| node + n.memory()));
        let group = btree_entry::<Bytes, Group>();
        nodes + self.groups().map(|(name, g)| group + chunk(name.len()) + g.memory()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests;
