//! Key operations that apply to any type: deletion, existence, renaming, scanning, expiry, databases.

use crate::engine::Error;
use bytes::Bytes;

use super::aggregate::ElementScan;
use super::{Keyspace, NO_EXPIRY, notify};
use crate::engine::change::Change;
use crate::engine::glob::glob_match;

/// EXPIRE's NX / XX / GT / LT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpireCondition {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanArgs {
    pub cursor: u64,
    pub pattern: Option<Bytes>,
    pub count: usize,
    pub kind: Option<Bytes>,
}

/// One SCAN reply: the next cursor and the keys found.
#[derive(Debug, PartialEq)]
pub struct ScanPage {
    pub cursor: u64,
    pub keys: Vec<Bytes>,
}

/// What EXPIRE did (its reply is 1 when it set or deleted, 0 when a condition or absence stopped it).
#[derive(Debug, PartialEq, Eq)]
pub enum ExpireOutcome {
    Set,
    /// The deadline was already past: the key was deleted.
    Deleted,
    Skipped,
}

impl Keyspace {
    /// Puts a renamed, moved or copied entry under `key`, where nothing lives now, announcing `new`
    /// as Redis's `dbAdd` does; a list arriving there may serve blocked poppers, a stream blocked
    /// readers, a sorted set blocked BZPOPMIN clients.
    fn place(&mut self, db: usize, key: &[u8], entry: super::Entry) {
        let signal = match entry.value {
            super::Value::List(_) => true,
            super::Value::XStream(_) => self.key_waiting,
            _ => false,
        };
        let is_zset = matches!(entry.value, super::Value::Zset(_));
        self.notify(db, key, notify::NEW, "new");
        self.dbs[db].insert(key, entry);
        if signal {
            self.signal_ready(db, key);
        } else if is_zset {
            self.signal_zset_ready(db, key);
        }
    }

    /// Makes room for a renamed, moved or copied value: an old value at `key` is dropped without a
    /// `del` (Redis announces only the `rename_to` / `copy_to` that replaces it; the change that
    /// follows carries the whole new entry).
    fn clear_destination(&mut self, db: usize, key: &[u8], now: u64) {
        self.expire_if_due(db, key, now);
        self.dbs[db].remove(key);
    }

    /// Before the streams of database `from` go wholesale (FLUSHDB, SWAPDB), clients blocked reading
    /// them in each of `to` re-check (an XREADGROUP whose stream is gone answers with an error, an
    /// XREAD may find a stream swapped in).
    fn signal_streams(&mut self, from: usize, to: &[usize]) {
        if !self.key_waiting {
            return;
        }
        let keys: Vec<Bytes> = self.dbs[from]
            .iter()
            .filter(|(_, e)| matches!(e.value, super::Value::XStream(_)))
            .map(|(k, _)| Bytes::copy_from_slice(k))
            .collect();
        for key in keys {
            for db in to {
                self.signal_ready(*db, &key);
            }
        }
    }

    /// DEL / UNLINK: how many of the keys existed.
    pub fn del(&mut self, db: usize, keys: &[Bytes], now: u64) -> i64 {
        keys.iter().filter(|k| self.delete(db, k, now).is_some()).count() as i64
    }

    /// EXISTS counts repeats: `EXISTS k k` is 2 when k exists.
    pub fn exists_count(&mut self, db: usize, keys: &[Bytes], now: u64) -> i64 {
        keys.iter().filter(|k| self.exists(db, k, now)).count() as i64
    }

    pub fn touch(&mut self, db: usize, keys: &[Bytes], now: u64) -> i64 {
        let secs = self.clock_secs(now);
        keys.iter()
            .filter(|k| match self.live_mut(db, k, now) {
                Some(e) => {
                    e.accessed.set(secs);
                    true
                }
                None => false,
            })
            .count() as i64
    }

