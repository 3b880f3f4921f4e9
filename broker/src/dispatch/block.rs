//! The connection side of blocking commands: how a blocked client waits, times out, or goes away.

use std::time::Duration;

use herald_protocol::Reply;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Cx, Outcome};
use crate::broker::Broker;
use crate::engine::blocking::{Attempt, WaitKey};

/// A client waiting for its reply. Dropping it (disconnect, shutdown) withdraws the wait.
#[derive(Debug)]
pub struct Blocked {
    id: u64,
    rx: oneshot::Receiver<Reply>,
    deadline: Option<Instant>,
    on_timeout: Reply,
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
    /// Waits for the reply or the deadline. A reply handed over at the very moment the deadline
    /// passed is still delivered: cancelling under the lock tells which came first.
    pub async fn wait(mut self, broker: &Broker) -> Reply {
        let mut guard = CancelOnDrop { broker, id: self.id, armed: true };
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
                if broker.lock().blocking.cancel(self.id) {
                    self.on_timeout
                } else {
                    self.rx.try_recv().unwrap_or(self.on_timeout)
                }
            }
        }
    }
}

impl Cx<'_> {
    /// Blocks the client until `attempt` succeeds on one of `keys` being signalled, or `timeout`
    /// passes (`None`: forever) and `on_timeout` is the reply. Inside EXEC nothing blocks: the
    /// timeout reply comes at once, as in Redis.
    pub fn block(&mut self, keys: Vec<WaitKey>, timeout: Option<Duration>, on_timeout: Reply, attempt: Attempt) -> Outcome {
        if self.in_exec {
            return on_timeout.into();
        }
        let (id, rx) = self.state().blocking.block(keys, attempt);
        let deadline = timeout.map(|t| Instant::now() + t);
        Outcome::Block(Blocked { id, rx, deadline, on_timeout })
    }
}
