//! Consumer groups: the last delivered ID, the logical read counter behind the lag, consumers, and
//! the pending entries list (PEL) of entries delivered but not acknowledged.
//!
//! The group's PEL maps each pending ID to its owner, delivery time and delivery count; each consumer
//! keeps the set of IDs it owns, so XPENDING by consumer and XREADGROUP's history read walk only
//! that consumer's entries (Redis shares one NACK between the two radix trees; here the owner's name
//! is a shared `Bytes`).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::{StreamId, XEntry, XStream};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    pub consumer: Bytes,
    /// Unix ms of the last delivery.
    pub delivered: u64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Consumer {
    /// Unix ms the consumer was last active (XINFO's idle and seen-time).
    pub seen: u64,
    pub pending: BTreeSet<StreamId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub last_id: StreamId,
    /// How many entries the group has read, counted from the first entry ever added; `None` when it
    /// cannot be known (Redis's -1: the group jumped over tombstones or was set to an arbitrary ID).
    pub entries_read: Option<u64>,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Bytes, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: Option<u64>) -> Self {
        Group { last_id, entries_read, pel: BTreeMap::new(), consumers: BTreeMap::new() }
    }

    /// The consumer's name as stored, creating the consumer (seen now) if needed: `(name, created)`.
    pub fn consumer(&mut self, name: &[u8], now: u64) -> (Bytes, bool) {
        match self.consumers.get_key_value(name) {
            Some((stored, _)) => (stored.clone(), false),
            None => {
                let stored = Bytes::copy_from_slice(name);
                self.consumers.insert(stored.clone(), Consumer { seen: now, pending: BTreeSet::new() });
                (stored, true)
            }
        }
    }

    /// Marks the consumer active now.
    pub fn touch(&mut self, name: &[u8], now: u64) {
        if let Some(c) = self.consumers.get_mut(name) {
            c.seen = now;
        }
    }

    /// Makes `id` pending for `consumer` with this delivery time and count, moving it from whoever
    /// owned it.
    pub fn set_pending(&mut self, id: StreamId, consumer: &Bytes, delivered: u64, count: u64) {
        if let Some(old) = self.pel.get(&id)
            && old.consumer != *consumer
            && let Some(c) = self.consumers.get_mut(&old.consumer)
        {
            c.pending.remove(&id);
        }
        self.pel.insert(id, Nack { consumer: consumer.clone(), delivered, count });
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pending.insert(id);
        }
    }

    /// Removes `id` from the PEL (XACK): whether it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(nack) = self.pel.remove(&id) else { return false };
        if let Some(c) = self.consumers.get_mut(&nack.consumer) {
            c.pending.remove(&id);
        }
        true
    }

    /// Deletes a consumer and its pending entries: how many it had, `None` if it did not exist.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let consumer = self.consumers.remove(name)?;
        for id in &consumer.pending {
            self.pel.remove(id);
        }
        Some(consumer.pending.len())
    }

    /// What the pending entries and consumers cost the allocator (MEMORY USAGE).
    pub fn memory(&self) -> usize {
        use crate::engine::memory::{btree_entry, chunk};
        let consumers: usize = self
            .consumers
            .iter()
            .map(|(name, c)| btree_entry::<Bytes, Consumer>() + chunk(name.len()) + c.pending.len() * btree_entry::<StreamId, ()>())
            .sum();
        self.pel.len() * btree_entry::<StreamId, Nack>() + consumers
    }
}

/// What a read through a group delivered.
#[derive(Debug, Default)]
pub struct GroupRead {
    /// Each entry, `None` for a pending ID whose entry was deleted (history reads only).
    pub entries: Vec<(StreamId, Option<Vec<Bytes>>)>,
    /// The PEL entries written: `(id, delivery time, delivery count)`.
    pub deliveries: Vec<(StreamId, u64, u64)>,
    /// Whether the group's last ID moved.
    pub advanced: bool,
}

