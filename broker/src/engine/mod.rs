//! The engines: synchronous, transport-free state machines, each with a domain-level API.
//!
//! All engine state lives in one [`State`] behind one lock (see `docs/architecture.md`): a command, or a
//! whole MULTI/EXEC batch, runs with the lock held and never awaits, so every operation is atomic
//! across domains, exactly like Redis's single thread, while connection I/O runs on every core.

pub mod blocking;
pub mod bulletin;
pub mod dict;
pub mod glob;
pub mod jobs;
pub mod keyspace;
pub mod mailbox;
pub mod small_bytes;
pub mod stream;

use std::sync::Arc;

use blocking::Blocking;
use bulletin::{Bulletin, BulletinSettings};
use jobs::{JobSettings, Jobs};
use keyspace::{JournalLimits, Keyspace, KeyspaceSettings, notify};
use mailbox::{MailboxSettings, Mailboxes};
use crate::pubsub::Hub;
use stream::{Retention, StreamSettings, Streams};

use crate::config::Config;

/// Every engine's state.
pub struct State {
    pub keyspace: Keyspace,
    pub streams: Streams,
    pub mailboxes: Mailboxes,
    pub jobs: Jobs,
    pub bulletin: Bulletin,
    pub blocking: Blocking,
}

impl State {
    pub fn new(config: &Config, hub: Arc<Hub>, started_ms: u64) -> Self {
        let keyspace = KeyspaceSettings {
            databases: config.databases,
            max_string_len: config.limits.proto_max_bulk_len,
            notify_flags: notify::parse_flags(config.notify_keyspace_events.as_bytes()).unwrap_or(0),
            max_scopes: config.blackboard.max_scopes,
            journal: JournalLimits { max_entries: config.blackboard.journal_max_entries, max_bytes: config.blackboard.journal_max_bytes },
        };
        let streams = StreamSettings {
            retention: Retention { max_len: config.streams.max_len, max_age_ms: config.streams.max_age_ms },
            max_streams: config.streams.max_streams,
        };
        let mailboxes =
            MailboxSettings { max_messages: config.mailboxes.max_messages, idempotency_keys: config.mailboxes.idempotency_keys };
        let jobs = JobSettings {
            max_jobs: config.jobs.max_jobs,
            default_attempts: config.jobs.default_attempts,
            default_lease_ms: config.jobs.default_lease_ms,
            default_result_ttl_ms: config.jobs.default_result_ttl_ms,
            max_chunks: config.jobs.max_chunks,
            max_dead: config.jobs.max_dead,
        };
        let bulletin = BulletinSettings {
            max_boards: config.bulletin.max_boards,
            default_max_len: config.bulletin.default_max_len,
            default_max_leases: config.bulletin.default_max_leases,
            max_dead: config.bulletin.max_dead,
        };
        State {
            bulletin: Bulletin::new(bulletin, hub.clone()),
            jobs: Jobs::new(jobs, hub.clone()),
            keyspace: Keyspace::new(keyspace, hub, started_ms),
            streams: Streams::new(streams, started_ms),
            mailboxes: Mailboxes::new(mailboxes),
            blocking: Blocking::default(),
        }
    }

    /// Moves every engine's "this may unblock someone" signals into the blocking registry.
    /// Engines record them as they change state; each engine with blocking operations drains here.
    fn collect_ready(&mut self) {
        let ready = [
            self.keyspace.take_ready(),
            self.streams.take_ready(),
            self.mailboxes.take_ready(),
            self.jobs.take_ready(),
            self.bulletin.take_ready(),
        ];
        for key in ready.into_iter().flatten() {
            self.blocking.signal(key);
        }
    }

    /// After a command or a timer batch: serve the clients it unblocked, and report the earliest
    /// deadline it scheduled so the timer can wake for it.
    pub fn settle(&mut self, now: u64) -> Option<u64> {
        self.serve_blocked(now);
        self.keyspace.set_bb_waiting(self.blocking.waiting_in("bb"));
        self.take_scheduled()
    }

    /// Runs every timer-driven change due at `now` (key expiry, and each engine's deadlines), at most
    /// `budget` of them; returns how many ran.
    pub fn run_due(&mut self, now: u64, budget: usize) -> usize {
        let mut ran = self.keyspace.expire_due(now, budget);
        ran += self.jobs.run_due(now, budget.saturating_sub(ran), crate::broker::random_u64);
        ran + self.bulletin.run_due(now, budget.saturating_sub(ran))
    }

    /// The earliest deadline any engine has scheduled.
    pub fn next_deadline(&self) -> Option<u64> {
        [self.keyspace.next_deadline(), self.jobs.next_deadline(), self.bulletin.next_deadline()].into_iter().flatten().min()
    }

    /// The earliest deadline scheduled since the last call; dispatch hands it to the timer.
    pub fn take_scheduled(&mut self) -> Option<u64> {
        [self.keyspace.take_scheduled(), self.jobs.take_scheduled(), self.bulletin.take_scheduled()].into_iter().flatten().min()
    }

    /// Slow periodic upkeep (incremental rehash of idle tables).
    pub fn housekeeping(&mut self) {
        self.keyspace.housekeeping();
    }
}
