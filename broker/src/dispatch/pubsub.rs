//! Pub-sub commands: subscriptions live in the session (for counts and cleanup) and in the hub (for
//! delivery); PUBLISH goes straight to the hub without touching engine state.

use bytes::Bytes;
use herald_protocol::Reply;
use herald_protocol::command::PubSubCommand;

use super::Session;
use super::{Cx, Outcome};
use crate::pubsub::ChannelKind;

fn confirm(kind: &'static str, name: Option<Bytes>, count: usize) -> Reply {
    Reply::Push(vec![Reply::text(kind), Reply::bulk_or_nil(name), Reply::Int(count as i64)])
}

/// Which set of the session a subscription kind lives in, and its confirmation words.
#[derive(Clone, Copy)]
enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Kind::Channel => ("subscribe", "unsubscribe"),
            Kind::Pattern => ("psubscribe", "punsubscribe"),
            Kind::Shard => ("ssubscribe", "sunsubscribe"),
        }
    }

    fn set(self, session: &mut Session) -> &mut std::collections::HashSet<Bytes> {
        match self {
            Kind::Channel => &mut session.subscriptions.channels,
            Kind::Pattern => &mut session.subscriptions.patterns,
            Kind::Shard => &mut session.subscriptions.shard_channels,
        }
    }

    /// Shard subscriptions are counted on their own; channels and patterns together.
    fn count(self, session: &Session) -> usize {
        match self {
            Kind::Shard => session.subscriptions.shard_channels.len(),
            _ => session.subscriptions.count(),
        }
    }
}

fn subscribe(kind: Kind, names: Vec<Bytes>, cx: &mut Cx<'_>) -> Outcome {
    let sub = cx.session.subscriber();
    let hub = &cx.broker.hub;
    let mut replies = Vec::with_capacity(names.len());
    for name in names {
        if kind.set(cx.session).insert(name.clone()) {
            match kind {
                Kind::Channel => hub.subscribe(ChannelKind::Plain, &name, &sub),
                Kind::Shard => hub.subscribe(ChannelKind::Shard, &name, &sub),
                Kind::Pattern => hub.psubscribe(&name, &sub),
            };
        }
        replies.push(confirm(kind.words().0, Some(name), kind.count(cx.session)));
    }
    cx.session.publish();
    match &cx.broker.remote {
        Some(remote) => crate::remote::subscribed(remote, replies),
        None => Outcome::Replies(replies),
    }
}

fn unsubscribe(kind: Kind, names: Vec<Bytes>, cx: &mut Cx<'_>) -> Outcome {
    let word = kind.words().1;
    let names = if names.is_empty() { kind.set(cx.session).iter().cloned().collect() } else { names };
    if names.is_empty() {
        return Outcome::Replies(vec![confirm(word, None, kind.count(cx.session))]);
    }
    let mut replies = Vec::with_capacity(names.len());
    for name in names {
        if kind.set(cx.session).remove(&name) {
            remove_from_hub(kind, &name, cx);
        }
        replies.push(confirm(word, Some(name), kind.count(cx.session)));
    }
    cx.session.publish();
    Outcome::Replies(replies)
}

fn remove_from_hub(kind: Kind, name: &[u8], cx: &Cx<'_>) {
    let hub = &cx.broker.hub;
    let id = cx.session.id();
    match kind {
        Kind::Channel => hub.unsubscribe(ChannelKind::Plain, name, id),
        Kind::Shard => hub.unsubscribe(ChannelKind::Shard, name, id),
        Kind::Pattern => hub.punsubscribe(name, id),
    };
}

/// Drops every subscription of a session (RESET, disconnect) without replies.
pub fn unsubscribe_all(session: &mut Session, broker: &crate::broker::Broker) {
    let id = session.id();
    for ch in session.subscriptions.channels.drain() {
        broker.hub.unsubscribe(ChannelKind::Plain, &ch, id);
    }
    for ch in session.subscriptions.shard_channels.drain() {
        broker.hub.unsubscribe(ChannelKind::Shard, &ch, id);
    }
    for p in session.subscriptions.patterns.drain() {
        broker.hub.punsubscribe(&p, id);
    }
    session.publish();
}

fn counts(kind: ChannelKind, channels: Vec<Bytes>, cx: &Cx<'_>) -> Reply {
    let hub = &cx.broker.hub;
    Reply::Array(
        channels
            .into_iter()
            .flat_map(|ch| {
                let n = hub.subscriber_count(kind, &ch) as i64;
                [Reply::Bulk(ch), Reply::Int(n)]
            })
            .collect(),
    )
}

pub fn execute(cmd: PubSubCommand, cx: &mut Cx<'_>) -> Outcome {
    let hub = cx.broker.hub.clone();
    match cmd {
        PubSubCommand::Subscribe(names) => subscribe(Kind::Channel, names, cx),
        PubSubCommand::PSubscribe(names) => subscribe(Kind::Pattern, names, cx),
        PubSubCommand::SSubscribe(names) => subscribe(Kind::Shard, names, cx),
        PubSubCommand::Unsubscribe(names) => unsubscribe(Kind::Channel, names, cx),
        PubSubCommand::PUnsubscribe(names) => unsubscribe(Kind::Pattern, names, cx),
        PubSubCommand::SUnsubscribe(names) => unsubscribe(Kind::Shard, names, cx),
        PubSubCommand::Publish { channel, message } => Reply::Int(hub.publish_bytes(channel, message) as i64).into(),
        PubSubCommand::SPublish { channel, message } => Reply::Int(hub.spublish(channel, message) as i64).into(),
        PubSubCommand::Channels(pattern) => Reply::bulks(hub.channel_names(ChannelKind::Plain, pattern.as_deref())).into(),
        PubSubCommand::ShardChannels(pattern) => Reply::bulks(hub.channel_names(ChannelKind::Shard, pattern.as_deref())).into(),
        PubSubCommand::NumSub(channels) => counts(ChannelKind::Plain, channels, cx).into(),
        PubSubCommand::ShardNumSub(channels) => counts(ChannelKind::Shard, channels, cx).into(),
        PubSubCommand::NumPat => Reply::Int(hub.pattern_count() as i64).into(),
        PubSubCommand::Help => super::server::help(
            "PUBSUB",
            &[
                "CHANNELS [<pattern>]",
                "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT",
                "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]",
                "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "SHARDCHANNELS [<pattern>]",
                "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                "SHARDNUMSUB [<shardchannel> ...]",
                "    Return the number of subscribers for the specified shard level channel(s)",
            ],
        )
        .into(),
    }
}
