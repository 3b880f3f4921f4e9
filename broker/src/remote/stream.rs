//! Herald streams on the Redis engine: STREAM.WRITE / READ / CLOSE / INFO / CONFIG / DEL across nodes.
//!
//! Each stream lives under one hash tag (`herald:stream:{<key>}:...`: the log as a list, its next
//! offset, size, closed flag, epoch and retention), and each operation is one Lua script on that slot
//! (`lua/stream.lua`) on Redis's clock: offsets are consecutive from 0 and decided by Redis, so writers
//! on every node share one sequence, and a reader resumes from any node by offset. A stream's epoch
//! comes from a per-name counter that outlives the stream, so a reader passing `EPOCH` learns of a
//! re-creation (`-STALE`) as on one node. Blocking reads wait as in `wake.rs`.

use std::sync::Arc;

use bytes::Bytes;
use herald_protocol::command::StreamCommand;
use herald_protocol::{CommandError, Reply};
use redis::Value;
use tokio::sync::oneshot;

use super::Remote;
use super::scripted;
use super::value::failed;
use crate::dispatch::Outcome;
use crate::dispatch::streams::{empty_read, info_fields, list_entry, read_reply};
use crate::engine::listing::{ListArgs, Page};
use crate::engine::stream::{LogEntry, Read, Retention, StreamInfo, StreamSettings};

/// The stream script and the retention defaults it creates streams with.
pub struct Streams {
    pub(super) script: super::scripted::Script,
    settings: StreamSettings,
}

impl Streams {
    pub fn new(settings: StreamSettings) -> Streams {
        Streams { script: super::scripted::Script::new(include_str!("lua/stream.lua")), settings }
    }
}

fn wake_name(key: &[u8]) -> Bytes {
    Bytes::from([b"stream:".as_slice(), key].concat())
}

/// An invocation of the stream script on `key`.
fn call(remote: &Remote, key: &[u8], args: &[&[u8]]) -> redis::Cmd {
    let k = |suffix: &[u8]| [b"herald:stream:{".as_slice(), key, b"}:", suffix].concat();
    let mut cmd = scripted::evalsha(&remote.streams.script, &[k(b"log"), k(b"meta"), k(b"epochs"), k(b"waiting")]);
    let s = &remote.streams.settings;
    cmd.arg(super::wake::channel(&wake_name(key))).arg(s.max_len).arg(s.max_age_ms);
    for a in args {
        cmd.arg(*a);
    }
    cmd
}

const SCRIPT: scripted::Pick = |r| &r.streams.script;

async fn invoke(remote: &Remote, key: &[u8], args: &[&[u8]]) -> redis::RedisResult<Value> {
    scripted::evaluate(remote, &remote.streams.script, &call(remote, key, args)).await
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        Value::BulkString(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).unwrap_or(0),
        _ => 0,
    }
}

/// STREAM.INFO's figures (`None`: no such stream).
async fn info(remote: &Remote, key: &[u8]) -> redis::RedisResult<Option<StreamInfo>> {
    Ok(info_of(invoke(remote, key, &[b"info"]).await?))
}

/// STREAM.INFO's figures from the script's reply.
fn info_of(v: Value) -> Option<StreamInfo> {
    match v {
        Value::Array(v) if v.len() == 8 => {
            let n = |i: usize| int(&v[i]) as u64;
            Some(StreamInfo {
                length: n(0) as usize,
                first: n(1),
                next: n(2),
                bytes: n(3) as usize,
                closed: n(4) == 1,
                epoch: n(5),
                retention: Retention { max_len: n(6) as usize, max_age_ms: n(7) },
            })
        }
        _ => None,
    }
}

/// STREAM.LIST: a page of stream names (a SCAN over the streams' meta keys, `listing.rs`), each with
/// STREAM.INFO's figures.
async fn streams(remote: &Remote, args: &ListArgs) -> redis::RedisResult<Page<(Bytes, StreamInfo)>> {
    let (cursor, names) = super::listing::scan_names(remote, b"herald:stream:{", b"}:meta", args).await?;
    let mut entries = Vec::with_capacity(names.len());
    for name in names {
        // A stream deleted between the SCAN and here is left out.
        if let Some(info) = info(remote, &name).await? {
            entries.push((name, info));
        }
    }
    Ok(Page { cursor, entries })
}

/// The streams a tenant holds (per-tenant quotas, `quota.rs`): a SCAN over the streams' `meta` keys whose
/// names match `pattern` (a stream exists while its `meta` does).
pub(super) async fn held_streams(remote: &Remote, pattern: &[u8]) -> redis::RedisResult<u64> {
    let mine = ListArgs { pattern: Some(Bytes::copy_from_slice(pattern)), ..ListArgs::all() };
    let (_, names) = super::listing::scan_names(remote, b"herald:stream:{", b"}:meta", &mine).await?;
    Ok(names.iter().filter(|n| crate::engine::glob::glob_match(pattern, n)).count() as u64)
}

/// Stream `key`'s `meta` key: the stream exists while it does.
pub(super) fn meta_key(key: &[u8]) -> Vec<u8> {
    [b"herald:stream:{".as_slice(), key, b"}:meta"].concat()
}

