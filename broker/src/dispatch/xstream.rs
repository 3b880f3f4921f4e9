//! Redis Streams commands: the typed command to the keyspace's stream operations and Redis's reply
//! shapes. XREAD and XREADGROUP block through the same registry as BLPOP: the IDs are resolved once
//! (`$` is the stream's last ID when the client blocks), and the attempt re-runs the read when one of
//! the streams is signalled (an XADD, a group destroyed, the key deleted or replaced).

use bytes::Bytes;
use herald_protocol::command::{ClaimArgs, ClaimTime as WireClaimTime, ReadArgs, TrimArgs, TrimStrategy, XStreamCommand};
use herald_protocol::{CommandError, Encoding, Reply};

use super::{Cx, Outcome, server};
use crate::engine::Error;
use crate::engine::keyspace::{ClaimSpec, ClaimTime, GroupInfo, GroupPosition, XAddArgs, XRead, XStreamInfo};
use crate::engine::wait::WaitKey;
use crate::engine::xstream::{StreamId, Trim, XEntry};
use crate::state::State;

fn trim(t: TrimArgs) -> Trim {
    let (max_len, min_id) = match t.strategy {
        TrimStrategy::MaxLen(n) => (Some(n), None),
        TrimStrategy::MinId(id) => (None, Some(id)),
    };
    Trim { max_len, min_id, approx: t.approx, limit: t.limit }
}

fn claim_spec(a: ClaimArgs) -> ClaimSpec {
    let time = a.idle.map(|t| match t {
        WireClaimTime::Idle(ms) => ClaimTime::Idle(ms),
        WireClaimTime::At(at) => ClaimTime::At(at),
    });
    ClaimSpec { min_idle: a.min_idle, ids: a.ids, time, retry_count: a.retry_count, force: a.force, just_id: a.just_id, last_id: a.last_id }
}

/// A parse error that Redis reports only after its key checks, handed to the engine as its refusal.
fn deferred(e: CommandError) -> Error {
    Error::new(e.0.into_owned())
}

fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(id.format(&mut [0; 41])))
}

/// `[id, [field, value, ...]]`, or `[id, nil]` for a pending entry that was deleted.
fn entry_reply(id: StreamId, fields: Option<Vec<Bytes>>) -> Reply {
    Reply::Array(vec![id_reply(id), fields.map_or(Reply::NilArray, Reply::bulks)])
}

fn entries_reply(entries: Vec<XEntry>) -> Reply {
    Reply::Array(entries.into_iter().map(|(id, f)| entry_reply(id, Some(f))).collect())
}

/// XREAD's reply: an array of `[key, entries]` pairs in RESP2, a map in RESP3 (and JSON).
fn read_reply(found: Vec<XRead>, map: bool) -> Option<Reply> {
    if found.is_empty() {
        return None;
    }
    let pairs = found.into_iter().map(|(key, entries)| {
        let entries = Reply::Array(entries.into_iter().map(|(id, f)| entry_reply(id, f)).collect());
        (Reply::Bulk(key), entries)
    });
    Some(if map { Reply::Map(pairs.collect()) } else { Reply::Array(pairs.map(|(k, v)| Reply::Array(vec![k, v])).collect()) })
}

/// Whether the session takes XREAD's per-stream reply as a map (RESP3, JSON).
fn reads_as_map(cx: &Cx<'_>) -> bool {
    cx.session.encoding() != Encoding::Resp2
}

fn wait_keys(db: usize, keys: &[Bytes]) -> Vec<WaitKey> {
    keys.iter().map(|key| WaitKey::Key { db, key: key.clone() }).collect()
}

fn xread(read: ReadArgs, cx: &mut Cx<'_>) -> Result<Outcome, Error> {
    let (db, now) = (cx.db(), cx.now());
    let map = reads_as_map(cx);
    let ReadArgs { count, block, keys, ids } = read;
    let ids = cx.state().keyspace.xread_ids(db, &keys, &ids, now)?;
    if let Some(reply) = read_reply(cx.state().keyspace.xread(db, &keys, &ids, count, false, now), map) {
        return Ok(reply.into());
    }
    let waits = wait_keys(db, &keys);
    let attempt = move |state: &mut State, now| read_reply(state.keyspace.xread(db, &keys, &ids, count, true, now), map);
    Ok(wait(cx, block, waits, attempt))
}

