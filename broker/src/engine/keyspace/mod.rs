//! The Redis keyspace: numbered databases of typed values with expiry, WATCH bookkeeping and keyspace
//! notifications.
//!
//! Every change to a key goes through [`Keyspace::changed`] (or [`Keyspace::expired`] for deadlines):
//! that is where WATCH flags are dirtied and notifications leave, so no command can forget either.
//! Time is a parameter (`now`, unix ms from the broker's clock), never read here, so tests control it.

mod aggregate;
pub mod bits;
mod blackboard;
mod db;
mod generic;
pub mod hashes;
pub mod journal;
pub mod lcs;
pub mod lists;
pub mod notify;
mod restore;
pub mod serialized;
pub mod sets;
pub mod sort;
pub mod strings;
mod value;
mod watch;
mod xgroups;
#[cfg(test)]
mod xstream_tests;
mod xstreams;
pub mod zranges;
pub mod zsets;

use std::collections::HashMap;
use std::sync::Arc;

use crate::engine::Error;
use bytes::Bytes;

pub use aggregate::ElementScan;
pub use blackboard::{BbCondition, BbEntry, ScopeReport, ScopeSummary, wait_key as bb_wait_key};
pub use db::{Db, Previous};
pub use generic::{ExpireCondition, ExpireOutcome, ScanArgs, ScanPage};
pub use journal::{ChangeKind, JournalEntry, JournalLimits, ScopeStats, Since};
pub use lists::PosOptions;
pub use value::{Entry, Value};
pub use watch::WatchHandle;
pub use xgroups::{
    ClaimSpec, ClaimTime, ConsumerFull, ConsumerInfo, GroupFull, GroupInfo, GroupPosition, PendingEntry, PendingSummary, XAutoClaimed,
    XClaimed,
};
pub use xstreams::{GroupReadId, XAddArgs, XRead, XStreamInfo};

use crate::engine::change::{Change, ChangeSink, End, Journaled, KeyChange, KeyEffect, XEffect};
use crate::engine::wait::{Ready, WaitKey};
use journal::Journal;

/// What a change did, as the keyspace's hooks tell [`Keyspace::record`].
enum Did<'v> {
    Stored,
    Deadline,
    Removed {
        revision: u64,
        value: Option<&'v [u8]>,
    },
    Pushed {
        end: End,
        values: &'v [Bytes],
    },
    Popped {
        end: End,
        count: usize,
    },
    /// A change described by what it did to an aggregate (hash, set, sorted set).
    Delta(KeyEffect<'v>),
    /// A stream change; `modified` when Redis counts it as a modification of the key (WATCH, the
    /// blackboard journal), which consumer-group bookkeeping is not.
    XStream {
        effect: XEffect<'v>,
        modified: bool,
    },
}

/// The access clock's reading when the broker starts (about 34 years of seconds): what a key loaded
/// from disk is stamped with, and room below for idle times given to RESTORE.
pub(crate) const ACCESS_CLOCK_BASE: u32 = 1 << 30;

/// `expire_at` of a key without expiry.
pub const NO_EXPIRY: u64 = u64::MAX;

/// Counters INFO reports under `stats` and `keyspace`.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyspaceStats {
    pub hits: u64,
    pub misses: u64,
    pub expired_keys: u64,
}

/// Settings the keyspace needs from config (changeable with CONFIG SET).
#[derive(Debug, Clone, Copy)]
pub struct KeyspaceSettings {
    pub databases: usize,
    /// Largest string a command may build (APPEND, SETRANGE): `proto-max-bulk-len`.
    pub max_string_len: usize,
    pub blackboard: BlackboardSettings,
}

/// The `[blackboard]` section of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlackboardSettings {
    /// Most blackboard scopes besides the global one.
    pub max_scopes: usize,
    /// Bounds of each scope's change journal (0: unbounded).
    pub journal_max_entries: usize,
    pub journal_max_bytes: usize,
}

impl BlackboardSettings {
    pub fn journal(&self) -> JournalLimits {
        JournalLimits { max_entries: self.journal_max_entries, max_bytes: self.journal_max_bytes }
    }
}