    pub fn type_of(&mut self, db: usize, key: &[u8], now: u64) -> &'static str {
        self.expire_if_due(db, key, now);
        self.dbs[db].get(key).map(|e| e.value.type_name()).unwrap_or("none")
    }

    /// KEYS: live keys matching the pattern (expired ones are skipped, not removed, as in Redis).
    pub fn keys(&self, db: usize, pattern: &[u8], now: u64) -> Vec<Bytes> {
        let all = pattern == b"*";
        self.dbs[db]
            .iter()
            .filter(|(k, e)| e.expire_at > now && (all || glob_match(pattern, k)))
            .map(|(k, _)| Bytes::copy_from_slice(k))
            .collect()
    }

    /// SCAN: visits buckets until `count` keys are gathered (or 10× that many buckets were looked at),
    /// then filters by pattern, type and expiry, removing expired keys it met.
    pub fn scan(&mut self, db: usize, args: &ScanArgs, now: u64) -> ScanPage {
        let walk = ElementScan { cursor: args.cursor, pattern: args.pattern.clone(), count: args.count };
        let (cursor, found) = walk.collect(|c, out| self.dbs[db].scan(c, |k, _| out.push(Bytes::copy_from_slice(k))));
        let mut keys = Vec::with_capacity(found.len());
        for key in found {
            if !walk.matches(&key) {
                continue;
            }
            self.expire_if_due(db, &key, now);
            let Some(entry) = self.dbs[db].get(&key) else { continue };
            if args.kind.as_ref().is_some_and(|t| !t.eq_ignore_ascii_case(entry.value.type_name().as_bytes())) {
                continue;
            }
            keys.push(key);
        }
        ScanPage { cursor, keys }
    }

    /// RANDOMKEY: a random live key (expired ones it picks are removed and it tries again).
    pub fn random_key(&mut self, db: usize, now: u64, mut rand: impl FnMut() -> u64) -> Option<Bytes> {
        // Bound the retries when nearly everything has expired, as Redis does.
        for _ in 0..100 {
            let (key, at) = {
                let (k, e) = self.dbs[db].random(&mut rand)?;
                (Bytes::copy_from_slice(k), e.expire_at)
            };
            if at > now {
                return Some(key);
            }
            self.expired(db, &key);
        }
        None
    }

    /// RENAME / RENAMENX. Returns false when RENAMENX found the target taken.
    pub fn rename(&mut self, db: usize, from: &[u8], to: &[u8], only_if_new: bool, now: u64) -> Result<bool, Error> {
        if !self.exists(db, from, now) {
            return Err(Error::no_such_key());
        }
        if from == to {
            return Ok(!only_if_new);
        }
        if self.exists(db, to, now) && only_if_new {
            return Ok(false);
        }
        self.clear_destination(db, to, now);
        let mut entry = self.dbs[db].remove(from).expect("checked above");
        let (revision, value) = (entry.revision, entry.value.as_str().ok().map(Bytes::copy_from_slice));
        entry.revision = 1;
        self.place(db, to, entry);
        self.removed(db, from, notify::GENERIC, "rename_from", Some((revision, value.as_deref())));
        self.changed(db, to, notify::GENERIC, "rename_to");
        Ok(true)
    }

    /// COPY: false if the source is missing or the target exists without REPLACE.
    pub fn copy(&mut self, db: usize, from: &[u8], to_db: usize, to: &[u8], replace: bool, now: u64) -> Result<bool, Error> {
        if db == to_db && from == to {
            return Err(Error::fixed("ERR source and destination objects are the same"));
        }
        self.expire_if_due(db, from, now);
        let Some(mut entry) = self.dbs[db].get(from).cloned() else { return Ok(false) };
        if self.exists(to_db, to, now) && !replace {
            return Ok(false);
        }
        self.clear_destination(to_db, to, now);
        entry.revision = 1;
        self.place(to_db, to, entry);
        self.changed(to_db, to, notify::GENERIC, "copy_to");
        Ok(true)
    }

    /// MOVE: false if the key is missing here or already present in the target database.
    pub fn move_key(&mut self, db: usize, key: &[u8], to_db: usize, now: u64) -> Result<bool, Error> {
        if db == to_db {
            return Err(Error::fixed("ERR source and destination objects are the same"));
        }
        if !self.exists(db, key, now) || self.exists(to_db, key, now) {
            return Ok(false);
        }
        let entry = self.dbs[db].remove(key).expect("checked above");
        let (revision, value) = (entry.revision, entry.value.as_str().ok().map(Bytes::copy_from_slice));
        self.clear_destination(to_db, key, now);
        self.place(to_db, key, entry);
        self.removed(db, key, notify::GENERIC, "move_from", Some((revision, value.as_deref())));
        self.changed(to_db, key, notify::GENERIC, "move_to");
        Ok(true)
    }

    /// EXPIRE family. `at` is the absolute deadline in ms, already validated by the caller.
    pub fn expire(&mut self, db: usize, key: &[u8], at: i64, cond: ExpireCondition, now: u64) -> ExpireOutcome {
        let Some(entry) = self.live_mut(db, key, now) else { return ExpireOutcome::Skipped };
        let current = if entry.has_expiry() { Some(entry.expire_at as i64) } else { None };
        let skip = (cond.nx && current.is_some())
            || (cond.xx && current.is_none())
            || (cond.gt && current.is_none_or(|c| at <= c))
            || (cond.lt && current.is_some_and(|c| at >= c));
        if skip {
            return ExpireOutcome::Skipped;
        }
        if at <= now as i64 {
            self.delete(db, key, now);
            return ExpireOutcome::Deleted;
        }
        self.dbs[db].set_expire(key, at as u64);
        self.retimed(db, key, "expire");
        ExpireOutcome::Set
    }

    /// The deadline of a live key: `Err(-2)` when missing, `Ok(None)` without expiry.
    pub fn deadline(&mut self, db: usize, key: &[u8], now: u64) -> Result<Option<u64>, i64> {
        self.expire_if_due(db, key, now);
        match self.dbs[db].get(key) {
            None => Err(-2),
            Some(e) if e.has_expiry() => Ok(Some(e.expire_at)),
            Some(_) => Ok(None),
        }
    }

    pub fn persist(&mut self, db: usize, key: &[u8], now: u64) -> bool {
        let has = self.live_mut(db, key, now).is_some_and(|e| e.has_expiry());
        if has {
            self.dbs[db].set_expire(key, NO_EXPIRY);
            self.retimed(db, key, "persist");
        }
        has
    }

    /// OBJECT ENCODING / IDLETIME / REFCOUNT source: the live entry, without counting a hit.
    /// Returns the encoding, the idle seconds and the reference count.
    pub fn object(&mut self, db: usize, key: &[u8], now: u64) -> Option<(&'static str, u64, i64)> {
        let secs = self.clock_secs(now);
        let e = self.live_mut(db, key, now)?;
        Some((e.encoding(), u64::from(secs.saturating_sub(e.accessed.get())), e.refcount()))
    }

    /// MEMORY USAGE: what a live key and its value cost the allocator, collections sampled
    /// (`samples`, 0: every element). Reads without touching the key's access time, as Redis does.
    pub fn memory_usage(&self, db: usize, key: &[u8], samples: usize, now: u64) -> Option<usize> {
        if !self.exists(db, key, now) {
            return None;
        }
        self.dbs[db].memory_usage(key, samples)
    }

    pub fn dbsize(&self, db: usize) -> usize {
        self.dbs[db].len()
    }

    /// FLUSHDB: dirties watchers of keys that existed, then empties the database.
    pub fn flush_db(&mut self, db: usize) {
        self.clear_db(db);
        self.sink.emit(&Change::Flush(Some(db)));
    }

    /// FLUSHALL: every database and every blackboard scope.
    pub fn flush_all(&mut self) {
        for db in 0..self.dbs.len() {
            self.clear_db(db);
        }
        self.sink.emit(&Change::Flush(None));
    }

    fn clear_db(&mut self, db: usize) {
        self.signal_streams(db, &[db]);
        for key in self.watches.keys_of(db) {
            if self.dbs[db].get(&key).is_some() {
                self.watches.touch(db, &key);
            }
        }
        self.dbs[db].clear();
    }

    /// SWAPDB: exchanges two databases' contents; watchers of keys in either are dirtied.
    pub fn swap_db(&mut self, a: usize, b: usize) {
        if a == b {
            return;
        }
        for (x, y) in [(a, b), (b, a)] {
            for key in self.watches.keys_of(x) {
                if self.dbs[x].get(&key).is_some() || self.dbs[y].get(&key).is_some() {
                    self.watches.touch(x, &key);
                }
            }
        }
        self.signal_streams(a, &[a, b]);
        self.signal_streams(b, &[a, b]);
        self.dbs.swap(a, b);
        self.sink.emit(&Change::SwapDb(a, b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::keyspace::test_support::keyspace;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn expire_conditions() {
        let mut ks = keyspace();
        ks.mset(0, &[(b("k"), b("v"))], false, 0);
        let gt = ExpireCondition { gt: true, ..Default::default() };
        let lt = ExpireCondition { lt: true, ..Default::default() };
        let xx = ExpireCondition { xx: true, ..Default::default() };
        assert_eq!(ks.expire(0, b"k", 5000, gt, 0), ExpireOutcome::Skipped, "no TTL counts as infinite for GT");
        assert_eq!(ks.expire(0, b"k", 5000, xx, 0), ExpireOutcome::Skipped);
        assert_eq!(ks.expire(0, b"k", 5000, lt, 0), ExpireOutcome::Set);
        assert_eq!(ks.expire(0, b"k", 6000, lt, 0), ExpireOutcome::Skipped);
        assert_eq!(ks.expire(0, b"k", 6000, gt, 0), ExpireOutcome::Set);
        assert_eq!(ks.deadline(0, b"k", 0), Ok(Some(6000)));
        assert_eq!(ks.expire(0, b"k", -1, ExpireCondition::default(), 0), ExpireOutcome::Deleted);
        assert_eq!(ks.deadline(0, b"k", 0), Err(-2));
    }

    #[test]
    fn active_expiry_removes_on_time() {
        let mut ks = keyspace();
        ks.mset(0, &[(b("a"), b("1")), (b("b"), b("2"))], false, 0);
        ks.expire(0, b"a", 100, ExpireCondition::default(), 0);
        ks.expire(0, b"b", 200, ExpireCondition::default(), 0);
        assert_eq!(ks.next_deadline(), Some(100));
        assert_eq!(ks.expire_due(99, 10), 0);
        assert_eq!(ks.expire_due(150, 10), 1);
        assert_eq!(ks.dbsize(0), 1);
        assert_eq!(ks.expire_due(1000, 10), 1);
        assert_eq!(ks.next_deadline(), None);
    }

    #[test]
    fn rename_copy_move() {
        let mut ks = keyspace();
        ks.mset(0, &[(b("a"), b("1")), (b("b"), b("2"))], false, 0);
        assert_eq!(ks.rename(0, b"a", b"b", true, 0), Ok(false));
        assert_eq!(ks.rename(0, b"a", b"c", false, 0), Ok(true));
        assert_eq!(ks.rename(0, b"a", b"c", false, 0), Err(Error::no_such_key()));
        assert_eq!(ks.copy(0, b"c", 1, b"c", false, 0), Ok(true));
        assert_eq!(ks.move_key(0, b"c", 1, 0), Ok(false), "target exists");
        assert_eq!(ks.move_key(0, b"b", 1, 0), Ok(true));
        assert_eq!(ks.dbsize(1), 2);
    }

    #[test]
    fn scan_visits_everything_and_filters() {
        let mut ks = keyspace();
        let pairs: Vec<_> = (0..500).map(|i| (b(&format!("key:{i}")), b("v"))).collect();
        ks.mset(0, &pairs, false, 0);
        let mut seen = std::collections::HashSet::new();
        let mut args = ScanArgs { cursor: 0, pattern: Some(b("key:1*")), count: 20, kind: None };
        loop {
            let page = ks.scan(0, &args, 0);
            seen.extend(page.keys);
            if page.cursor == 0 {
                break;
            }
            args.cursor = page.cursor;
        }
        assert_eq!(seen.len(), 111);
    }
}
