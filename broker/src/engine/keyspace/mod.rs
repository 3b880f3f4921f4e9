//! The Redis keyspace: numbered databases of typed values with expiry, WATCH bookkeeping and keyspace
//! notifications.
//!
//! Every change to a key goes through [`Keyspace::changed`] (or [`Keyspace::expired`] for deadlines):
//! that is where WATCH flags are dirtied and notifications leave, so no command can forget either.
//! Time is a parameter (`now`, unix ms from the broker's clock), never read here, so tests control it.

mod blackboard;
mod db;
mod generic;
pub mod journal;
pub mod lists;
pub mod notify;
pub mod strings;
mod value;
mod watch;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use herald_protocol::CommandError;

pub use blackboard::{BbCondition, BbEntry, ScopeReport, wait_key as bb_wait_key};
pub use db::{Db, Previous};
pub use generic::{ExpireOutcome, ScanPage};
pub use journal::{Change, ChangeKind, JournalLimits, ScopeStats, Since};
pub use lists::PosOptions;
pub use value::{Entry, Value};
pub use watch::WatchHandle;

use crate::engine::blocking::WaitKey;
use crate::pubsub::Hub;
use journal::Journal;

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
    pub notify_flags: u32,
    /// Most blackboard scopes besides the global one.
    pub max_scopes: usize,
    /// Bounds of each blackboard scope's change journal.
    pub journal: JournalLimits,
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
    hub: Arc<Hub>,
    pub stats: KeyspaceStats,
    /// Unix ms when the broker started, the zero of `Entry::accessed`.
    started_ms: u64,
    /// Keys that may unblock waiting clients (a list was created), drained by `State::settle`.
    ready: Vec<WaitKey>,
}

impl Keyspace {
    pub fn new(settings: KeyspaceSettings, hub: Arc<Hub>, started_ms: u64) -> Self {
        let dbs = (0..settings.databases).map(|_| Db::default()).collect();
        let mut journals: Vec<Option<Journal>> = (0..settings.databases).map(|_| None).collect();
        journals[0] = Some(Journal::dormant(Bytes::new(), settings.journal));
        Keyspace {
            dbs,
            journals,
            scopes: HashMap::new(),
            bb_waiting: false,
            watches: watch::Watches::new(settings.databases),
            settings,
            hub,
            stats: KeyspaceStats::default(),
            started_ms,
            ready: Vec::new(),
        }
    }

    pub fn settings(&self) -> KeyspaceSettings {
        self.settings
    }

    pub fn set_notify_flags(&mut self, flags: u32) {
        self.settings.notify_flags = flags;
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

    fn clock_secs(&self, now: u64) -> u32 {
        (now.saturating_sub(self.started_ms) / 1000) as u32
    }

    /// The single place a key's new value is announced: dirties WATCHes, sends the keyspace
    /// notification, and for a blackboard scope journals and publishes the change with its value.
    /// (A change of deadline only, `expire` / `persist`, is not a change of value for the journal.)
    pub(crate) fn changed(&mut self, db: usize, key: &[u8], class: u32, event: &'static str) {
        self.watches.touch(db, key);
        self.notify(db, key, class, event);
        if matches!(event, "expire" | "persist") {
            return;
        }
        if let Some(journal) = self.journals[db].as_mut() {
            let entry = self.dbs[db].get(key);
            let revision = entry.map_or(0, |e| e.revision);
            let value = entry.and_then(|e| e.value.as_str().ok());
            journal.record(key, ChangeKind::Set, revision, value, &self.hub);
            if self.bb_waiting {
                self.ready.push(blackboard::wait_key(journal.scope(), key));
            }
        }
    }

    /// The single place a key's removal is announced (`del`, `expired`, the source of a rename or
    /// move): like [`Keyspace::changed`], with the value and revision it had.
    pub(crate) fn removed(&mut self, db: usize, key: &[u8], class: u32, event: &'static str, old: Option<(u64, Option<&[u8]>)>) {
        self.watches.touch(db, key);
        self.notify(db, key, class, event);
        if let Some(journal) = self.journals[db].as_mut() {
            let kind = if event == "expired" { ChangeKind::Expire } else { ChangeKind::Del };
            let (revision, value) = old.unwrap_or((0, None));
            journal.record(key, kind, revision, value, &self.hub);
        }
    }

    /// Sends a keyspace notification if `notify-keyspace-events` enables its class (numbered
    /// databases only: blackboard scopes announce through their journals).
    pub(crate) fn notify(&self, db: usize, key: &[u8], class: u32, event: &'static str) {
        let flags = self.settings.notify_flags;
        if !notify::enabled(flags, class) || db >= self.settings.databases {
            return;
        }
        if flags & notify::KEYSPACE != 0 {
            let mut channel = format!("__keyspace@{db}__:").into_bytes();
            channel.extend_from_slice(key);
            self.hub.publish(&channel, event.as_bytes());
        }
        if flags & notify::KEYEVENT != 0 {
            let channel = format!("__keyevent@{db}__:{event}");
            self.hub.publish(channel.as_bytes(), key);
        }
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
                entry.accessed.set(secs);
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

    pub fn take_ready(&mut self) -> Vec<WaitKey> {
        std::mem::take(&mut self.ready)
    }

    /// The earliest deadline set since the last call (cheap: called after every command).
    pub fn take_scheduled(&mut self) -> Option<u64> {
        self.dbs.iter_mut().filter_map(Db::take_scheduled).min()
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

    fn check_db(&self, index: i64) -> Result<usize, CommandError> {
        usize::try_from(index).ok().filter(|i| *i < self.settings.databases).ok_or(CommandError::fixed("ERR DB index is out of range"))
    }

    /// Validates a database index from a client (SELECT, MOVE, COPY DB, SWAPDB).
    pub fn db_index(&self, index: i64) -> Result<usize, CommandError> {
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
            notify_flags: 0,
            max_scopes: 100,
            journal: JournalLimits { max_entries: 1000, max_bytes: 0 },
        };
        Keyspace::new(settings, Arc::new(Hub::new()), 0)
    }
}