/// The keyspace: numbered databases (`SELECT 0..databases-1`) followed by blackboard scopes, each a
/// [`Db`] of its own, so expiry, revisions and the change hook work the same for both.
pub struct Keyspace {
    dbs: Vec<Db>,
    /// A journal for every database that is a blackboard scope: db 0 (the global scope) and every
    /// named scope. `None` for the other numbered databases.
    journals: Vec<Option<Journal>>,
    /// Named scope -> its database index (>= `settings.databases`).
    scopes: HashMap<Bytes, usize>,
    /// Whether some client waits in BB.WAIT (set by `State::settle`): only then do writes signal it.
    bb_waiting: bool,
    watches: watch::Watches,
    settings: KeyspaceSettings,
    sink: Arc<dyn ChangeSink>,
    pub stats: KeyspaceStats,
    /// Unix ms when the broker started, the zero of `Entry::accessed`.
    started_ms: u64,
    /// Keys that may unblock waiting clients (a list was created), drained by `State::settle`.
    ready: Ready,
    /// Whether any client is blocked (set by `State::settle`): only then do stream appends, and the
    /// removal or replacement of keys (XREADGROUP fails when its stream goes), signal the key.
    key_waiting: bool,
    /// The running command's client asked CLIENT NO-TOUCH: its reads leave access times alone (set by
    /// dispatch each time it takes the lock).
    pub no_touch: bool,
}

impl Keyspace {
    pub fn new(settings: KeyspaceSettings, sink: Arc<dyn ChangeSink>, started_ms: u64) -> Self {
        let dbs = (0..settings.databases).map(|_| Db::default()).collect();
        let mut journals: Vec<Option<Journal>> = (0..settings.databases).map(|_| None).collect();
        journals[0] = Some(Journal::dormant(Bytes::new(), settings.blackboard.journal()));
        Keyspace {
            dbs,
            journals,
            scopes: HashMap::new(),
            bb_waiting: false,
            no_touch: false,
            watches: watch::Watches::new(settings.databases),
            settings,
            sink,
            stats: KeyspaceStats::default(),
            started_ms,
            ready: Ready::default(),
            key_waiting: false,
        }
    }

    pub fn settings(&self) -> KeyspaceSettings {
        self.settings
    }

    pub fn set_max_string_len(&mut self, len: usize) {
        self.settings.max_string_len = len;
    }

    /// The numbered databases (blackboard scopes come after them).
    pub fn db_count(&self) -> usize {
        self.settings.databases
    }

    pub fn db(&self, index: usize) -> &Db {
        &self.dbs[index]
    }

    /// Counts, in every numbered database, the keys matching each pattern (per-tenant quotas).
    pub fn set_quota_patterns(&mut self, patterns: &[Bytes]) {
        for db in &mut self.dbs[..self.settings.databases] {
            db.set_tally(patterns);
        }
    }

    /// Keys matching the `i`th quota pattern across the numbered databases.
    pub fn tallied(&self, i: usize) -> usize {
        self.dbs[..self.settings.databases].iter().map(|db| db.tallied(i)).sum()
    }

    /// A named blackboard scope's database, if the scope exists.
    pub fn scope_table(&self, scope: &[u8]) -> Option<&Db> {
        self.scopes.get(scope).map(|&i| &self.dbs[i])
    }

    /// Every named scope with its key count.
    pub fn scope_sizes(&self) -> impl Iterator<Item = (&Bytes, usize)> {
        self.scopes.iter().map(|(name, &i)| (name, self.dbs[i].len()))
    }

    /// The access clock of `Entry::accessed`: seconds since the broker started, counted from
    /// [`ACCESS_CLOCK_BASE`] so that RESTORE ... IDLETIME can date an access before the start.
    fn clock_secs(&self, now: u64) -> u32 {
        ACCESS_CLOCK_BASE.saturating_add((now.saturating_sub(self.started_ms) / 1000) as u32)
    }

