//! The pub-sub hub: channel and pattern subscriptions, and fan-out of publications to outboxes.
//!
//! Everything that reaches a client unasked goes through here: PUBLISH, keyspace notifications,
//! blackboard watches, bulletin and job events. A publication is encoded at most once per wire format
//! (RESP2, RESP3, JSON) and the same `Bytes` go to every subscriber using that format. Publishing never
//! waits on a subscriber: an outbox push is a short critical section, and a full outbox applies its own
//! overflow policy, and a publication for many subscribers is handed to the fan-out thread
//! (`fanout.rs`) so the publisher does not pay for them. A channel or pattern with no subscribers left
//! is removed at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use bytes::Bytes;
use dashmap::DashMap;
use herald_protocol::json::push_to_json;
use herald_protocol::resp::{Protocol, encode_to_bytes};
use herald_protocol::{Encoding, Reply};

use super::fanout::{Fanout, Job, Target};
use super::outbox::{Outbox, Pushed};
use crate::engine::glob::glob_match;

/// One subscribing connection.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub client_id: u64,
    pub outbox: Arc<Outbox>,
}

/// A push rendered lazily, once per wire format.
pub struct Publication {
    items: Vec<Reply>,
    frames: [OnceLock<Bytes>; Encoding::COUNT],
}

impl Publication {
    pub fn new(items: Vec<Reply>) -> Self {
        Publication { items, frames: Default::default() }
    }

    pub fn frame(&self, format: Encoding) -> &Bytes {
        self.frames[format as usize].get_or_init(|| match format {
            Encoding::Resp2 => encode_to_bytes(&Reply::Push(self.items.clone()), Protocol::Resp2),
            Encoding::Resp3 => encode_to_bytes(&Reply::Push(self.items.clone()), Protocol::Resp3),
            Encoding::Json => push_to_json(&self.items),
        })
    }
}

/// Counters INFO reports.
#[derive(Debug, Default)]
pub struct HubStats {
    pub messages_published: AtomicU64,
    pub deliveries: AtomicU64,
    /// Pushes discarded by drop-oldest outboxes.
    pub dropped: AtomicU64,
    /// Outboxes closed by their limits (the connection is then closed by its task).
    pub overflow_disconnects: AtomicU64,
}

/// Which subscription namespace: plain channels and shard channels are separate in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    Plain,
    Shard,
}

/// A change in what this node's clients subscribe to, for a watcher outside the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interest {
    /// A plain channel got its first subscriber.
    Channel(Bytes),
    /// A plain channel lost its last subscriber.
    NoChannel(Bytes),
    Pattern(Bytes),
    NoPattern(Bytes),
    /// A shard channel (SSUBSCRIBE) got its first subscriber.
    Shard(Bytes),
    /// A shard channel lost its last subscriber.
    NoShard(Bytes),
}

/// Told when a channel or pattern gains its first subscriber or loses its last one: the Redis engine's
/// pub-sub bridge (`remote/bridge.rs`) subscribes the node to what its clients want. Called with the
/// hub's map locked, so it must only hand the change over (a channel send), never wait.
pub trait InterestWatcher: Send + Sync {
    fn interest(&self, change: Interest);
}

#[derive(Default)]
pub struct Hub {
    /// Only with the Redis engine; the embedded engine pays one check per new or emptied channel.
    watcher: OnceLock<Arc<dyn InterestWatcher>>,
    channels: DashMap<Bytes, Vec<Subscriber>>,
    shard_channels: DashMap<Bytes, Vec<Subscriber>>,
    patterns: RwLock<HashMap<Bytes, Vec<Subscriber>>>,
    pattern_count: AtomicUsize,
    /// Plain channels with subscribers (DashMap's own `len` visits every shard).
    channel_count: AtomicUsize,
    fanout: Fanout,
    pub stats: HubStats,
}

fn add(list: &mut Vec<Subscriber>, sub: &Subscriber) -> bool {
    if list.iter().any(|s| s.client_id == sub.client_id) {
        return false;
    }
    list.push(sub.clone());
    true
}

