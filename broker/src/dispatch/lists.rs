//! List commands, including the blocking ones: a blocked pop registers an attempt that re-runs the
//! same keyspace operation when one of its keys is created (see state/blocking.rs).

use bytes::Bytes;
use herald_protocol::Reply;
use herald_protocol::command::{self, ListCommand};

use super::{Cx, Outcome};
use crate::engine::Error;
use crate::engine::change::End;
use crate::engine::keyspace::PosOptions;
use crate::engine::wait::WaitKey;

fn end(e: command::End) -> End {
    match e {
        command::End::Left => End::Left,
        command::End::Right => End::Right,
    }
}

fn wait_keys(db: usize, keys: &[Bytes]) -> Vec<WaitKey> {
    keys.iter().map(|key| WaitKey::Key { db, key: key.clone() }).collect()
}

fn popped_reply(key: Bytes, items: Vec<Bytes>, as_list: bool) -> Reply {
    if as_list {
        Reply::Array(vec![Reply::Bulk(key), Reply::bulks(items)])
    } else {
        Reply::Array(vec![Reply::Bulk(key), Reply::bulk_or_nil(items.into_iter().next())])
    }
}

pub fn execute(cmd: ListCommand, cx: &mut Cx<'_>) -> Outcome {
    let db = cx.db();
    let now = cx.now();
    let result: Result<Reply, Error> = match cmd {
        ListCommand::Push { key, end: e, elements, only_existing } => {
            cx.state().keyspace.push(db, &key, end(e), &elements, only_existing, now).map(|n| Reply::Int(n as i64))
        }
        ListCommand::Pop { key, end: e, count } => match cx.state().keyspace.pop(db, &key, end(e), count.unwrap_or(1), now) {
            Err(e) => Err(e),
            Ok(None) if count.is_some() => Ok(Reply::NilArray),
            Ok(None) => Ok(Reply::Nil),
            Ok(Some(items)) if count.is_some() => Ok(Reply::bulks(items)),
            Ok(Some(items)) => Ok(Reply::bulk_or_nil(items.into_iter().next())),
        },
        ListCommand::Len(key) => cx.state().keyspace.llen(db, &key, now).map(|n| Reply::Int(n as i64)),
        ListCommand::Range { key, start, stop } => cx.state().keyspace.lrange(db, &key, start, stop, now).map(Reply::bulks),
        ListCommand::Index { key, index } => cx.state().keyspace.lindex(db, &key, &index, now).map(Reply::bulk_or_nil),
        ListCommand::Set { key, index, element } => cx.state().keyspace.lset(db, &key, &index, &element, now).map(|_| Reply::ok()),
        ListCommand::Rem { key, count, element } => cx.state().keyspace.lrem(db, &key, count, &element, now).map(|n| Reply::Int(n as i64)),
        ListCommand::Trim { key, start, stop } => cx.state().keyspace.ltrim(db, &key, start, stop, now).map(|_| Reply::ok()),
        ListCommand::Insert { key, before, pivot, element } => {
            cx.state().keyspace.linsert(db, &key, before, &pivot, &element, now).map(Reply::Int)
        }
        ListCommand::Pos { key, element, rank, count, max_len } => {
            cx.state().keyspace.lpos(db, &key, &element, PosOptions { rank, count: count.unwrap_or(1), max_len }, now).map(|found| {
                match count {
                    Some(_) => Reply::Array(found.into_iter().map(|i| Reply::Int(i as i64)).collect()),
                    None => found.first().map_or(Reply::Nil, |i| Reply::Int(*i as i64)),
                }
            })
        }
        // Inside EXEC a BLMOVE or BRPOPLPUSH answers as LMOVE does (a nil bulk), not with the null
        // array of a timeout: Redis's blmoveGenericCommand has its own reply for "may not block".
        ListCommand::Move { source, destination, from, to, timeout } if timeout.is_none() || cx.in_exec => {
            cx.state().keyspace.lmove(db, &source, &destination, end(from), end(to), now).map(Reply::bulk_or_nil)
        }
        ListCommand::Move { source, destination, from, to, timeout } => {
            let keys = wait_keys(db, std::slice::from_ref(&source));
            return cx.now_or_block(
                keys,
                timeout.and_then(|t| t.duration()),
                Reply::NilArray,
                move |state: &mut crate::state::State, now| {
                    Ok(state.keyspace.lmove(db, &source, &destination, end(from), end(to), now)?.map(Reply::Bulk))
                },
            );
        }
        ListCommand::BlockingPop { keys, end: e, timeout } => {
            let end = end(e);
            let waits = wait_keys(db, &keys);
            return cx.now_or_block(waits, timeout.duration(), Reply::NilArray, move |state: &mut crate::state::State, now| {
                Ok(state.keyspace.pop_first(db, &keys, end, 1, now)?.map(|(k, items)| popped_reply(k, items, false)))
            });
        }
        ListCommand::MultiPop { keys, end: e, count, timeout } => {
            let end = end(e);
            let waits = wait_keys(db, &keys);
            let op = move |state: &mut crate::state::State, now| -> Result<_, herald_protocol::CommandError> {
                Ok(state.keyspace.pop_first(db, &keys, end, count, now)?.map(|(k, items)| popped_reply(k, items, true)))
            };
            match timeout {
                Some(timeout) => return cx.now_or_block(waits, timeout.duration(), Reply::NilArray, op),
                None => return op(cx.state(), now).map(|r| r.unwrap_or(Reply::NilArray)).into(),
            }
        }
    };
    result.into()
}