    /// The one place a key change is produced, whatever the command: dirties WATCHes, journals the
    /// change in a blackboard scope (waking BB.WAIT), and emits it as a typed [`Change`] for every
    /// reader of changes (notifications, watch events, the persistence log).
    fn record(&mut self, db: usize, key: &[u8], class: u32, event: &'static str, did: Did<'_>) {
        let modified = !matches!(did, Did::XStream { modified: false, .. });
        if modified {
            self.watches.touch(db, key);
        }
        if self.key_waiting && matches!(did, Did::Stored | Did::Removed { .. }) {
            self.signal_ready(db, key);
        }
        let listening = self.sink.listening();
        // The entry is read only if something needs it: a change described by its result, or a
        // journal that records this one. An O(1) delta (HSET, SADD, LPUSH...) then costs no second
        // lookup.
        let journaling = self.journals[db].as_ref().is_some_and(|j| j.active(listening));
        let entry = if journaling || matches!(did, Did::Stored | Did::Deadline) { self.dbs[db].get(key) } else { None };
        let journaled = match (&did, self.journals[db].as_mut()) {
            (Did::Deadline, _) | (_, None) => None,
            (Did::XStream { .. }, _) if !modified => None,
            (Did::Removed { revision, value }, Some(journal)) => {
                let kind = if event == "expired" { ChangeKind::Expire } else { ChangeKind::Del };
                journal.record(key, kind, *revision, *value, listening).map(|seq| (seq, kind, *revision, *value))
            }
            (_, Some(journal)) => {
                let revision = entry.map_or(0, |e| e.revision);
                let value = entry.and_then(|e| e.value.as_str().ok());
                journal.record(key, ChangeKind::Set, revision, value, listening).map(|seq| (seq, ChangeKind::Set, revision, value))
            }
        };
        let journal = journaled.map(|(seq, kind, revision, value)| Journaled {
            scope: self.journals[db].as_ref().expect("journaled").scope(),
            seq,
            kind,
            revision,
            value,
        });
        if self.bb_waiting
            && let Some(j) = &journal
            && j.kind == ChangeKind::Set
        {
            self.ready.push(blackboard::wait_key(j.scope, key));
        }
        let effect = match (did, entry) {
            (Did::Stored, Some(entry)) => KeyEffect::Stored(entry),
            (Did::Deadline, entry) => KeyEffect::Deadline(entry.map_or(NO_EXPIRY, |e| e.expire_at)),
            (Did::Pushed { end, values }, _) => KeyEffect::Pushed { end, values },
            (Did::Popped { end, count }, _) => KeyEffect::Popped { end, count },
            (Did::Delta(effect), _) => effect,
            (Did::XStream { effect, .. }, _) => KeyEffect::XStream(effect),
            (Did::Stored | Did::Removed { .. }, _) => KeyEffect::Removed,
        };
        let numbered = db < self.settings.databases;
        let scope = self.scope_name(db);
        self.sink.emit(&Change::Key(KeyChange { db, numbered, scope, key, class, event, effect, journal }));
    }

    /// The name of a named scope's database; `None` for the numbered databases.
    fn scope_name(&self, db: usize) -> Option<&[u8]> {
        if db < self.settings.databases { None } else { self.journals[db].as_ref().map(|j| &j.scope()[..]) }
    }

    /// A key's value changed (written, created, modified in place): announced with its new entry.
    pub(crate) fn changed(&mut self, db: usize, key: &[u8], class: u32, event: &'static str) {
        self.record(db, key, class, event, Did::Stored);
    }

    /// Only a key's deadline changed (`expire`, `persist`): not a change of value for the journal.
    pub(crate) fn retimed(&mut self, db: usize, key: &[u8], event: &'static str) {
        self.record(db, key, notify::GENERIC, event, Did::Deadline);
    }

    /// A key is gone (`del`, `expired`, the source of a rename or move), with the revision and value
    /// it had (blackboard watchers are told the old value).
    pub(crate) fn removed(&mut self, db: usize, key: &[u8], class: u32, event: &'static str, old: Option<(u64, Option<&[u8]>)>) {
        let (revision, value) = old.unwrap_or((0, None));
        self.record(db, key, class, event, Did::Removed { revision, value });
    }

    /// Values pushed onto a list.
    pub(crate) fn pushed(&mut self, db: usize, key: &[u8], end: End, values: &[Bytes], event: &'static str) {
        self.record(db, key, notify::LIST, event, Did::Pushed { end, values });
    }

    /// Values popped from a list.
    pub(crate) fn popped(&mut self, db: usize, key: &[u8], end: End, count: usize, event: &'static str) {
        self.record(db, key, notify::LIST, event, Did::Popped { end, count });
    }

    /// A hash, set or sorted set changed as `effect` says (its revision already bumped).
    pub(crate) fn delta(&mut self, db: usize, key: &[u8], class: u32, event: &'static str, effect: KeyEffect<'_>) {
        self.record(db, key, class, event, Did::Delta(effect));
    }

