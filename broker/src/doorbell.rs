//! How the rest of the broker tells a connection's task that something happened to it: a push in its
//! outbox, its outbox overflowing, CLIENT KILL, shutdown.
//!
//! One set of flags and one waker per connection. The task checks the flags with one atomic load per
//! turn of its loop and registers its waker with two compare-and-swaps; the three standing waits it
//! replaces (a `Notify` for pushes and a `CancellationToken` each for kill and shutdown) each took a
//! lock every time the loop polled them, about 850 instructions per turn in profiles of
//! `redis-benchmark -P 1`.

use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

/// A connection's doorbell. Rung by any thread; waited on by the connection's task alone.
#[derive(Debug, Default)]
pub struct Doorbell {
    rung: AtomicU8,
    waker: AtomicWaker,
}

impl Doorbell {
    /// Something was pushed to the outbox (cleared when the outbox is drained).
    pub const PUSH: u8 = 1;
    /// The outbox passed its limits and closed.
    pub const OVERFLOW: u8 = 2;
    /// CLIENT KILL.
    pub const KILL: u8 = 4;
    /// The broker is shutting down.
    pub const SHUTDOWN: u8 = 8;

    pub fn ring(&self, what: u8) {
        self.rung.fetch_or(what, Ordering::AcqRel);
        self.waker.wake();
    }

    /// What has rung and not been cleared.
    pub fn rung(&self) -> u8 {
        self.rung.load(Ordering::Acquire)
    }

    /// Clears `PUSH` before the outbox is drained, so a push that lands during the drain rings again.
    pub fn clear_push(&self) {
        self.rung.fetch_and(!Self::PUSH, Ordering::AcqRel);
    }

    /// Ready with the flags once anything has rung.
    pub fn poll_rung(&self, cx: &mut Context<'_>) -> Poll<u8> {
        let rung = self.rung();
        if rung != 0 {
            return Poll::Ready(rung);
        }
        self.waker.register(cx.waker());
        // A ring between the load and the registration found no waker to wake: look again.
        match self.rung() {
            0 => Poll::Pending,
            rung => Poll::Ready(rung),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rings_wake_the_waiter_and_push_clears() {
        let bell = std::sync::Arc::new(Doorbell::default());
        let waiter = bell.clone();
        let task = tokio::spawn(async move { std::future::poll_fn(|cx| waiter.poll_rung(cx)).await });
        tokio::task::yield_now().await;
        bell.ring(Doorbell::PUSH);
        assert_eq!(task.await.unwrap(), Doorbell::PUSH);
        bell.ring(Doorbell::KILL);
        bell.clear_push();
        assert_eq!(bell.rung(), Doorbell::KILL);
    }
}
