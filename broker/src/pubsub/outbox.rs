//! A connection's bounded queue of pre-encoded pushes.
//!
//! Publishers append shared `Bytes` and return at once; the connection's task drains the queue into its
//! socket when the previous write has finished, so the queue's byte count is exactly the backlog a slow
//! reader has built up. That backlog is bounded by the policy in [`OutboxLimits`]:
//!
//! - `Disconnect` (Redis's `client-output-buffer-limit pubsub 32mb 8mb 60`): past the hard limit, or above
//!   the soft limit for longer than the soft period, the outbox closes with a reason and the connection
//!   ends;
//! - `DropOldest`: the oldest pushes are discarded to make room, counted, and the client is told how many
//!   it lost (a `lagged` push) before the next one it receives.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use bytes::Bytes;
use herald_protocol::Encoding;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::doorbell::Doorbell;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverflowPolicy {
    Disconnect,
    DropOldest,
}

/// The bounds of one outbox (0 disables a bound, as in Redis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimits {
    pub hard_bytes: usize,
    pub soft_bytes: usize,
    pub soft_seconds: u64,
    pub policy: OverflowPolicy,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        OutboxLimits { hard_bytes: 32 * 1024 * 1024, soft_bytes: 8 * 1024 * 1024, soft_seconds: 60, policy: OverflowPolicy::Disconnect }
    }
}

/// Why an outbox stopped accepting pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    HardLimit,
    SoftLimit,
}

impl CloseReason {
    pub fn describe(self) -> &'static str {
        match self {
            CloseReason::HardLimit => "output buffer hard limit reached (slow consumer)",
            CloseReason::SoftLimit => "output buffer soft limit exceeded for too long (slow consumer)",
        }
    }
}

#[derive(Debug)]
struct Inner {
    limits: OutboxLimits,
    queue: VecDeque<Bytes>,
    bytes: usize,
    /// Pushes discarded under drop-oldest since the last drain.
    dropped: u64,
    /// Total ever discarded, for CLIENT LIST / INFO.
    dropped_total: u64,
    soft_since: Option<Instant>,
    closed: Option<CloseReason>,
}

#[derive(Debug)]
pub struct Outbox {
    format: AtomicU8,
    /// Limits live inside the queue's lock: a push takes exactly one lock.
    inner: Mutex<Inner>,
    /// Rung on every push and on overflow; the connection's task waits on it (kill and shutdown ring
    /// it too: it is the connection's one doorbell).
    doorbell: Doorbell,
    /// Cancelled when the outbox closes, so a connection stuck writing to a reader that stopped
    /// reading notices its overflow without waiting for the write.
    overflowed: CancellationToken,
}

/// What one drain handed over.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drained {
    pub frames: usize,
    /// Pushes lost to drop-oldest before these frames.
    pub lagged: u64,
}

/// The outcome of one push, so the publisher can count drops and disconnects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Queued after discarding this many older pushes.
    DroppedOldest(u64),
    /// The outbox is (now) closed; nothing was queued.
    Closed,
    /// This push closed the outbox.
    JustClosed(CloseReason),
}

impl Outbox {
    pub fn new(format: Encoding, limits: OutboxLimits) -> Self {
        Outbox {
            format: AtomicU8::new(format as u8),
            inner: Mutex::new(Inner {
                limits,
                queue: VecDeque::new(),
                bytes: 0,
                dropped: 0,
                dropped_total: 0,
                soft_since: None,
                closed: None,
            }),
            doorbell: Doorbell::default(),
            overflowed: CancellationToken::new(),
        }
    }

    pub fn format(&self) -> Encoding {
        Encoding::from_u8(self.format.load(Ordering::Relaxed))
    }

    /// HELLO 3 switches a RESP connection's push format.
    pub fn set_format(&self, format: Encoding) {
        self.format.store(format as u8, Ordering::Relaxed);
    }

    pub fn limits(&self) -> OutboxLimits {
        self.inner.lock().expect("outbox").limits
    }

    pub fn set_limits(&self, limits: OutboxLimits) {
        self.inner.lock().expect("outbox").limits = limits;
    }