fn remove(list: &mut Vec<Subscriber>, client_id: u64) -> bool {
    match list.iter().position(|s| s.client_id == client_id) {
        Some(i) => {
            list.swap_remove(i);
            true
        }
        None => false,
    }
}

impl Hub {
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self, kind: ChannelKind) -> &DashMap<Bytes, Vec<Subscriber>> {
        match kind {
            ChannelKind::Plain => &self.channels,
            ChannelKind::Shard => &self.shard_channels,
        }
    }

    /// Installs the one watcher of subscription changes (the Redis engine's bridge).
    pub fn set_watcher(&self, watcher: Arc<dyn InterestWatcher>) {
        let _ = self.watcher.set(watcher);
    }

    fn tell(&self, change: impl FnOnce() -> Interest) {
        if let Some(w) = self.watcher.get() {
            w.interest(change());
        }
    }

    /// Adds a channel subscription; false if the subscriber already had it.
    pub fn subscribe(&self, kind: ChannelKind, channel: &Bytes, sub: &Subscriber) -> bool {
        match self.map(kind).entry(channel.clone()) {
            dashmap::Entry::Occupied(mut subs) => add(subs.get_mut(), sub),
            dashmap::Entry::Vacant(slot) => {
                match kind {
                    ChannelKind::Plain => {
                        self.channel_count.fetch_add(1, Ordering::Relaxed);
                        self.tell(|| Interest::Channel(channel.clone()));
                    }
                    ChannelKind::Shard => self.tell(|| Interest::Shard(channel.clone())),
                }
                slot.insert(vec![sub.clone()]);
                true
            }
        }
    }

    pub fn unsubscribe(&self, kind: ChannelKind, channel: &[u8], client_id: u64) -> bool {
        let map = self.map(kind);
        let removed = map.get_mut(channel).map(|mut subs| remove(&mut subs, client_id)).unwrap_or(false);
        if map.remove_if(channel, |_, subs| subs.is_empty()).is_some() {
            match kind {
                ChannelKind::Plain => {
                    self.channel_count.fetch_sub(1, Ordering::Relaxed);
                    self.tell(|| Interest::NoChannel(Bytes::copy_from_slice(channel)));
                }
                ChannelKind::Shard => self.tell(|| Interest::NoShard(Bytes::copy_from_slice(channel))),
            }
        }
        removed
    }

    pub fn psubscribe(&self, pattern: &Bytes, sub: &Subscriber) -> bool {
        let mut patterns = self.patterns.write().expect("patterns");
        if !patterns.contains_key(pattern) {
            self.tell(|| Interest::Pattern(pattern.clone()));
        }
        let added = add(patterns.entry(pattern.clone()).or_default(), sub);
        self.pattern_count.store(patterns.len(), Ordering::Relaxed);
        added
    }

    pub fn punsubscribe(&self, pattern: &[u8], client_id: u64) -> bool {
        let mut patterns = self.patterns.write().expect("patterns");
        let removed = patterns.get_mut(pattern).map(|subs| remove(subs, client_id)).unwrap_or(false);
        if patterns.get(pattern).is_some_and(|s| s.is_empty()) {
            patterns.remove(pattern);
            self.tell(|| Interest::NoPattern(Bytes::copy_from_slice(pattern)));
        }
        self.pattern_count.store(patterns.len(), Ordering::Relaxed);
        removed
    }

    fn deliver(&self, sub: &Subscriber, publication: &Publication) {
        match sub.outbox.push(publication.frame(sub.outbox.format()).clone()) {
            Pushed::Queued => {}
            Pushed::DroppedOldest(n) => {
                self.stats.dropped.fetch_add(n, Ordering::Relaxed);
            }
            Pushed::JustClosed(_) => {
                self.stats.overflow_disconnects.fetch_add(1, Ordering::Relaxed);
            }
            Pushed::Closed => return,
        }
        self.stats.deliveries.fetch_add(1, Ordering::Relaxed);
    }

    /// Delivers to `subs` now, or queues the publication for the fan-out thread.
    fn send(&self, subs: &[Subscriber], publication: &Arc<Publication>, target: impl FnOnce() -> Target) {
        if self.fanout.should_defer(subs.len()) {
            self.fanout.push(Job { publication: publication.clone(), target: target(), weight: subs.len() });
        } else {
            for sub in subs {
                self.deliver(sub, publication);
            }
        }
    }

    /// Delivers one queued publication to whoever is subscribed to its target now.
    fn deliver_job(&self, job: &Job) {
        match &job.target {
            Target::Channel(kind, name) => {
                if let Some(subs) = self.map(*kind).get(&name[..]) {
                    for sub in subs.iter() {
                        self.deliver(sub, &job.publication);
                    }
                }
            }
            Target::Pattern(pattern) => {
                if let Some(subs) = self.patterns.read().expect("patterns").get(&pattern[..]) {
                    for sub in subs {
                        self.deliver(sub, &job.publication);
                    }
                }
            }
        }
    }

    /// Starts the fan-out thread (the server does, at start; without it every delivery is inline).
    /// `backlog`: deliveries that may wait for the thread before publishers wait (`pubsub.fanout_backlog`).
    pub fn start_fanout(self: &Arc<Self>, backlog: usize) -> std::io::Result<std::thread::JoinHandle<()>> {
        let hub = self.clone();
        self.fanout.enable(backlog);
        std::thread::Builder::new().name("herald-fanout".into()).spawn(move || {
            while let Some(batch) = hub.fanout.next_batch() {
                for job in batch {
                    hub.deliver_job(&job);
                    hub.fanout.delivered(&job);
                }
            }
        })
    }

    /// Whether the fan-out thread is behind by more than `pubsub.fanout_backlog` deliveries: connections
    /// then wait for [`Hub::fanout_room`] before reading more requests.
    pub fn fanout_backlogged(&self) -> bool {
        self.fanout.backlogged()
    }

    /// Publications ever queued for the fan-out thread (see [`Hub::fanout_backlogged`]).
    pub fn fanout_queued(&self) -> u64 {
        self.fanout.queued()
    }

    pub async fn fanout_room(&self) {
        self.fanout.room().await;
    }

    /// Stops the fan-out thread after it delivered what is queued.
    pub fn stop_fanout(&self) {
        self.fanout.stop();
    }

    /// PUBLISH: delivers to channel subscribers and matching patterns; returns how many received it.
    pub fn publish(&self, channel: &[u8], message: &[u8]) -> usize {
        self.publish_bytes(Bytes::copy_from_slice(channel), Bytes::copy_from_slice(message))
    }

    /// [`Hub::publish`] for callers that already own the bytes (no copy).
    pub fn publish_bytes(&self, channel_bytes: Bytes, message: Bytes) -> usize {
        self.stats.messages_published.fetch_add(1, Ordering::Relaxed);
        let channel = &channel_bytes[..];
        let mut receivers = 0;
        if let Some(subs) = self.channels.get(channel) {
            let publication =
                Arc::new(Publication::new(vec![Reply::text("message"), Reply::Bulk(channel_bytes.clone()), Reply::Bulk(message.clone())]));
            self.send(&subs, &publication, || Target::Channel(ChannelKind::Plain, channel_bytes.clone()));
            receivers += subs.len();
        }
        receivers + self.publish_to_patterns(&channel_bytes, &message)
    }

    /// A message another node published, as the Redis engine's bridge received it for a channel: to
    /// this node's subscribers of exactly that channel (patterns get their own `pmessage` from Redis),
    /// as `message` for a plain channel and `smessage` for a shard channel (SPUBLISH).
    pub fn deliver_channel(&self, kind: ChannelKind, channel: Bytes, message: Bytes) -> usize {
        let Some(subs) = self.map(kind).get(&channel[..]) else { return 0 };
        self.stats.messages_published.fetch_add(1, Ordering::Relaxed);
        let what = match kind {
            ChannelKind::Plain => "message",
            ChannelKind::Shard => "smessage",
        };
        let publication = Arc::new(Publication::new(vec![Reply::text(what), Reply::Bulk(channel.clone()), Reply::Bulk(message)]));
        self.send(&subs, &publication, || Target::Channel(kind, channel.clone()));
        subs.len()
    }

    /// A `pmessage` the bridge received for `pattern`: to this node's subscribers of that pattern.
    pub fn deliver_pattern(&self, pattern: Bytes, channel: Bytes, message: Bytes) -> usize {
        let patterns = self.patterns.read().expect("patterns");
        let Some(subs) = patterns.get(&pattern[..]) else { return 0 };
        let publication = Arc::new(Publication::new(vec![
            Reply::text("pmessage"),
            Reply::Bulk(pattern.clone()),
            Reply::Bulk(channel),
            Reply::Bulk(message),
        ]));
        self.send(subs, &publication, || Target::Pattern(pattern.clone()));
        subs.len()
    }

    /// Every pattern with a subscriber (the bridge subscribes to them again after a reconnect).
    pub fn pattern_names(&self) -> Vec<Bytes> {
        self.patterns.read().expect("patterns").keys().cloned().collect()
    }

    fn publish_to_patterns(&self, channel_bytes: &Bytes, message: &Bytes) -> usize {
        let channel = &channel_bytes[..];
        let mut receivers = 0;
        if self.pattern_count.load(Ordering::Relaxed) > 0 {
            let patterns = self.patterns.read().expect("patterns");
            for (pattern, subs) in patterns.iter() {
                if !glob_match(pattern, channel) {
                    continue;
                }
                let publication = Arc::new(Publication::new(vec![
                    Reply::text("pmessage"),
                    Reply::Bulk(pattern.clone()),
                    Reply::Bulk(channel_bytes.clone()),
                    Reply::Bulk(message.clone()),
                ]));
                self.send(subs, &publication, || Target::Pattern(pattern.clone()));
                receivers += subs.len();
            }
        }
        receivers
    }

    /// SPUBLISH: shard channels only, no patterns.
    pub fn spublish(&self, channel: Bytes, message: Bytes) -> usize {
        self.stats.messages_published.fetch_add(1, Ordering::Relaxed);
        let Some(subs) = self.shard_channels.get(&channel[..]) else { return 0 };
        let publication = Arc::new(Publication::new(vec![Reply::text("smessage"), Reply::Bulk(channel.clone()), Reply::Bulk(message)]));
        self.send(&subs, &publication, || Target::Channel(ChannelKind::Shard, channel.clone()));
        subs.len()
    }

    /// True when nobody subscribes to anything: producers of derived events can skip even building
    /// a channel name.
    pub fn is_idle(&self) -> bool {
        self.pattern_count.load(Ordering::Relaxed) == 0 && self.channel_count.load(Ordering::Relaxed) == 0
    }

    /// Whether anyone at all would receive a publication on `channel` (lets producers of derived events,
    /// like keyspace notifications, skip building them).
    pub fn has_receivers(&self, channel: &[u8]) -> bool {
        self.channels.contains_key(channel)
            || (self.pattern_count.load(Ordering::Relaxed) > 0
                && self.patterns.read().expect("patterns").keys().any(|p| glob_match(p, channel)))
    }

    /// PUBSUB CHANNELS / SHARDCHANNELS.
    pub fn channel_names(&self, kind: ChannelKind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.map(kind).iter().filter(|e| pattern.is_none_or(|p| glob_match(p, e.key()))).map(|e| e.key().clone()).collect()
    }

    /// PUBSUB NUMSUB / SHARDNUMSUB for one channel.
    pub fn subscriber_count(&self, kind: ChannelKind, channel: &[u8]) -> usize {
        self.map(kind).get(channel).map(|s| s.len()).unwrap_or(0)
    }

    /// PUBSUB NUMPAT: distinct patterns with at least one subscriber.
    pub fn pattern_count(&self) -> usize {
        self.pattern_count.load(Ordering::Relaxed)
    }

    pub fn channel_count(&self, kind: ChannelKind) -> usize {
        match kind {
            ChannelKind::Plain => self.channel_count.load(Ordering::Relaxed),
            ChannelKind::Shard => self.shard_channels.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pubsub::outbox::OutboxLimits;

    fn subscriber(id: u64, format: Encoding) -> Subscriber {
        Subscriber { client_id: id, outbox: Arc::new(Outbox::new(format, OutboxLimits::default())) }
    }

    fn drained(sub: &Subscriber) -> Vec<Bytes> {
        let mut out = Vec::new();
        sub.outbox.drain(|f| out.push(f));
        out
    }

    #[test]
    fn publish_reaches_channels_and_patterns_with_shared_frames() {
        let hub = Hub::new();
        let (a, b, c) = (subscriber(1, Encoding::Resp2), subscriber(2, Encoding::Resp2), subscriber(3, Encoding::Resp3));
        let news = Bytes::from_static(b"news");
        assert!(hub.subscribe(ChannelKind::Plain, &news, &a));
        assert!(!hub.subscribe(ChannelKind::Plain, &news, &a));
        hub.subscribe(ChannelKind::Plain, &news, &b);
        hub.psubscribe(&Bytes::from_static(b"n*"), &c);
        assert_eq!(hub.publish(b"news", b"hi"), 3);
        let (fa, fb, fc) = (drained(&a), drained(&b), drained(&c));
        assert_eq!(&fa[0][..], b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
        assert_eq!(fa[0].as_ptr(), fb[0].as_ptr(), "one encoding shared by both RESP2 subscribers");
        assert_eq!(&fc[0][..], b">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
    }

    #[test]
    fn empty_channels_and_patterns_are_removed() {
        let hub = Hub::new();
        let a = subscriber(1, Encoding::Resp2);
        hub.subscribe(ChannelKind::Plain, &Bytes::from_static(b"x"), &a);
        hub.psubscribe(&Bytes::from_static(b"p*"), &a);
        assert!(hub.unsubscribe(ChannelKind::Plain, b"x", 1));
        assert!(hub.punsubscribe(b"p*", 1));
        assert_eq!(hub.channel_count(ChannelKind::Plain), 0);
        assert_eq!(hub.pattern_count(), 0);
        assert_eq!(hub.publish(b"x", b"m"), 0);
    }

    /// A publication bigger than the backlog bound marks the hub backlogged until the fan-out thread has
    /// delivered it; `fanout_room` then resolves, and every subscriber got the message once, in order.
    #[tokio::test]
    async fn the_fanout_backlog_is_bounded_and_released() {
        let hub = Arc::new(Hub::new());
        let thread = hub.start_fanout(10).unwrap();
        let subs: Vec<_> = (0..40).map(|i| subscriber(i, Encoding::Resp2)).collect();
        let news = Bytes::from_static(b"news");
        for s in &subs {
            hub.subscribe(ChannelKind::Plain, &news, s);
        }
        let before = hub.fanout_queued();
        for i in 0..3 {
            assert_eq!(hub.publish(b"news", format!("m{i}").as_bytes()), 40);
        }
        assert_eq!(hub.fanout_queued(), before + 3, "40 subscribers: queued, not delivered inline");
        hub.fanout_room().await;
        assert!(!hub.fanout_backlogged());
        eventually_delivered(&subs, 3).await;
        for s in &subs {
            let frames = drained(s);
            let texts: Vec<_> = frames.iter().map(|f| String::from_utf8_lossy(&f[f.len() - 4..]).into_owned()).collect();
            assert_eq!(texts, vec!["m0\r\n", "m1\r\n", "m2\r\n"]);
        }
        hub.stop_fanout();
        thread.join().unwrap();
    }

    /// The room opens when the backlog is back under its bound, which can be before the last
    /// publication reached every outbox.
    async fn eventually_delivered(subs: &[Subscriber], frames: usize) {
        for _ in 0..500 {
            if subs.iter().all(|s| s.outbox.pending_frames() == frames) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("not delivered");
    }
}
