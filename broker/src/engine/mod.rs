//! The engines: synchronous, transport-free state machines, each with a domain-level API.
//!
//! All engine state lives in one [`State`] behind one lock (see `docs/architecture.md`): a command, or a
//! whole MULTI/EXEC batch, runs with the lock held and never awaits, so every operation is atomic
//! across domains, exactly like Redis's single thread, while connection I/O runs on every core.

pub mod dict;
pub mod glob;
pub mod keyspace;
pub mod pubsub;

use std::sync::Arc;

use keyspace::{Keyspace, KeyspaceSettings};
use pubsub::Hub;

/// Every engine's state.
pub struct State {
    pub keyspace: Keyspace,
}

impl State {
    pub fn new(settings: KeyspaceSettings, hub: Arc<Hub>, started_ms: u64) -> Self {
        State { keyspace: Keyspace::new(settings, hub, started_ms) }
    }

    /// Runs every timer-driven change due at `now` (key expiry, and each engine's deadlines), at most
    /// `budget` of them; returns how many ran.
    pub fn run_due(&mut self, now: u64, budget: usize) -> usize {
        self.keyspace.expire_due(now, budget)
    }

    /// The earliest deadline any engine has scheduled.
    pub fn next_deadline(&self) -> Option<u64> {
        self.keyspace.next_deadline()
    }

    /// The earliest deadline scheduled since the last call; dispatch hands it to the timer.
    pub fn take_scheduled(&mut self) -> Option<u64> {
        self.keyspace.take_scheduled()
    }

    /// Slow periodic upkeep (incremental rehash of idle tables).
    pub fn housekeeping(&mut self) {
        self.keyspace.housekeeping();
    }
}
