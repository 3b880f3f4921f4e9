//! Events: the engines' changes rendered for subscribers.
//!
//! Everything that reaches a client unasked about the data goes through here: Redis keyspace
//! notifications (`notify.rs`), blackboard watch events (`blackboard.rs`), job and board events
//! (`jobs.rs`, `bulletin.rs`). Each is a pub-sub publication on a documented channel, so a plain Redis
//! client can SUBSCRIBE to it; the hub then encodes it once per wire format. Rendering happens only
//! when someone could receive the event: with no subscriber anywhere, a change costs a flag check.

mod blackboard;
mod bulletin;
mod jobs;
mod notify;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

pub use blackboard::watch_event_json;

use crate::engine::change::Change;
use crate::pubsub::Hub;

/// The renderer of events: reads every change, publishes what subscribers asked for.
pub struct Events {
    hub: Arc<Hub>,
    /// `notify-keyspace-events` as flags (`engine::keyspace::notify`); CONFIG SET changes it.
    notify_flags: AtomicU32,
}

impl Events {
    pub fn new(hub: Arc<Hub>, notify_flags: u32) -> Self {
        Events { hub, notify_flags: AtomicU32::new(notify_flags) }
    }

    pub fn notify_flags(&self) -> u32 {
        self.notify_flags.load(Ordering::Relaxed)
    }

    pub fn set_notify_flags(&self, flags: u32) {
        self.notify_flags.store(flags, Ordering::Relaxed);
    }

    /// Whether anyone subscribes to anything (else no change needs rendering).
    pub fn listening(&self) -> bool {
        !self.hub.is_idle()
    }

    pub fn observe(&self, change: &Change<'_>) {
        match change {
            Change::Key(k) => {
                notify::publish(&self.hub, self.notify_flags(), k);
                if let Some(journal) = &k.journal
                    && self.listening()
                {
                    blackboard::publish(&self.hub, k.key, journal);
                }
            }
            Change::Job(j) if self.listening() => jobs::publish(&self.hub, j),
            Change::Item(i) if self.listening() => bulletin::publish(&self.hub, i),
            _ => {}
        }
    }
}
