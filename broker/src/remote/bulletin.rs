//! Bulletin boards on the Redis engine: BL.PUBLISH / RETRIEVE / ALL / GET / LEN / EXTEND / RELEASE /
//! REMOVE / CONFIG / DEAD / REDRIVE across nodes.
//!
//! Each board lives under one hash tag (`herald:bl:{<scope length>:<scope>:<board>}:...`: items, the
//! free ones, their states, deadlines, dead letters, settings and counters), and each operation is
//! one Lua script on that slot (`lua/bl_*.lua`) on Redis's clock: retrieve-and-lock included, filter
//! and all, so two nodes never lease the same item. Lease tokens come from the board's counter and
//! fence: a stale one is refused with the embedded engine's `-LEASE`. Lease ends and item TTLs are a
//! sorted set per board, reaped at the start of every script on the board and by every node's
//! periodic sweep (idempotent) of the boards the registry `herald:bl:due` says are due.
//!
//! Scripts publish the board's events (`__bl@<scope>__:<board>`, the embedded engine's JSON) to Redis,
//! which the pub-sub bridge hands to each node's subscribers, and a wake-up (`wake.rs`) for blocked
//! retrievers and publishers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use herald_protocol::command::{self, BulletinCommand, Filter, FilterOp};
use herald_protocol::{CommandError, Reply};
use redis::Value;
use tokio::sync::oneshot;

use super::Remote;
use super::due::Registry;
use super::notices::now_ms;
use super::scripted::{self, Pick, Script};
use super::value::failed;
use crate::dispatch::Outcome;
use crate::dispatch::bulletin::item_reply;
use crate::engine::bulletin::{BoardConfig, BoardSummary, BulletinSettings, ItemView, Lease, Overflow};
use crate::engine::listing::{ListArgs, Page};

/// The board scripts, the settings they are run with, and what this node registered for the sweep.
pub struct Boards {
    pub(super) publish: Script,
    pub(super) retrieve: Script,
    pub(super) item: Script,
    settings: BulletinSettings,
    /// The registry of boards with a deadline (`herald:bl:due`): member the board's tag, score its next
    /// deadline (unix ms). A hint for the sweep: a board missing from it is still reaped by its next script.
    due: Registry,
    /// Board tag -> the deadline this node last put in the registry (at most `bulletin.max_boards`): a
    /// later deadline on the same board needs no registration while that one is pending, since the sweep
    /// that takes it settles the board's next deadline, which is at most the later one.
    registered: Mutex<HashMap<Vec<u8>, u64>>,
}

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(include_str!("lua/bl_prelude.lua"), "\n", include_str!($file)))
    };
}

impl Boards {
    pub fn new(settings: BulletinSettings) -> Boards {
        Boards {
            publish: script!("lua/bl_publish.lua"),
            retrieve: script!("lua/bl_retrieve.lua"),
            item: script!("lua/bl_item.lua"),
            settings,
            due: Registry::new(DUE),
            registered: Mutex::new(HashMap::new()),
        }
    }
}

/// The registry of boards with a deadline, for the sweep.
pub(super) const DUE: &str = "herald:bl:due";

/// A board's hash tag: scope and board, told apart by the scope's length.
pub(super) fn tag(scope: &[u8], board: &[u8]) -> Vec<u8> {
    [scope.len().to_string().as_bytes(), b":", scope, b":", board].concat()
}

/// The (scope, board) of a tag.
fn untag(tag: &[u8]) -> Option<(Bytes, Bytes)> {
    let colon = tag.iter().position(|&c| c == b':')?;
    let len: usize = std::str::from_utf8(&tag[..colon]).ok()?.parse().ok()?;
    let rest = tag.get(colon + 1..)?;
    let scope = rest.get(..len)?;
    let board = rest.get(len..)?.strip_prefix(b":")?;
    Some((Bytes::copy_from_slice(scope), Bytes::copy_from_slice(board)))
}

/// A board's keys: order, avail, raw, info, deadlines, dead letters, meta, the waiter marker.
pub(super) fn keys(tag: &[u8]) -> [Vec<u8>; 8] {
    let key = |suffix: &[u8]| [b"herald:bl:{".as_slice(), tag, b"}:", suffix].concat();
    [key(b"order"), key(b"avail"), key(b"raw"), key(b"info"), key(b"dl"), key(b"dead"), key(b"meta"), key(b"waiting")]
}

