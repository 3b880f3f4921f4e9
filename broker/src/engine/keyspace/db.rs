//! One numbered database: the key table plus an index of deadlines.
//!
//! These are the primitives the keyspace's operations are built from. They keep the table and the
//! deadline index in step and nothing else: no notifications, no WATCH bookkeeping (that is
//! `Keyspace`'s job, in one place).

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;

use std::cell::Cell;

use super::value::{Entry, Value};
use super::{NO_EXPIRY, Ttl};
use crate::engine::dict::{Dict, Slot};

/// What [`Db::put`] replaced.
pub enum Previous {
    None,
    Live(Entry),
    /// A value past its deadline that the timer had not removed yet: the put is a creation.
    Expired(Entry),
}

/// An entry of the deadline index: ordered by time, then key.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Deadline(u64, Box<[u8]>);

/// Lets the index be searched with a borrowed `(u64, &[u8])` without allocating a key copy.
trait DeadlineKey {
    fn parts(&self) -> (u64, &[u8]);
}

impl DeadlineKey for Deadline {
    fn parts(&self) -> (u64, &[u8]) {
        (self.0, &self.1)
    }
}

impl DeadlineKey for (u64, &[u8]) {
    fn parts(&self) -> (u64, &[u8]) {
        *self
    }
}

impl<'a> Borrow<dyn DeadlineKey + 'a> for Deadline {
    fn borrow(&self) -> &(dyn DeadlineKey + 'a) {
        self
    }
}

impl PartialEq for dyn DeadlineKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn DeadlineKey + '_ {}

impl PartialOrd for dyn DeadlineKey + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn DeadlineKey + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

#[derive(Default)]
pub struct Db {
    dict: Dict<Entry>,
    deadlines: BTreeSet<Deadline>,
    /// Sum of all deadlines, so INFO's `avg_ttl` is exact and O(1).
    deadline_sum: u128,
    /// Earliest deadline added since the timer last looked (see [`Db::take_scheduled`]).
    scheduled: Option<u64>,
    /// Keys per quota pattern (`[[quotas]]`), kept as keys come and go; `None` without quotas, so
    /// the table's primitives pay one branch.
    tally: Option<Box<Tally>>,
}

/// How many keys match each of some glob patterns: per-tenant key counts for quotas.
#[derive(Debug, Default)]
pub struct Tally {
    patterns: Vec<bytes::Bytes>,
    counts: Vec<usize>,
}

impl Tally {
    fn note(&mut self, key: &[u8], added: bool) {
        for (pattern, count) in self.patterns.iter().zip(&mut self.counts) {
            if crate::engine::glob::glob_match(pattern, key) {
                *count = if added { *count + 1 } else { count.saturating_sub(1) };
            }
        }
    }
}

impl Db {
    pub fn len(&self) -> usize {
        self.dict.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dict.is_empty()
    }

    /// Keys with an expiry set.
    pub fn volatile_len(&self) -> usize {
        self.deadlines.len()
    }

