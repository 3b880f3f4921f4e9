//! The blackboard on the Redis engine: BB.SET / GET / HAS / DEL / WAIT / CHANGES / KEYS / GETALL / CLEAR
//! and BB.SCOPES across nodes.
//!
//! Each scope lives under one hash tag (`herald:bb:{scope}:...`: values, revisions, deadlines, the change
//! log and its sequence number), and each operation is one Lua script on that slot (`lua/bb_*.lua`) that
//! writes the state, appends the change to the scope's log with the next sequence number and publishes
//! it as a notice, in one step, on Redis's clock. Every node follows the notices of every scope
//! (`notices.rs`) and turns them into the same typed changes the embedded engine emits, so watch events
//! reach its own subscribers on every wire. Deadlines are a sorted set per scope, reaped by the next
//! write on the scope and by every node's periodic sweep (idempotent).
//!
//! The global scope `""` is the plain keyspace's database 0 on the embedded engine; on this engine the
//! plain keyspace is Redis's, without revisions, so `""` is a scope like the others under a fixed tag of its
//! own (`herald:bb:global:{""}:...`, which no named scope's keys can spell): BB.* on `""` work, but do
//! not see plain `SET`s (docs/scale-out.md).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use herald_protocol::command::{BbCommand, BbIf, BbTtl};
use herald_protocol::{CommandError, Reply};
use redis::Value;
use tokio::sync::oneshot;

use super::Remote;
use super::scripted::{self, Pick, Script};
use crate::dispatch::Outcome;
use crate::dispatch::blackboard::{change_fields, entry_fields, scope_summary, stats_reply};
use crate::dispatch::listing;
use crate::engine::keyspace::{ScopeReport, ScopeStats, ScopeSummary};
use crate::engine::listing::{ListArgs, Page};

/// The scripts, run by SHA (`scripted.rs` loads them).
pub struct Scripts {
    pub set: Script,
    pub get: Script,
    pub del: Script,
    pub changes: Script,
    pub sweep: Script,
    pub getall: Script,
    pub clear: Script,
    pub stats: Script,
    pub memory: Script,
}

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(include_str!("lua/bb_prelude.lua"), "\n", include_str!($file)))
    };
}

impl Scripts {
    pub fn new() -> Scripts {
        Scripts {
            set: script!("lua/bb_set.lua"),
            get: script!("lua/bb_get.lua"),
            del: script!("lua/bb_del.lua"),
            changes: script!("lua/bb_changes.lua"),
            sweep: script!("lua/bb_sweep.lua"),
            getall: script!("lua/bb_getall.lua"),
            clear: script!("lua/bb_clear.lua"),
            stats: script!("lua/bb_stats.lua"),
            memory: script!("lua/bb_memory.lua"),
        }
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}

/// Where the global scope `""` lives: a tag of its own, outside `herald:bb:{...}` (so no named scope's
/// keys collide with it, and the SCANs over named scopes do not see it).
const GLOBAL: &[u8] = b"herald:bb:global:{\"\"}:";

/// A scope's Redis keys (one hash tag): values, revisions, deadlines, the change log, its sequence number,
/// and BB.STATS's counters.
pub fn scope_keys(scope: &[u8]) -> [Vec<u8>; 6] {
    let key = |suffix: &[u8]| match scope {
        b"" => [GLOBAL, suffix].concat(),
        _ => [b"herald:bb:{".as_slice(), scope, b"}:", suffix].concat(),
    };
    [key(b"v"), key(b"r"), key(b"d"), key(b"log"), key(b"seq"), key(b"stats")]
}

/// The channel a scope's changes are announced on.
pub fn channel(scope: &[u8]) -> Vec<u8> {
    [super::NOTICE_PREFIX, b"bb:", scope].concat()
}

/// The pattern every node follows for every scope.
pub fn all_channels() -> Bytes {
    Bytes::from([super::NOTICE_PREFIX, b"bb:*"].concat())
}

/// The scope of a notice channel.
pub fn scope_of(channel: &[u8]) -> Option<&[u8]> {
    channel.strip_prefix(super::NOTICE_PREFIX)?.strip_prefix(b"bb:")
}

/// An invocation of a blackboard script on `scope`, with its own arguments after the prelude's.
fn call(remote: &Remote, script: &Script, scope: &[u8], args: &[&[u8]]) -> redis::Cmd {
    let mut cmd = scripted::evalsha(script, &scope_keys(scope));
    cmd.arg(channel(scope)).arg(remote.journal_keep);
    for a in args {
        cmd.arg(*a);
    }
    cmd
}

/// One invocation of a blackboard script on `scope`, with its own arguments after the prelude's.
pub async fn invoke(remote: &Remote, script: &Script, scope: &[u8], args: &[&[u8]]) -> redis::RedisResult<Value> {
    scripted::evaluate(remote, script, &call(remote, script, scope, args)).await
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        Value::BulkString(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).unwrap_or(0),
        _ => 0,
    }
}

