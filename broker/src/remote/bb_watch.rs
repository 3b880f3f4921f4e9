//! BB.WATCH on the Redis engine: WATCH for keys of a blackboard scope, ending at the session's EXEC
//! (`watch.rs`). A scope's keys are fields of one Redis hash, which a Redis WATCH could only follow as a
//! whole; the scope's change log names each change's key, so the watch is kept in the node instead:
//!
//! - BB.WATCH sweeps the scope (a key already past its deadline is expired now, not counted as a change
//!   later) and remembers the scope's log position (`herald:bb:{scope}:seq`) with the keys;
//! - EXEC, on the session's pinned connection, sweeps the scope again, WATCHes its sequence key (in
//!   database 0, where the blackboard lives), then reads the log after the remembered position: a change
//!   to a watched key (set, delete, expire), a log that no longer reaches back, a scope whose sequence went
//!   backwards (flushed), or a watched key whose deadline has passed unswept, aborts the transaction
//!   (nil) as on one node. Otherwise `MULTI ... EXEC` runs there, and Redis aborts it if the scope changed
//!   at all after that WATCH (a write to another key of the scope in that moment aborts it too: never a
//!   missed change, at worst a retry).

use std::sync::Arc;

use bytes::Bytes;
use herald_protocol::{Reply, Request};
use redis::Value;

use super::Remote;
use super::blackboard::{invoke, scope_keys};
use super::notices::Entry;
use super::pool::{Lent, Target};
use super::watch::Pinned;
use crate::dispatch::Outcome;

/// One BB.WATCH: the scope, its log position when watched, and the keys.
#[derive(Debug, Clone)]
pub struct Watched {
    scope: Bytes,
    seq: u64,
    keys: Vec<Bytes>,
}

/// Keys a sweep of the scope expires at most (as the periodic sweep's batch).
const SWEEP_BATCH: &[u8] = b"1000";

fn int(v: &Value) -> u64 {
    match v {
        Value::Int(n) => *n as u64,
        Value::BulkString(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).unwrap_or(0),
        _ => 0,
    }
}

/// BB.WATCH scope key [key ...] (not inside MULTI: dispatch answers that before).
pub fn watch(remote: &Arc<Remote>, req: &Request, pinned: Pinned, target: Target) -> Outcome {
    let parts = req.parts();
    let scope = parts[1].clone();
    let keys = parts[2..].to_vec();
    super::scripted::task(remote, |remote, tx| async move {
        let reply = match position(&remote, &scope).await {
            Ok(seq) => match super::watch::hold(&remote, &pinned, target).await {
                Ok(mut lent) => {
                    // Under Redis Cluster the EXEC's WATCH of the scope's sequence key goes where the
                    // session's other watches are: one slot, as for WATCH.
                    let [_, _, _, _, seq_key, _] = scope_keys(&scope);
                    let pinned_here = lent.conn.pin(redis::cluster_routing::Slot::for_key(&seq_key));
                    pinned.put(lent);
                    if pinned_here {
                        pinned.note_bb(Watched { scope, seq, keys });
                        Reply::ok()
                    } else {
                        Reply::error(super::cluster::CROSSSLOT)
                    }
                }
                Err(e) => e,
            },
            Err(e) => super::value::failed(&e),
        };
        let _ = tx.send(reply);
    })
}

/// The scope's log position after expiring what is due.
async fn position(remote: &Remote, scope: &[u8]) -> redis::RedisResult<u64> {
    invoke(remote, &remote.scripts.sweep, scope, &[SWEEP_BATCH]).await?;
    let [_, _, _, _, seq, _] = scope_keys(scope);
    let mut conn = remote.pool.shared(Target { db: 0, resp3: false });
    let v: Value = redis::cmd("GET").arg(seq).query_async(&mut conn).await?;
    Ok(int(&v))
}

/// At EXEC: whether none of the watched keys changed (and the scopes' sequence keys are WATCHed on
/// `lent`, so a change from here to the EXEC aborts it in Redis). An error counts as a change.
pub async fn unchanged(remote: &Remote, lent: &mut Lent, watched: &[Watched], db: usize) -> bool {
    check(remote, lent, watched, db).await.unwrap_or(false)
}

async fn check(remote: &Remote, lent: &mut Lent, watched: &[Watched], db: usize) -> redis::RedisResult<bool> {
    for w in watched {
        invoke(remote, &remote.scripts.sweep, &w.scope, &[SWEEP_BATCH]).await?;
    }
    let mut pipe = redis::pipe();
    if db != 0 {
        pipe.cmd("SELECT").arg(0).ignore();
    }
    for w in watched {
        let [_, _, _, _, seq, _] = scope_keys(&w.scope);
        pipe.cmd("WATCH").arg(seq).ignore();
    }
    if db != 0 {
        pipe.cmd("SELECT").arg(db).ignore();
    }
    let _: Value = pipe.query_async(&mut lent.conn).await?;
    let keep = remote.journal_keep.max(1).to_string();
    for w in watched {
        let since = w.seq.to_string();
        let Value::Array(mut read) = invoke(remote, &remote.scripts.changes, &w.scope, &[since.as_bytes(), keep.as_bytes()]).await? else {
            return Ok(false);
        };
        let entries = match read.pop() {
            Some(Value::Array(entries)) if read.len() == 1 && int(&read[0]) >= w.seq => entries,
            // "lost", or the sequence went backwards (the scope was flushed).
            _ => return Ok(false),
        };
        let touched = entries.iter().any(|e| match e {
            Value::BulkString(b) => Entry::parse(b).is_none_or(|e| w.keys.iter().any(|k| k[..] == *e.key)),
            _ => true,
        });
        if touched || due(remote, w).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether a watched key's deadline passed since the sweep (it expires, unseen yet by the log).
async fn due(remote: &Remote, w: &Watched) -> redis::RedisResult<bool> {
    let [_, _, deadlines, ..] = scope_keys(&w.scope);
    let mut conn = remote.pool.shared(Target { db: 0, resp3: false });
    let keys: Vec<&[u8]> = w.keys.iter().map(|k| &k[..]).collect();
    let (time, scores): ((u64, u64), Vec<Option<f64>>) =
        redis::pipe().cmd("TIME").cmd("ZMSCORE").arg(deadlines).arg(&keys).query_async(&mut conn).await?;
    let now = time.0 * 1000 + time.1 / 1000;
    Ok(scores.into_iter().flatten().any(|d| d <= now as f64))
}