impl XStream {
    /// Whether a tombstone may lie at or after `start` (Redis's `streamRangeHasTombstones` with an
    /// open end): the stream is not empty, something was deleted, and the latest deletion is not
    /// before the first entry or before `start`.
    fn tombstones_from(&self, start: StreamId) -> bool {
        !self.is_empty() && !self.max_deleted.is_zero() && self.first_id <= self.max_deleted && start <= self.max_deleted
    }

    /// Redis's `streamEstimateDistanceFromFirstEverEntry`: the logical read counter of `id`, when it
    /// can be known.
    pub fn entries_read_at(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.is_empty() && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        if self.max_deleted.is_zero() || self.max_deleted < self.first_id {
            if id < self.first_id {
                return Some(self.entries_added - self.len());
            }
            if id == self.first_id {
                return Some(self.entries_added - self.len() + 1);
            }
        }
        None
    }

    /// How many entries the group has yet to read, when it can be known (XINFO's `lag`). Negative
    /// when ENTRIESREAD claimed more than was ever added, as in Redis.
    pub fn lag(&self, group: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        let read = match group.entries_read {
            Some(read) if !self.tombstones_from(group.last_id) => read,
            _ => self.entries_read_at(group.last_id)?,
        };
        Some(self.entries_added as i64 - read as i64)
    }

    /// The group's counter once it has read `id`.
    fn read_counter_after(&self, group: &Group, id: StreamId) -> Option<u64> {
        match group.entries_read {
            Some(read) if !self.tombstones_from(id) => Some(read + 1),
            current if self.entries_added == 0 => current,
            _ => self.entries_read_at(id),
        }
    }

    /// XREADGROUP `>`: up to `count` (0: all) entries after the group's last ID, made pending for
    /// `consumer` (which exists) unless `no_ack`.
    pub fn read_new(&mut self, group: &[u8], consumer: &Bytes, count: u64, no_ack: bool, now: u64) -> GroupRead {
        let Some(start) = self.group(group).and_then(|g| g.last_id.next()) else { return GroupRead::default() };
        let entries: Vec<XEntry> = self.range(start, StreamId::MAX, count, false);
        let mut read = GroupRead::default();
        for (id, fields) in entries {
            let g = self.group(group).expect("group exists");
            if id > g.last_id {
                let counter = self.read_counter_after(g, id);
                let g = self.group_mut(group).expect("group exists");
                g.entries_read = counter;
                g.last_id = id;
                read.advanced = true;
            }
            if !no_ack {
                let g = self.group_mut(group).expect("group exists");
                g.set_pending(id, consumer, now, 1);
                read.deliveries.push((id, now, 1));
            }
            read.entries.push((id, Some(fields)));
        }
        read
    }

    /// XREADGROUP with an ID: the consumer's own pending entries after `after`, at most `count` (0:
    /// all), each delivered again (time now, count + 1); a deleted entry reads as `None`.
    pub fn read_history(&mut self, group: &[u8], consumer: &[u8], after: StreamId, count: u64, now: u64) -> GroupRead {
        let mut read = GroupRead::default();
        let Some(start) = after.next() else { return read };
        let ids: Vec<StreamId> = match self.group(group).and_then(|g| g.consumers.get(consumer)) {
            Some(c) => c.pending.range(start..).take(if count == 0 { usize::MAX } else { count as usize }).copied().collect(),
            None => return read,
        };
        for id in ids {
            match self.get(id) {
                None => read.entries.push((id, None)),
                Some(fields) => {
                    let g = self.group_mut(group).expect("group exists");
                    let nack = g.pel.get_mut(&id).expect("a consumer's pending ID is in the group's PEL");
                    nack.delivered = now;
                    nack.count += 1;
                    read.deliveries.push((id, now, nack.count));
                    read.entries.push((id, Some(fields)));
                }
            }
        }
        read
    }
}