fn bytes(v: Value) -> Bytes {
    match v {
        Value::BulkString(b) => Bytes::from(b),
        _ => Bytes::new(),
    }
}

/// BB.GET's reply from the script's `{value, revision, ttl}` (nil: absent).
fn entry(v: Value) -> Option<(Bytes, u64, i64)> {
    let Value::Array(mut items) = v else { return None };
    if items.len() != 3 {
        return None;
    }
    let ttl = int(&items[2]);
    let rev = int(&items[1]) as u64;
    Some((bytes(items.swap_remove(0)), rev, ttl))
}

/// What a script's failure tells the client.
fn failed(e: &redis::RedisError) -> Reply {
    super::value::failed(e)
}

/// Runs a blackboard command on the Redis engine: one script answered later (`scripted.rs`; `later`: the
/// session is in order with the domain connection), or a task the connection waits for (BB.WAIT, and
/// BB.SCOPES, which takes several round trips).
pub fn execute(remote: &Arc<Remote>, cmd: BbCommand, later: bool) -> Outcome {
    let one = |pick: Pick, scope: &[u8], args: &[&[u8]], then: fn(redis::RedisResult<Value>) -> Reply| {
        scripted::run(remote, later, pick, call(remote, pick(remote), scope, args), move |_, v| then(v))
    };
    match cmd {
        BbCommand::Set { scope, key, value, ttl, condition } => {
            let ttl = match ttl {
                BbTtl::None => "none".to_owned(),
                BbTtl::Keep => "keep".to_owned(),
                BbTtl::Millis(ms) if ms <= MAX_TTL_MS => ms.to_string(),
                BbTtl::Millis(_) => return CommandError::fixed("ERR invalid expire time in 'bb.set' command").into(),
            };
            let cond = match condition {
                BbIf::Always => "always".to_owned(),
                BbIf::Nx => "nx".to_owned(),
                BbIf::Xx => "xx".to_owned(),
                BbIf::Revision(r) => r.to_string(),
            };
            one(
                |r| &r.scripts.set,
                &scope,
                &[&key, &value, ttl.as_bytes(), cond.as_bytes()],
                |v| match v {
                    Ok(Value::Array(items)) if items.len() == 2 => {
                        Reply::Error(CommandError::new(format!("CONFLICT the key is at revision {}", int(&items[1]))))
                    }
                    Ok(v) => Reply::Int(int(&v)),
                    Err(e) => failed(&e),
                },
            )
        }
        BbCommand::Get { scope, key } => one(
            |r| &r.scripts.get,
            &scope,
            &[&key],
            |v| match v {
                Ok(v) => entry(v).map_or(Reply::Nil, |(value, rev, ttl)| entry_fields(value, rev, ttl)),
                Err(e) => failed(&e),
            },
        ),
        BbCommand::Has { scope, key } => one(
            |r| &r.scripts.get,
            &scope,
            &[&key],
            |v| match v {
                Ok(v) => Reply::Int(i64::from(entry(v).is_some())),
                Err(e) => failed(&e),
            },
        ),
        BbCommand::Del { scope, keys } => {
            let args: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
            one(|r| &r.scripts.del, &scope, &args, |v| v.map_or_else(|e| failed(&e), |v| Reply::Int(int(&v))))
        }
        BbCommand::Changes { scope, since, count } => {
            let (since_arg, count_arg) = (since.to_string(), count.to_string());
            let call = call(remote, &remote.scripts.changes, &scope, &[since_arg.as_bytes(), count_arg.as_bytes()]);
            scripted::run(
                remote,
                later,
                |r| &r.scripts.changes,
                call,
                move |_, v| v.map_or_else(|e| failed(&e), |v| changes_reply(since, v)),
            )
        }
        BbCommand::Keys { scope, pattern } => one(
            |r| &r.scripts.getall,
            &scope,
            &[getall_pattern(pattern.as_deref())],
            |v| match listed(v) {
                Ok((_, entries)) => Reply::Array(entries.into_iter().map(|(key, ..)| Reply::Bulk(key)).collect()),
                Err(e) => e,
            },
        ),
        BbCommand::GetAll { scope, pattern } => one(
            |r| &r.scripts.getall,
            &scope,
            &[getall_pattern(pattern.as_deref())],
            |v| match listed(v) {
                Ok((seq, entries)) => {
                    let entries = entries
                        .into_iter()
                        .map(|(key, value, revision, ttl)| {
                            Reply::fields(vec![
                                ("key", Reply::Bulk(key)),
                                ("value", Reply::Bulk(value)),
                                ("revision", Reply::Int(revision)),
                                ("ttl", Reply::Int(ttl)),
                            ])
                        })
                        .collect();
                    Reply::fields(vec![("seq", Reply::Int(seq)), ("entries", Reply::Array(entries))])
                }
                Err(e) => e,
            },
        ),
        BbCommand::Clear(scope) => one(|r| &r.scripts.clear, &scope, &[], |v| v.map_or_else(|e| failed(&e), |v| Reply::Int(int(&v)))),
        BbCommand::Stats(scope) => one(
            |r| &r.scripts.stats,
            &scope,
            &[],
            |v| match v {
                Ok(Value::Array(f)) => {
                    let n = |i: usize| f.get(i).map_or(0, int) as u64;
                    let stats = ScopeStats { sets: n(3), gets: n(4), hits: n(5), misses: n(6), deletes: n(7), expired: n(8) };
                    stats_reply(Some(ScopeReport { keys: n(0) as usize, bytes: n(1) as usize, stats, seq: n(2) }))
                }
                Ok(_) => Reply::error("ERR redis engine: unexpected BB.STATS reply"),
                Err(e) => failed(&e),
            },
        ),
        BbCommand::Memory { scope, key, samples } => one(
            |r| &r.scripts.memory,
            &scope,
            &[&key, samples.to_string().as_bytes()],
            |v| match v {
                Ok(Value::Nil) => Reply::Nil,
                Ok(v) => Reply::Int(int(&v)),
                Err(e) => failed(&e),
            },
        ),
        BbCommand::Wait { scope, key, after, timeout } => {
            scripted::task(remote, move |remote, tx| wait(remote, scope, key, after, timeout.duration(), tx))
        }
        BbCommand::Scopes(list) => scripted::task(remote, move |remote, tx| async move {
            let reply = match list {
                None => match scopes(&remote, &ListArgs::all()).await {
                    Ok(page) => Reply::Array(page.entries.into_iter().map(|s| Reply::Bulk(s.scope)).collect()),
                    Err(e) => failed(&e),
                },
                Some(list) => match scopes(&remote, &listing::args(&list)).await {
                    Ok(page) => listing::reply(page, scope_summary),
                    Err(e) => failed(&e),
                },
            };
            let _ = tx.send(reply);
        }),
        _ => CommandError::fixed("ERR this BB command is not supported by the redis engine (docs/scale-out.md)").into(),
    }
}