/// Nothing to read yet: without BLOCK a null array, with it a wait on the streams until `attempt`
/// (the read, re-run when one of them is signalled) answers or `ms` pass (0: forever).
fn wait(
    cx: &mut Cx<'_>,
    block: Option<u64>,
    waits: Vec<WaitKey>,
    attempt: impl FnMut(&mut State, u64) -> Option<Reply> + Send + 'static,
) -> Outcome {
    match block {
        None => Reply::NilArray.into(),
        Some(ms) => cx.block(waits, (ms != 0).then(|| std::time::Duration::from_millis(ms)), Reply::NilArray, Box::new(attempt)),
    }
}

fn xreadgroup(group: Bytes, consumer: Bytes, no_ack: bool, read: ReadArgs, cx: &mut Cx<'_>) -> Result<Outcome, Error> {
    let (db, now) = (cx.db(), cx.now());
    let map = reads_as_map(cx);
    let ReadArgs { count, block, keys, ids } = read;
    let ks = &mut cx.state().keyspace;
    let ids = ks.xreadgroup_ids(db, &group, &keys, &ids, now)?;
    if let Some(reply) = read_reply(ks.xreadgroup(db, &group, &consumer, &keys, &ids, count, no_ack, false, now)?, map) {
        return Ok(reply.into());
    }
    let Some(ms) = block else { return Ok(Reply::NilArray.into()) };
    let waits = wait_keys(db, &keys);
    let timeout = (ms != 0).then(|| std::time::Duration::from_millis(ms));
    let attempt =
        move |state: &mut State, now| match state.keyspace.xreadgroup(db, &group, &consumer, &keys, &ids, count, no_ack, true, now) {
            Ok(found) => read_reply(found, map),
            Err(e) => Some(Reply::Error(super::refused(e))),
        };
    Ok(cx.block(waits, timeout, Reply::NilArray, Box::new(attempt)))
}

fn stream_info_reply(info: XStreamInfo) -> Reply {
    let mut fields = vec![
        ("length", Reply::Int(info.length as i64)),
        ("radix-tree-keys", Reply::Int(info.radix_keys as i64)),
        ("radix-tree-nodes", Reply::Int(info.radix_nodes as i64)),
        ("last-generated-id", id_reply(info.last_id)),
        ("max-deleted-entry-id", id_reply(info.max_deleted)),
        ("entries-added", Reply::Int(info.entries_added as i64)),
        ("recorded-first-entry-id", id_reply(info.first_id)),
    ];
    let entry_or_nil = |e: Option<XEntry>| e.map_or(Reply::Nil, |(id, f)| entry_reply(id, Some(f)));
    match info.full {
        None => {
            fields.push(("groups", Reply::Int(info.groups as i64)));
            fields.push(("first-entry", entry_or_nil(info.first)));
            fields.push(("last-entry", entry_or_nil(info.last)));
        }
        Some((entries, groups)) => {
            fields.push(("entries", entries_reply(entries)));
            let groups = groups.into_iter().map(|g| {
                let pending = g.pending.into_iter().map(|(id, owner, at, count)| {
                    Reply::Array(vec![id_reply(id), Reply::Bulk(owner), Reply::Int(at as i64), Reply::Int(count as i64)])
                });
                let consumers = g.consumers.into_iter().map(|c| {
                    let pending = c
                        .pending
                        .into_iter()
                        .map(|(id, at, count)| Reply::Array(vec![id_reply(id), Reply::Int(at as i64), Reply::Int(count as i64)]));
                    Reply::fields(vec![
                        ("name", Reply::Bulk(c.name)),
                        ("seen-time", Reply::Int(c.seen as i64)),
                        ("pel-count", Reply::Int(c.pel_count as i64)),
                        ("pending", Reply::Array(pending.collect())),
                    ])
                });
                let i = g.info;
                Reply::fields(vec![
                    ("name", Reply::Bulk(i.name)),
                    ("last-delivered-id", id_reply(i.last_id)),
                    ("entries-read", i.entries_read.map_or(Reply::Nil, |n| Reply::Int(n as i64))),
                    ("lag", i.lag.map_or(Reply::Nil, Reply::Int)),
                    ("pel-count", Reply::Int(i.pending as i64)),
                    ("pending", Reply::Array(pending.collect())),
                    ("consumers", Reply::Array(consumers.collect())),
                ])
            });
            fields.push(("groups", Reply::Array(groups.collect())));
        }
    }
    Reply::fields(fields)
}

