//! Every engine's state, composed: what dispatch locks for a command (or a whole MULTI/EXEC), and the
//! registry of blocked clients that must change under the same lock.
//!
//! The engines (`crate::engine`) are independent state machines; this is the one place that knows
//! them all: it builds them from configuration with the sink their changes go to, drains the keys
//! their changes made ready into the blocking registry, runs their deadlines for the timer, and holds
//! the random source their operations are given. All of it lives behind one lock
//! (`Broker::lock`): a command runs with it held and never awaits, so every operation is atomic
//! across domains, exactly like Redis's single thread, while connection I/O runs on every core.

pub mod blocking;

use std::sync::Arc;

use blocking::{Blocking, WaitKey};

use crate::config::Config;
use crate::engine::bulletin::Bulletin;
use crate::engine::change::ChangeSink;
use crate::engine::jobs::{self, Jobs};
use crate::engine::keyspace::{Keyspace, KeyspaceSettings};
use crate::engine::mailbox::Mailboxes;
use crate::engine::schema::Schemas;
use crate::engine::semaphore::Semaphores;
use crate::engine::stream::Streams;

pub struct State {
    pub keyspace: Keyspace,
    pub streams: Streams,
    pub mailboxes: Mailboxes,
    pub jobs: Jobs,
    pub bulletin: Bulletin,
    pub semaphores: Semaphores,
    pub schemas: Schemas,
    pub blocking: Blocking,
    /// The Lua libraries' sources (FUNCTION LOAD): stored data like the rest, which the scripting
    /// side compiles; changed only through [`State::set_libraries`].
    pub libraries: Vec<bytes::Bytes>,
    sink: Arc<dyn ChangeSink>,
    rng: Rng,
}

impl State {
    /// The engines as configured, emitting their changes to `sink`. `seed` starts the random source
    /// (RANDOMKEY, retry jitter); `started_ms` is the broker's start in unix ms.
    pub fn new(config: &Config, sink: Arc<dyn ChangeSink>, started_ms: u64, seed: u64) -> Self {
        let keyspace = KeyspaceSettings {
            databases: config.databases,
            max_string_len: config.limits.proto_max_bulk_len,
            blackboard: config.blackboard,
        };
        State {
            bulletin: Bulletin::new(config.bulletin, sink.clone()),
            semaphores: Semaphores::new(config.semaphores, sink.clone()),
            schemas: Schemas::new(config.schemas, sink.clone()),
            jobs: Jobs::new(config.jobs, sink.clone()),
            streams: Streams::new(config.streams, started_ms, sink.clone()),
            mailboxes: Mailboxes::new(config.mailboxes, sink.clone()),
            keyspace: Keyspace::new(keyspace, sink.clone(), started_ms),
            blocking: Blocking::default(),
            libraries: Vec::new(),
            sink,
            rng: Rng(seed | 1),
        }
    }

    /// The libraries after a FUNCTION command changed them: kept, and logged as one change.
    pub fn set_libraries(&mut self, codes: Vec<bytes::Bytes>) {
        self.libraries = codes;
        self.sink.emit(&crate::engine::change::Change::Libraries(&self.libraries));
    }

    /// The next number of the state's random source.
    pub fn random(&mut self) -> u64 {
        self.rng.next()
    }

    /// The keyspace with the state's random source, for commands that draw (SPOP, SRANDMEMBER,
    /// HRANDFIELD, ZRANDMEMBER).
    pub fn keyspace_random(&mut self) -> (&mut Keyspace, impl FnMut() -> u64 + '_) {
        let rng = &mut self.rng;
        (&mut self.keyspace, move || rng.next())
    }

    /// RANDOMKEY: a random live key of `db`, drawn from the state's random source.
    pub fn random_key(&mut self, db: usize, now: u64) -> Option<bytes::Bytes> {
        let rng = &mut self.rng;
        self.keyspace.random_key(db, now, || rng.next())
    }

    /// Moves every engine's "this may unblock someone" signals into the blocking registry.
    fn collect_ready(&mut self) {
        let engines = [
            self.keyspace.ready_mut(),
            self.streams.ready_mut(),
            self.mailboxes.ready_mut(),
            self.jobs.ready_mut(),
            self.bulletin.ready_mut(),
            self.semaphores.ready_mut(),
        ];
        for ready in engines {
            // Checked first: this runs after every command, and almost always finds nothing.
            if !ready.is_empty() {
                for key in ready.drain() {
                    self.blocking.signal(key);
                }
            }
        }
    }

    /// Whether `key` has nothing left for its waiters, so the rest of them need not re-run in this
    /// pass: a job queue with no claimable job (as Redis stops serving a list's blocked clients once
    /// the list is empty). Otherwise each submit re-ran the claim of every blocked worker after the
    /// first took the job, all failing. A waiter that could still succeed through another of its
    /// queues is served when that queue's own signal is handled, in that queue's order.
    fn exhausted(&self, key: &WaitKey) -> bool {
        match key {
            WaitKey::Named { domain, name } if *domain == jobs::QUEUE_DOMAIN => !self.jobs.claimable(name),
            _ => false,
        }
    }

    /// After a command or a timer batch: serve the clients it unblocked, and report the earliest
    /// deadline it scheduled so the timer can wake for it.
    pub fn settle(&mut self, now: u64) -> Option<u64> {
        // Nobody blocked (the common case): no waiter to serve, and the keys engines named only need
        // forgetting, which `collect_ready` does (a signal with no waiter is dropped).
        if self.blocking.is_empty() {
            self.collect_ready();
            self.keyspace.set_bb_waiting(false);
            self.keyspace.set_key_waiting(false);
        } else {
            Blocking::serve(self, now);
            self.keyspace.set_bb_waiting(self.blocking.waiting_in("bb"));
            self.keyspace.set_key_waiting(!self.blocking.is_empty());
        }
        self.take_scheduled()
    }

    /// Runs every timer-driven change due at `now` (key expiry, and each engine's deadlines), at most
    /// `budget` of them; returns how many ran.
    pub fn run_due(&mut self, now: u64, budget: usize) -> usize {
        let mut ran = self.keyspace.expire_due(now, budget);
        let rng = &mut self.rng;
        ran += self.jobs.run_due(now, budget.saturating_sub(ran), || rng.next());
        ran += self.bulletin.run_due(now, budget.saturating_sub(ran));
        ran += self.mailboxes.run_due(now, budget.saturating_sub(ran));
        ran + self.semaphores.run_due(now, budget.saturating_sub(ran))
    }

    /// The earliest deadline any engine has scheduled.
    pub fn next_deadline(&self) -> Option<u64> {
        [
            self.keyspace.next_deadline(),
            self.jobs.next_deadline(),
            self.bulletin.next_deadline(),
            self.semaphores.next_deadline(),
            self.mailboxes.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The earliest deadline scheduled since the last call; dispatch hands it to the timer.
    pub fn take_scheduled(&mut self) -> Option<u64> {
        [
            self.keyspace.take_scheduled(),
            self.jobs.take_scheduled(),
            self.bulletin.take_scheduled(),
            self.semaphores.take_scheduled(),
            self.mailboxes.take_scheduled(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Slow periodic upkeep (incremental rehash of idle tables).
    pub fn housekeeping(&mut self) {
        self.keyspace.housekeeping();
    }
}

/// A fast non-cryptographic random source (xorshift64), seeded by whoever builds the state.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