    /// A stream changed. Modifications (entries added, deleted, trimmed; the stream created) bump the
    /// revision and dirty WATCH; consumer-group bookkeeping does neither, as in Redis.
    pub(crate) fn x_changed(&mut self, db: usize, key: &[u8], class: u32, event: &'static str, modified: bool, effect: XEffect<'_>) {
        if modified && let Some(entry) = self.dbs[db].get_mut(key) {
            entry.revision += 1;
        }
        self.x_record(db, key, class, event, modified, effect);
    }

    /// [`Keyspace::x_changed`] for the change that created the key (its revision is already 1).
    pub(crate) fn x_record(&mut self, db: usize, key: &[u8], class: u32, event: &'static str, modified: bool, effect: XEffect<'_>) {
        self.record(db, key, class, event, Did::XStream { effect, modified });
    }

    /// Set by `State::settle`: whether any client is blocked.
    pub fn set_key_waiting(&mut self, waiting: bool) {
        self.key_waiting = waiting;
    }

    /// A notification-only event (`new`, `keymiss`, the `expire` that follows `SET ... EX`): nothing
    /// stored changed, so nothing but notifications reads it.
    pub(crate) fn notify(&self, db: usize, key: &[u8], class: u32, event: &'static str) {
        let numbered = db < self.settings.databases;
        let change = KeyChange { db, numbered, scope: self.scope_name(db), key, class, event, effect: KeyEffect::Notice, journal: None };
        self.sink.emit(&Change::Key(change));
    }

    /// Removes a key whose deadline has passed and announces it (`expired`).
    fn expired(&mut self, db: usize, key: &[u8]) -> Option<Entry> {
        let entry = self.dbs[db].remove(key)?;
        self.stats.expired_keys += 1;
        self.removed(db, key, notify::EXPIRED, "expired", Some((entry.revision, entry.value.as_str().ok())));
        Some(entry)
    }

    /// Lazy expiry for operations that must see the removal happen now (DEL of an expired key emits
    /// `expired`, as Redis does). Reads and writes need not call it: they treat a key past its deadline
    /// as absent, and the timer removes it on time.
    fn expire_if_due(&mut self, db: usize, key: &[u8], now: u64) {
        if self.dbs[db].get(key).is_some_and(|e| e.expire_at <= now) {
            self.expired(db, key);
        }
    }

    /// A live key for reading (one lookup); counts a hit or miss and refreshes its access time.
    fn read(&mut self, db: usize, key: &[u8], now: u64) -> Option<&Entry> {
        let secs = self.clock_secs(now);
        match self.dbs[db].get(key) {
            Some(entry) if entry.expire_at > now => {
                if !self.no_touch {
                    entry.accessed.set(secs);
                }
                self.stats.hits += 1;
                Some(entry)
            }
            _ => {
                self.stats.misses += 1;
                self.notify(db, key, notify::KEY_MISS, "keymiss");
                None
            }
        }
    }

    /// A live key for changing in place (no hit/miss accounting).
    fn live_mut(&mut self, db: usize, key: &[u8], now: u64) -> Option<&mut Entry> {
        match self.dbs[db].get_mut(key) {
            Some(entry) if entry.expire_at > now => Some(entry),
            _ => None,
        }
    }

    fn exists(&self, db: usize, key: &[u8], now: u64) -> bool {
        self.dbs[db].get(key).is_some_and(|e| e.expire_at > now)
    }

    /// Stores a new value under `key` (one lookup): the revision continues from a live previous
    /// value, and the deadline is kept or replaced as asked. Announces `expired` for a dead previous
    /// value and `new` for a creation; callers announce the command's own event.
    fn store(&mut self, db: usize, key: &[u8], value: Value, ttl: Ttl, now: u64) -> Option<Entry> {
        let accessed = self.clock_secs(now);
        match self.dbs[db].put(key, value, ttl, now, accessed) {
            Previous::Live(old) => Some(old),
            Previous::Expired(old) => {
                self.stats.expired_keys += 1;
                self.removed(db, key, notify::EXPIRED, "expired", Some((old.revision, old.value.as_str().ok())));
                self.notify(db, key, notify::NEW, "new");
                None
            }
            Previous::None => {
                self.notify(db, key, notify::NEW, "new");
                None
            }
        }
    }

