//! A blackboard scope's change journal: every change to a key in the scope, numbered, with its value,
//! published as a watch event and kept in a bounded log so a watcher that reconnects can resume.
//!
//! The keyspace emits each journaled change with its sequence number (`engine::change::Journaled`);
//! `crate::events` publishes it on `__bb:<event>@<scope>__:<key>` (see `docs/commands.md`). Sequence
//! numbers are per scope and never reused, so a watcher detects any gap, and `BB.CHANGES scope SINCE
//! seq` answers what it missed, or says plainly that the log no longer reaches back that far.

use std::collections::VecDeque;

use bytes::Bytes;

/// What happened to a key, as watchers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Set,
    Del,
    Expire,
}

impl ChangeKind {
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Set => "set",
            ChangeKind::Del => "del",
            ChangeKind::Expire => "expire",
        }
    }
}

/// One journaled change. Key and value share one allocation: a plain SET on the global scope pays for
/// journaling, so it should cost one allocation, not two.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    pub seq: u64,
    pub kind: ChangeKind,
    pub revision: u64,
    /// The key followed by the value (if any).
    data: Box<[u8]>,
    key_len: u32,
    has_value: bool,
}

impl JournalEntry {
    pub fn new(seq: u64, key: &[u8], kind: ChangeKind, revision: u64, value: Option<&[u8]>) -> Self {
        let mut data = Vec::with_capacity(key.len() + value.map_or(0, |v| v.len()));
        data.extend_from_slice(key);
        data.extend_from_slice(value.unwrap_or(b""));
        JournalEntry { seq, kind, revision, data: data.into_boxed_slice(), key_len: key.len() as u32, has_value: value.is_some() }
    }

    pub fn key(&self) -> &[u8] {
        &self.data[..self.key_len as usize]
    }

    /// The new value for `set`, the old one for `del` and `expire`; `None` for a non-string value.
    pub fn value(&self) -> Option<&[u8]> {
        self.has_value.then(|| &self.data[self.key_len as usize..])
    }

    fn size(&self) -> usize {
        self.data.len()
    }
}

/// Bounds of one journal (0 disables a bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalLimits {
    pub max_entries: usize,
    pub max_bytes: usize,
}

/// Per-scope counters (the seeds' `get_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScopeStats {
    pub sets: u64,
    pub gets: u64,
    pub hits: u64,
    pub misses: u64,
    pub deletes: u64,
    pub expired: u64,
}

pub struct Journal {
    scope: Bytes,
    seq: u64,
    log: VecDeque<JournalEntry>,
    bytes: usize,
    limits: JournalLimits,
    /// Whether changes are journaled even with no subscriber listening. Named scopes always are;
    /// the global scope (the Redis keyspace's database 0) only once a BB.* command has used it, so
    /// plain Redis traffic does not pay for a journal nobody asked for.
    armed: bool,
    pub stats: ScopeStats,
}

/// The outcome of asking for the changes after a sequence number.
#[derive(Debug, PartialEq)]
pub enum Since {
    Changes(Vec<JournalEntry>),
    /// The log starts after `seq + 1`: changes were lost to its bound; `oldest` is the first kept.
    Lost {
        oldest: u64,
    },
}

impl Journal {
    pub fn new(scope: Bytes, limits: JournalLimits) -> Self {
        Journal { scope, seq: 0, log: VecDeque::new(), bytes: 0, limits, armed: true, stats: ScopeStats::default() }
    }

    /// A journal that records only once [`Journal::arm`]ed or while someone listens.
    pub fn dormant(scope: Bytes, limits: JournalLimits) -> Self {
        Journal { armed: false, ..Journal::new(scope, limits) }
    }

    pub fn arm(&mut self) {
        self.armed = true;
    }

    pub fn scope(&self) -> &Bytes {
        &self.scope
    }

    /// The last sequence number given out.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Entries kept now (the oldest go beyond the bounds).
    pub fn len(&self) -> usize {
        self.log.len()
    }

    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }

    /// Whether [`Journal::record`] would record a change now.
    pub fn active(&self, listening: bool) -> bool {
        self.armed || listening
    }

    /// Records a change: counts it and logs it (trimming to the bounds); its sequence number, or
    /// `None` when a dormant journal skips it (nobody listens and no BB.* command armed it).
    pub fn record(&mut self, key: &[u8], kind: ChangeKind, revision: u64, value: Option<&[u8]>, listening: bool) -> Option<u64> {
        if !self.active(listening) {
            return None;
        }
        self.seq += 1;
        match kind {
            ChangeKind::Set => self.stats.sets += 1,
            ChangeKind::Del => self.stats.deletes += 1,
            ChangeKind::Expire => self.stats.expired += 1,
        }
        let entry = JournalEntry::new(self.seq, key, kind, revision, value);
        self.bytes += entry.size();
        self.log.push_back(entry);
        self.trim();
        Some(self.seq)
    }

    /// Puts back an entry read from persistence with its original sequence number (one at or below
    /// the journal's position is already there and is skipped).
    pub fn restore(&mut self, key: &[u8], seq: u64, kind: ChangeKind, revision: u64, value: Option<&[u8]>) {
        if seq <= self.seq {
            return;
        }
        self.seq = seq;
        let entry = JournalEntry::new(seq, key, kind, revision, value);
        self.bytes += entry.size();
        self.log.push_back(entry);
        self.trim();
    }

    /// Moves the position on to `seq` (restored from a snapshot: earlier changes are not kept).
    pub fn restore_seq(&mut self, seq: u64) {
        self.seq = self.seq.max(seq);
    }

    fn trim(&mut self) {
        let l = self.limits;
        while (l.max_entries > 0 && self.log.len() > l.max_entries) || (l.max_bytes > 0 && self.bytes > l.max_bytes && self.log.len() > 1) {
            let Some(old) = self.log.pop_front() else { break };
            self.bytes -= old.size();
        }
    }

    /// The retained entries, oldest first (for snapshots).
    pub fn entries(&self) -> impl Iterator<Item = &JournalEntry> {
        self.log.iter()
    }

    /// Changes with a sequence number above `seq`, at most `count`.
    pub fn since(&self, seq: u64, count: usize) -> Since {
        let oldest = self.log.front().map_or(self.seq + 1, |c| c.seq);
        if seq + 1 < oldest {
            return Since::Lost { oldest };
        }
        Since::Changes(self.log.iter().filter(|c| c.seq > seq).take(count).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_log_and_loss() {
        let mut j = Journal::new(Bytes::from_static(b"s"), JournalLimits { max_entries: 3, max_bytes: 0 });
        for i in 0..5u64 {
            j.record(b"k", ChangeKind::Set, i + 1, Some(b"v"), false);
        }
        assert_eq!(j.seq(), 5);
        assert_eq!(j.since(1, 10), Since::Lost { oldest: 3 });
        let Since::Changes(c) = j.since(2, 10) else { panic!() };
        assert_eq!(c.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
        let Since::Changes(c) = j.since(5, 10) else { panic!() };
        assert!(c.is_empty());
        assert_eq!(j.stats.sets, 5);
    }
}
