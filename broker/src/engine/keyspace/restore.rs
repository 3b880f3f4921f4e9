//! Putting the keyspace back from persistence, and reading it out for a snapshot.
//!
//! Restoring applies what the log recorded (a key's whole entry, a new deadline, a removal, values
//! pushed or popped) directly to the databases: no notifications, no WATCH, no journal events, no
//! typed changes (the log is being read, not written). Journal entries carried by the records are put
//! back with their original sequence numbers, so a blackboard watcher resumes across a restart.

use bytes::Bytes;

use super::aggregate::Kind;
use super::journal::ChangeKind;
use super::{Entry, Keyspace, Value};
use crate::engine::Error;
use crate::engine::change::{End, XEffect};
use crate::engine::collections::{Hash, Set, Zset};

impl Keyspace {
    /// The database of a named scope, created if it is new.
    pub fn restore_scope(&mut self, scope: &[u8]) -> Result<usize, Error> {
        Ok(self.scope_db(scope, true)?.expect("created"))
    }

    /// Whether `db` is a database index of this keyspace (numbered or scope).
    pub fn has_db(&self, db: usize) -> bool {
        db < self.dbs.len()
    }

    /// Every database index, numbered ones first, then scopes.
    pub fn db_total(&self) -> usize {
        self.dbs.len()
    }

    /// The scope name of database `db` (`Some("")` for database 0, the global scope).
    pub fn scope_of(&self, db: usize) -> Option<&Bytes> {
        self.journals.get(db)?.as_ref().map(|j| j.scope())
    }

    /// The retained journal entries of database `db` when it is a blackboard scope (for snapshots).
    pub fn journal_entries(&self, db: usize) -> impl Iterator<Item = &super::JournalEntry> {
        self.journals.get(db).and_then(Option::as_ref).into_iter().flat_map(|j| j.entries())
    }

    /// The journal position of database `db` when it is a blackboard scope.
    pub fn journal_seq(&self, db: usize) -> Option<u64> {
        self.journals.get(db)?.as_ref().map(|j| j.seq())
    }

    pub fn restore_entry(&mut self, db: usize, key: &[u8], value: Value, expire_at: u64, revision: u64) {
        let mut entry = Entry::new(value, super::ACCESS_CLOCK_BASE);
        entry.expire_at = expire_at;
        entry.revision = revision;
        self.dbs[db].insert(key, entry);
    }

    pub fn restore_deadline(&mut self, db: usize, key: &[u8], at: u64) {
        self.dbs[db].set_expire(key, at);
    }

    pub fn restore_remove(&mut self, db: usize, key: &[u8]) {
        self.dbs[db].remove(key);
    }

    /// Values pushed onto the list at `key`, creating it (without a deadline) if absent.
    pub fn restore_push(&mut self, db: usize, key: &[u8], end: End, values: Vec<Bytes>) {
        if !matches!(self.dbs[db].get(key).map(|e| &e.value), Some(Value::List(_))) {
            self.dbs[db].insert(key, Entry::new(Value::List(Box::default()), super::ACCESS_CLOCK_BASE));
        }
        let entry = self.dbs[db].get_mut(key).expect("a list");
        entry.revision += 1;
        let Value::List(list) = &mut entry.value else { unreachable!("made a list above") };
        for v in values {
            match end {
                End::Left => list.push_front(v),
                End::Right => list.push_back(v),
            }
        }
    }

    /// `count` values popped from the list at `key` (removed when emptied).
    pub fn restore_pop(&mut self, db: usize, key: &[u8], end: End, count: usize) {
        let Some(entry) = self.dbs[db].get_mut(key) else { return };
        let Value::List(list) = &mut entry.value else { return };
        for _ in 0..count {
            match end {
                End::Left => list.pop_front(),
                End::Right => list.pop_back(),
            };
        }
        entry.revision += 1;
        if list.is_empty() {
            self.dbs[db].remove(key);
        }
    }