/// The name blocked retrievers and publishers of a board wait on.
fn wake_name(tag: &[u8]) -> Bytes {
    Bytes::from([b"bl:".as_slice(), tag].concat())
}

/// Largest lease or TTL: Redis's deadlines are milliseconds in a Lua number (a double), exact below 2^53.
const MAX_MS: u64 = (1 << 52) - 1;

/// An invocation of a board script, with its own arguments after the prelude's.
fn call(remote: &Remote, script: &Script, scope: &[u8], board: &[u8], args: &[&[u8]]) -> redis::Cmd {
    let mut cmd = scripted::evalsha(script, &keys(&tag(scope, board)));
    let events = [b"__bl@".as_slice(), scope, b"__:", board].concat();
    let s = &remote.boards.settings;
    cmd.arg(events)
        .arg(super::wake::channel(&wake_name(&tag(scope, board))))
        .arg(scope)
        .arg(board)
        .arg(s.default_max_len)
        .arg(s.default_max_leases)
        .arg(s.max_dead);
    for a in args {
        cmd.arg(*a);
    }
    cmd
}

/// One invocation of a board script, with its own arguments after the prelude's.
async fn invoke(remote: &Remote, script: &Script, scope: &[u8], board: &[u8], args: &[&[u8]]) -> redis::RedisResult<Value> {
    scripted::evaluate(remote, script, &call(remote, script, scope, board, args)).await
}

/// Tells the sweep that the board has a deadline at `at` (node's clock; a sweep too early is harmless).
async fn register(remote: &Remote, scope: &[u8], board: &[u8], at: u64) {
    let tag = tag(scope, board);
    {
        let now = now_ms();
        let mut registered = remote.boards.registered.lock().expect("registered");
        if registered.get(&tag).is_some_and(|&pending| pending <= at && pending > now + CLOCK_SLACK_MS) {
            return;
        }
        if registered.len() >= remote.boards.settings.max_boards {
            registered.retain(|_, &mut pending| pending > now);
            if registered.len() >= remote.boards.settings.max_boards {
                registered.clear();
            }
        }
        registered.insert(tag.clone(), at);
    }
    let _ = remote.boards.due.register(remote, &tag, at).await;
}

/// How far another node's clock may run ahead of this one's before a deadline this node still thinks
/// pending is already being swept there: within it, a later deadline is registered anyway, so that the
/// sweep's settle never drops it (`due.rs`).
const CLOCK_SLACK_MS: u64 = 1_000;

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        Value::BulkString(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).unwrap_or(0),
        _ => 0,
    }
}

/// An item from the scripts' `{id, item, published, failed, token, lease}`.
fn view(v: Value) -> Option<ItemView> {
    let Value::Array(f) = v else { return None };
    let [Value::BulkString(id), Value::BulkString(item), published, failed, token, lease] = <[Value; 6]>::try_from(f).ok()? else {
        return None;
    };
    let token = int(&token) as u64;
    Some(ItemView {
        id: Bytes::from(id),
        item: Bytes::from(item),
        published_ms: int(&published) as u64,
        failed_leases: int(&failed) as u32,
        lease: (token > 0).then(|| Lease { token, expires_ms: int(&lease) as u64 }),
    })
}

fn item_or_nil(v: Value) -> Reply {
    view(v).map_or(Reply::Nil, item_reply)
}

fn items(v: Value) -> Reply {
    match v {
        Value::Array(items) => Reply::Array(items.into_iter().filter_map(view).map(item_reply).collect()),
        _ => Reply::Array(Vec::new()),
    }
}

/// A WHERE clause as the retrieve script reads it: path, op, and the value as JSON text (a value that
/// is not JSON is a plain string, as on the embedded engine).
fn filter_args(filters: &[Filter]) -> Vec<Vec<u8>> {
    let mut args = vec![filters.len().to_string().into_bytes()];
    for f in filters {
        let op: &[u8] = match f.op {
            FilterOp::Eq => b"=",
            FilterOp::Ne => b"!=",
            FilterOp::Lt => b"<",
            FilterOp::Le => b"<=",
            FilterOp::Gt => b">",
            FilterOp::Ge => b">=",
        };
        let value = match serde_json::from_slice::<serde::de::IgnoredAny>(&f.value) {
            Ok(_) => f.value.to_vec(),
            Err(_) => serde_json::to_vec(&String::from_utf8_lossy(&f.value)).expect("a string is JSON"),
        };
        args.extend([f.path.to_vec(), op.to_vec(), value]);
    }
    args
}

