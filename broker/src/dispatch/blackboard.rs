//! Blackboard commands: scope-level reads and writes, compare-and-swap, waits and change replay.

use bytes::Bytes;
use herald_protocol::command::{BbCommand, BbIf, BbTtl};
use herald_protocol::{CommandError, Reply};

use crate::engine::Error;

use super::{Cx, Outcome, listing};
use crate::engine::keyspace::{BbCondition, BbEntry, JournalEntry, ScopeReport, ScopeSummary, Since, Ttl};
use crate::engine::schema::SchemaKind;
use crate::state::State;

fn entry_reply(e: BbEntry) -> Reply {
    entry_fields(e.value, e.revision, e.ttl_ms)
}

/// One scope of `BB.SCOPES cursor`'s page, on either engine.
pub fn scope_summary(s: ScopeSummary) -> Reply {
    Reply::fields(vec![
        ("scope", Reply::Bulk(s.scope)),
        ("keys", listing::int(s.keys)),
        ("seq", Reply::Int(s.seq as i64)),
        ("journal", listing::int(s.journal)),
    ])
}

/// BB.GET's reply (the Redis engine's too).
pub fn entry_fields(value: Bytes, revision: u64, ttl_ms: i64) -> Reply {
    Reply::fields(vec![("value", Reply::Bulk(value)), ("revision", Reply::Int(revision as i64)), ("ttl", Reply::Int(ttl_ms))])
}

/// BB.STATS's reply (the Redis engine's too).
pub fn stats_reply(r: Option<ScopeReport>) -> Reply {
    let r = r.unwrap_or(ScopeReport { keys: 0, bytes: 0, stats: Default::default(), seq: 0 });
    let n = |v: u64| Reply::Int(v as i64);
    Reply::fields(vec![
        ("keys", Reply::Int(r.keys as i64)),
        ("bytes", Reply::Int(r.bytes as i64)),
        ("sets", n(r.stats.sets)),
        ("gets", n(r.stats.gets)),
        ("hits", n(r.stats.hits)),
        ("misses", n(r.stats.misses)),
        ("deletes", n(r.stats.deletes)),
        ("expired", n(r.stats.expired)),
        ("seq", n(r.seq)),
    ])
}

fn change_reply(c: JournalEntry) -> Reply {
    change_fields(c.seq, Bytes::copy_from_slice(c.key()), c.kind.name(), c.revision, c.value().map(Bytes::copy_from_slice))
}

/// One BB.CHANGES entry (the Redis engine's too).
pub fn change_fields(seq: u64, key: Bytes, event: &'static str, revision: u64, value: Option<Bytes>) -> Reply {
    Reply::fields(vec![
        ("seq", Reply::Int(seq as i64)),
        ("key", Reply::Bulk(key)),
        ("event", Reply::text(event)),
        ("revision", Reply::Int(revision as i64)),
        ("value", Reply::bulk_or_nil(value)),
    ])
}