    /// Appends a frame without ever waiting for the reader.
    pub fn push(&self, frame: Bytes) -> Pushed {
        let mut inner = self.inner.lock().expect("outbox");
        let limits = inner.limits;
        if inner.closed.is_some() {
            return Pushed::Closed;
        }
        let len = frame.len();
        let mut dropped = 0;
        match limits.policy {
            OverflowPolicy::Disconnect => {
                let after = inner.bytes + len;
                if limits.hard_bytes > 0 && after > limits.hard_bytes {
                    return self.close_locked(&mut inner, CloseReason::HardLimit);
                }
                if limits.soft_bytes > 0 && after > limits.soft_bytes {
                    let now = Instant::now();
                    let since = *inner.soft_since.get_or_insert(now);
                    if now.duration_since(since) > Duration::from_secs(limits.soft_seconds) {
                        return self.close_locked(&mut inner, CloseReason::SoftLimit);
                    }
                } else {
                    inner.soft_since = None;
                }
            }
            OverflowPolicy::DropOldest => {
                let bound = if limits.hard_bytes > 0 { limits.hard_bytes } else { usize::MAX };
                while inner.bytes + len > bound {
                    let Some(old) = inner.queue.pop_front() else { break };
                    inner.bytes -= old.len();
                    dropped += 1;
                }
                inner.dropped += dropped;
                inner.dropped_total += dropped;
            }
        }
        inner.bytes += len;
        inner.queue.push_back(frame);
        drop(inner);
        self.doorbell.ring(Doorbell::PUSH);
        if dropped > 0 { Pushed::DroppedOldest(dropped) } else { Pushed::Queued }
    }

    fn close_locked(&self, inner: &mut Inner, reason: CloseReason) -> Pushed {
        inner.closed = Some(reason);
        inner.queue.clear();
        inner.bytes = 0;
        self.overflowed.cancel();
        self.doorbell.ring(Doorbell::OVERFLOW);
        Pushed::JustClosed(reason)
    }

    /// Hands every queued frame to `write`, in order, reporting any lag first. The queue is taken out
    /// under the lock and written outside it, so publishers pushing to this outbox do not wait while
    /// the connection copies (and drops) the frames.
    pub fn drain(&self, mut write: impl FnMut(Bytes)) -> Drained {
        self.doorbell.clear_push();
        let (queue, lagged) = {
            let mut inner = self.inner.lock().expect("outbox");
            inner.bytes = 0;
            inner.soft_since = None;
            (std::mem::take(&mut inner.queue), std::mem::take(&mut inner.dropped))
        };
        let frames = queue.len();
        queue.into_iter().for_each(&mut write);
        Drained { frames, lagged }
    }

    pub fn is_empty(&self) -> bool {
        self.inner.lock().expect("outbox").queue.is_empty()
    }

    /// Bytes waiting (CLIENT LIST `omem`).
    pub fn pending_bytes(&self) -> usize {
        self.inner.lock().expect("outbox").bytes
    }

    pub fn pending_frames(&self) -> usize {
        self.inner.lock().expect("outbox").queue.len()
    }

    pub fn dropped_total(&self) -> u64 {
        self.inner.lock().expect("outbox").dropped_total
    }

    pub fn closed(&self) -> Option<CloseReason> {
        self.inner.lock().expect("outbox").closed
    }

    /// Resolves once the outbox has closed on its limits.
    pub async fn overflowed(&self) {
        self.overflowed.cancelled().await;
    }

    /// Whether the outbox has closed on its limits (what [`Outbox::overflowed`] waits for): one atomic
    /// load, for every flush.
    pub fn has_overflowed(&self) -> bool {
        self.doorbell.rung() & Doorbell::OVERFLOW != 0
    }

    /// The connection's doorbell: rung by pushes and overflow here, by kill and shutdown elsewhere.
    pub fn doorbell(&self) -> &Doorbell {
        &self.doorbell
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[test]
    fn hard_limit_closes() {
        let o = Outbox::new(Encoding::Resp2, OutboxLimits { hard_bytes: 100, soft_bytes: 0, ..Default::default() });
        assert_eq!(o.push(frame(60)), Pushed::Queued);
        assert_eq!(o.push(frame(60)), Pushed::JustClosed(CloseReason::HardLimit));
        assert_eq!(o.push(frame(1)), Pushed::Closed);
        assert_eq!(o.closed(), Some(CloseReason::HardLimit));
    }

    #[tokio::test(start_paused = true)]
    async fn soft_limit_needs_time() {
        let limits = OutboxLimits { hard_bytes: 0, soft_bytes: 10, soft_seconds: 2, ..Default::default() };
        let o = Outbox::new(Encoding::Resp2, limits);
        assert_eq!(o.push(frame(20)), Pushed::Queued);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(o.push(frame(1)), Pushed::Queued);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(o.push(frame(1)), Pushed::JustClosed(CloseReason::SoftLimit));
    }

    #[test]
    fn drop_oldest_keeps_the_newest_and_counts() {
        let limits = OutboxLimits { hard_bytes: 30, policy: OverflowPolicy::DropOldest, ..Default::default() };
        let o = Outbox::new(Encoding::Resp3, limits);
        for _ in 0..5 {
            o.push(frame(10));
        }
        let mut got = 0;
        let d = o.drain(|_| got += 1);
        assert_eq!(d, Drained { frames: 3, lagged: 2 });
        assert_eq!(got, 3);
        assert_eq!(o.drain(|_| {}), Drained { frames: 0, lagged: 0 });
        assert_eq!(o.dropped_total(), 2);
    }
}
