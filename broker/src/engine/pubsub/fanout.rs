//! Large fan-outs leave the publisher's path.
//!
//! Pushing one publication into 10,000 outboxes takes about half a millisecond; done inside PUBLISH (or
//! inside the BB.SET whose watch event it is) it would make every publisher pay for every subscriber.
//! So a publication for more than [`INLINE_LIMIT`] subscribers is queued here, and a dedicated thread,
//! the second core's work, pushes it into the outboxes. Order is kept: while anything is queued, every
//! publication is queued behind it (one FIFO, one consumer), and a small one goes inline only when
//! nothing is pending. Until the server starts the thread, everything is delivered inline.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;

use super::hub::{ChannelKind, Publication};

/// Subscriber counts up to this are served inside the publisher's command.
pub const INLINE_LIMIT: usize = 16;

/// Whom a queued publication goes to: looked up when it is delivered.
pub(super) enum Target {
    Channel(ChannelKind, Bytes),
    Pattern(Bytes),
}

pub(super) struct Job {
    pub publication: Arc<Publication>,
    pub target: Target,
}

#[derive(Default)]
pub(super) struct Fanout {
    queue: Mutex<VecDeque<Job>>,
    ready: Condvar,
    /// Queued or being delivered.
    pending: AtomicUsize,
    enabled: AtomicBool,
    stopping: AtomicBool,
}

impl Fanout {
    /// Whether a delivery to `subscribers` should be queued rather than done by the caller.
    pub fn should_defer(&self, subscribers: usize) -> bool {
        self.enabled.load(Ordering::Acquire) && (subscribers > INLINE_LIMIT || self.pending.load(Ordering::Acquire) > 0)
    }

    pub fn push(&self, job: Job) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        self.queue.lock().expect("fan-out queue").push_back(job);
        self.ready.notify_one();
    }

    pub fn enable(&self) {
        self.stopping.store(false, Ordering::Release);
        self.enabled.store(true, Ordering::Release);
    }

    /// Stops queueing new work; the thread drains what is queued, then exits.
    pub fn stop(&self) {
        self.enabled.store(false, Ordering::Release);
        self.stopping.store(true, Ordering::Release);
        let _guard = self.queue.lock().expect("fan-out queue");
        self.ready.notify_all();
    }

    /// Everything queued, waiting for some; `None` once stopping and drained.
    pub fn next_batch(&self) -> Option<Vec<Job>> {
        let mut queue = self.queue.lock().expect("fan-out queue");
        loop {
            if !queue.is_empty() {
                return Some(queue.drain(..).collect());
            }
            if self.stopping.load(Ordering::Acquire) {
                return None;
            }
            queue = self.ready.wait(queue).expect("fan-out queue");
        }
    }

    pub fn delivered(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }
}