pub fn execute(cmd: BbCommand, cx: &mut Cx<'_>) -> Outcome {
    // The Redis engine runs the blackboard on Redis (the routes let only its commands through).
    if let Some(remote) = &cx.broker.remote {
        if let BbCommand::Set { scope, value, .. } = &cmd
            && let Err(e) = remote.schemas.check(SchemaKind::Scope, b"", scope, value)
        {
            return e.into();
        }
        return crate::remote::blackboard::execute(remote, cmd, crate::remote::in_order(remote, cx.session));
    }
    let now = cx.now();
    let result: Result<Reply, Error> = match cmd {
        BbCommand::Set { scope, key, value, ttl, condition } => {
            let ttl = match ttl {
                BbTtl::None => Ttl::Clear,
                BbTtl::Keep => Ttl::Keep,
                BbTtl::Millis(ms) => match now.checked_add(ms) {
                    Some(at) => Ttl::At(at),
                    None => return CommandError::invalid_expire("bb.set").into(),
                },
            };
            let condition = match condition {
                BbIf::Always => BbCondition::Always,
                BbIf::Nx => BbCondition::Nx,
                BbIf::Xx => BbCondition::Xx,
                BbIf::Revision(r) => BbCondition::IfRev(r),
            };
            let state = cx.state();
            state
                .schemas
                .check(SchemaKind::Scope, b"", &scope, &value)
                .and_then(|_| state.keyspace.bb_set(&scope, &key, &value, ttl, condition, now))
                .map(|r| Reply::Int(r as i64))
        }
        BbCommand::Get { scope, key } => cx.state().keyspace.bb_get(&scope, &key, now).map(|e| e.map_or(Reply::Nil, entry_reply)),
        BbCommand::Has { scope, key } => cx.state().keyspace.bb_has(&scope, &key, now).map(|h| Reply::Int(i64::from(h))),
        BbCommand::Del { scope, keys } => cx.state().keyspace.bb_del(&scope, &keys, now).map(|n| Reply::Int(n as i64)),
        BbCommand::Keys { scope, pattern } => cx.state().keyspace.bb_keys(&scope, pattern.as_deref(), now).map(Reply::bulks),
        BbCommand::Clear(scope) => cx.state().keyspace.bb_clear(&scope, now).map(|n| Reply::Int(n as i64)),
        BbCommand::Stats(scope) => cx.state().keyspace.bb_stats(&scope, now).map(stats_reply),
        BbCommand::Memory { scope, key, samples } => {
            cx.state().keyspace.bb_memory(&scope, &key, samples, now).map(|m| m.map_or(Reply::Nil, |bytes| Reply::Int(bytes as i64)))
        }
        BbCommand::Scopes(None) => Ok(Reply::bulks(cx.state().keyspace.bb_scopes())),
        BbCommand::Scopes(Some(list)) => Ok(listing::reply(cx.state().keyspace.bb_scope_list(&listing::args(&list)), scope_summary)),
        BbCommand::Wait { scope, key, after, timeout } => {
            let keys = vec![crate::engine::keyspace::bb_wait_key(&scope, &key)];
            return cx.now_or_block(keys, timeout.duration(), Reply::Nil, move |state: &mut State, now| {
                Ok(state.keyspace.bb_get(&scope, &key, now)?.filter(|e| e.revision > after).map(entry_reply))
            });
        }
        BbCommand::GetAll { scope, pattern } => cx.state().keyspace.bb_getall(&scope, pattern.as_deref(), now).map(|(seq, entries)| {
            let entries = entries
                .into_iter()
                .map(|(key, e)| {
                    Reply::fields(vec![
                        ("key", Reply::Bulk(key)),
                        ("value", Reply::Bulk(e.value)),
                        ("revision", Reply::Int(e.revision as i64)),
                        ("ttl", Reply::Int(e.ttl_ms)),
                    ])
                })
                .collect();
            Reply::fields(vec![("seq", Reply::Int(seq as i64)), ("entries", Reply::Array(entries))])
        }),
        BbCommand::Watch { scope, keys } => {
            if cx.session.in_multi() {
                return CommandError::fixed("ERR WATCH inside MULTI is not allowed").into();
            }
            let watch = cx.session.watch.clone();
            cx.state().keyspace.bb_watch(&scope, keys, &watch).map(|_| Reply::ok())
        }
        BbCommand::Changes { scope, since, count } => match cx.state().keyspace.bb_changes(&scope, since, count) {
            Err(e) => Err(e),
            Ok((Since::Lost { oldest }, _)) => Err(Error::new(format!(
                "LOST the change log no longer reaches back to {}; the oldest retained change is {oldest}: re-read the scope",
                since + 1
            ))),
            Ok((Since::Changes(changes), journal)) => Ok(Reply::fields(vec![
                ("seq", Reply::Int(journal.map_or(0, |j| j.seq()) as i64)),
                ("changes", Reply::Array(changes.into_iter().map(change_reply).collect())),
            ])),
        },
    };
    result.into()
}
