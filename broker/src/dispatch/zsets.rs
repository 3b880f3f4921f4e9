//! Sorted-set commands, including the blocking pops: a blocked BZPOPMIN registers an attempt that
//! re-runs the pop when a sorted set is created at one of its keys (see state/blocking.rs).

use bytes::Bytes;
use herald_protocol::command::{self, PopForm, ZsetAlgebra, ZsetCommand};
use herald_protocol::{CommandError, Reply};

use super::elements::{resp3, scan_options, scan_page, scored};
use super::keys::int;
use super::{Cx, Outcome};
use crate::engine::keyspace::zranges::{LexBound, RangeBy, ScoreBound, ZRange};
use crate::engine::keyspace::zsets::{Aggregate, ZOp, ZaddFlags, Zadded};
use crate::engine::wait::WaitKey;
use crate::state::State;

fn score(b: command::ScoreBound) -> ScoreBound {
    ScoreBound { value: b.value, exclusive: b.exclusive }
}

fn lex(b: command::LexBound) -> LexBound {
    match b {
        command::LexBound::Min => LexBound::Min,
        command::LexBound::Max => LexBound::Max,
        command::LexBound::Inclusive(m) => LexBound::Inclusive(m),
        command::LexBound::Exclusive(m) => LexBound::Exclusive(m),
    }
}

fn range_by(by: command::ZRangeBy) -> RangeBy {
    match by {
        command::ZRangeBy::Rank(a, b) => RangeBy::Rank(a, b),
        command::ZRangeBy::Score { min, max } => RangeBy::Score { min: score(min), max: score(max) },
        command::ZRangeBy::Lex { min, max } => RangeBy::Lex { min: lex(min), max: lex(max) },
    }
}

fn range(r: command::ZRangeArgs) -> (ZRange, bool) {
    (ZRange { by: range_by(r.by), rev: r.rev, limit: r.limit }, r.withscores)
}

fn flags(f: command::ZaddArgs) -> ZaddFlags {
    ZaddFlags { nx: f.nx, xx: f.xx, gt: f.gt, lt: f.lt, ch: f.ch, incr: f.incr }
}

fn aggregate(a: command::Aggregate) -> Aggregate {
    match a {
        command::Aggregate::Sum => Aggregate::Sum,
        command::Aggregate::Min => Aggregate::Min,
        command::Aggregate::Max => Aggregate::Max,
    }
}

/// A pop's answer in the shape its command gives it.
fn popped(form: PopForm, found: Option<(Bytes, Vec<(Bytes, f64)>)>, resp3: bool) -> Reply {
    match (form, found) {
        (PopForm::Plain { .. }, None) => Reply::Array(Vec::new()),
        (PopForm::Plain { counted }, Some((_, items))) => scored(items, true, resp3 && counted),
        (PopForm::Blocking(_), Some((key, mut items))) if !items.is_empty() => {
            let (member, s) = items.remove(0);
            Reply::Array(vec![Reply::Bulk(key), Reply::Bulk(member), Reply::Double(s)])
        }
        (PopForm::Multi(_), Some((key, items))) => Reply::Array(vec![Reply::Bulk(key), scored(items, true, true)]),
        (PopForm::Blocking(_) | PopForm::Multi(_), _) => Reply::NilArray,
    }
}

fn pop(cx: &mut Cx<'_>, keys: Vec<Bytes>, max: bool, count: usize, form: PopForm) -> Outcome {
    let db = cx.db();
    let resp3 = resp3(cx);
    let blocking = matches!(form, PopForm::Blocking(_) | PopForm::Multi(Some(_)));
    let waits: Vec<WaitKey> = if blocking { keys.iter().map(|key| WaitKey::Zset { db, key: key.clone() }).collect() } else { Vec::new() };
    // A first run pops from the first of its keys that exists (WRONGTYPE if that is no sorted set).
    // A woken client is served as Redis serves it: from the key that was signalled, and only if it
    // holds a sorted set.
    let mut first = true;
    let mut op = move |state: &mut State, now| -> Result<Option<Reply>, CommandError> {
        let woken = !std::mem::replace(&mut first, false);
        let found = match (woken, &state.blocking.serving) {
            (true, Some(WaitKey::Zset { key, .. })) => {
                let key = key.clone();
                state.keyspace.zpop(db, std::slice::from_ref(&key), max, count, true, now)?
            }
            (woken, _) => state.keyspace.zpop(db, &keys, max, count, woken, now)?,
        };
        Ok(found.map(|f| popped(form, Some(f), resp3)))
    };
    match form {
        PopForm::Blocking(t) | PopForm::Multi(Some(t)) => cx.now_or_block(waits, t.duration(), Reply::NilArray, op),
        PopForm::Plain { .. } | PopForm::Multi(None) => {
            let now = cx.now();
            op(cx.state(), now).map(|r| r.unwrap_or_else(|| popped(form, None, resp3))).into()
        }
    }
}

