//! Mailboxes on the Redis engine: MSG.SEND / RECV / LEN / CONFIG / REQUEST / REPLY across nodes.
//!
//! Each destination lives under one hash tag (`herald:msg:{<dest>}:...`: its length, bound and id
//! counter, its idempotency keys, a list per topic), and each operation is one Lua script on that slot
//! (`lua/msg_box.lua`): a receive pops in the script, so each message goes to exactly one receiver on
//! any node. A request also has a state of its own under its id's tag (`lua/msg_request.lua`:
//! waiting, replied, timed out) so that MSG.REPLY, which names only the id, finds it from any node,
//! and a reply either reaches the requester or is refused as late, never both. Request ids come from
//! one counter (`herald:msg:ids`). Blocking receives, sends waiting for room and requesters wait as
//! in `wake.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use herald_protocol::command::MailboxCommand;
use herald_protocol::{CommandError, Reply};
use redis::Value;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Remote;
use super::scripted::{self, Pick, evalsha};
use super::value::failed;
use crate::dispatch::Outcome;
use crate::dispatch::mailbox::received_reply;
use crate::engine::listing::{ListArgs, Page};
use crate::engine::mailbox::{DestSummary, MailStats, MailboxSettings, Received};

/// The mailbox scripts, the settings they are run with, and this node's share of INFO's counters.
pub struct Mail {
    pub(super) boxes: super::scripted::Script,
    pub(super) requests: super::scripted::Script,
    settings: MailboxSettings,
    /// Late replies this node refused, and expired requests its receivers dropped.
    replies_dropped: AtomicU64,
    requests_expired: AtomicU64,
}

impl Mail {
    pub fn new(settings: MailboxSettings) -> Mail {
        Mail {
            boxes: super::scripted::Script::new(include_str!("lua/msg_box.lua")),
            requests: super::scripted::Script::new(include_str!("lua/msg_request.lua")),
            settings,
            replies_dropped: AtomicU64::new(0),
            requests_expired: AtomicU64::new(0),
        }
    }

    /// Adds this node's counts to the embedded engine's (INFO stats, /metrics).
    pub fn add_stats(&self, stats: &mut MailStats) {
        stats.replies_dropped += self.replies_dropped.load(Ordering::Relaxed);
        stats.requests_expired += self.requests_expired.load(Ordering::Relaxed);
    }
}

/// The counter request ids come from.
const IDS: &str = "herald:msg:ids";
/// How long a request's state outlives its deadline (a late reply still finds it and is refused).
const REQUEST_GRACE_MS: u64 = 60_000;

fn wake_name(dest: &[u8]) -> Bytes {
    Bytes::from([b"msg:".as_slice(), dest].concat())
}

fn reply_wake_name(id: u64) -> Bytes {
    Bytes::from(format!("msgreply:{id}"))
}

fn conn(remote: &Remote) -> super::conn::Shared {
    remote.pool.shared(scripted::DOMAIN)
}

/// A destination's key: `meta`, `idem`, `idemq`, `queues` or the waiter marker `waiting`.
pub(super) fn key(dest: &[u8], suffix: &[u8]) -> Vec<u8> {
    [b"herald:msg:{".as_slice(), dest, b"}:", suffix].concat()
}

/// The list of a destination's messages on `topic`.
pub(super) fn topic_key(dest: &[u8], topic: &[u8]) -> Vec<u8> {
    [b"herald:msg:{".as_slice(), dest, b"}:t:", topic].concat()
}

/// An invocation of the mailbox script on `dest` (and `topic`'s queue).
fn box_call(remote: &Remote, dest: &[u8], topic: &[u8], args: &[&[u8]]) -> redis::Cmd {
    let keys =
        [key(dest, b"meta"), key(dest, b"idem"), key(dest, b"idemq"), topic_key(dest, topic), key(dest, b"queues"), key(dest, b"waiting")];
    let mut cmd = evalsha(&remote.mail.boxes, &keys);
    cmd.arg(super::wake::channel(&wake_name(dest))).arg(remote.mail.settings.max_messages);
    for a in args {
        cmd.arg(*a);
    }
    cmd
}

const BOXES: Pick = |r| &r.mail.boxes;
const REQUESTS: Pick = |r| &r.mail.requests;

async fn boxed(remote: &Remote, dest: &[u8], topic: &[u8], args: &[&[u8]]) -> redis::RedisResult<Value> {
    scripted::evaluate(remote, &remote.mail.boxes, &box_call(remote, dest, topic, args)).await
}

/// An invocation of the request script on request `id`.
fn request_call(remote: &Remote, id: u64, args: &[&[u8]]) -> redis::Cmd {
    let mut cmd = evalsha(&remote.mail.requests, &[format!("herald:msg:req:{{{id}}}")]);
    for a in args {
        cmd.arg(*a);
    }
    cmd
}

async fn request(remote: &Remote, id: u64, args: &[&[u8]]) -> redis::RedisResult<Value> {
    scripted::evaluate(remote, &remote.mail.requests, &request_call(remote, id, args)).await
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        Value::BulkString(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).unwrap_or(0),
        _ => 0,
    }
}

