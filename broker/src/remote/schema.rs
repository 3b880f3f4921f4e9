//! Schemas on the Redis engine: SCHEMA.SET / GET / DEL across nodes, and the check of every guarded write.
//!
//! The schemas live in one Redis hash (`herald:schemas`: field `<kind>:<scope length>:<scope>:<name>`,
//! value the schema's text). Every node keeps a compiled replica of it (the embedded engine's
//! [`Schemas`]), so a guarded write (BB.SET, BL.PUBLISH, JOB.SUBMIT, MSG.SEND, MSG.REQUEST) is checked in
//! the node, with the embedded engine's errors, without a round trip. A change publishes a wake-up on
//! `schema` (`wake.rs`); every node then re-reads the hash, as it does after its pub-sub connection comes
//! back (any wake-up may have been missed) and every `engine.wait_poll_ms` in case one was lost, and at
//! start. The node that ran SCHEMA.SET or SCHEMA.DEL applies it to its replica at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use herald_protocol::Reply;
use herald_protocol::command::SchemaCommand;
use redis::Value;
use tokio_util::sync::CancellationToken;

use super::Remote;
use super::pool::Target as Conn;
use super::value::failed;
use crate::dispatch::Outcome;
use crate::dispatch::schema::target;
use crate::engine::Error;
use crate::engine::change::Discard;
use crate::engine::schema::{SchemaKind, SchemaSettings, Schemas, Target};

/// The hash every schema lives in.
pub(super) const HASH: &str = "herald:schemas";
/// The wake-up name a schema change is announced on.
const WAKE: &[u8] = b"schema";

/// This node's compiled replica of the schemas, and how many local changes it has had: a re-read that
/// began before one of them (so it may not see it in Redis yet) is not applied (the change's wake-up
/// brings another).
pub struct Replica(Mutex<Schemas>, AtomicU64);

impl Replica {
    pub fn new(settings: SchemaSettings) -> Replica {
        Replica(Mutex::new(Schemas::new(settings, Arc::new(Discard))), AtomicU64::new(0))
    }

    /// Applies a local change (after Redis has it), so a re-read begun earlier is not applied over it.
    fn changed<T>(&self, change: impl FnOnce(&mut Schemas) -> T) -> T {
        let mut schemas = self.0.lock().expect("schemas");
        self.1.fetch_add(1, Ordering::AcqRel);
        change(&mut schemas)
    }

    /// Checks a guarded write, as the embedded engine does.
    pub fn check(&self, kind: SchemaKind, scope: &[u8], name: &[u8], payload: &[u8]) -> Result<(), Error> {
        self.0.lock().expect("schemas").check(kind, scope, name, payload)
    }
}

const KINDS: [SchemaKind; 4] = [SchemaKind::Board, SchemaKind::Queue, SchemaKind::Topic, SchemaKind::Scope];

/// A target as its field in the hash.
pub(super) fn field((kind, scope, name): &Target) -> Vec<u8> {
    [kind.name().as_bytes(), b":", scope.len().to_string().as_bytes(), b":", scope, b":", name].concat()
}

/// The target a field names.
fn parse_field(f: &[u8]) -> Option<Target> {
    let mut parts = f.splitn(3, |&c| c == b':');
    let kind_name = parts.next()?;
    let kind = KINDS.into_iter().find(|k| k.name().as_bytes() == kind_name)?;
    let len: usize = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let rest = parts.next()?;
    let scope = rest.get(..len)?;
    let name = rest.get(len..)?.strip_prefix(b":")?;
    Some((kind, Bytes::copy_from_slice(scope), Bytes::copy_from_slice(name)))
}

fn conn(remote: &Remote) -> super::conn::Shared {
    remote.pool.shared(Conn { db: 0, resp3: false })
}

/// Runs a schema command on the Redis engine.
pub fn execute(remote: &Arc<Remote>, cmd: SchemaCommand) -> Outcome {
    super::scripted::task(remote, |remote, tx| async move {
        let _ = tx.send(run(&remote, cmd).await);
    })
}