pub fn execute(cmd: ZsetCommand, cx: &mut Cx<'_>) -> Outcome {
    let db = cx.db();
    let now = cx.now();
    let resp3 = resp3(cx);
    if let ZsetCommand::Pop { keys, max, count, form } = cmd {
        return pop(cx, keys, max, count, form);
    }
    let result: Result<Reply, CommandError> = (|| {
        let ks = &mut cx.state().keyspace;
        Ok(match cmd {
            ZsetCommand::Add { key, flags: f, entries } => match ks.zadd(db, &key, flags(f), &entries, now)? {
                Zadded::Count(n) => int(n),
                Zadded::Score(s) => s.map_or(Reply::Nil, Reply::Double),
            },
            ZsetCommand::Card(key) => int(ks.zcard(db, &key, now)?),
            ZsetCommand::Count { key, by } => int(ks.zcount(db, &key, &range_by(by), now)?),
            ZsetCommand::Score { key, member } => ks.zscore(db, &key, &member, now)?.map_or(Reply::Nil, Reply::Double),
            ZsetCommand::MScore { key, members } => {
                Reply::Array(ks.zmscore(db, &key, &members, now)?.into_iter().map(|s| s.map_or(Reply::Nil, Reply::Double)).collect())
            }
            ZsetCommand::Rank { key, member, rev } => ks.zrank(db, &key, &member, rev, now)?.map_or(Reply::Nil, int),
            ZsetCommand::Rem { key, members } => int(ks.zrem(db, &key, &members, now)?),
            ZsetCommand::RemRange { key, by } => int(ks.zremrange(db, &key, &range_by(by), now)?),
            ZsetCommand::Range { key, range: r } => {
                let (r, withscores) = range(r);
                scored(ks.zrange(db, &key, &r, now)?, withscores, resp3)
            }
            ZsetCommand::RangeStore { destination, source, range: r } => {
                int(ks.zrangestore(db, &destination, &source, &range(r).0, now)?)
            }
            ZsetCommand::RandMember { key, count: None } => {
                let (ks, mut rand) = cx.state().keyspace_random();
                match ks.zrandmember(db, &key, 1, now, &mut rand)? {
                    Some(mut found) if !found.is_empty() => Reply::Bulk(found.remove(0).0),
                    _ => Reply::Nil,
                }
            }
            ZsetCommand::RandMember { key, count: Some((count, withscores)) } => {
                let (ks, mut rand) = cx.state().keyspace_random();
                scored(ks.zrandmember(db, &key, count, now, &mut rand)?.unwrap_or_default(), withscores, resp3)
            }
            ZsetCommand::Scan(s) => match scan_options(cx, &s.key, "zset", s.scan)? {
                None => scan_page(0, Vec::new()),
                Some(scan) => {
                    let (cursor, found) = cx.state().keyspace.zscan(db, &s.key, &scan, now)?;
                    scan_page(cursor, found.into_iter().flat_map(|(m, s)| [Reply::Bulk(m), Reply::Bulk(s)]).collect())
                }
            },
            ZsetCommand::Algebra { op, destination, keys, card, args } => {
                ks.zsources_check(db, &keys, now)?;
                let args = args?;
                if card {
                    return Ok(int(ks.zintercard(db, &keys, args.limit, now)));
                }
                let (op, event) = match op {
                    ZsetAlgebra::Union => (ZOp::Union, "zunionstore"),
                    ZsetAlgebra::Inter => (ZOp::Inter, "zinterstore"),
                    ZsetAlgebra::Diff => (ZOp::Diff, "zdiffstore"),
                };
                let result = ks.zsetop(db, &keys, op, &args.weights, aggregate(args.aggregate), now);
                match destination {
                    Some(dst) => int(ks.zstore(db, &dst, result, event, now)),
                    None => {
                        let mut items = Vec::with_capacity(result.len());
                        result.for_each(|m, s| items.push((Bytes::copy_from_slice(m), s)));
                        scored(items, args.withscores, resp3)
                    }
                }
            }
            ZsetCommand::Pop { .. } => unreachable!("handled above"),
        })
    })();
    result.into()
}
