//! Blocking waits on the Redis engine, written once for every domain: register interest (a `Notify`
//! a change notice rings), re-check on Redis, then wait for a ring, the fallback poll
//! (`engine.wait_poll_ms`) or the deadline. A lost notice costs latency, never correctness: the poll
//! re-checks anyway. CLIENT UNBLOCK ends a wait between its checks (`unblock.rs`), never during one,
//! so nothing a check takes is dropped.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::select_all;
use herald_protocol::{CommandError, Reply};
use tokio::sync::{Notify, oneshot};

use crate::unblock::{UNBLOCKED, Unblocker};

/// How a wait ended.
pub enum Waited {
    /// The check answered.
    Ready(Reply),
    /// The deadline passed first.
    TimedOut,
    /// The client left (its reply would go nowhere).
    Gone,
}

/// Counts a wait for as long as it is blocked (registered, and its first check found nothing).
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Counted(n)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Waits until `check` answers `Some`, re-running it after each ring of the doorbells `interest`
/// hands out (taken before each check, so a change between the check and the wait is not missed), each
/// `poll`, until `timeout` (`None`: forever) or the client leaves. `blocked` counts the wait once it is
/// registered and found nothing, so a count seen elsewhere means any change from then on wakes it.
pub async fn wait_until<I, C, F>(
    interest: I,
    poll: Duration,
    timeout: Option<Duration>,
    tx: &mut oneshot::Sender<Reply>,
    blocked: &AtomicUsize,
    mut check: C,
) -> Waited
where
    I: Fn() -> Vec<Arc<Notify>>,
    C: FnMut() -> F,
    F: Future<Output = Option<Reply>>,
{
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let unblocker = Unblocker::current();
    let mut counted = None;
    loop {
        let bells = interest();
        let mut rung: Vec<_> = bells.iter().map(|n| Box::pin(n.notified())).collect();
        for n in &mut rung {
            n.as_mut().enable();
        }
        if let Some(reply) = check().await {
            return Waited::Ready(reply);
        }
        if counted.is_none() {
            counted = Some(Counted::new(blocked));
            if let Some(u) = &unblocker {
                u.listen();
            }
        }
        let unblocked = async {
            match &unblocker {
                Some(u) => u.asked().await,
                None => std::future::pending().await,
            }
        };
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let any = async {
            if rung.is_empty() {
                std::future::pending::<()>().await;
            } else {
                select_all(rung).await;
            }
        };
        tokio::select! {
            _ = any => {}
            _ = tokio::time::sleep(poll) => {}
            _ = timer => return Waited::TimedOut,
            _ = tx.closed() => return Waited::Gone,
            // CLIENT UNBLOCK: as if timed out, or Redis's error.
            error = unblocked => {
                return if error { Waited::Ready(Reply::Error(CommandError::fixed(UNBLOCKED))) } else { Waited::TimedOut };
            }
        }
    }
}