fn group_info_reply(g: GroupInfo) -> Reply {
    Reply::fields(vec![
        ("name", Reply::Bulk(g.name)),
        ("consumers", Reply::Int(g.consumers as i64)),
        ("pending", Reply::Int(g.pending as i64)),
        ("last-delivered-id", id_reply(g.last_id)),
        ("entries-read", g.entries_read.map_or(Reply::Nil, |n| Reply::Int(n as i64))),
        ("lag", g.lag.map_or(Reply::Nil, Reply::Int)),
    ])
}

/// XCLAIM / XAUTOCLAIM's claimed entries: IDs alone with JUSTID.
fn claimed_reply(claimed: Vec<(StreamId, Option<Vec<Bytes>>)>, just_id: bool) -> Reply {
    Reply::Array(claimed.into_iter().map(|(id, f)| if just_id { id_reply(id) } else { entry_reply(id, f) }).collect())
}

const XGROUP_HELP: &[&str] = &[
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
];

const XINFO_HELP: &[&str] = &[
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
];

pub fn execute(cmd: XStreamCommand, cx: &mut Cx<'_>) -> Outcome {
    let (db, now) = (cx.db(), cx.now());
    let result: Result<Reply, Error> = match cmd {
        XStreamCommand::Add { key, no_mkstream, trim: t, id, fields } => {
            let args = XAddArgs { id, no_mkstream, trim: t.map(trim), fields: &fields };
            cx.state().keyspace.xadd(db, &key, args, now).map(|id| id.map_or(Reply::Nil, id_reply))
        }
        XStreamCommand::Range { key, start, end, count, rev } => {
            cx.state().keyspace.xrange(db, &key, (start, end), count.unwrap_or(0), rev, now).map(|found| match (found, count) {
                (None, _) => Reply::Array(Vec::new()),
                (Some(_), Some(0)) => Reply::NilArray,
                (Some(entries), _) => entries_reply(entries),
            })
        }
        XStreamCommand::Len(key) => cx.state().keyspace.xlen(db, &key, now).map(|n| Reply::Int(n as i64)),
        XStreamCommand::Del { key, ids } => cx.state().keyspace.xdel(db, &key, &ids, now).map(|n| Reply::Int(n as i64)),
        XStreamCommand::Trim { key, trim: t } => cx.state().keyspace.xtrim(db, &key, &trim(t), now).map(|n| Reply::Int(n as i64)),
        XStreamCommand::SetId { key, id, entries_added, max_deleted } => {
            cx.state().keyspace.xsetid(db, &key, id, entries_added, max_deleted, now).map(|_| Reply::ok())
        }
        XStreamCommand::Read(read) => return xread(read, cx).unwrap_or_else(Outcome::from),
        XStreamCommand::ReadGroup { group, consumer, no_ack, read } => {
            return xreadgroup(group, consumer, no_ack, read, cx).unwrap_or_else(Outcome::from);
        }
        XStreamCommand::GroupCreate { key, group, id, mkstream, entries_read, excess } => {
            let at = GroupPosition { raw_id: &id, entries_read, excess: excess.map(deferred) };
            cx.state().keyspace.xgroup_create(db, &key, &group, at, mkstream, now).map(|_| Reply::ok())
        }
        XStreamCommand::GroupSetId { key, group, id, entries_read, excess } => {
            let at = GroupPosition { raw_id: &id, entries_read, excess: excess.map(deferred) };
            cx.state().keyspace.xgroup_setid(db, &key, &group, at, now).map(|_| Reply::ok())
        }
        XStreamCommand::GroupDestroy { key, group } => {
            cx.state().keyspace.xgroup_destroy(db, &key, &group, now).map(|d| Reply::Int(d as i64))
        }
        XStreamCommand::GroupCreateConsumer { key, group, consumer } => {
            cx.state().keyspace.xgroup_create_consumer(db, &key, &group, &consumer, now).map(|c| Reply::Int(c as i64))
        }
        XStreamCommand::GroupDelConsumer { key, group, consumer } => {
            cx.state().keyspace.xgroup_del_consumer(db, &key, &group, &consumer, now).map(|n| Reply::Int(n as i64))
        }
        XStreamCommand::GroupHelp => Ok(server::help("XGROUP", XGROUP_HELP)),
        XStreamCommand::Ack { key, group, ids } => cx.state().keyspace.xack(db, &key, &group, &ids, now).map(|n| Reply::Int(n as i64)),
        XStreamCommand::Pending { key, group, range: None } => cx.state().keyspace.xpending_summary(db, &key, &group, now).map(|p| {
            let (first, last) = p.bounds.map_or((Reply::Nil, Reply::Nil), |(a, b)| (id_reply(a), id_reply(b)));
            let consumers = match p.count {
                0 => Reply::NilArray,
                _ => Reply::Array(
                    p.consumers
                        .into_iter()
                        .map(|(name, n)| Reply::Array(vec![Reply::Bulk(name), Reply::Bulk(Bytes::from(n.to_string()))]))
                        .collect(),
                ),
            };
            Reply::Array(vec![Reply::Int(p.count as i64), first, last, consumers])
        }),
        XStreamCommand::Pending { key, group, range: Some(r) } => {
            cx.state().keyspace.xpending_range(db, &key, &group, r.min_idle, r.start, r.end, r.count, r.consumer.as_deref(), now).map(
                |found| {
                    Reply::Array(
                        found
                            .into_iter()
                            .map(|(id, owner, idle, count)| {
                                Reply::Array(vec![id_reply(id), Reply::Bulk(owner), Reply::Int(idle as i64), Reply::Int(count as i64)])
                            })
                            .collect(),
                    )
                },
            )
        }
        XStreamCommand::Claim { key, group, consumer, args } => {
            let just_id = args.as_ref().is_ok_and(|a| a.just_id);
            let spec = args.map(claim_spec).map_err(deferred);
            cx.state().keyspace.xclaim(db, &key, &group, &consumer, spec, now).map(|claimed| claimed_reply(claimed, just_id))
        }
        XStreamCommand::AutoClaim { key, group, consumer, min_idle, start, count, just_id } => {
            cx.state().keyspace.xautoclaim(db, &key, &group, &consumer, min_idle, start, count, just_id, now).map(|r| {
                let deleted = Reply::Array(r.deleted.into_iter().map(id_reply).collect());
                Reply::Array(vec![id_reply(r.cursor), claimed_reply(r.claimed, just_id), deleted])
            })
        }
        XStreamCommand::InfoStream { key, full } => {
            cx.state().keyspace.xinfo_stream(db, &key, full.map_err(deferred), now).map(stream_info_reply)
        }
        XStreamCommand::InfoGroups(key) => {
            cx.state().keyspace.xinfo_groups(db, &key, now).map(|groups| Reply::Array(groups.into_iter().map(group_info_reply).collect()))
        }
        XStreamCommand::InfoConsumers { key, group } => cx.state().keyspace.xinfo_consumers(db, &key, &group, now).map(|consumers| {
            Reply::Array(
                consumers
                    .into_iter()
                    .map(|(name, pending, idle)| {
                        Reply::fields(vec![
                            ("name", Reply::Bulk(name)),
                            ("pending", Reply::Int(pending as i64)),
                            ("idle", Reply::Int(idle as i64)),
                        ])
                    })
                    .collect(),
            )
        }),
        XStreamCommand::InfoHelp => Ok(server::help("XINFO", XINFO_HELP)),
    };
    result.into()
}