const PUBLISH: Pick = |r| &r.boards.publish;
const RETRIEVE: Pick = |r| &r.boards.retrieve;
const ITEM: Pick = |r| &r.boards.item;

/// Runs a bulletin command on the Redis engine: one script answered later (`scripted.rs`; `later`: the
/// session is in order with the domain connection; a deadline it set registered for the sweep after it),
/// or a task the connection waits for when it may wait (BLOCK) or takes several round trips (BL.BOARDS).
pub fn execute(remote: &Arc<Remote>, cmd: BulletinCommand, later: bool) -> Outcome {
    if let BulletinCommand::Publish { item, .. } = &cmd
        && let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(item)
    {
        return CommandError::new(format!("ERR the item is not valid JSON: {e}")).into();
    }
    let one = |pick: Pick, scope: &[u8], board: &[u8], args: &[&[u8]], then: fn(redis::RedisResult<Value>) -> Reply| {
        scripted::run(remote, later, pick, call(remote, pick(remote), scope, board, args), move |_, v| then(v))
    };
    match cmd {
        BulletinCommand::Publish { scope, board, item, ttl_ms, block: None } => {
            let ttl = ttl_ms.map(|t| t.min(MAX_MS).to_string()).unwrap_or_default();
            let call = call(remote, &remote.boards.publish, &scope, &board, &[&item, ttl.as_bytes(), b"0"]);
            scripted::run_then(remote, later, PUBLISH, call, move |r, v| async move {
                let reply = published(v).unwrap_or(Reply::Nil);
                if let (Some(ms), Reply::Bulk(_)) = (ttl_ms, &reply) {
                    register(&r, &scope, &board, now_ms().saturating_add(ms.min(MAX_MS))).await;
                }
                reply
            })
        }
        BulletinCommand::Retrieve { scope, board, filters, lock_ms, block: None } => {
            let args = retrieve_args(&filters, lock_ms, "0".into());
            let args: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
            let call = call(remote, &remote.boards.retrieve, &scope, &board, &args);
            scripted::run_then(remote, later, RETRIEVE, call, move |r, v| async move {
                let reply = retrieved(v).unwrap_or(Reply::Nil);
                if let Some(ms) = lock_ms
                    && !matches!(reply, Reply::Nil | Reply::Error(_))
                {
                    register(&r, &scope, &board, now_ms().saturating_add(ms.min(MAX_MS))).await;
                }
                reply
            })
        }
        BulletinCommand::All { scope, board, filters, limit } => {
            let mut args = vec![b"all".to_vec(), limit.map(|l| l.to_string()).unwrap_or_default().into_bytes()];
            args.extend(filter_args(&filters));
            let args: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
            one(RETRIEVE, &scope, &board, &args, |v| v.map_or_else(|e| failed(&e), items))
        }
        BulletinCommand::Get { scope, board, id } => {
            one(ITEM, &scope, &board, &[b"get", &id], |v| v.map_or_else(|e| failed(&e), item_or_nil))
        }
        BulletinCommand::Len { scope, board } => {
            one(ITEM, &scope, &board, &[b"len"], |v| v.map_or_else(|e| failed(&e), |v| Reply::Int(int(&v))))
        }
        BulletinCommand::Dead { scope, board } => one(ITEM, &scope, &board, &[b"dead"], |v| v.map_or_else(|e| failed(&e), items)),
        BulletinCommand::Extend { scope, board, id, token, ms } => {
            let (token, ms) = (token.to_string(), ms.min(MAX_MS).to_string());
            let call = call(remote, &remote.boards.item, &scope, &board, &[b"extend", &id, token.as_bytes(), ms.as_bytes()]);
            scripted::run_then(remote, later, ITEM, call, move |r, v| async move {
                match v {
                    Ok(v) => {
                        register(&r, &scope, &board, int(&v) as u64).await;
                        Reply::Int(int(&v))
                    }
                    Err(e) => failed(&e),
                }
            })
        }
        BulletinCommand::Release { scope, board, id, token } => {
            let token = token.to_string();
            one(ITEM, &scope, &board, &[b"release", &id, token.as_bytes()], |v| v.map_or_else(|e| failed(&e), |_| Reply::ok()))
        }
        BulletinCommand::Remove { scope, board, id, token } => {
            let token = token.map(|t| t.to_string()).unwrap_or_default();
            one(ITEM, &scope, &board, &[b"remove", &id, token.as_bytes()], |v| v.map_or_else(|e| failed(&e), |v| Reply::Int(int(&v))))
        }
        BulletinCommand::Redrive { scope, board, id } => {
            one(ITEM, &scope, &board, &[b"redrive", &id], |v| v.map_or_else(|e| failed(&e), |_| Reply::ok()))
        }
        BulletinCommand::Config { scope, board, max_len, overflow, max_leases } => {
            let max_len = max_len.map(|n| n.to_string()).unwrap_or_default();
            let overflow: &[u8] = match overflow {
                Some(command::Overflow::DropOldest) => b"drop-oldest",
                Some(command::Overflow::RejectNew) => b"reject-new",
                None => b"",
            };
            let max_leases = max_leases.map(|n| n.to_string()).unwrap_or_default();
            let args: [&[u8]; 4] = [b"config", max_len.as_bytes(), overflow, max_leases.as_bytes()];
            one(ITEM, &scope, &board, &args, |v| v.map_or_else(|e| failed(&e), |_| Reply::ok()))
        }
        waits => scripted::task(remote, move |remote, tx| run(remote, waits, tx)),
    }
}

