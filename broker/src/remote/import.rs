//! Moving an embedded node's data directory into Redis, the one-time step from one node to several
//! (`herald --data-dir DIR --migrate-to URL`, docs/scale-out.md "Moving from one node to several").
//!
//! The directory is loaded as the node would load it at start, then written into Redis in the Redis
//! engine's own layout, so nodes started with `--engine URL` afterwards serve it:
//!
//! - the Redis keyspace, every database: each key as `RESTORE key deadline payload REPLACE ABSTTL` with
//!   its `DUMP` payload (Herald's is Redis's format), so Redis checks and stores it as its own;
//! - the blackboard, every scope (the global scope `""` included, which on the embedded engine is
//!   database 0 and on Redis a scope of its own): values, revisions and deadlines, and the scope's
//!   journal position, so a watcher that resumes from an older position is told it lost changes and
//!   re-reads, as after any gap;
//! - Herald streams with their offsets, entries, epochs, retention and closed state;
//! - the work in flight (`import_work.rs`): jobs in every state with their ids, attempts, results,
//!   chunks and deadlines, queue settings and dead letters; bulletin items (free, leased, dead) with
//!   their ids and deadlines; mailbox messages with their ids and idempotency keys; held semaphore
//!   permits. Leases are kept with their ends (a holder that comes back carries on, one that is gone
//!   loses the lease at its end, as after a node's restart), and every counter continues beyond the
//!   node's, so nothing new collides with what was moved;
//! - schemas, and the Lua libraries (`FUNCTION LOAD REPLACE`).
//!
//! Run it with the node stopped and the target Redis holding no Herald data yet. The keys written are
//! replaced if they exist; nothing else in Redis is touched. Nothing is written when the directory
//! cannot be loaded.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::try_join_all;
use redis::Cmd;

use super::Remote;
use super::pool::Target;
use crate::config::Config;
use crate::engine::change::Discard;
use crate::engine::listing::ListArgs;
use crate::state::State;

/// What was written.
#[derive(Debug, Default, PartialEq)]
pub struct Moved {
    pub keys: usize,
    pub scopes: usize,
    pub scope_entries: usize,
    pub streams: usize,
    pub stream_entries: usize,
    /// Jobs in every state, and of them the ones a worker held (moved with their leases).
    pub jobs: usize,
    pub running_jobs: usize,
    /// Bulletin items, dead letters included, and of them the leased and the dead ones.
    pub items: usize,
    pub leased_items: usize,
    pub dead_items: usize,
    pub messages: usize,
    /// Semaphore permits held (moved with their leases).
    pub permits: usize,
    pub schemas: usize,
    pub libraries: usize,
}

/// The summary `herald --migrate-to` prints after `herald: moved `.
impl std::fmt::Display for Moved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} keys, {} blackboard scopes ({} entries), {} streams ({} entries), {} jobs ({} running), \
             {} bulletin items ({} leased, {} dead), {} mailbox messages, {} held semaphore permits, {} schemas, {} libraries",
            self.keys,
            self.scopes,
            self.scope_entries,
            self.streams,
            self.stream_entries,
            self.jobs,
            self.running_jobs,
            self.items,
            self.leased_items,
            self.dead_items,
            self.messages,
            self.permits,
            self.schemas,
            self.libraries
        )
    }
}

/// `herald --data-dir DIR --migrate-to URL`: loads `config`'s data directory and writes it into the
/// Redis at `url` (any engine URL: TLS with `config.engine`'s files, Sentinel with its credentials,
/// Cluster).
pub fn migrate(config: &Config, url: &str) -> Result<Moved, String> {
    if config.persistence.data_dir.is_empty() {
        return Err("--migrate-to needs --data-dir, the directory to move".into());
    }
    let now = crate::clock::Clock::new().now_ms();
    let mut state = State::new(config, Arc::new(Discard), now, 1);
    crate::persist::load(&config.persistence.data_dir, config.persistence.repair, &mut state, now)?;
    let mut target = config.clone();
    target.engine.url = url.to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let remote = Remote::new(&target)?;
        import(&mut state, &remote, now).await
    })
}

/// Commands sent before waiting for their replies (one connection's pipeline).
const BATCH: usize = 256;

/// Writes `state` into the Redis behind `remote`.
pub async fn import(state: &mut State, remote: &Remote, now: u64) -> Result<Moved, String> {
    refused(state, remote)?;
    let mut moved = Moved::default();
    keyspace(state, remote, now, &mut moved).await?;
    blackboard(state, remote, now, &mut moved).await?;
    streams(state, remote, &mut moved).await?;
    super::import_work::jobs(state, remote, &mut moved).await?;
    super::import_work::boards(state, remote, &mut moved).await?;
    super::import_work::mailboxes(state, remote, &mut moved).await?;
    super::import_work::semaphores(state, remote, &mut moved).await?;
    let mut fields = Vec::new();
    state.schemas.image(|target, text| fields.push((super::schema::field(target), text.clone())));
    moved.schemas = fields.len();
    run(remote, 0, fields.into_iter().map(|(f, text)| redis::cmd("HSET").arg(super::schema::HASH).arg(f).arg(&text[..]).clone()).collect())
        .await?;
    moved.libraries = state.libraries.len();
    let loads = state.libraries.iter().map(|src| redis::cmd("FUNCTION").arg("LOAD").arg("REPLACE").arg(&src[..]).clone()).collect();
    run(remote, 0, loads).await?;
    Ok(moved)
}

