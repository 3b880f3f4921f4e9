//! The pub-sub bridge: one pub-sub connection from this node to Redis, subscribed to exactly the
//! channels and patterns this node's clients want, whose messages go into the node's hub for fan-out
//! to every wire (RESP, WebSocket, SSE).
//!
//! The hub counts subscribers; it tells the bridge when a channel or pattern gains its first or loses its
//! last ([`Interest`]). PUBLISH on any node goes to Redis, and comes back here once per node that wants
//! it, so each subscriber receives it exactly once, in Redis's order. A SUBSCRIBE's confirmation waits
//! for a barrier behind its interest, so a message published anywhere after the client saw it is
//! delivered.
//!
//! The connection itself is `link.rs`'s: to a single server or Sentinel's primary without TLS, Herald's
//! own (orders written as they come, publications cut out of its read buffer by `push.rs` and handed
//! on as slices of it), else the `redis` crate's pub-sub connection; this file's logic is the same on
//! both.
//!
//! Gaps: when the connection drops (Redis restarts, `CLIENT KILL TYPE pubsub`, a failover) the bridge
//! reconnects with a growing pause and subscribes again to whatever the hub holds then. Messages
//! published while it was away are not delivered (Redis pub-sub keeps nothing); the blackboard's
//! watchers and waiters catch up from its log instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::collections::VecDeque;

use bytes::Bytes;
use herald_protocol::command::CommandSpec;
use herald_protocol::{Reply, Request};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use super::link::Settings;
use super::link::{Incoming, Link, Msg, Op};
use crate::pubsub::{ChannelKind, Hub, Interest, InterestWatcher};

/// Shard channels (SSUBSCRIBE / SPUBLISH) travel through Redis as plain channels under this prefix, so
/// one pub-sub connection carries them on every topology (Redis Cluster broadcasts a plain PUBLISH to
/// every node) and a client's pattern never sees them (patterns skip the node's notice prefix), as
/// Redis keeps shard channels apart from patterns.
const SHARD_PREFIX: &[u8] = b"__herald__:engine:shard:";

/// The plain channel on Redis that carries shard channel `name`.
pub fn shard_channel(name: &[u8]) -> Vec<u8> {
    [SHARD_PREFIX, name].concat()
}

/// `SPUBLISH channel message` as Redis is sent it: a `PUBLISH` on the channel's carrier
/// ([`shard_channel`]), with its spec.
pub fn shard_publish(req: &Request) -> (&'static CommandSpec, Request) {
    let parts = req.parts();
    let publish = Request::new(vec![Bytes::from_static(b"PUBLISH"), Bytes::from(shard_channel(&parts[1])), parts[2].clone()]);
    let spec = herald_protocol::command::lookup(&publish).expect("PUBLISH is a command").spec;
    (spec, publish)
}

/// What the bridge task is asked to do, in order.
enum Order {
    Interest(Interest),
    /// Answered once every order before it has been carried out (or the bridge is disconnected).
    Barrier(oneshot::Sender<Reply>),
    /// Drop the connection and connect again now (Sentinel named another primary).
    Reconnect,
}

/// Where the bridge connects, asked at every (re)connection: the primary can move (Sentinel).
pub type ClientSource = Arc<dyn Fn() -> redis::RedisResult<redis::Client> + Send + Sync>;

/// Messages on channels the node itself uses (the blackboard's change notices) go to this listener
/// instead of the hub; `reconnected` is called after each gap so listeners can catch up.
pub trait Listener: Send + Sync {
    /// A notice: slices of the frame Redis sent (the listener keeps them without a copy).
    fn message(&self, channel: &Bytes, payload: &Bytes);
    fn reconnected(&self);
}

/// Several listeners on one bridge, each picking the channels it knows (a domain's notices).
pub struct Listeners(pub Vec<Arc<dyn Listener>>);

impl Listener for Listeners {
    fn message(&self, channel: &Bytes, payload: &Bytes) {
        for l in &self.0 {
            l.message(channel, payload);
        }
    }

    fn reconnected(&self) {
        for l in &self.0 {
            l.reconnected();
        }
    }
}

pub struct Bridge {
    orders: mpsc::UnboundedSender<Order>,
    receiver: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Order>>>,
    /// How many times the pub-sub connection was (re)established (INFO, tests).
    pub connections: AtomicU64,
}

impl InterestWatcher for Bridge {
    fn interest(&self, change: Interest) {
        let _ = self.orders.send(Order::Interest(change));
    }
}