async fn run(remote: &Remote, cmd: SchemaCommand) -> Reply {
    let announce = || redis::cmd("PUBLISH").arg(super::wake::channel(WAKE)).arg("").to_owned();
    match cmd {
        SchemaCommand::Set { target: t, schema } => {
            let t = target(t);
            // Compiled (and bounded) here first: a schema Redis stores always compiles.
            if let Err(e) = remote.schemas.0.lock().expect("schemas").set(t.clone(), &schema) {
                return Reply::Error(e.into());
            }
            let stored: redis::RedisResult<Value> = redis::pipe()
                .cmd("HSET")
                .arg(HASH)
                .arg(field(&t))
                .arg(&schema[..])
                .add_command(announce())
                .query_async(&mut conn(remote))
                .await;
            match stored {
                Ok(_) => {
                    // Again: a re-read that did not see it yet may have dropped it meanwhile.
                    let _ = remote.schemas.changed(|s| s.set(t, &schema));
                    Reply::ok()
                }
                Err(e) => failed(&e),
            }
        }
        SchemaCommand::Get(t) => {
            let got: redis::RedisResult<Option<Vec<u8>>> =
                redis::cmd("HGET").arg(HASH).arg(field(&target(t))).query_async(&mut conn(remote)).await;
            got.map_or_else(|e| failed(&e), |v| v.map_or(Reply::Nil, |s| Reply::Bulk(Bytes::from(s))))
        }
        SchemaCommand::Del(t) => {
            let t = target(t);
            let gone: redis::RedisResult<(i64, Value)> =
                redis::pipe().cmd("HDEL").arg(HASH).arg(field(&t)).add_command(announce()).query_async(&mut conn(remote)).await;
            remote.schemas.changed(|s| s.del(&t));
            gone.map_or_else(|e| failed(&e), |(n, _)| Reply::Int(n))
        }
    }
}

/// Re-reads every schema into the replica: compiles what changed, drops what is gone.
async fn reload(remote: &Remote) -> redis::RedisResult<()> {
    let began = remote.schemas.1.load(Ordering::Acquire);
    let all: HashMap<Vec<u8>, Vec<u8>> = redis::cmd("HGETALL").arg(HASH).query_async(&mut conn(remote)).await?;
    let stored: HashMap<Target, Vec<u8>> = all.into_iter().filter_map(|(f, text)| Some((parse_field(&f)?, text))).collect();
    let mut replica = remote.schemas.0.lock().expect("schemas");
    if remote.schemas.1.load(Ordering::Acquire) != began {
        return Ok(());
    }
    let mut gone = Vec::new();
    replica.image(|t, text| {
        if stored.get(t).is_none_or(|s| s[..] != text[..]) {
            gone.push(t.clone());
        }
    });
    for t in gone {
        replica.del(&t);
    }
    for (t, text) in stored {
        if replica.get(&t).is_none() {
            // A schema that does not compile on this node (another version's rules) guards nothing here.
            let _ = replica.restore(t, Some(Bytes::from(text)));
        }
    }
    Ok(())
}

/// Keeps the node's replica current until `stop`: at start, on every `schema` wake-up (and after a
/// pub-sub gap, which rings every doorbell), and every `engine.wait_poll_ms`.
pub fn follow(remote: &Arc<Remote>, stop: CancellationToken) {
    let remote = remote.clone();
    tokio::spawn(async move {
        let name = Bytes::from_static(WAKE);
        loop {
            let bell = remote.wakes.doorbell(&name);
            let rung = bell.notified();
            tokio::pin!(rung);
            rung.as_mut().enable();
            let _ = reload(&remote).await;
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = &mut rung => {}
                _ = tokio::time::sleep(remote.wait_poll) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_name_their_target() {
        for (kind, scope, name) in [(SchemaKind::Board, "a:b", "c"), (SchemaKind::Board, "a", "b:c"), (SchemaKind::Topic, "", "t:1")] {
            let t = (kind, Bytes::from(scope), Bytes::from(name));
            assert_eq!(parse_field(&field(&t)), Some(t.clone()));
        }
        assert_eq!(parse_field(b"nope:0::x"), None);
    }
}
