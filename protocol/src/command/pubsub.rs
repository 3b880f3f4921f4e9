//! Topic pub-sub commands.

use bytes::Bytes;

use super::conn::spec;
use super::flags::*;
use super::{Command, CommandSpec, Group, NO_KEYS, keys};
use crate::error::CommandError;
use crate::request::Args;

#[derive(Debug, Clone, PartialEq)]
pub enum PubSubCommand {
    Subscribe(Vec<Bytes>),
    Unsubscribe(Vec<Bytes>),
    PSubscribe(Vec<Bytes>),
    PUnsubscribe(Vec<Bytes>),
    SSubscribe(Vec<Bytes>),
    SUnsubscribe(Vec<Bytes>),
    Publish { channel: Bytes, message: Bytes },
    SPublish { channel: Bytes, message: Bytes },
    Channels(Option<Bytes>),
    NumSub(Vec<Bytes>),
    NumPat,
    ShardChannels(Option<Bytes>),
    ShardNumSub(Vec<Bytes>),
    Help,
}

fn ok(c: PubSubCommand) -> Result<Command, CommandError> {
    Ok(Command::PubSub(c))
}

/// PUBSUB CHANNELS / SHARDCHANNELS take at most one pattern; Redis checks that in the command itself.
fn optional_pattern(sub: &str, a: Args) -> Result<Option<Bytes>, CommandError> {
    let mut rest = a.rest();
    if rest.len() > 1 {
        return Err(CommandError::new(format!("ERR unknown subcommand or wrong number of arguments for '{sub}'. Try PUBSUB HELP.")));
    }
    Ok(rest.pop())
}

fn message(mut a: Args) -> Result<(Bytes, Bytes), CommandError> {
    Ok((a.next_bytes()?, a.next_bytes()?))
}

const SUB: u32 = PUBSUB | NOSCRIPT | LOADING | STALE | SUBSCRIBED_OK;

const PUBSUB_SUBS: &[CommandSpec] = &[
    spec!("pubsub|channels", -2, PUBSUB | LOADING | STALE, NO_KEYS, PubSub, "2.8.0", "Returns the active channels.", |a| ok(
        PubSubCommand::Channels(optional_pattern("CHANNELS", a)?)
    )),
    spec!("pubsub|numsub", -2, PUBSUB | LOADING | STALE, NO_KEYS, PubSub, "2.8.0", "Returns a count of subscribers to channels.", |a| ok(
        PubSubCommand::NumSub(a.rest())
    )),
    spec!(
        "pubsub|numpat",
        2,
        PUBSUB | LOADING | STALE,
        NO_KEYS,
        PubSub,
        "2.8.0",
        "Returns a count of unique pattern subscriptions.",
        |_| ok(PubSubCommand::NumPat)
    ),
    spec!("pubsub|shardchannels", -2, PUBSUB | LOADING | STALE, NO_KEYS, PubSub, "7.0.0", "Returns the active shard channels.", |a| ok(
        PubSubCommand::ShardChannels(optional_pattern("SHARDCHANNELS", a)?)
    )),
    spec!(
        "pubsub|shardnumsub",
        -2,
        PUBSUB | LOADING | STALE,
        NO_KEYS,
        PubSub,
        "7.0.0",
        "Returns the count of subscribers of shard channels.",
        |a| ok(PubSubCommand::ShardNumSub(a.rest()))
    ),
    spec!("pubsub|help", 2, LOADING | STALE, NO_KEYS, PubSub, "6.2.0", "Returns helpful text about the different subcommands.", |_| ok(
        PubSubCommand::Help
    )),
];

fn container(_: Args) -> Result<Command, CommandError> {
    unreachable!("PUBSUB alone fails its arity check")
}

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!("subscribe", -2, SUB, NO_KEYS, PubSub, "2.0.0", "Listens for messages published to channels.", |a| ok(PubSubCommand::Subscribe(
        a.rest()
    ))),
    spec!("unsubscribe", -1, SUB, NO_KEYS, PubSub, "2.0.0", "Stops listening to messages posted to channels.", |a| ok(
        PubSubCommand::Unsubscribe(a.rest())
    )),
    spec!(
        "psubscribe",
        -2,
        SUB,
        NO_KEYS,
        PubSub,
        "2.0.0",
        "Listens for messages published to channels that match one or more patterns.",
        |a| ok(PubSubCommand::PSubscribe(a.rest()))
    ),
    spec!(
        "punsubscribe",
        -1,
        SUB,
        NO_KEYS,
        PubSub,
        "2.0.0",
        "Stops listening to messages published to channels that match one or more patterns.",
        |a| ok(PubSubCommand::PUnsubscribe(a.rest()))
    ),
    spec!("ssubscribe", -2, SUB, keys(1, -1, 1), PubSub, "7.0.0", "Listens for messages published to shard channels.", |a| ok(
        PubSubCommand::SSubscribe(a.rest())
    )),
    spec!("sunsubscribe", -1, SUB, keys(1, -1, 1), PubSub, "7.0.0", "Stops listening to messages posted to shard channels.", |a| ok(
        PubSubCommand::SUnsubscribe(a.rest())
    )),
    spec!("publish", 3, PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE, NO_KEYS, PubSub, "2.0.0", "Posts a message to a channel.", |a| {
        let (channel, message) = message(a)?;
        ok(PubSubCommand::Publish { channel, message })
    }),
    spec!(
        "spublish",
        3,
        PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE,
        keys(1, 1, 1),
        PubSub,
        "7.0.0",
        "Post a message to a shard channel.",
        |a| {
            let (channel, message) = message(a)?;
            ok(PubSubCommand::SPublish { channel, message })
        }
    ),
    CommandSpec {
        subcommands: PUBSUB_SUBS,
        ..spec!("pubsub", -2, 0, NO_KEYS, PubSub, "2.8.0", "A container for Pub/Sub commands.", container)
    },
];
