//! What a blocked client waits on. Engines name the keys their changes may satisfy (a list was
//! created, a job became claimable, a message arrived); the blocking registry above them
//! (`crate::state::blocking`) keeps the waiters and re-runs their commands when a key is named.

use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WaitKey {
    /// A key of a numbered database (lists).
    Key { db: usize, key: Bytes },
    /// A key of a numbered database, for clients waiting on a sorted set (BZPOPMIN, BZMPOP). Apart
    /// from list waiters, as Redis serves each blocked client only when the key holds its type.
    Zset { db: usize, key: Bytes },
    /// Anything another engine names: a blackboard key, a job queue, a mailbox, a stream...
    Named { domain: &'static str, name: Bytes },
}

impl WaitKey {
    /// A named key of two parts (scope and key, destination and topic...), joined by a NUL byte so that
    /// no two pairs share a name.
    pub fn joined(domain: &'static str, a: &[u8], b: &[u8]) -> WaitKey {
        let mut name = Vec::with_capacity(a.len() + b.len() + 1);
        name.extend_from_slice(a);
        name.push(0);
        name.extend_from_slice(b);
        WaitKey::Named { domain, name: Bytes::from(name) }
    }

    /// The engine's domain, for waiters on named keys.
    pub fn domain(&self) -> Option<&'static str> {
        match self {
            WaitKey::Named { domain, .. } => Some(domain),
            WaitKey::Key { .. } | WaitKey::Zset { .. } => None,
        }
    }
}

/// The keys an engine's changes made ready since the state last collected them.
#[derive(Debug, Default)]
pub struct Ready(Vec<WaitKey>);

impl Ready {
    pub fn push(&mut self, key: WaitKey) {
        self.0.push(key);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Hands every key over, oldest first, leaving this empty (its allocation kept for the next ones).
    pub fn drain(&mut self) -> std::vec::Drain<'_, WaitKey> {
        self.0.drain(..)
    }
}