/// BL.PUBLISH's reply from the script's (the new item's id); `None` when the board is full and the
/// publisher may wait.
fn published(v: redis::RedisResult<Value>) -> Option<Reply> {
    match v {
        Ok(Value::Array(_)) => None,
        Ok(v) => Some(Reply::Bulk(Bytes::from(redis::from_redis_value::<Vec<u8>>(v).unwrap_or_default()))),
        Err(e) => Some(failed(&e)),
    }
}

/// BL.RETRIEVE's reply from the script's; `None` when nothing matched.
fn retrieved(v: redis::RedisResult<Value>) -> Option<Reply> {
    match v {
        Ok(Value::Nil) => None,
        Ok(v) => Some(item_or_nil(v)),
        Err(e) => Some(failed(&e)),
    }
}

/// The retrieve script's arguments.
fn retrieve_args(filters: &[Filter], lock_ms: Option<u64>, mark: String) -> Vec<Vec<u8>> {
    let mut args = vec![b"retrieve".to_vec(), lock_ms.map(|l| l.min(MAX_MS).to_string()).unwrap_or_default().into_bytes()];
    args.extend(filter_args(filters));
    args.push(mark.into_bytes());
    args
}

/// The bulletin commands that may wait or take several round trips, as a task.
async fn run(remote: Arc<Remote>, cmd: BulletinCommand, mut tx: oneshot::Sender<Reply>) {
    let r = &remote;
    let scripts = &remote.boards;
    let reply = match cmd {
        BulletinCommand::Publish { scope, board, item, ttl_ms, block } => {
            let ttl = ttl_ms.map(|t| t.min(MAX_MS).to_string()).unwrap_or_default();
            let mark = super::wake::mark_ms(r, block.is_some());
            let attempt =
                || async { published(invoke(r, &scripts.publish, &scope, &board, &[&item, ttl.as_bytes(), mark.as_bytes()]).await) };
            let reply = super::wake::maybe(r, &wake_name(&tag(&scope, &board)), block.map(|b| b.duration()), &mut tx, attempt).await;
            if let (Some(ms), Some(Reply::Bulk(_))) = (ttl_ms, &reply) {
                register(r, &scope, &board, now_ms().saturating_add(ms.min(MAX_MS))).await;
            }
            reply
        }
        BulletinCommand::Retrieve { scope, board, filters, lock_ms, block } => {
            let args = retrieve_args(&filters, lock_ms, super::wake::mark_ms(r, block.is_some()));
            let args: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
            let attempt = || async { retrieved(invoke(r, &scripts.retrieve, &scope, &board, &args).await) };
            let reply = super::wake::maybe(r, &wake_name(&tag(&scope, &board)), block.map(|b| b.duration()), &mut tx, attempt).await;
            if let Some(ms) = lock_ms
                && reply.as_ref().is_some_and(|r| !matches!(r, Reply::Nil | Reply::Error(_)))
            {
                register(r, &scope, &board, now_ms().saturating_add(ms.min(MAX_MS))).await;
            }
            reply
        }
        BulletinCommand::Boards(list) => Some(match boards(r, list.scope.as_deref(), &crate::dispatch::listing::args(&list)).await {
            Ok(page) => crate::dispatch::listing::reply(page, crate::dispatch::bulletin::board_summary),
            Err(e) => failed(&e),
        }),
        _ => unreachable!("answered by execute"),
    };
    let _ = tx.send(reply.unwrap_or(Reply::Nil));
}