/// Refuses, before anything is written, keys in a database Redis Cluster does not have.
fn refused(state: &State, remote: &Remote) -> Result<(), String> {
    if remote.endpoint.is_cluster()
        && let Some(db) = (1..state.keyspace.db_count()).find(|&db| state.keyspace.dbsize(db) > 0)
    {
        return Err(format!("database {db} holds keys, and Redis Cluster has database 0 only"));
    }
    Ok(())
}

/// Every key of every numbered database, as Redis's RESTORE takes it, sent [`BATCH`] at a time as the
/// walk goes (a big keyspace is not copied whole into memory first).
async fn keyspace(state: &mut State, remote: &Remote, now: u64, moved: &mut Moved) -> Result<(), String> {
    let ks = &mut state.keyspace;
    for db in 0..ks.db_count() {
        let mut restores = Vec::with_capacity(BATCH);
        for key in ks.keys(db, b"*", now) {
            let Some(payload) = ks.dump(db, &key, now).map_err(|e| format!("DUMP {}: {e:?}", String::from_utf8_lossy(&key)))? else {
                continue;
            };
            let at = ks.deadline(db, &key, now).ok().flatten().unwrap_or(0);
            restores.push(redis::cmd("RESTORE").arg(&key[..]).arg(at).arg(payload).arg("REPLACE").arg("ABSTTL").clone());
            moved.keys += 1;
            if restores.len() == BATCH {
                run(remote, db, std::mem::take(&mut restores)).await?;
            }
        }
        run(remote, db, restores).await?;
    }
    Ok(())
}

/// Every scope's values, revisions and deadlines, and its journal position.
async fn blackboard(state: &mut State, remote: &Remote, now: u64, moved: &mut Moved) -> Result<(), String> {
    let ks = &mut state.keyspace;
    let positions: Vec<(Bytes, u64)> = ks.bb_scope_list(&ListArgs::all()).entries.into_iter().map(|s| (s.scope, s.seq)).collect();
    for (scope, seq) in positions {
        let (_, entries) = ks.bb_getall(&scope, None, now).map_err(|e| format!("BB.GETALL {}: {e:?}", String::from_utf8_lossy(&scope)))?;
        if entries.is_empty() && seq == 0 {
            continue;
        }
        let [vals, revs, dls, _log, seqk, _stats] = super::blackboard::scope_keys(&scope);
        let mut cmds = vec![redis::cmd("SET").arg(&seqk).arg(seq).clone()];
        for (key, e) in &entries {
            cmds.push(redis::cmd("HSET").arg(&vals).arg(&key[..]).arg(&e.value[..]).clone());
            cmds.push(redis::cmd("HSET").arg(&revs).arg(&key[..]).arg(e.revision).clone());
            if e.ttl_ms >= 0 {
                cmds.push(redis::cmd("ZADD").arg(&dls).arg(now + e.ttl_ms as u64).arg(&key[..]).clone());
            }
        }
        moved.scopes += 1;
        moved.scope_entries += entries.len();
        run(remote, 0, cmds).await?;
    }
    Ok(())
}

/// Every Herald stream: its log (entries with their times, offsets continuing from the first kept),
/// its shape, and its name's epoch counter, so a reader resuming with `EPOCH` finds the same stream.
async fn streams(state: &State, remote: &Remote, moved: &mut Moved) -> Result<(), String> {
    for name in state.streams.names() {
        let Some(log) = state.streams.log(&name) else { continue };
        let k = |suffix: &[u8]| [b"herald:stream:{".as_slice(), &name, b"}:", suffix].concat();
        let retention = log.retention();
        // The old log goes first, on its own: a second run must not append the entries again.
        run(remote, 0, vec![redis::cmd("DEL").arg(k(b"log")).clone()]).await?;
        let mut cmds = vec![
            redis::cmd("HSET")
                .arg(k(b"meta"))
                .arg("next")
                .arg(log.next_offset())
                .arg("bytes")
                .arg(log.bytes())
                .arg("closed")
                .arg(u8::from(log.is_closed()))
                .arg("epoch")
                .arg(log.epoch())
                .arg("maxlen")
                .arg(retention.max_len)
                .arg("maxage")
                .arg(retention.max_age_ms)
                .clone(),
            redis::cmd("SET").arg(k(b"epochs")).arg(log.epoch()).clone(),
        ];
        for e in log.entries() {
            cmds.push(redis::cmd("RPUSH").arg(k(b"log")).arg([format!("{}:", e.at_ms).as_bytes(), &e.data].concat()).clone());
        }
        moved.streams += 1;
        moved.stream_entries += log.len();
        run(remote, 0, cmds).await?;
    }
    Ok(())
}

/// Runs `cmds` on database `db`'s shared connection, [`BATCH`] at a time, each batch sent before its
/// replies are awaited (so commands whose order matters go in separate calls); the first error stops
/// the move.
pub(super) async fn run(remote: &Remote, db: usize, cmds: Vec<Cmd>) -> Result<(), String> {
    for batch in cmds.chunks(BATCH) {
        let conn = remote.pool.shared(Target { db, resp3: false });
        let sent = batch.iter().map(|cmd| {
            let mut conn = conn.clone();
            async move { cmd.query_async::<redis::Value>(&mut conn).await.map_err(|e| format!("{e}")) }
        });
        try_join_all(sent).await?;
    }
    Ok(())
}