/// The blackboard keys a tenant holds (per-tenant quotas, `quota.rs`): every key of each named scope
/// matching `pattern` (the scopes' listing), and the global scope's keys matching it (an `HSCAN` of its
/// values), as on one node, where the global scope's keys are database 0's.
pub(super) async fn held_keys(remote: &Remote, pattern: &[u8]) -> redis::RedisResult<u64> {
    let mine = ListArgs { pattern: Some(Bytes::copy_from_slice(pattern)), ..ListArgs::all() };
    let page = scopes(remote, &mine).await?;
    let named = page.entries.iter().filter(|s| !s.scope.is_empty() && crate::engine::glob::glob_match(pattern, &s.scope));
    let mut held: u64 = named.map(|s| s.keys as u64).sum();
    let mut conn = remote.pool.shared(scripted::DOMAIN);
    let [global, ..] = scope_keys(b"");
    let mut cursor = 0u64;
    loop {
        let (next, pairs): (u64, Vec<Value>) =
            redis::cmd("HSCAN").arg(&global).arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(1000).query_async(&mut conn).await?;
        held += pairs.len() as u64 / 2;
        cursor = next;
        if cursor == 0 {
            return Ok(held);
        }
    }
}

/// Largest TTL accepted: Redis's deadlines are milliseconds in a Lua number (a double), exact below 2^53.
const MAX_TTL_MS: u64 = (1 << 52) - 1;

