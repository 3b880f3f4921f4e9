//! What hashes, sets and sorted sets share in the keyspace: reading a key as one type, updating it
//! (created when absent), removing it once its last element is gone, and the SCAN-style cursor walk.

use std::collections::HashSet;

use bytes::Bytes;

use super::{Keyspace, Ttl, Value, notify};
use crate::engine::Error;
use crate::engine::change::KeyEffect;
use crate::engine::collections::{Hash, Set, Zset};
use crate::engine::glob::glob_match;

/// A value type the aggregate helpers can read and create.
pub(crate) trait Kind: Sized {
    fn of(value: &Value) -> Option<&Self>;
    fn of_mut(value: &mut Value) -> Option<&mut Self>;
    fn wrap(self) -> Value;
    fn is_empty(&self) -> bool;
    fn len(&self) -> usize;
    /// Whether a new key of this type may serve blocked clients (BZPOPMIN waits for sorted sets).
    const WAKES: bool;
}

macro_rules! kind {
    ($ty:ty, $variant:ident, $wakes:expr) => {
        impl Kind for $ty {
            fn of(value: &Value) -> Option<&Self> {
                match value {
                    Value::$variant(v) => Some(v),
                    _ => None,
                }
            }

            fn of_mut(value: &mut Value) -> Option<&mut Self> {
                match value {
                    Value::$variant(v) => Some(v),
                    _ => None,
                }
            }

            fn wrap(self) -> Value {
                Value::$variant(Box::new(self))
            }

            fn is_empty(&self) -> bool {
                <$ty>::is_empty(self)
            }

            fn len(&self) -> usize {
                <$ty>::len(self)
            }

            const WAKES: bool = $wakes;
        }
    };
}

kind!(Hash, Hash, false);
kind!(Set, Set, false);
kind!(Zset, Zset, true);

/// A SCAN-family cursor with its MATCH and COUNT: for the elements of one key (HSCAN, SSCAN, ZSCAN)
/// and for SCAN's keys.
#[derive(Debug, Clone, PartialEq)]
pub struct ElementScan {
    pub cursor: u64,
    pub pattern: Option<Bytes>,
    pub count: usize,
}

impl ElementScan {
    /// Whether an element passes MATCH (`*` is no filter, as in Redis).
    pub fn matches(&self, element: &[u8]) -> bool {
        self.pattern.as_ref().is_none_or(|p| &p[..] == b"*" || glob_match(p, element))
    }

    /// Redis's loop: scan steps until `count` elements were gathered or 10 × `count` steps were
    /// taken; `step(cursor, found)` visits one bucket into `found` and returns the next cursor. The
    /// next cursor and what was found (MATCH not applied yet).
    pub fn collect<T>(&self, mut step: impl FnMut(u64, &mut Vec<T>) -> u64) -> (u64, Vec<T>) {
        let (mut cursor, mut found) = (self.cursor, Vec::new());
        let mut budget = self.count.saturating_mul(10);
        loop {
            cursor = step(cursor, &mut found);
            budget = budget.saturating_sub(1);
            if cursor == 0 || budget == 0 || found.len() >= self.count {
                return (cursor, found);
            }
        }
    }
}

/// How HRANDFIELD, SRANDMEMBER and ZRANDMEMBER pick `count` elements of a collection of `len`, as
/// Redis does: a negative count draws that many, repeats allowed; a positive one gives distinct
/// elements: the whole collection (`all()`, in its order) when the count covers it, all of it less
/// random ones when most of it is wanted, otherwise draws until that many distinct ones came (`id`
/// tells them apart).
pub(crate) fn sample<T, K: std::hash::Hash + Eq>(
    count: i64,
    len: usize,
    rand: &mut dyn FnMut() -> u64,
    all: impl FnOnce() -> Vec<T>,
    mut draw: impl FnMut(&mut dyn FnMut() -> u64) -> T,
    id: impl Fn(&T) -> K,
) -> Vec<T> {
    let n = count.unsigned_abs() as usize;
    if count < 0 || n == 1 {
        return (0..n).map(|_| draw(rand)).collect();
    }
    if n >= len || n * 3 > len {
        let mut out = all();
        while out.len() > n {
            let victim = (rand() % out.len() as u64) as usize;
            out.swap_remove(victim);
        }
        return out;
    }
    let (mut seen, mut out) = (HashSet::with_capacity(n), Vec::with_capacity(n));
    while out.len() < n {
        let x = draw(rand);
        if seen.insert(id(&x)) {
            out.push(x);
        }
    }
    out
}

