//! The values of Redis's aggregate types besides lists: hashes, sets and sorted sets, each in Redis's
//! small and large encodings (see each module for why these structures), and the structures they are
//! built from. Pure data structures: no keyspace, no notifications, no time.

pub mod hash;
pub mod pack;
pub mod rank_tree;
pub mod set;
pub mod zset;

pub use hash::Hash;
pub use set::Set;
pub use zset::Zset;

use std::fmt;

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        self.for_each(|k, v| {
            map.entry(&String::from_utf8_lossy(k), &String::from_utf8_lossy(v));
        });
        map.finish()
    }
}

impl fmt::Debug for Set {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut set = f.debug_set();
        self.for_each(|m| {
            set.entry(&String::from_utf8_lossy(m));
        });
        set.finish()
    }
}

impl fmt::Debug for Zset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        self.for_each(|m, s| {
            list.entry(&(String::from_utf8_lossy(m), s));
        });
        list.finish()
    }
}

/// Equal contents, whatever the encodings.
impl PartialEq for Hash {
    fn eq(&self, other: &Self) -> bool {
        let mut same = self.len() == other.len();
        self.for_each(|k, v| same &= other.get(k) == Some(v));
        same
    }
}

impl PartialEq for Set {
    fn eq(&self, other: &Self) -> bool {
        let mut same = self.len() == other.len();
        self.for_each(|m| same &= other.contains(m));
        same
    }
}

impl PartialEq for Zset {
    fn eq(&self, other: &Self) -> bool {
        let mut same = self.len() == other.len();
        self.for_each(|m, s| same &= other.score(m) == Some(s));
        same
    }
}
