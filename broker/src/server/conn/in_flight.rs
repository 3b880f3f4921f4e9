//! Replies in flight: a client's pipelined requests that went on to the backing Redis (the Redis engine's
//! plain commands, [`Outcome::Later`](crate::dispatch::Outcome)) while the connection handled the ones
//! behind them. Their replies go out strictly in request order.
//!
//! The rule that keeps it correct is the connection's (`connection.rs`): only a request that forwards
//! plainly may join requests in flight; before anything else is dispatched (a command that changes the
//! session, a domain command, a blocking one) or answered (a refusal), every reply in flight is in. At most
//! `engine.max_in_flight` wait at once. The embedded engine never has any: two `is_empty` checks per request
//! and one per batch.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use herald_protocol::Reply;

use super::connection::Conn;
use super::{End, Wire};
use crate::dispatch::Later;

/// One request's reply: still coming, or in and waiting for the replies before it.
enum Slot {
    Coming(Later),
    In(Reply),
}

pub(super) struct InFlight<T> {
    /// Each request's tag, whether its reply is muted (CLIENT REPLY, decided as it was dispatched), and its
    /// reply.
    queue: VecDeque<(T, bool, Slot)>,
    /// `engine.max_in_flight` (0 on the embedded engine, which never has any).
    max: usize,
}

impl<T> InFlight<T> {
    pub(super) fn new(max: usize) -> Self {
        InFlight { queue: VecDeque::new(), max }
    }

    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn is_full(&self) -> bool {
        self.queue.len() >= self.max
    }

    /// Polls every reply still coming, in request order: a request is sent when its reply is first polled,
    /// so polling the earlier ones first keeps the order in which Redis receives them. Ready when all are in.
    fn poll_all(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut all_in = true;
        for (_, _, slot) in self.queue.iter_mut() {
            if let Slot::Coming(later) = slot {
                match later.poll(cx) {
                    Poll::Ready(reply) => *slot = Slot::In(reply),
                    Poll::Pending => all_in = false,
                }
            }
        }
        if all_in { Poll::Ready(()) } else { Poll::Pending }
    }

    /// The oldest request's reply, if it is in.
    fn pop_in(&mut self) -> Option<(T, bool, Reply)> {
        match self.queue.front() {
            Some((_, _, Slot::In(_))) => match self.queue.pop_front() {
                Some((tag, muted, Slot::In(reply))) => Some((tag, muted, reply)),
                _ => unreachable!("just looked"),
            },
            _ => None,
        }
    }
}

impl<W: Wire> Conn<W> {
    /// A request whose reply comes later: sent on now (after every earlier one), answered in its turn.
    /// Replies already in go out at once; a full window waits for every reply in flight.
    pub(super) async fn send_later(&mut self, tag: W::Tag, later: Later) -> Result<(), End> {
        self.in_flight.queue.push_back((tag, self.session.muted, Slot::Coming(later)));
        std::future::poll_fn(|cx| {
            let _ = self.in_flight.poll_all(cx);
            Poll::Ready(())
        })
        .await;
        self.encode_in();
        if self.in_flight.is_full() {
            self.settle_in_flight().await?;
        }
        Ok(())
    }

    /// [`Conn::settle_in_flight`] boxed: the connection's future (and the embedded engine's path through
    /// it) stays as small as without replies in flight; only the Redis engine pays for this wait.
    pub(super) fn settle(&mut self) -> Pin<Box<dyn Future<Output = Result<(), End>> + Send + '_>> {
        Box::pin(self.settle_in_flight())
    }

    /// Waits until every reply in flight is in (pushes flowing, kills and disconnects noticed, input kept
    /// as behind a blocked command), and encodes them in order.
    pub(super) async fn settle_in_flight(&mut self) -> Result<(), End> {
        if self.in_flight.is_empty() {
            return Ok(());
        }
        let mut pending = InFlight { queue: std::mem::take(&mut self.in_flight.queue), max: 0 };
        self.wait_for(std::future::poll_fn(|cx| pending.poll_all(cx))).await?;
        self.in_flight.queue = pending.queue;
        self.encode_in();
        debug_assert!(self.in_flight.is_empty());
        Ok(())
    }

    /// Encodes the replies that are in, oldest first, up to the first still coming (pushes already queued
    /// before each, as for any reply).
    fn encode_in(&mut self) {
        while let Some((tag, muted, reply)) = self.in_flight.pop_in() {
            self.drain_pushes_first();
            if !muted {
                self.wire.encode_reply(&tag, &reply, self.session.encoding(), &mut self.out);
            }
        }
    }
}
