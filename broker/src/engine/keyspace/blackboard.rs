//! The blackboard (BB.*): scoped keys with revisions, compare-and-swap, TTL on every write, watches
//! and a change journal. Scope `""` is the global scope, which is database 0 of the Redis keyspace
//! (`SET k v` and `BB.GET "" k` see the same key); every other scope is a database of its own after
//! the numbered ones, created on first write.

use crate::engine::Error;
use bytes::Bytes;

use super::journal::{Journal, ScopeStats, Since};
use super::{Keyspace, NO_EXPIRY, Ttl, Value, notify};
use crate::engine::glob::glob_match;
use crate::engine::listing::{ListArgs, Page, select};
use crate::engine::wait::WaitKey;

/// A BB.SET condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BbCondition {
    Always,
    /// Only if the key does not exist.
    Nx,
    /// Only if the key exists.
    Xx,
    /// Only if the key is at this revision (0: does not exist): compare-and-swap.
    IfRev(u64),
}

/// A key as BB.GET returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct BbEntry {
    pub value: Bytes,
    pub revision: u64,
    /// Remaining time to live in ms, -1 without expiry.
    pub ttl_ms: i64,
}

/// What BB.STATS reports.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeReport {
    pub keys: usize,
    pub bytes: usize,
    pub stats: ScopeStats,
    pub seq: u64,
}

/// One scope as `BB.SCOPES cursor` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSummary {
    pub scope: Bytes,
    /// Keys held, those expired but not yet reclaimed included (as DBSIZE counts them).
    pub keys: usize,
    /// The journal's last sequence number.
    pub seq: u64,
    /// Journal entries kept.
    pub journal: usize,
}

/// The wait key of BB.WAIT on (scope, key).
pub fn wait_key(scope: &[u8], key: &[u8]) -> WaitKey {
    WaitKey::joined("bb", scope, key)
}

fn conflict(revision: u64) -> Error {
    Error::new(format!("CONFLICT the key is at revision {revision}"))
}

impl Keyspace {
    /// The database of a scope; created on demand when `create`. `Ok(None)`: no such scope (yet).
    pub(super) fn scope_db(&mut self, scope: &[u8], create: bool) -> Result<Option<usize>, Error> {
        if scope.is_empty() {
            self.journal_mut(0).arm();
            return Ok(Some(0));
        }
        if let Some(db) = self.scopes.get(scope) {
            return Ok(Some(*db));
        }
        if !create {
            return Ok(None);
        }
        if self.scopes.len() >= self.settings.blackboard.max_scopes {
            return Err(Error::fixed("ERR too many blackboard scopes (blackboard.max_scopes)"));
        }
        let db = self.dbs.len();
        let name = Bytes::copy_from_slice(scope);
        self.dbs.push(super::Db::default());
        self.journals.push(Some(Journal::new(name.clone(), self.settings.blackboard.journal())));
        self.scopes.insert(name, db);
        Ok(Some(db))
    }

    fn journal_mut(&mut self, db: usize) -> &mut Journal {
        self.journals[db].as_mut().expect("a scope database has a journal")
    }

    /// Lets writes signal BB.WAIT only while someone waits (see `State::settle`).
    pub fn set_bb_waiting(&mut self, waiting: bool) {
        self.bb_waiting = waiting;
    }

    /// BB.SET: stores the value (TTL: an absolute deadline, or kept / cleared) if the condition
    /// holds; the new revision, or CONFLICT with the current one.
    pub fn bb_set(&mut self, scope: &[u8], key: &[u8], value: &[u8], ttl: Ttl, condition: BbCondition, now: u64) -> Result<u64, Error> {
        let db = self.scope_db(scope, true)?.expect("created");
        let current = self.dbs[db].get(key).filter(|e| e.expire_at > now).map(|e| e.revision);
        let allowed = match condition {
            BbCondition::Always => true,
            BbCondition::Nx => current.is_none(),
            BbCondition::Xx => current.is_some(),
            BbCondition::IfRev(rev) => current.unwrap_or(0) == rev,
        };
        if !allowed {
            return Err(conflict(current.unwrap_or(0)));
        }
        if let Ttl::At(at) = ttl
            && at <= now
        {
            return Err(Error::fixed("ERR invalid expire time in 'bb.set' command"));
        }
        self.store(db, key, Value::string(value), ttl, now);
        self.changed(db, key, notify::STRING, "set");
        Ok(self.dbs[db].get(key).map_or(0, |e| e.revision))
    }

    /// BB.WATCH: registers `handle` on keys of a scope (created if new, so a key written later by
    /// anyone dirties the watch), as WATCH does in a numbered database.
    pub fn bb_watch(&mut self, scope: &[u8], keys: Vec<Bytes>, handle: &super::WatchHandle) -> Result<(), Error> {
        let db = self.scope_db(scope, true)?.expect("created");
        for key in keys {
            self.watch(db, key, handle);
        }
        Ok(())
    }