    /// Deletes a live key, announcing `del`.
    fn delete(&mut self, db: usize, key: &[u8], now: u64) -> Option<Entry> {
        self.expire_if_due(db, key, now);
        let entry = self.dbs[db].remove(key)?;
        self.removed(db, key, notify::GENERIC, "del", Some((entry.revision, entry.value.as_str().ok())));
        Some(entry)
    }

    /// Active expiry: removes up to `budget` keys whose deadline has passed, announcing each.
    /// Returns how many were removed; the caller repeats (after releasing the lock) while it hits the
    /// budget, so a mass expiry never stalls other clients for long.
    pub fn expire_due(&mut self, now: u64, budget: usize) -> usize {
        let mut removed = 0;
        for db in 0..self.dbs.len() {
            while removed < budget {
                let Some((key, entry)) = self.dbs[db].pop_due(now) else { break };
                self.stats.expired_keys += 1;
                self.removed(db, &key, notify::EXPIRED, "expired", Some((entry.revision, entry.value.as_str().ok())));
                removed += 1;
            }
        }
        removed
    }

    /// Records that `key` may now satisfy a blocked client.
    pub(crate) fn signal_ready(&mut self, db: usize, key: &[u8]) {
        self.ready.push(WaitKey::Key { db, key: Bytes::copy_from_slice(key) });
    }

    /// Records that a sorted set now exists at `key`, which may satisfy a blocked BZPOPMIN (when any
    /// client is blocked at all: otherwise a new sorted set costs no copy of its key).
    pub(crate) fn signal_zset_ready(&mut self, db: usize, key: &[u8]) {
        if self.key_waiting {
            self.ready.push(WaitKey::Zset { db, key: Bytes::copy_from_slice(key) });
        }
    }

    /// The keys this engine's changes made ready since the state last collected them.
    pub fn ready_mut(&mut self) -> &mut Ready {
        &mut self.ready
    }

    /// The earliest deadline set since the last call (cheap: called after every command).
    pub fn take_scheduled(&mut self) -> Option<u64> {
        // A plain loop that only writes where something was scheduled: this runs after every command,
        // over every database and scope.
        let mut earliest: Option<u64> = None;
        for db in &mut self.dbs {
            if db.has_scheduled()
                && let Some(at) = db.take_scheduled()
            {
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
            }
        }
        earliest
    }

    /// The earliest deadline in any database.
    pub fn next_deadline(&self) -> Option<u64> {
        self.dbs.iter().filter_map(Db::next_deadline).min()
    }

    /// Periodic upkeep: incremental rehashing of idle tables.
    pub fn housekeeping(&mut self) {
        for db in &mut self.dbs {
            db.housekeeping();
        }
    }

    fn check_db(&self, index: i64) -> Result<usize, Error> {
        usize::try_from(index).ok().filter(|i| *i < self.settings.databases).ok_or(Error::fixed("ERR DB index is out of range"))
    }

    /// Validates a database index from a client (SELECT, MOVE, COPY DB, SWAPDB).
    pub fn db_index(&self, index: i64) -> Result<usize, Error> {
        self.check_db(index)
    }

    /// WATCH: registers `handle` on `key`.
    pub fn watch(&mut self, db: usize, key: Bytes, handle: &WatchHandle) {
        self.watches.add(db, key, handle);
    }

    /// UNWATCH / after EXEC / on disconnect.
    pub fn unwatch(&mut self, handle: &WatchHandle) {
        self.watches.remove_all(handle);
    }

    /// Before EXEC: lazily expires watched keys so a deadline that passed since WATCH dirties it.
    pub fn expire_watched(&mut self, handle: &WatchHandle, now: u64) {
        for (db, key) in handle.keys() {
            self.expire_if_due(db, &key, now);
        }
    }
}

/// What a write does to the key's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    Keep,
    Clear,
    At(u64),
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub fn keyspace() -> Keyspace {
        let settings = KeyspaceSettings {
            databases: 16,
            max_string_len: 512 * 1024 * 1024,
            blackboard: BlackboardSettings { max_scopes: 100, journal_max_entries: 1000, journal_max_bytes: 0 },
        };
        Keyspace::new(settings, Arc::new(crate::engine::change::Discard), 0)
    }
}
