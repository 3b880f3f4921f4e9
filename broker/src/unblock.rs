//! CLIENT UNBLOCK for waits that run outside the state's blocking registry. On the Redis engine a domain
//! command's wait (`remote/waiting.rs`: `JOB.CLAIM ... BLOCK`, `BB.WAIT`, `MSG.RECV` ...) is a task of its
//! own, and a blocking Redis command (`BLPOP`, `XREAD ... BLOCK`, `WAIT` ...) waits inside Redis on a
//! dedicated connection. While a connection waits for such a reply, its client holds the wait's
//! [`Unblocker`] (`clients.rs`, `ClientHandle::waits_on`), which CLIENT UNBLOCK finds through the client list; the task
//! reaches the same one through a task-local, so the domain code in between does not carry it.
//!
//! - A wait the node runs is asked to end and answers as a timed-out wait (`TIMEOUT`) or with Redis's
//!   `-UNBLOCKED` error (`ERROR`). It listens only between its checks, so an item it is taking when the
//!   request comes is still delivered (CLIENT UNBLOCK then answered 1 for a wait that ends with the item).
//! - A command blocked in Redis is unblocked by Redis: `CLIENT UNBLOCK <its connection's id>` goes to Redis
//!   on another connection, and Redis answers the blocked command exactly as for its own client.
//!
//! CLIENT UNBLOCK answers 1 when the wait was blocked: listening (a node's wait that found nothing), or
//! sent to Redis (a forwarded command whose connection's id is known; not under Redis Cluster).

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::task::futures::TaskLocalFuture;

/// The error a wait ended by `CLIENT UNBLOCK id ERROR` answers, as Redis words it.
pub const UNBLOCKED: &str = "UNBLOCKED client unblocked via CLIENT UNBLOCK";

/// Tells Redis to unblock the connection a forwarded command waits on (`true`: with an error).
pub type Relay = Box<dyn Fn(bool) + Send + Sync>;

/// One wait's handle for CLIENT UNBLOCK; see the module doc.
#[derive(Default)]
pub struct Unblocker {
    inner: Mutex<Inner>,
    asked: Notify,
}

#[derive(Default)]
struct Inner {
    /// The node's wait found nothing on its first check and now listens.
    listening: bool,
    /// The wait is in Redis: CLIENT UNBLOCK is passed on there.
    relay: Option<Relay>,
    /// CLIENT UNBLOCK asked the wait to end (`true`: with the error).
    asked: Option<bool>,
}

impl std::fmt::Debug for Unblocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock().expect("unblocker");
        f.debug_struct("Unblocker")
            .field("listening", &inner.listening)
            .field("relayed", &inner.relay.is_some())
            .field("asked", &inner.asked)
            .finish()
    }
}

tokio::task_local! {
    static CURRENT: Arc<Unblocker>;
}

impl Unblocker {
    pub fn new() -> Arc<Unblocker> {
        Arc::default()
    }

    /// Runs `work` with this unblocker as its [`Unblocker::current`].
    pub fn scope<F: Future>(self: &Arc<Self>, work: F) -> TaskLocalFuture<Arc<Unblocker>, F> {
        CURRENT.scope(self.clone(), work)
    }

    /// The unblocker of the wait this task runs, if it runs one ([`Unblocker::scope`]).
    pub fn current() -> Option<Arc<Unblocker>> {
        CURRENT.try_with(Arc::clone).ok()
    }

    /// CLIENT UNBLOCK: whether the wait was blocked and is now asked to end (`error`: with `-UNBLOCKED`).
    pub fn unblock(&self, error: bool) -> bool {
        let mut inner = self.inner.lock().expect("unblocker");
        if inner.asked.is_some() {
            return false;
        }
        if let Some(relay) = &inner.relay {
            relay(error);
        } else if !inner.listening {
            return false;
        }
        inner.asked = Some(error);
        drop(inner);
        // Stores a permit when the wait is between its checks: it sees the request at its next wait.
        self.asked.notify_one();
        true
    }

    /// The node's wait found nothing and blocks: CLIENT UNBLOCK may end it from now on.
    pub fn listen(&self) {
        self.inner.lock().expect("unblocker").listening = true;
    }

    /// The wait is in Redis: CLIENT UNBLOCK calls `relay` from now on.
    pub fn relay(&self, relay: Relay) {
        self.inner.lock().expect("unblocker").relay = Some(relay);
    }

    /// The command in Redis answered: CLIENT UNBLOCK no longer reaches it. Whether a request was passed on
    /// to Redis (which may still arrive there).
    pub fn end_relay(&self) -> bool {
        let mut inner = self.inner.lock().expect("unblocker");
        inner.relay.take().is_some() && inner.asked.is_some()
    }

    /// Resolves once CLIENT UNBLOCK asks the wait to end: `true` when it asked for the error.
    pub async fn asked(&self) -> bool {
        loop {
            if let Some(error) = self.inner.lock().expect("unblocker").asked {
                return error;
            }
            self.asked.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_wait_is_unblocked_once_and_only_while_it_listens() {
        let u = Unblocker::new();
        assert!(!u.unblock(false), "not blocked yet: its first check is still running");
        u.listen();
        assert!(u.unblock(true));
        assert!(!u.unblock(false), "asked already");
        assert!(u.asked().await, "with the error");
    }

    #[tokio::test]
    async fn a_wait_in_redis_is_relayed() {
        let sent = Arc::new(AtomicUsize::new(0));
        let u = Unblocker::new();
        let seen = sent.clone();
        u.relay(Box::new(move |error| {
            assert!(!error);
            seen.fetch_add(1, Ordering::SeqCst);
        }));
        assert!(u.unblock(false));
        assert!(!u.unblock(false));
        assert_eq!(sent.load(Ordering::SeqCst), 1);
        assert!(u.end_relay(), "relayed: the connection is not lent again");
        let quiet = Unblocker::new();
        quiet.relay(Box::new(|_| {}));
        assert!(!quiet.end_relay());
        assert!(!quiet.unblock(false), "the command answered: nothing to unblock");
    }

    #[tokio::test]
    async fn the_task_finds_its_unblocker() {
        let u = Unblocker::new();
        assert!(Unblocker::current().is_none());
        let found = u.scope(async { Unblocker::current() }).await.expect("in scope");
        assert!(Arc::ptr_eq(&found, &u));
    }
}