    /// BB.MEMORY: MEMORY USAGE for a key of a scope (`None`: no such scope or key).
    pub fn bb_memory(&mut self, scope: &[u8], key: &[u8], samples: usize, now: u64) -> Result<Option<usize>, Error> {
        let Some(db) = self.scope_db(scope, false)? else { return Ok(None) };
        Ok(self.memory_usage(db, key, samples, now))
    }

    /// BB.GET: value, revision and TTL; counts a get and a hit or miss in the scope's stats.
    pub fn bb_get(&mut self, scope: &[u8], key: &[u8], now: u64) -> Result<Option<BbEntry>, Error> {
        let Some(db) = self.scope_db(scope, false)? else { return Ok(None) };
        let found = match self.dbs[db].get(key).filter(|e| e.expire_at > now) {
            Some(e) => Some(BbEntry {
                value: Bytes::copy_from_slice(e.value.as_str()?),
                revision: e.revision,
                ttl_ms: if e.expire_at == NO_EXPIRY { -1 } else { (e.expire_at - now) as i64 },
            }),
            None => None,
        };
        let stats = &mut self.journal_mut(db).stats;
        stats.gets += 1;
        if found.is_some() {
            stats.hits += 1;
        } else {
            stats.misses += 1;
        }
        Ok(found)
    }

    pub fn bb_has(&mut self, scope: &[u8], key: &[u8], now: u64) -> Result<bool, Error> {
        Ok(self.bb_get(scope, key, now)?.is_some())
    }

    pub fn bb_del(&mut self, scope: &[u8], keys: &[Bytes], now: u64) -> Result<usize, Error> {
        let Some(db) = self.scope_db(scope, false)? else { return Ok(0) };
        Ok(keys.iter().filter(|k| self.delete(db, k, now).is_some()).count())
    }

    pub fn bb_keys(&mut self, scope: &[u8], pattern: Option<&[u8]>, now: u64) -> Result<Vec<Bytes>, Error> {
        let Some(db) = self.scope_db(scope, false)? else { return Ok(Vec::new()) };
        Ok(self.dbs[db]
            .iter()
            .filter(|(k, e)| e.expire_at > now && pattern.is_none_or(|p| p == b"*" || glob_match(p, k)))
            .map(|(k, _)| Bytes::copy_from_slice(k))
            .collect())
    }

