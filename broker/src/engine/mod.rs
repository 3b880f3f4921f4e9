//! The engines: synchronous, transport-free state machines, each with a domain-level API.
//!
//! All engine state lives in one [`State`] behind one lock (see `docs/architecture.md`): a command, or a
//! whole MULTI/EXEC batch, runs with the lock held and never awaits, so every operation is atomic
//! across domains, exactly like Redis's single thread, while connection I/O runs on every core.

pub mod blocking;
pub mod dict;
pub mod glob;
pub mod small_bytes;
pub mod keyspace;
pub mod pubsub;

use std::sync::Arc;

use blocking::Blocking;
use keyspace::{Keyspace, KeyspaceSettings};
use pubsub::Hub;

/// Every engine's state.
pub struct State {
    pub keyspace: Keyspace,
    pub blocking: Blocking,
}

impl State {
    pub fn new(settings: KeyspaceSettings, hub: Arc<Hub>, started_ms: u64) -> Self {
        State { keyspace: Keyspace::new(settings, hub, started_ms), blocking: Blocking::default() }
    }

    /// Moves every engine's "this may unblock someone" signals into the blocking registry.
    /// Engines record them as they change state; each engine with blocking operations drains here.
    fn collect_ready(&mut self) {
        for key in self.keyspace.take_ready() {
            self.blocking.signal(key);
        }
    }

    /// After a command or a timer batch: serve the clients it unblocked, and report the earliest
    /// deadline it scheduled so the timer can wake for it.
    pub fn settle(&mut self, now: u64) -> Option<u64> {
        self.serve_blocked(now);
        self.take_scheduled()
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
