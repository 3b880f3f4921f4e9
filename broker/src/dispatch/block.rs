//! The connection side of blocking commands: how a blocked client waits, times out, or goes away.

use std::sync::Arc;
use std::time::Duration;

use herald_protocol::Reply;
use tokio::sync::oneshot;
use tokio::time::Instant;

use herald_protocol::CommandError;

use super::{Cx, Outcome};
use crate::broker::Broker;
use crate::state::State;
use crate::state::blocking::{Attempt, WaitKey};
use crate::unblock::Unblocker;

/// A command's operation as a blocking command runs it: `Ok(None)` means "nothing yet, wait".
pub trait BlockingOp: FnMut(&mut State, u64) -> Result<Option<Reply>, CommandError> + Send + 'static {}
impl<F: FnMut(&mut State, u64) -> Result<Option<Reply>, CommandError> + Send + 'static> BlockingOp for F {}

/// A client waiting for its reply. Dropping it (disconnect, shutdown) withdraws the wait.
#[derive(Debug)]
pub struct Blocked {
    /// The waiter's id in the blocking registry; `None` for a reply computed elsewhere (a script
    /// running on the script thread) or sent at its deadline ([`Blocked::delayed`]): nothing to withdraw.
    id: Option<u64>,
    rx: oneshot::Receiver<Reply>,
    deadline: Option<Instant>,
    on_timeout: Reply,
    /// CLIENT UNBLOCK's way into a wait computed elsewhere (`unblock.rs`); `None`: it cannot be unblocked
    /// (or, with an `id`, the registry unblocks it).
    unblocker: Option<Arc<Unblocker>>,
}

/// Withdraws the waiter if the wait is abandoned before it finished.
struct CancelOnDrop<'a> {
    broker: &'a Broker,
    id: u64,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.broker.lock().blocking.cancel(self.id);
        }
    }
}

impl Blocked {
    /// A reply that is only sent at `at` (a throttled AUTH): the connection waits as for a blocked
    /// command, its io thread serving everyone else.
    pub fn delayed(reply: Reply, at: Instant) -> Blocked {
        let (_, rx) = oneshot::channel();
        Blocked { id: None, rx, deadline: Some(at), on_timeout: reply, unblocker: None }
    }

    /// Waits for the reply or the deadline. A reply handed over at the very moment the deadline
    /// passed is still delivered: cancelling under the lock tells which came first.
    pub async fn wait(mut self, broker: &Broker) -> Reply {
        let Some(id) = self.id else {
            // No waiter registered: a reply computed elsewhere (a script on the script thread), or
            // one that is only sent at its deadline (a throttled AUTH).
            return match self.deadline {
                Some(at) => {
                    tokio::time::sleep_until(at).await;
                    self.on_timeout
                }
                None => (&mut self.rx).await.unwrap_or(self.on_timeout),
            };
        };
        let mut guard = CancelOnDrop { broker, id, armed: true };
        let outcome = match self.deadline {
            Some(d) => tokio::time::timeout_at(d, &mut self.rx).await.ok(),
            None => Some((&mut self.rx).await),
        };
        guard.armed = false;
        match outcome {
            Some(Ok(reply)) => reply,
            // The sender went away without replying: the waiter was dropped by the engine.
            Some(Err(_)) => self.on_timeout,
            None => {
                if broker.lock().blocking.cancel(id) {
                    self.on_timeout
                } else {
                    self.rx.try_recv().unwrap_or(self.on_timeout)
                }
            }
        }
    }
}

impl Blocked {
    /// Waits for a reply another thread computes (`on_lost` if that thread drops the sender).
    pub fn elsewhere(rx: oneshot::Receiver<Reply>, on_lost: Reply) -> Blocked {
        Blocked { id: None, rx, deadline: None, on_timeout: on_lost, unblocker: None }
    }

    /// The same wait, which CLIENT UNBLOCK reaches through `unblocker` (`unblock.rs`).
    pub fn unblockable(mut self, unblocker: Arc<Unblocker>) -> Blocked {
        self.unblocker = Some(unblocker);
        self
    }

    /// What CLIENT UNBLOCK asks to end this wait, if anything but the blocking registry.
    pub fn unblocker(&self) -> Option<&Arc<Unblocker>> {
        self.unblocker.as_ref()
    }
}

impl Cx<'_> {
    /// Runs `op` now; if it has nothing yet, blocks on `keys` until it does or `timeout` passes
    /// (`None`: forever), then answers `on_timeout`. Errors end the wait with the error.
    pub fn now_or_block(&mut self, keys: Vec<WaitKey>, timeout: Option<Duration>, on_timeout: Reply, mut op: impl BlockingOp) -> Outcome {
        let now = self.now();
        match op(self.state(), now) {
            Err(e) => e.into(),
            Ok(Some(reply)) => reply.into(),
            Ok(None) => self.block(
                keys,
                timeout,
                on_timeout,
                Box::new(move |state, now| match op(state, now) {
                    Ok(Some(reply)) => Some(reply),
                    // A key that now holds another type does not serve this client: it stays blocked
                    // until the key holds what it waits for (Redis serves a blocked client only from a
                    // key of the type it blocked on).
                    Err(e) if e.code() == "WRONGTYPE" => None,
                    Err(e) => Some(Reply::Error(e)),
                    Ok(None) => None,
                }),
            ),
        }
    }

    /// Blocks the client until `attempt` succeeds on one of `keys` being signalled, or `timeout`
    /// passes (`None`: forever) and `on_timeout` is the reply. Inside EXEC nothing blocks: the
    /// timeout reply comes at once, as in Redis.
    pub fn block(&mut self, keys: Vec<WaitKey>, timeout: Option<Duration>, on_timeout: Reply, attempt: Attempt) -> Outcome {
        if self.in_exec {
            return on_timeout.into();
        }
        let client = self.session.id();
        let (id, rx) = self.state().blocking.block(client, keys, attempt);
        let deadline = timeout.map(|t| Instant::now() + t);
        Outcome::Block(Blocked { id: Some(id), rx, deadline, on_timeout, unblocker: None })
    }
}