    /// A recorded hash delta applied to the hash at `key` (created if absent; removed once empty).
    pub fn restore_hash(&mut self, db: usize, key: &[u8], f: impl FnOnce(&mut Hash)) {
        self.restore_aggregate(db, key, f);
    }

    /// A recorded set delta applied to the set at `key` (created if absent; removed once empty).
    pub fn restore_set(&mut self, db: usize, key: &[u8], f: impl FnOnce(&mut Set)) {
        self.restore_aggregate(db, key, f);
    }

    /// A recorded sorted-set delta applied to the sorted set at `key` (created if absent; removed once
    /// empty).
    pub fn restore_zset(&mut self, db: usize, key: &[u8], f: impl FnOnce(&mut Zset)) {
        self.restore_aggregate(db, key, f);
    }

    fn restore_aggregate<T: Kind + Default>(&mut self, db: usize, key: &[u8], f: impl FnOnce(&mut T)) {
        if self.dbs[db].get(key).is_none_or(|e| T::of(&e.value).is_none()) {
            self.dbs[db].insert(key, Entry::new(T::default().wrap(), super::ACCESS_CLOCK_BASE));
        }
        let entry = self.dbs[db].get_mut(key).expect("made above");
        entry.revision += 1;
        let value = T::of_mut(&mut entry.value).expect("made above");
        f(value);
        if value.is_empty() {
            self.dbs[db].remove(key);
        }
    }

    /// A stream change replayed on the stream at `key`, which an append or a group creation makes
    /// if absent (as XADD and XGROUP CREATE MKSTREAM did).
    pub fn restore_xstream(&mut self, db: usize, key: &[u8], effect: &XEffect<'_>) {
        match self.dbs[db].get_mut(key) {
            Some(Entry { value: Value::XStream(s), revision, .. }) => {
                if matches!(effect, XEffect::Added { .. } | XEffect::Deleted { .. } | XEffect::Trimmed { .. }) {
                    *revision += 1;
                }
                s.apply(effect);
            }
            _ if matches!(effect, XEffect::Added { .. } | XEffect::GroupCreated { .. }) => {
                let mut stream = crate::engine::xstream::XStream::default();
                stream.apply(effect);
                self.dbs[db].insert(key, Entry::new(Value::XStream(Box::new(stream)), super::ACCESS_CLOCK_BASE));
            }
            _ => {}
        }
    }

    /// A journal entry of scope database `db`, with its original sequence number.
    pub fn restore_journal(&mut self, db: usize, key: &[u8], seq: u64, kind: ChangeKind, revision: u64, value: Option<&[u8]>) {
        if let Some(journal) = self.journals.get_mut(db).and_then(Option::as_mut) {
            journal.restore(key, seq, kind, revision, value);
        }
    }

    /// A scope's journal position (changes before it are no longer available).
    pub fn restore_journal_seq(&mut self, db: usize, seq: u64) {
        if let Some(journal) = self.journals.get_mut(db).and_then(Option::as_mut) {
            journal.restore_seq(seq);
        }
    }

    /// FLUSHDB (`Some`) or FLUSHALL.
    pub fn restore_flush(&mut self, db: Option<usize>) {
        match db {
            Some(db) => self.dbs[db].clear(),
            None => self.dbs.iter_mut().for_each(super::Db::clear),
        }
    }

    pub fn restore_swap(&mut self, a: usize, b: usize) {
        self.dbs.swap(a, b);
    }

    /// Visits up to about `count` entries of database `db` from `cursor` (Redis's SCAN cursor: every
    /// key present for the whole iteration is visited at least once, whatever changes between
    /// calls); the next cursor, 0 when done.
    pub fn scan_entries(&self, db: usize, mut cursor: u64, count: usize, mut f: impl FnMut(&[u8], &Entry)) -> u64 {
        let mut visited = 0;
        loop {
            cursor = self.dbs[db].scan(cursor, |k, e| {
                visited += 1;
                f(k, e)
            });
            if cursor == 0 || visited >= count {
                return cursor;
            }
        }
    }
}