impl Keyspace {
    /// HDEL, SREM, ZREM: takes `items` out of the `T` at `key` with `remove`, announces the removal
    /// (`class`, `event`, the effect `effect` makes of the items) if any was there, and deletes the key
    /// once empty; how many were there.
    pub(crate) fn remove_elements<T: Kind + Default>(
        &mut self,
        (db, key, now): (usize, &[u8], u64),
        items: &[Bytes],
        (class, event): (u32, &'static str),
        effect: fn(&[Bytes]) -> KeyEffect<'_>,
        remove: impl Fn(&mut T, &[u8]) -> bool,
    ) -> Result<usize, Error> {
        let removed = self.update(db, key, now, false, |v: &mut T| Ok(items.iter().filter(|i| remove(v, i)).count()))?.unwrap_or(0);
        if removed > 0 {
            self.delta(db, key, class, event, effect(items));
            self.drop_if_empty::<T>(db, key);
        }
        Ok(removed)
    }

    /// The live value at `key` as a `T` for reading (a hit or a miss is counted): `Ok(None)` when
    /// absent, WRONGTYPE when another type.
    pub(crate) fn view<T: Kind>(&mut self, db: usize, key: &[u8], now: u64) -> Result<Option<&T>, Error> {
        match self.read(db, key, now) {
            Some(entry) => T::of(&entry.value).map(Some).ok_or(Error::wrong_type()),
            None => Ok(None),
        }
    }

    /// Whether a live key of type `type_name` (`hash`, `set`, `zset`) is at `key`, counted as a read
    /// (a hit, or a miss with its `keymiss` event); WRONGTYPE when another type. The SCAN forms look
    /// their key up this way before reading their options, as Redis does, then scan with
    /// [`Keyspace::peek`].
    pub fn lookup_typed(&mut self, db: usize, key: &[u8], type_name: &str, now: u64) -> Result<bool, Error> {
        match self.read(db, key, now) {
            Some(entry) if entry.value.type_name() == type_name => Ok(true),
            Some(_) => Err(Error::wrong_type()),
            None => Ok(false),
        }
    }

    /// Like [`Keyspace::view`] without counting a hit or a miss (a write command's own lookups).
    pub(crate) fn peek<T: Kind>(&self, db: usize, key: &[u8], now: u64) -> Result<Option<&T>, Error> {
        match self.dbs[db].get(key) {
            Some(entry) if entry.expire_at > now => T::of(&entry.value).map(Some).ok_or(Error::wrong_type()),
            _ => Ok(None),
        }
    }

    /// Applies `f` to the live `T` at `key`, bumping its revision. When the key is absent and `create`
    /// is set, `f` runs on an empty `T` that is stored afterwards if `f` left anything in it
    /// (announcing `new`); otherwise `Ok(None)`. WRONGTYPE when the key holds another type. Callers
    /// announce their change, then call [`Keyspace::drop_if_empty`] if they removed elements.
    pub(crate) fn update<T: Kind + Default, R>(
        &mut self,
        db: usize,
        key: &[u8],
        now: u64,
        create: bool,
        f: impl FnOnce(&mut T) -> Result<R, Error>,
    ) -> Result<Option<R>, Error> {
        if let Some(entry) = self.live_mut(db, key, now) {
            let value = T::of_mut(&mut entry.value).ok_or(Error::wrong_type())?;
            let out = f(value)?;
            entry.revision += 1;
            return Ok(Some(out));
        }
        if !create {
            return Ok(None);
        }
        let mut value = T::default();
        let out = f(&mut value)?;
        if !value.is_empty() {
            self.store(db, key, value.wrap(), Ttl::Clear, now);
            if T::WAKES {
                self.signal_zset_ready(db, key);
            }
        }
        Ok(Some(out))
    }

    /// Stores a whole new value under `key` (the STORE forms), replacing whatever was there, and
    /// announces `event`; an empty result deletes the key instead (`del`, if it existed). Returns the
    /// result's size.
    pub(crate) fn store_result<T: Kind>(&mut self, db: usize, key: &[u8], value: T, class: u32, event: &'static str, now: u64) -> usize {
        if value.is_empty() {
            self.delete(db, key, now);
            return 0;
        }
        let len = value.len();
        self.store(db, key, value.wrap(), Ttl::Clear, now);
        if T::WAKES {
            self.signal_zset_ready(db, key);
        }
        self.changed(db, key, class, event);
        len
    }

    /// Removes `key` if the command left its aggregate empty, announcing `del` as Redis does after the
    /// command's own event.
    pub(crate) fn drop_if_empty<T: Kind>(&mut self, db: usize, key: &[u8]) {
        let empty = self.dbs[db].get(key).is_some_and(|e| T::of(&e.value).is_some_and(|v| v.is_empty()));
        if empty {
            self.dbs[db].remove(key);
            self.removed(db, key, notify::GENERIC, "del", None);
        }
    }
}