    /// The stored entry, whether or not its deadline has passed (callers decide what expiry means).
    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.dict.get(key)
    }

    /// MEMORY STATS' per-database overhead: the key table (buckets and nodes), and the deadline index
    /// (its entries, each with a copy of its key, counted as a short key's 32-byte chunk: the index is
    /// not walked, so that the figure costs O(1)).
    pub fn overhead(&self) -> (usize, usize) {
        use crate::engine::memory::{btree_entry, chunk};
        (self.dict.overhead(), self.deadlines.len() * (btree_entry::<Deadline, ()>() + chunk(1)))
    }

    /// MEMORY USAGE of the entry under `key` (deadline or not: callers decide what expiry means): its
    /// table node and bucket share, its value's heap (collections sampled, `samples` 0: all), and its
    /// entry in the deadline index when it has one.
    pub fn memory_usage(&self, key: &[u8], samples: usize) -> Option<usize> {
        use crate::engine::memory::{btree_entry, chunk};
        let entry = self.dict.get(key)?;
        let deadline = if entry.expire_at == NO_EXPIRY { 0 } else { btree_entry::<Deadline, ()>() + chunk(key.len()) };
        Some(self.dict.entry_memory(key) + entry.value.memory(samples) + deadline)
    }

    /// Mutable access. Callers must not change `expire_at` here: use [`Db::set_expire`].
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.dict.get_mut(key)
    }

    fn unindex(&mut self, key: &[u8], at: u64) {
        if at != NO_EXPIRY {
            let probe: &dyn DeadlineKey = &(at, key);
            if self.deadlines.remove(probe) {
                self.deadline_sum -= u128::from(at);
            }
        }
    }

    fn index(&mut self, key: &[u8], at: u64) {
        if at != NO_EXPIRY && self.deadlines.insert(Deadline(at, key.into())) {
            self.deadline_sum += u128::from(at);
            self.scheduled = Some(self.scheduled.map_or(at, |s| s.min(at)));
        }
    }

    /// Counts keys matching each of `patterns` from now on (none: stops counting), starting from the
    /// keys held now.
    pub fn set_tally(&mut self, patterns: &[bytes::Bytes]) {
        self.tally = (!patterns.is_empty()).then(|| {
            let mut t = Tally { patterns: patterns.to_vec(), counts: vec![0; patterns.len()] };
            for (key, _) in self.dict.iter() {
                t.note(key, true);
            }
            Box::new(t)
        });
    }

    /// Keys matching the `i`th tally pattern (0 without a tally).
    pub fn tallied(&self, i: usize) -> usize {
        self.tally.as_ref().and_then(|t| t.counts.get(i).copied()).unwrap_or(0)
    }

    /// Stores `entry` under `key`, returning what was there.
    pub fn insert(&mut self, key: &[u8], entry: Entry) -> Option<Entry> {
        let at = entry.expire_at;
        let old = self.dict.insert(key, entry);
        if let Some(old) = &old {
            self.unindex(key, old.expire_at);
        } else if let Some(t) = &mut self.tally {
            t.note(key, true);
        }
        self.index(key, at);
        old
    }

    /// Stores `value` under `key` with one lookup: the revision continues from a live previous value
    /// (and restarts at 1 otherwise), the deadline is kept, cleared or set as `ttl` says.
    pub fn put(&mut self, key: &[u8], value: Value, ttl: Ttl, now: u64, accessed: u32) -> Previous {
        let fresh = |at| Entry { value, expire_at: at, revision: 1, accessed: Cell::new(accessed), raw: false };
        let new_at = |current| match ttl {
            Ttl::Keep => current,
            Ttl::Clear => NO_EXPIRY,
            Ttl::At(at) => at,
        };
        match self.dict.slot(key) {
            Slot::Occupied(entry) => {
                let expired = entry.expire_at <= now;
                let at = new_at(if expired { NO_EXPIRY } else { entry.expire_at });
                let revision = if expired { 1 } else { entry.revision + 1 };
                let old = std::mem::replace(entry, Entry { revision, ..fresh(at) });
                if old.expire_at != at {
                    self.unindex(key, old.expire_at);
                    self.index(key, at);
                }
                if expired { Previous::Expired(old) } else { Previous::Live(old) }
            }
            Slot::Vacant(vacant) => {
                let at = new_at(NO_EXPIRY);
                vacant.insert(key, fresh(at));
                self.index(key, at);
                if let Some(t) = &mut self.tally {
                    t.note(key, true);
                }
                Previous::None
            }
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let entry = self.dict.remove(key)?;
        self.unindex(key, entry.expire_at);
        if let Some(t) = &mut self.tally {
            t.note(key, false);
        }
        Some(entry)
    }

    /// Sets (or with [`NO_EXPIRY`], clears) a key's deadline. Returns false if the key is absent.
    pub fn set_expire(&mut self, key: &[u8], at: u64) -> bool {
        let Some(entry) = self.dict.get_mut(key) else { return false };
        let old = std::mem::replace(&mut entry.expire_at, at);
        if old != at {
            self.unindex(key, old);
            self.index(key, at);
        }
        true
    }

    #[inline]
    pub fn has_scheduled(&self) -> bool {
        self.scheduled.is_some()
    }

    /// The earliest deadline added since the last call: what the timer may need to wake for.
    pub fn take_scheduled(&mut self) -> Option<u64> {
        self.scheduled.take()
    }

    /// The earliest deadline, if any key has one.
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.first().map(|d| d.0)
    }

    /// Removes and returns one key whose deadline is at or before `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<(Box<[u8]>, Entry)> {
        let first = self.deadlines.first()?;
        if first.0 > now {
            return None;
        }
        let Deadline(at, key) = self.deadlines.pop_first()?;
        self.deadline_sum -= u128::from(at);
        let entry = self.dict.remove(&key)?;
        if let Some(t) = &mut self.tally {
            t.note(&key, false);
        }
        Some((key, entry))
    }

    pub fn clear(&mut self) {
        if let Some(t) = &mut self.tally {
            t.counts.iter_mut().for_each(|c| *c = 0);
        }
        self.dict.clear();
        self.deadlines.clear();
        self.deadline_sum = 0;
    }

    /// Mean remaining time to live of keys with an expiry, in ms (INFO keyspace `avg_ttl`).
    pub fn average_ttl(&self, now: u64) -> u64 {
        match self.deadlines.len() as u128 {
            0 => 0,
            n => ((self.deadline_sum / n) as u64).saturating_sub(now),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.dict.iter()
    }

    pub fn scan<'a>(&'a self, cursor: u64, f: impl FnMut(&'a [u8], &'a Entry)) -> u64 {
        self.dict.scan(cursor, f)
    }

    pub fn random(&self, rand: impl FnMut() -> u64) -> Option<(&[u8], &Entry)> {
        self.dict.random(rand)
    }

    /// Keeps an idle table's incremental rehash moving.
    pub fn housekeeping(&mut self) {
        self.dict.rehash_some(100);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::keyspace::value::Value;

    fn entry(v: &str, at: u64) -> Entry {
        Entry { expire_at: at, ..Entry::new(Value::string(v.as_bytes()), 0) }
    }

    #[test]
    fn deadlines_follow_the_table() {
        let mut db = Db::default();
        db.insert(b"a", entry("1", 300));
        db.insert(b"b", entry("2", 100));
        db.insert(b"c", entry("3", NO_EXPIRY));
        assert_eq!(db.volatile_len(), 2);
        assert_eq!(db.next_deadline(), Some(100));
        db.set_expire(b"b", 500);
        assert_eq!(db.next_deadline(), Some(300));
        db.insert(b"a", entry("1", NO_EXPIRY));
        assert_eq!(db.next_deadline(), Some(500));
        assert!(db.pop_due(499).is_none());
        let (k, _) = db.pop_due(500).unwrap();
        assert_eq!(&*k, b"b");
        assert_eq!(db.volatile_len(), 0);
        assert_eq!(db.len(), 2);
    }
}