/// Runs a stream command on the Redis engine: one script answered later (`scripted.rs`; `later`: the
/// session is in order with the domain connection), or a task the connection waits for when it may wait
/// (READ BLOCK) or takes several round trips (LIST, DEL).
pub fn execute(remote: &Arc<Remote>, cmd: StreamCommand, later: bool) -> Outcome {
    let one =
        |call: redis::Cmd, then: fn(redis::RedisResult<Value>) -> Reply| scripted::run(remote, later, SCRIPT, call, move |_, v| then(v));
    match cmd {
        StreamCommand::Write { key, data } => one(call(remote, &key, &[b"write", &data]), counted),
        StreamCommand::Read { key, from, count, block: None, epoch } => {
            let (from_arg, count_arg, epoch_arg) = (from.to_string(), count.to_string(), epoch.map(|e| e.to_string()).unwrap_or_default());
            let call = call(remote, &key, &[b"read", from_arg.as_bytes(), count_arg.as_bytes(), epoch_arg.as_bytes(), b"0"]);
            scripted::run(remote, later, SCRIPT, call, move |_, v| read(v, from).unwrap_or_else(|| empty_read(from)))
        }
        StreamCommand::Close(key) => one(call(remote, &key, &[b"close"]), counted),
        StreamCommand::Info(key) => one(call(remote, &key, &[b"info"]), |v| match v.map(info_of) {
            Ok(Some(info)) => Reply::fields(info_fields(info)),
            Ok(None) => Reply::Nil,
            Err(e) => failed(&e),
        }),
        StreamCommand::Config { key, max_len, max_age_ms } => {
            let (len, age) = (max_len.map(|n| n.to_string()).unwrap_or_default(), max_age_ms.map(|n| n.to_string()).unwrap_or_default());
            one(call(remote, &key, &[b"config", len.as_bytes(), age.as_bytes()]), |v| v.map_or_else(|e| failed(&e), |_| Reply::ok()))
        }
        waits => scripted::task(remote, move |remote, tx| run(remote, waits, tx)),
    }
}

/// The script's count as the reply (STREAM.WRITE's offset, STREAM.CLOSE's flag).
fn counted(v: redis::RedisResult<Value>) -> Reply {
    v.map_or_else(|e| failed(&e), |v| Reply::Int(int(&v)))
}

/// STREAM.READ's reply from the script's; `None` when there is nothing yet and the stream is open.
fn read(v: redis::RedisResult<Value>, from: u64) -> Option<Reply> {
    match v {
        Ok(Value::Array(v)) => match read_of(v, from) {
            Ok(reply) => reply,
            Err(e) => Some(Reply::Error(e)),
        },
        Ok(_) => Some(Reply::error("ERR redis engine: unexpected STREAM.READ reply")),
        Err(e) => Some(failed(&e)),
    }
}

/// The stream commands that may wait or take several round trips, as a task.
async fn run(remote: Arc<Remote>, cmd: StreamCommand, mut tx: oneshot::Sender<Reply>) {
    let r = &remote;
    let reply = match cmd {
        StreamCommand::Read { key, from, count, block, epoch } => {
            let (from_arg, count_arg, epoch_arg) = (from.to_string(), count.to_string(), epoch.map(|e| e.to_string()).unwrap_or_default());
            let mark = super::wake::mark_ms(r, block.is_some());
            let attempt = || async {
                read(
                    invoke(r, &key, &[b"read", from_arg.as_bytes(), count_arg.as_bytes(), epoch_arg.as_bytes(), mark.as_bytes()]).await,
                    from,
                )
            };
            match block {
                None => Some(attempt().await.unwrap_or_else(|| empty_read(from))),
                Some(wait) => super::wake::maybe(r, &wake_name(&key), Some(wait.duration()), &mut tx, attempt).await,
            }
        }
        StreamCommand::List(list) => Some(match streams(r, &crate::dispatch::listing::args(&list)).await {
            Ok(page) => crate::dispatch::listing::reply(page, list_entry),
            Err(e) => failed(&e),
        }),
        StreamCommand::Del(keys) => {
            // One script per stream (each its own slot); the count is of those that existed.
            let mut deleted = 0;
            let mut error = None;
            for key in keys {
                match invoke(r, &key, &[b"del"]).await {
                    Ok(v) => deleted += int(&v),
                    Err(e) => error = Some(failed(&e)),
                }
            }
            Some(error.unwrap_or(Reply::Int(deleted)))
        }
        StreamCommand::Write { .. } | StreamCommand::Close(_) | StreamCommand::Info(_) | StreamCommand::Config { .. } => {
            unreachable!("answered by execute")
        }
    };
    let _ = tx.send(reply.unwrap_or(Reply::Nil));
}

/// A read from the script's `{'missing'}` or `{epoch, next, ended, offset, data, ...}`: the reply, or
/// `None` when there is nothing yet and the stream is open (a blocking read waits then).
fn read_of(v: Vec<Value>, from: u64) -> Result<Option<Reply>, CommandError> {
    if v.len() < 3 {
        return read_reply(Read::Entries { entries: Vec::new(), next: from, ended: false }, None, from);
    }
    let (epoch, next, ended) = (int(&v[0]) as u64, int(&v[1]) as u64, int(&v[2]) == 1);
    let entries = v[3..]
        .chunks_exact(2)
        .map(|pair| LogEntry {
            offset: int(&pair[0]) as u64,
            data: match &pair[1] {
                Value::BulkString(b) => Bytes::copy_from_slice(b),
                _ => Bytes::new(),
            },
            at_ms: 0,
        })
        .collect();
    read_reply(Read::Entries { entries, next, ended }, Some(epoch), from)
}