    /// BB.GETALL: every live matching key with its value, and the journal position that reflects
    /// (a watcher re-reads with this, then resumes from the position).
    pub fn bb_getall(&mut self, scope: &[u8], pattern: Option<&[u8]>, now: u64) -> Result<(u64, Vec<(Bytes, BbEntry)>), Error> {
        let Some(db) = self.scope_db(scope, false)? else { return Ok((0, Vec::new())) };
        let mut entries = Vec::new();
        for (k, e) in self.dbs[db].iter() {
            if e.expire_at <= now || pattern.is_some_and(|p| p != b"*" && !glob_match(p, k)) {
                continue;
            }
            let Ok(value) = e.value.as_str() else { continue };
            let ttl_ms = if e.expire_at == NO_EXPIRY { -1 } else { (e.expire_at - now) as i64 };
            entries.push((Bytes::copy_from_slice(k), BbEntry { value: Bytes::copy_from_slice(value), revision: e.revision, ttl_ms }));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((self.journal_mut(db).seq(), entries))
    }

    /// BB.CLEAR: deletes every key of the scope (each a `del` event); how many there were.
    pub fn bb_clear(&mut self, scope: &[u8], now: u64) -> Result<usize, Error> {
        let keys = self.bb_keys(scope, None, now)?;
        self.bb_del(scope, &keys, now)
    }

    pub fn bb_stats(&mut self, scope: &[u8], now: u64) -> Result<Option<ScopeReport>, Error> {
        let Some(db) = self.scope_db(scope, false)? else { return Ok(None) };
        let (mut keys, mut bytes) = (0, 0);
        for (k, e) in self.dbs[db].iter().filter(|(_, e)| e.expire_at > now) {
            keys += 1;
            bytes += k.len() + e.value.as_str().map_or(0, |v| v.len());
        }
        let journal = self.journal_mut(db);
        Ok(Some(ScopeReport { keys, bytes, stats: journal.stats, seq: journal.seq() }))
    }

    /// Every scope's name, the global one (`""`) first.
    pub fn bb_scopes(&self) -> Vec<Bytes> {
        let mut names: Vec<Bytes> = self.scopes.keys().cloned().collect();
        names.sort();
        names.insert(0, Bytes::new());
        names
    }

    /// `BB.SCOPES cursor ...`: a page of the scopes (the global one is `""`), sized without a pass
    /// over their keys.
    pub fn bb_scope_list(&self, args: &ListArgs) -> Page<ScopeSummary> {
        let global = (&Bytes::new(), &0usize);
        let scopes = std::iter::once(global).chain(self.scopes.iter());
        select(scopes, |(name, _)| name, args).map(|(name, db)| {
            let journal = self.journals[*db].as_ref().expect("a scope database has a journal");
            ScopeSummary { scope: name.clone(), keys: self.dbs[*db].len(), seq: journal.seq(), journal: journal.len() }
        })
    }

    /// BB.CHANGES: journal entries after `seq` (with the scope's journal to render them).
    pub fn bb_changes(&mut self, scope: &[u8], seq: u64, count: usize) -> Result<(Since, Option<&Journal>), Error> {
        let Some(db) = self.scope_db(scope, false)? else { return Ok((Since::Changes(Vec::new()), None)) };
        let journal = self.journals[db].as_ref().expect("a scope database has a journal");
        Ok((journal.since(seq, count), Some(journal)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::keyspace::test_support::keyspace;

    #[test]
    fn compare_and_swap_on_revisions() {
        let mut ks = keyspace();
        assert_eq!(ks.bb_set(b"s", b"k", b"v1", Ttl::Clear, BbCondition::IfRev(0), 0).unwrap(), 1);
        assert_eq!(ks.bb_set(b"s", b"k", b"v2", Ttl::Clear, BbCondition::IfRev(1), 0).unwrap(), 2);
        assert_eq!(ks.bb_set(b"s", b"k", b"v3", Ttl::Clear, BbCondition::IfRev(1), 0), Err(conflict(2)));
        assert_eq!(ks.bb_set(b"s", b"k", b"v3", Ttl::Clear, BbCondition::Nx, 0), Err(conflict(2)));
        assert_eq!(ks.bb_set(b"s", b"new", b"x", Ttl::Clear, BbCondition::Xx, 0), Err(conflict(0)));
        assert_eq!(ks.bb_get(b"s", b"k", 0).unwrap().unwrap().value, Bytes::from_static(b"v2"));
    }

    #[test]
    fn scopes_are_isolated_and_global_is_db_zero() {
        let mut ks = keyspace();
        ks.bb_set(b"a", b"task", b"analyze", Ttl::Clear, BbCondition::Always, 0).unwrap();
        ks.bb_set(b"b", b"task", b"report", Ttl::Clear, BbCondition::Always, 0).unwrap();
        ks.mset(0, &[(Bytes::from_static(b"config"), Bytes::from_static(b"debug"))], false, 0);
        assert_eq!(ks.bb_get(b"a", b"task", 0).unwrap().unwrap().value, Bytes::from_static(b"analyze"));
        assert_eq!(ks.bb_get(b"b", b"task", 0).unwrap().unwrap().value, Bytes::from_static(b"report"));
        assert_eq!(ks.bb_get(b"", b"config", 0).unwrap().unwrap().value, Bytes::from_static(b"debug"));
        assert_eq!(ks.bb_scopes(), vec![Bytes::new(), Bytes::from_static(b"a"), Bytes::from_static(b"b")]);
        assert_eq!(ks.dbsize(0), 1, "scopes are not in database 0");
    }

    #[test]
    fn scope_list_sizes_each_scope() {
        let mut ks = keyspace();
        ks.bb_set(b"a", b"x", b"1", Ttl::Clear, BbCondition::Always, 0).unwrap();
        ks.bb_set(b"a", b"x", b"2", Ttl::Clear, BbCondition::Always, 0).unwrap();
        ks.bb_set(b"a", b"y", b"3", Ttl::Clear, BbCondition::Always, 0).unwrap();
        ks.bb_set(b"b", b"z", b"4", Ttl::Clear, BbCondition::Always, 0).unwrap();
        let all = ks.bb_scope_list(&ListArgs::all());
        let mut names: Vec<Bytes> = all.entries.iter().map(|s| s.scope.clone()).collect();
        names.sort();
        assert_eq!(names, ks.bb_scopes());
        let a = ks.bb_scope_list(&ListArgs { cursor: 0, pattern: Some(Bytes::from_static(b"a")), count: 10 });
        assert_eq!(a.entries, vec![ScopeSummary { scope: Bytes::from_static(b"a"), keys: 2, seq: 3, journal: 3 }]);
    }

    #[test]
    fn expiry_is_journaled_with_the_value_on_time() {
        let mut ks = keyspace();
        ks.bb_set(b"s", b"tmp", b"secret", Ttl::At(100), BbCondition::Always, 0).unwrap();
        assert_eq!(ks.next_deadline(), Some(100));
        assert_eq!(ks.expire_due(100, 10), 1);
        let (Since::Changes(changes), _) = ks.bb_changes(b"s", 0, 10).unwrap() else { panic!() };
        let last = changes.last().unwrap();
        assert_eq!((last.kind, last.value()), (super::super::ChangeKind::Expire, Some(&b"secret"[..])));
        assert_eq!(ks.bb_stats(b"s", 100).unwrap().unwrap().stats.expired, 1);
    }
}