/// A page of scopes (every scope when `args.count` is unbounded): a SCAN over the scopes' sequence keys
/// (a scope has one from its first change on; `listing.rs`), then each scope's figures in one pipeline.
async fn scopes(remote: &Remote, args: &ListArgs) -> redis::RedisResult<Page<ScopeSummary>> {
    let (cursor, mut names) = super::listing::scan_names(remote, b"herald:bb:{", b"}:seq", args).await?;
    // The global scope always exists, as on one node: first, on the first page.
    if args.cursor == 0 && args.pattern.as_deref().is_none_or(|p| crate::engine::glob::glob_match(p, b"")) {
        names.insert(0, Bytes::new());
    }
    let mut conn = remote.pool.shared(super::pool::Target { db: 0, resp3: false });
    let mut pipe = redis::pipe();
    for scope in &names {
        let [vals, _, _, log, seq, _] = scope_keys(scope);
        pipe.cmd("HLEN").arg(vals).cmd("GET").arg(seq).cmd("LLEN").arg(log);
    }
    let figures: Vec<Value> = if names.is_empty() { Vec::new() } else { pipe.query_async(&mut conn).await? };
    let entries = names
        .into_iter()
        .zip(figures.chunks(3))
        .map(|(scope, f)| ScopeSummary { scope, keys: int(&f[0]) as usize, seq: int(&f[1]) as u64, journal: int(&f[2]) as usize })
        .collect();
    Ok(Page { cursor, entries })
}

/// One scope entry as `bb_getall.lua` gives it: key, value, revision, ttl.
type Listed = (Bytes, Bytes, i64, i64);

/// `bb_getall.lua`'s pattern argument: none for every key.
fn getall_pattern(pattern: Option<&[u8]>) -> &[u8] {
    pattern.filter(|p| *p != b"*").unwrap_or(b"")
}

/// The scope's live keys as `bb_getall.lua` lists them, and the log position they reflect.
fn listed(v: redis::RedisResult<Value>) -> Result<(i64, Vec<Listed>), Reply> {
    let v = v.map_err(|e| failed(&e))?;
    let Value::Array(mut top) = v else { return Err(Reply::error("ERR redis engine: unexpected BB.GETALL reply")) };
    let entries = match top.pop() {
        Some(Value::Array(entries)) => entries,
        _ => Vec::new(),
    };
    let seq = top.first().map_or(0, int);
    let listed = entries
        .into_iter()
        .filter_map(|e| match e {
            Value::Array(mut f) if f.len() == 4 => {
                let (ttl, rev) = (int(&f[3]), int(&f[2]));
                let value = bytes(f.swap_remove(1));
                Some((bytes(f.swap_remove(0)), value, rev, ttl))
            }
            _ => None,
        })
        .collect();
    Ok((seq, listed))
}

/// BB.CHANGES's reply, as the embedded engine gives it.
fn changes_reply(since: u64, v: Value) -> Reply {
    let Value::Array(mut items) = v else { return Reply::error("ERR redis engine: unexpected BB.CHANGES reply") };
    if items.len() != 2 {
        return Reply::error("ERR redis engine: unexpected BB.CHANGES reply");
    }
    if matches!(&items[0], Value::BulkString(b) if b == b"lost") {
        return Reply::Error(CommandError::new(format!(
            "LOST the change log no longer reaches back to {}; the oldest retained change is {}: re-read the scope",
            since + 1,
            int(&items[1])
        )));
    }
    let entries = match items.pop() {
        Some(Value::Array(entries)) => entries,
        _ => Vec::new(),
    };
    let last = int(&items[0]);
    let changes = entries
        .iter()
        .filter_map(|e| match e {
            Value::BulkString(b) => super::notices::Entry::parse(b),
            _ => None,
        })
        .map(|e| change_fields(e.seq, Bytes::copy_from_slice(e.key), e.kind.name(), e.revision, e.value.map(Bytes::copy_from_slice)))
        .collect();
    Reply::fields(vec![("seq", Reply::Int(last)), ("changes", Reply::Array(changes))])
}

/// BB.WAIT: register interest in the key, re-check it, then wait for a change notice or the fallback
/// poll (`engine.wait_poll_ms`), so a lost notice costs latency, never correctness.
async fn wait(remote: Arc<Remote>, scope: Bytes, key: Bytes, after: u64, timeout: Option<Duration>, mut tx: oneshot::Sender<Reply>) {
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    loop {
        let notify = remote.waiters.interest(&scope, &key);
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let reply = match invoke(&remote, &remote.scripts.get, &scope, &[&key]).await {
            Ok(v) => match entry(v) {
                Some((value, rev, ttl)) if rev > after => Some(entry_fields(value, rev, ttl)),
                _ => None,
            },
            Err(e) => Some(failed(&e)),
        };
        if let Some(reply) = reply {
            let _ = tx.send(reply);
            return;
        }
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep(remote.wait_poll) => {}
            _ = timer => {
                let _ = tx.send(Reply::Nil);
                return;
            }
            _ = tx.closed() => return,
        }
    }
}