impl Bridge {
    pub fn new() -> Bridge {
        let (orders, receiver) = mpsc::unbounded_channel();
        Bridge { orders, receiver: std::sync::Mutex::new(Some(receiver)), connections: AtomicU64::new(0) }
    }

    /// Resolves once the orders sent before it are done: the subscriptions a SUBSCRIBE just asked for
    /// are in effect on Redis.
    pub fn barrier(&self) -> oneshot::Receiver<Reply> {
        let (tx, rx) = oneshot::channel();
        let _ = self.orders.send(Order::Barrier(tx));
        rx
    }

    /// Connects again at once, to wherever the client source points now.
    pub fn reconnect(&self) {
        let _ = self.orders.send(Order::Reconnect);
    }

    /// Starts the bridge task on the current runtime (once).
    pub fn start(
        self: &Arc<Self>,
        client: ClientSource,
        settings: Settings,
        hub: Arc<Hub>,
        internal: Vec<Bytes>,
        listener: Arc<dyn Listener>,
        stop: CancellationToken,
    ) {
        let Some(orders) = self.receiver.lock().expect("bridge receiver").take() else { return };
        let me = self.clone();
        tokio::spawn(async move {
            let run = Run { client, settings, hub, internal, listener, orders, bridge: me };
            tokio::select! {
                _ = run.serve() => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

impl Default for Bridge {
    fn default() -> Self {
        Self::new()
    }
}

struct Run {
    client: ClientSource,
    settings: Settings,
    hub: Arc<Hub>,
    /// Patterns the node always follows (its own notices), handed to `listener`.
    internal: Vec<Bytes>,
    listener: Arc<dyn Listener>,
    orders: mpsc::UnboundedReceiver<Order>,
    bridge: Arc<Bridge>,
}

/// Why a connected spell ended.
enum Ended {
    Lost,
    Stopped,
}

/// What waits for Redis to confirm the names ordered so far.
enum Mark {
    Barrier(oneshot::Sender<Reply>),
    /// The listener is told of the gap once the node's own patterns are followed again, so what it
    /// catches up on cannot slip between its catch-up and the subscription.
    Reconnected,
}

/// One connected spell: its connection, how many names were ordered on it, and the marks waiting for
/// their confirmations (each with the count it waits for), in order.
struct Spell {
    link: Link,
    ordered: u64,
    marks: VecDeque<(u64, Mark)>,
}

impl Spell {
    async fn order(&mut self, op: Op, names: Vec<Bytes>) -> redis::RedisResult<()> {
        let n = names.len() as u64;
        self.link.order(op, names).await?;
        self.ordered += n;
        Ok(())
    }

    /// Carries out the marks whose names are all confirmed.
    fn settle(&mut self, listener: &dyn Listener) {
        while self.marks.front().is_some_and(|(at, _)| *at <= self.link.confirmed()) {
            match self.marks.pop_front() {
                Some((_, Mark::Barrier(tx))) => {
                    let _ = tx.send(Reply::ok());
                }
                Some((_, Mark::Reconnected)) => listener.reconnected(),
                None => {}
            }
        }
    }

    /// The spell ended: barriers are answered (nothing is followed now; the next connection follows what
    /// the hub holds then), and a gap not yet told is told by the next connection.
    fn end(self, ended: Ended) -> Ended {
        for (_, mark) in self.marks {
            if let Mark::Barrier(tx) = mark {
                let _ = tx.send(Reply::ok());
            }
        }
        ended
    }
}

impl Run {
    async fn serve(mut self) {
        let mut pause = Duration::from_millis(50);
        loop {
            let opened = async { Link::open((self.client)()?, self.settings).await };
            match opened.await {
                Ok(link) => {
                    pause = Duration::from_millis(50);
                    let first = self.bridge.connections.fetch_add(1, Ordering::Relaxed) == 0;
                    if !first {
                        tracing::info!("redis engine: pub-sub connection re-established");
                    }
                    if let Ended::Stopped = self.follow(link, first).await {
                        return;
                    }
                    tracing::warn!("redis engine: pub-sub connection lost; reconnecting");
                }
                Err(e) => tracing::warn!("redis engine: pub-sub connection failed: {e}"),
            }
            // While away: orders change nothing on Redis (the next connection subscribes to what the hub
            // holds then), and barriers are answered so no SUBSCRIBE waits for Redis to come back.
            let sleep = tokio::time::sleep(pause);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    order = self.orders.recv() => match order {
                        Some(Order::Barrier(tx)) => { let _ = tx.send(Reply::ok()); }
                        Some(Order::Interest(_)) => {}
                        Some(Order::Reconnect) => break,
                        None => return,
                    },
                }
            }
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Follows the node's own patterns and everything the hub holds on a new connection, then carries
    /// out orders and delivers publications until the connection is lost or the node stops.
    async fn follow(&mut self, link: Link, first: bool) -> Ended {
        let mut spell = Spell { link, ordered: 0, marks: VecDeque::new() };
        if self.subscribe_all(&mut spell).await.is_err() {
            return spell.end(Ended::Lost);
        }
        if !first {
            spell.marks.push_back((spell.ordered, Mark::Reconnected));
        }
        loop {
            spell.settle(&*self.listener);
            tokio::select! {
                biased;
                incoming = spell.link.next() => match incoming {
                    Some(Incoming::Message(msg)) => self.deliver(msg),
                    Some(Incoming::Confirmed) => {}
                    None => return spell.end(Ended::Lost),
                },
                order = self.orders.recv() => match order {
                    None => return spell.end(Ended::Stopped),
                    Some(Order::Barrier(tx)) => spell.marks.push_back((spell.ordered, Mark::Barrier(tx))),
                    Some(Order::Reconnect) => return spell.end(Ended::Lost),
                    Some(Order::Interest(change)) => {
                        if self.apply(&mut spell, change).await.is_err() {
                            return spell.end(Ended::Lost);
                        }
                    }
                },
            }
        }
    }

    async fn subscribe_all(&self, spell: &mut Spell) -> redis::RedisResult<()> {
        spell.order(Op::PSubscribe, self.internal.clone()).await?;
        spell.order(Op::Subscribe, self.hub.channel_names(ChannelKind::Plain, None)).await?;
        spell.order(Op::PSubscribe, self.hub.pattern_names()).await?;
        let shards = self.hub.channel_names(ChannelKind::Shard, None).iter().map(|c| Bytes::from(shard_channel(c))).collect();
        spell.order(Op::Subscribe, shards).await
    }

    /// Carries out one interest change. A "no longer wanted" that raced with a new subscriber is
    /// skipped: the hub, not the order, says what is wanted now.
    async fn apply(&self, spell: &mut Spell, change: Interest) -> redis::RedisResult<()> {
        match change {
            Interest::Channel(c) => spell.order(Op::Subscribe, vec![c]).await,
            Interest::Pattern(p) => spell.order(Op::PSubscribe, vec![p]).await,
            Interest::NoChannel(c) if self.hub.subscriber_count(ChannelKind::Plain, &c) == 0 => spell.order(Op::Unsubscribe, vec![c]).await,
            Interest::NoPattern(p) if !self.hub.pattern_names().contains(&p) => spell.order(Op::PUnsubscribe, vec![p]).await,
            Interest::Shard(c) => spell.order(Op::Subscribe, vec![Bytes::from(shard_channel(&c))]).await,
            Interest::NoShard(c) if self.hub.subscriber_count(ChannelKind::Shard, &c) == 0 => {
                spell.order(Op::Unsubscribe, vec![Bytes::from(shard_channel(&c))]).await
            }
            _ => Ok(()),
        }
    }

    fn deliver(&self, msg: Msg) {
        let Msg { pattern, channel, payload } = msg;
        match pattern {
            Some(pattern) if self.internal.contains(&pattern) => self.listener.message(&channel, &payload),
            // The node's own notices are not publications: a client's `*` pattern does not see them.
            Some(_) if channel.starts_with(super::NOTICE_PREFIX) => {}
            Some(pattern) => {
                self.hub.deliver_pattern(pattern, channel, payload);
            }
            None => match channel.strip_prefix(SHARD_PREFIX) {
                Some(shard) => {
                    self.hub.deliver_channel(ChannelKind::Shard, channel.slice_ref(shard), payload);
                }
                None => {
                    self.hub.deliver_channel(ChannelKind::Plain, channel, payload);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_carriers_are_under_the_notice_prefix_that_client_patterns_skip() {
        assert!(shard_channel(b"orders").starts_with(super::super::NOTICE_PREFIX));
        let (spec, req) = shard_publish(&Request::from_strs(&["SPUBLISH", "orders", "m"]));
        assert_eq!(spec.name, "publish");
        assert_eq!(req.parts()[1].as_ref(), b"__herald__:engine:shard:orders");
        assert_eq!(req.parts()[2].as_ref(), b"m");
    }
}
