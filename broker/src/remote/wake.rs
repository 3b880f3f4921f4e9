//! Blocking waits on the Redis engine, shared by the domains that block (BL.RETRIEVE BLOCK, BL.PUBLISH
//! BLOCK, MSG.RECV TIMEOUT, MSG.SEND BLOCK, MSG.REQUEST): register interest in a name, re-check, then
//! wait for a wake-up notice on that name or the fallback poll (`engine.wait_poll_ms`), so a lost
//! notice costs latency, never correctness.
//!
//! A script that may have made a waiter's condition true publishes an empty notice on
//! `__herald__:engine:wake:<name>` in the same step; every node follows `__herald__:engine:wake:*`
//! (`notices.rs` hands them to [`Wakes::ring`]). Names are the domain's own (`bl:<board tag>`,
//! `msg:<dest>`, ...); a notice carries no data, the re-check reads the state.
//!
//! Most operations have nobody waiting, and a publish costs Redis a message to every node and every
//! node a parsed notice, so a script publishes only when the object is marked as waited on: a blocking
//! attempt that finds nothing sets a marker key on the object's own hash tag (`<object>:waiting`, a
//! `PX` of [`mark_ms`]) in the same script, and the scripts that may satisfy a waiter publish only if
//! it exists. Both happen atomically on the object's slot, so an operation after a waiter's check sees
//! its marker; the waiter's fallback poll re-runs its attempt and so renews the marker while it waits.
//! A marker that is lost (expired because Redis answered later than the poll, a failover) costs only
//! latency, never correctness: the fallback poll re-checks anyway. Job queues do the same for their
//! `wake` and `drained` notices (`job_prelude.lua`: blocked JOB.CLAIMs and JOB.JOINs mark the queue).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::waiting::{Waited, wait_until};
use std::time::Duration;

use bytes::Bytes;
use herald_protocol::Reply;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::notices::Waiters;

/// The channel a wake-up for `name` is published on.
pub fn channel(name: &[u8]) -> Vec<u8> {
    [super::NOTICE_PREFIX, b"wake:", name].concat()
}

/// The waiter marker's lifetime (ms, a script argument) for an attempt: for a blocking one, twice the
/// fallback poll and a second more, so the poll renews it before it lapses; "0" (no marker) for an
/// attempt nobody waits behind.
pub fn mark_ms(remote: &super::Remote, blocking: bool) -> String {
    if !blocking {
        return "0".into();
    }
    (2 * remote.wait_poll.as_millis() as u64 + 1000).to_string()
}

/// The pattern every node follows for wake-ups.
pub fn all_channels() -> Bytes {
    Bytes::from([super::NOTICE_PREFIX, b"wake:*"].concat())
}

/// The name a wake-up channel is for.
pub fn name_of(channel: &[u8]) -> Option<&[u8]> {
    channel.strip_prefix(super::NOTICE_PREFIX)?.strip_prefix(b"wake:")
}

/// This node's waiters by name, and how many clients wait (INFO `blocked_clients`).
#[derive(Default)]
pub struct Wakes(Waiters, AtomicUsize);

impl Wakes {
    /// Clients of this node waiting in a blocking domain command now.
    pub fn blocked(&self) -> usize {
        self.1.load(Ordering::Relaxed)
    }

    /// The doorbell a wake-up on `name` rings (held while waiting for it).
    pub fn doorbell(&self, name: &Bytes) -> std::sync::Arc<tokio::sync::Notify> {
        self.0.interest(name, &Bytes::new())
    }

    /// Wakes every waiter of `name` on this node.
    pub fn ring(&self, name: &[u8]) {
        self.0.ring(name, b"");
    }

    /// Wakes every waiter of this node: after the pub-sub connection was re-established, any of them
    /// may have missed its wake-up, and a re-check now beats the fallback poll.
    pub fn ring_all(&self) {
        self.0.ring_all();
    }
}

/// Waits until `check` answers (its reply), `deadline` passes or the client goes away (`None` for
/// both): [`wait_until`] with `name`'s doorbell.
pub async fn until<F, Fut>(
    wakes: &Wakes,
    poll: Duration,
    name: &Bytes,
    deadline: Option<Instant>,
    tx: &mut oneshot::Sender<Reply>,
    check: F,
) -> Option<Reply>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<Reply>>,
{
    let empty = Bytes::new();
    let timeout = deadline.map(|at| at.saturating_duration_since(Instant::now()));
    match wait_until(|| vec![wakes.0.interest(name, &empty)], poll, timeout, tx, &wakes.1, check).await {
        Waited::Ready(reply) => Some(reply),
        Waited::TimedOut | Waited::Gone => None,
    }
}

/// A command that may block: runs `attempt` once (`wait` is `None`), or waits as [`until`] does for
/// `wait`'s time (`Some(None)`: forever); `None` when it timed out (the caller answers nil).
pub async fn maybe<F, Fut>(
    remote: &super::Remote,
    name: &Bytes,
    wait: Option<Option<Duration>>,
    tx: &mut oneshot::Sender<Reply>,
    mut attempt: F,
) -> Option<Reply>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<Reply>>,
{
    let Some(timeout) = wait else { return attempt().await };
    let deadline = timeout.map(|t| Instant::now() + t);
    until(&remote.wakes, remote.wait_poll, name, deadline, tx, attempt).await
}
