//! WATCH: which sessions watch which keys, and the dirty flag a change sets.
//!
//! As in Redis, a watched key is dirtied by any change to it (writes, deletes, expiry, FLUSHDB), even
//! one that leaves the same value; EXEC then aborts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

#[derive(Debug, Default)]
struct WatchState {
    dirty: AtomicBool,
    keys: Mutex<Vec<(usize, Bytes)>>,
}

/// A session's WATCH: cheap to clone, shared with the registry.
#[derive(Debug, Clone, Default)]
pub struct WatchHandle(Arc<WatchState>);

impl WatchHandle {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_dirty(&self) -> bool {
        self.0.dirty.load(Ordering::Acquire)
    }

    pub fn is_watching(&self) -> bool {
        !self.0.keys.lock().expect("watch keys").is_empty()
    }

    pub fn keys(&self) -> Vec<(usize, Bytes)> {
        self.0.keys.lock().expect("watch keys").clone()
    }

    fn same(&self, other: &WatchHandle) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Watched keys by database index: the numbered databases, then blackboard scopes (BB.WATCH) as
/// they are first watched (a scope's index never changes while the broker runs).
pub(super) struct Watches {
    by_db: Vec<HashMap<Bytes, Vec<WatchHandle>>>,
}

impl Watches {
    pub fn new(databases: usize) -> Self {
        Watches { by_db: (0..databases).map(|_| HashMap::new()).collect() }
    }

    /// Registers `handle` on `key` of `db` (a numbered database or a blackboard scope's).
    pub fn add(&mut self, db: usize, key: Bytes, handle: &WatchHandle) {
        if db >= self.by_db.len() {
            self.by_db.resize_with(db + 1, HashMap::new);
        }
        let list = self.by_db[db].entry(key.clone()).or_default();
        if !list.iter().any(|h| h.same(handle)) {
            list.push(handle.clone());
            handle.0.keys.lock().expect("watch keys").push((db, key));
        }
    }

    pub fn remove_all(&mut self, handle: &WatchHandle) {
        let keys = std::mem::take(&mut *handle.0.keys.lock().expect("watch keys"));
        for (db, key) in keys {
            if let Some(list) = self.by_db[db].get_mut(&key) {
                list.retain(|h| !h.same(handle));
                if list.is_empty() {
                    self.by_db[db].remove(&key);
                }
            }
        }
        handle.0.dirty.store(false, Ordering::Release);
    }

    /// Dirties the watchers of `key`.
    pub fn touch(&self, db: usize, key: &[u8]) {
        let Some(map) = self.by_db.get(db) else { return };
        if map.is_empty() {
            return;
        }
        if let Some(list) = map.get(key) {
            for h in list {
                h.0.dirty.store(true, Ordering::Release);
            }
        }
    }

    /// Every watched key of `db` (FLUSHDB, FLUSHALL and SWAPDB dirty those that exist). A scope
    /// nobody has watched in has no entry.
    pub fn keys_of(&self, db: usize) -> Vec<Bytes> {
        self.by_db.get(db).map(|map| map.keys().cloned().collect()).unwrap_or_default()
    }
}
