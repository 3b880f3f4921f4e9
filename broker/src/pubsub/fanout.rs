//! Large fan-outs leave the publisher's path.
//!
//! Pushing one publication into 10,000 outboxes takes about half a millisecond; done inside PUBLISH (or
//! inside the BB.SET whose watch event it is) it would make every publisher pay for every subscriber.
//! So a publication for more than [`INLINE_LIMIT`] subscribers is queued here, and a dedicated thread,
//! the second core's work, pushes it into the outboxes. Order is kept: while anything is queued, every
//! publication is queued behind it (one FIFO, one consumer), and a small one goes inline only when
//! nothing is pending. Until the server starts the thread, everything is delivered inline.
//!
//! The queue is bounded in deliveries (`pubsub.fanout_backlog`): while the backlog is over the bound,
//! connections whose last requests added to it stop reading new ones (they wait on [`Fanout::room`],
//! an async wait, so the io thread keeps writing to subscribers) until the thread catches up; the
//! subscribers themselves are not held up. A publisher can overshoot by what
//! it had already read, no more. That is Redis's behaviour in slow motion (there PUBLISH itself pays for
//! every subscriber), and it keeps the queue and the delay of every later publication bounded.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
    /// Subscribers when it was queued: its share of the backlog.
    pub weight: usize,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Deliveries queued or being made.
    backlog: usize,
}

#[derive(Default)]
pub(super) struct Fanout {
    queue: Mutex<Queue>,
    ready: Condvar,
    /// Publications ever queued: a connection compares it before and after a batch of requests to know
    /// whether it added to the backlog.
    queued: AtomicU64,
    /// The queue's backlog, readable without its lock.
    backlog: AtomicUsize,
    /// Wakes connections waiting for the backlog to fall back under `limit`.
    room: tokio::sync::Notify,
    limit: AtomicUsize,
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
        self.queued.fetch_add(1, Ordering::Relaxed);
        let mut queue = self.queue.lock().expect("fan-out queue");
        queue.backlog += job.weight;
        self.backlog.store(queue.backlog, Ordering::Release);
        queue.jobs.push_back(job);
        drop(queue);
        self.ready.notify_one();
    }

    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    /// Whether the backlog is over its bound: connections that added to it should not read more requests.
    pub fn backlogged(&self) -> bool {
        self.enabled.load(Ordering::Acquire) && self.backlog.load(Ordering::Acquire) > self.limit.load(Ordering::Relaxed)
    }

    /// Resolves once the backlog is back under its bound (or the hub stops).
    pub async fn room(&self) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.backlogged() {
                return;
            }
            notified.await;
        }
    }

    /// Starts queueing, with at most `limit` deliveries waiting before publishers wait.
    pub fn enable(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
        self.stopping.store(false, Ordering::Release);
        self.enabled.store(true, Ordering::Release);
    }

    /// Stops queueing new work; the thread drains what is queued, then exits.
    pub fn stop(&self) {
        self.enabled.store(false, Ordering::Release);
        self.stopping.store(true, Ordering::Release);
        let _guard = self.queue.lock().expect("fan-out queue");
        self.ready.notify_all();
        drop(_guard);
        self.room.notify_waiters();
    }

    /// Everything queued, waiting for some; `None` once stopping and drained.
    pub fn next_batch(&self) -> Option<Vec<Job>> {
        let mut queue = self.queue.lock().expect("fan-out queue");
        loop {
            if !queue.jobs.is_empty() {
                return Some(queue.jobs.drain(..).collect());
            }
            if self.stopping.load(Ordering::Acquire) {
                return None;
            }
            queue = self.ready.wait(queue).expect("fan-out queue");
        }
    }

    pub fn delivered(&self, job: &Job) {
        let mut queue = self.queue.lock().expect("fan-out queue");
        let limit = self.limit.load(Ordering::Relaxed);
        let was_over = queue.backlog > limit;
        queue.backlog -= job.weight;
        self.backlog.store(queue.backlog, Ordering::Release);
        drop(queue);
        self.pending.fetch_sub(1, Ordering::AcqRel);
        if was_over && !self.backlogged() {
            self.room.notify_waiters();
        }
    }
}