/// A glob pattern matching `text` literally.
fn glob_literal(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for &c in text {
        if matches!(c, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(c);
    }
    out
}

/// BL.BOARDS: a page of boards (of `scope`, or of all), the pattern matching board names: a SCAN over
/// the boards' `meta` keys (a board has one from its first publish or BL.CONFIG on, as a board exists
/// on one node; `listing.rs`), then each board's figures from its own script (lapsed leases reaped first).
async fn boards(remote: &Remote, scope: Option<&[u8]>, args: &ListArgs) -> redis::RedisResult<Page<BoardSummary>> {
    let board_pattern = args.pattern.as_deref().unwrap_or(b"*");
    // The tag is `<scope length>:<scope>:<board>`; without a scope the match is loose (a scope holding
    // `:`), so every name is checked again below.
    let tags = match scope {
        Some(s) => [s.len().to_string().as_bytes(), b":", &glob_literal(s), b":", board_pattern].concat(),
        None => [b"*:".as_slice(), board_pattern].concat(),
    };
    let scan = ListArgs { cursor: args.cursor, pattern: Some(Bytes::from(tags)), count: args.count };
    let (cursor, names) = super::listing::scan_names(remote, b"herald:bl:{", b"}:meta", &scan).await?;
    let mut entries = Vec::new();
    for (s, board) in names.iter().filter_map(|t| untag(t)) {
        if scope.is_some_and(|want| want != s) || !crate::engine::glob::glob_match(board_pattern, &board) {
            continue;
        }
        let Value::Array(f) = invoke(remote, &remote.boards.item, &s, &board, &[b"summary"]).await? else { continue };
        let n = |i: usize| f.get(i).map_or(0, int) as usize;
        let overflow = match f.get(4) {
            Some(Value::BulkString(o)) if o == b"drop-oldest" => Overflow::DropOldest,
            _ => Overflow::RejectNew,
        };
        let config = BoardConfig { max_len: n(3), overflow, max_leases: n(5) as u32 };
        entries.push(BoardSummary { scope: s, board, items: n(0), leased: n(1), dead: n(2), config });
    }
    Ok(Page { cursor, entries })
}

/// How often each node looks for boards with a deadline due.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// Boards one sweep visits at most (the next tick takes the rest).
const SWEEP_BOARDS: usize = 100;

/// Starts the node's periodic sweep of boards with a deadline due; it ends with `stop`. Every node
/// runs one: a sweep is idempotent (a deadline one node reaped the next finds gone), and deadlines
/// fire whether or not anyone touches the board.
pub fn start_sweep(remote: &Arc<Remote>, stop: tokio_util::sync::CancellationToken) {
    super::due::every(remote, SWEEP_EVERY, stop, |remote| async move { sweep(&remote).await });
}

async fn sweep(remote: &Remote) {
    let registry = &remote.boards.due;
    let Ok(due) = registry.due(remote, now_ms(), SWEEP_BOARDS).await else { return };
    for (member, seen) in due {
        let next = match untag(&member) {
            Some((scope, board)) => match invoke(remote, &remote.boards.item, &scope, &board, &[b"sweep"]).await {
                Ok(v) => int(&v) as u64,
                Err(_) => continue,
            },
            None => 0,
        };
        let _ = registry.settle(remote, &member, seen, next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_tell_scope_and_board_apart() {
        for (scope, board) in [("", "tasks"), ("a:b", "c"), ("a", "b:c"), ("12", ":")] {
            let t = tag(scope.as_bytes(), board.as_bytes());
            assert_eq!(untag(&t), Some((Bytes::from(scope), Bytes::from(board))), "{scope} {board}");
        }
        assert_ne!(tag(b"a:b", b"c"), tag(b"a", b"b:c"));
    }
}
