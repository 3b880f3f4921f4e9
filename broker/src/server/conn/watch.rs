//! What a connection waits for besides its socket, kept for the connection's whole life.

use std::pin::Pin;

use tokio::sync::futures::Notified;
use tokio_util::sync::WaitForCancellationFuture;

use crate::broker::Broker;
use crate::clients::ClientHandle;

/// The waits a connection keeps open all its life: shutdown, CLIENT KILL, pushes to its outbox.
/// Made once and polled again by every `select!` (the read loop's and a blocked command's), rather
/// than made, registered with their `Notify` and unlinked again on every wake-up: with one small
/// request per wake-up, that churn (a lock, a waker clone and a drop per wait) was a visible share of
/// the io thread's time in profiles of the jobs workload.
pub(crate) struct Watch<'a> {
    client: &'a ClientHandle,
    pub shutdown: Pin<Box<WaitForCancellationFuture<'a>>>,
    pub kill: Pin<Box<WaitForCancellationFuture<'a>>>,
    pub pushes: Pin<Box<Notified<'a>>>,
}

impl<'a> Watch<'a> {
    pub fn new(broker: &'a Broker, client: &'a ClientHandle) -> Self {
        Watch {
            client,
            shutdown: Box::pin(broker.shutdown.cancelled()),
            kill: Box::pin(client.kill.cancelled()),
            pushes: Box::pin(client.outbox.ready()),
        }
    }

    /// After `pushes` fired: wait for the next push.
    pub fn rearm_pushes(&mut self) {
        self.pushes.set(self.client.outbox.ready());
    }
}