/// Runs a mailbox command on the Redis engine: one script answered later (`scripted.rs`; `later`: the
/// session is in order with the domain connection), or a task the connection waits for when it may wait
/// (BLOCK, TIMEOUT, MSG.REQUEST) or takes several round trips (MSG.DESTS).
pub fn execute(remote: &Arc<Remote>, cmd: MailboxCommand, later: bool) -> Outcome {
    if let MailboxCommand::Config { max_len, .. } = &cmd
        && *max_len > remote.mail.settings.max_messages
    {
        return CommandError::new(format!("ERR MAXLEN must be at most mailboxes.max_messages ({})", remote.mail.settings.max_messages))
            .into();
    }
    match cmd {
        MailboxCommand::Send { dest, topic, payload, idempotency, block: None } => {
            let (key, keep) = (idempotency.unwrap_or_default(), remote.mail.settings.idempotency_keys.to_string());
            let call = box_call(remote, &dest, &topic, &[b"send", &payload, &key, keep.as_bytes(), b"", b"0", b"0"]);
            scripted::run(remote, later, BOXES, call, |_, v| sent(v, false).unwrap_or(Reply::Nil))
        }
        MailboxCommand::Recv { dest, topic, timeout: None } => {
            scripted::run(remote, later, BOXES, box_call(remote, &dest, &topic, &[b"recv", b"0"]), |r, v| got(r, v).unwrap_or(Reply::Nil))
        }
        MailboxCommand::Len { dest, topic } => {
            let which = topic.clone().unwrap_or_default();
            let args: [&[u8]; 2] = [b"len", if topic.is_some() { b"topic" } else { b"all" }];
            scripted::run(remote, later, BOXES, box_call(remote, &dest, &which, &args), |_, v| {
                v.map_or_else(|e| failed(&e), |v| Reply::Int(int(&v)))
            })
        }
        MailboxCommand::Config { dest, max_len } => {
            let n = max_len.to_string();
            scripted::run(remote, later, BOXES, box_call(remote, &dest, b"", &[b"config", n.as_bytes()]), |_, v| {
                v.map_or_else(|e| failed(&e), |_| Reply::ok())
            })
        }
        MailboxCommand::Reply { reply_to, payload } => {
            let wake = super::wake::channel(&reply_wake_name(reply_to));
            let call = request_call(remote, reply_to, &[b"reply", &payload, &wake]);
            scripted::run(remote, later, REQUESTS, call, |r, v| match v {
                Ok(v) => {
                    if int(&v) == 0 {
                        r.mail.replies_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Reply::Int(int(&v))
                }
                Err(e) => failed(&e),
            })
        }
        waits => scripted::task(remote, move |remote, tx| run(remote, waits, tx)),
    }
}

/// MSG.SEND's reply from the script's; `None` when it found no room and may wait (`block`).
fn sent(v: redis::RedisResult<Value>, block: bool) -> Option<Reply> {
    match v {
        Ok(Value::Array(v)) => Some(Reply::Int(v.first().map_or(0, int))),
        Ok(_) => Some(Reply::error("ERR redis engine: unexpected MSG.SEND reply")),
        Err(e) if block && e.code() == Some("FULL") => None,
        Err(e) => Some(failed(&e)),
    }
}

/// MSG.RECV's reply from the script's (counting the expired requests it dropped); `None`: nothing there.
fn got(r: &Remote, v: redis::RedisResult<Value>) -> Option<Reply> {
    match v {
        Ok(Value::Array(mut v)) => {
            let dropped = v.first().map_or(0, int);
            r.mail.requests_expired.fetch_add(dropped as u64, Ordering::Relaxed);
            (v.len() == 4).then(|| received(v.split_off(1)))
        }
        Ok(_) => Some(Reply::error("ERR redis engine: unexpected MSG.RECV reply")),
        Err(e) => Some(failed(&e)),
    }
}

/// The mailbox commands that may wait or take several round trips, as a task.
async fn run(remote: Arc<Remote>, cmd: MailboxCommand, mut tx: oneshot::Sender<Reply>) {
    let r = &remote;
    let reply = match cmd {
        MailboxCommand::Send { dest, topic, payload, idempotency, block } => {
            let key = idempotency.unwrap_or_default();
            let keep = r.mail.settings.idempotency_keys.to_string();
            let mark = super::wake::mark_ms(r, block.is_some());
            let attempt = || async {
                sent(
                    boxed(r, &dest, &topic, &[b"send", &payload, &key, keep.as_bytes(), b"", b"0", mark.as_bytes()]).await,
                    block.is_some(),
                )
            };
            super::wake::maybe(r, &wake_name(&dest), block.map(|b| b.duration()), &mut tx, attempt).await
        }
        MailboxCommand::Recv { dest, topic, timeout } => {
            let mark = super::wake::mark_ms(r, timeout.is_some());
            let attempt = || async { got(r, boxed(r, &dest, &topic, &[b"recv", mark.as_bytes()]).await) };
            super::wake::maybe(r, &wake_name(&dest), timeout.map(|t| t.duration()), &mut tx, attempt).await
        }
        MailboxCommand::Request { dest, topic, payload, timeout_ms } => Some(ask(r, dest, topic, payload, timeout_ms, &mut tx).await),
        MailboxCommand::Dests(list) => Some(match dests(r, &crate::dispatch::listing::args(&list)).await {
            Ok(page) => crate::dispatch::listing::reply(page, crate::dispatch::mailbox::dest_summary),
            Err(e) => failed(&e),
        }),
        MailboxCommand::Len { .. } | MailboxCommand::Config { .. } | MailboxCommand::Reply { .. } => unreachable!("answered by execute"),
    };
    let _ = tx.send(reply.unwrap_or(Reply::Nil));
}

/// A received message from the script's `{id, is request, payload}`.
fn received(v: Vec<Value>) -> Reply {
    let [id, request, Value::BulkString(payload)] = <[Value; 3]>::try_from(v).unwrap_or([Value::Nil, Value::Nil, Value::Nil]) else {
        return Reply::error("ERR redis engine: unexpected MSG.RECV reply");
    };
    let payload = Bytes::from(payload);
    received_reply(if int(&request) == 1 { Received::Request { payload, reply_to: int(&id) as u64 } } else { Received::Message(payload) })
}

/// MSG.REQUEST: the request's state first (so a fast reply finds it), then the message; then the
/// wait for the reply, whose outcome the request's state decides on Redis's clock.
async fn ask(r: &Remote, dest: Bytes, topic: Bytes, payload: Bytes, timeout_ms: u64, tx: &mut oneshot::Sender<Reply>) -> Reply {
    let id: u64 = match redis::cmd("INCR").arg(IDS).query_async(&mut conn(r)).await {
        Ok(id) => id,
        Err(e) => return failed(&e),
    };
    let (timeout, grace) = (timeout_ms.to_string(), REQUEST_GRACE_MS.to_string());
    let deadline = match request(r, id, &[b"open", timeout.as_bytes(), grace.as_bytes()]).await {
        Ok(v) => int(&v).to_string(),
        Err(e) => return failed(&e),
    };
    let id_arg = id.to_string();
    let keep = r.mail.settings.idempotency_keys.to_string();
    let sent = boxed(r, &dest, &topic, &[b"send", &payload, b"", keep.as_bytes(), id_arg.as_bytes(), deadline.as_bytes(), b"0"]).await;
    if let Err(e) = sent {
        return failed(&e);
    }
    let take = || async {
        match request(r, id, &[b"take"]).await {
            Ok(Value::Array(v)) => match v.as_slice() {
                [Value::BulkString(s), Value::BulkString(reply)] if s == b"r" => Some(Reply::Bulk(Bytes::copy_from_slice(reply))),
                [Value::BulkString(s)] if s == b"w" => None,
                _ => Some(Reply::Nil),
            },
            Ok(_) => Some(Reply::Nil),
            Err(e) => Some(failed(&e)),
        }
    };
    let until = Some(Instant::now() + Duration::from_millis(timeout_ms));
    if let Some(reply) = super::wake::until(&r.wakes, r.wait_poll, &reply_wake_name(id), until, tx, take).await {
        return reply;
    }
    // This node's timer ran out; Redis's clock decides (it may be a little behind).
    loop {
        if let Some(reply) = take().await {
            return reply;
        }
        if tx.is_closed() {
            return Reply::Nil;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
/// MSG.DESTS: a page of the destinations that hold messages or a bound of their own (as on one node): a
/// SCAN over the destinations' `meta` keys (`listing.rs`), then each one's figures from its own script.
async fn dests(remote: &Remote, args: &ListArgs) -> redis::RedisResult<Page<DestSummary>> {
    let (cursor, names) = super::listing::scan_names(remote, b"herald:msg:{", b"}:meta", args).await?;
    let mut entries = Vec::new();
    for dest in names {
        let Value::Array(mut f) = boxed(remote, &dest, b"", &[b"summary"]).await? else { continue };
        let (length, own) = (f.first().map_or(0, int) as usize, f.get(1).map_or(0, int) as usize);
        if length == 0 && own == 0 {
            continue;
        }
        let queue_prefix = [b"herald:msg:{".as_slice(), &dest, b"}:t:"].concat();
        let mut topics: Vec<(Bytes, usize)> = match f.pop() {
            Some(Value::Array(flat)) => flat
                .chunks(2)
                .filter_map(|p| match &p[0] {
                    Value::BulkString(k) => {
                        Some((Bytes::copy_from_slice(k.strip_prefix(&queue_prefix[..])?), p.get(1).map_or(0, int) as usize))
                    }
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        topics.sort();
        let max_len = if own == 0 { remote.mail.settings.max_messages } else { own };
        entries.push(DestSummary { dest, length, max_len, topics });
    }
    Ok(Page { cursor, entries })
}
