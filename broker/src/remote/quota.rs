//! Per-tenant quotas on the Redis engine (`[[quotas]]`, docs/security.md, docs/scale-out.md "Per-tenant
//! quotas"). The same rules, the same requests refused with the same text as on one node (`quota.rs`),
//! counted where the data is: in Redis, shared by every node.
//!
//! Counting. A node keeps, per rule and kind, the count of its last **sweep** plus the creations it let
//! through since that sweep began. A sweep runs every `engine.quota_refresh_ms` (and on demand, below):
//! plain keys are a `SCAN MATCH <pattern>` of every database, blackboard keys the matching scopes' sizes
//! (and an `HSCAN` of the global scope), items, jobs and streams come from the domains' own listing keys
//! (`bulletin::held_items`, `jobs::held_jobs`, `stream::held_streams`). A sweep costs Redis one pass over
//! the keyspace per rule with a keys bound, and one pass over the boards, queues or streams per rule with
//! such a bound; nodes without quotas run none.
//!
//! The request path. A request that may create (`quota::candidates`) for a tenant under its bound goes
//! on at once, and counts as a creation (an update of what exists counts too: the count only errs high,
//! and the next sweep settles it). At the bound, the request waits while the node asks Redis
//! (`Outcome::Recheck`): whether the key, scope key or stream exists (an update goes on, uncounted), and, when
//! this node may have freed room since its last sweep began (a delete, a completed job, a removed item,
//! or creations counted high), for a fresh sweep; then it is refused or handed to dispatch again. So a
//! node never refuses for a count it knows to be stale, and at the bound costs the tenant one round trip
//! (plus a sweep after room may have been freed through this node).
//!
//! What is weaker than one node: another node's creations are seen at this node's next sweep, so nodes
//! together may overshoot a bound by what the others created within `engine.quota_refresh_ms`; room freed
//! through another node (or by expiry) is seen at the next sweep too. Inside `MULTI`, where nothing can
//! wait for Redis, a command that may create for a tenant at its bound is refused at queue time even when
//! it would only update. A script run in Redis (`EVAL`, `FCALL`) is checked by the keys it declares: at
//! the bound, one declaring a key not there yet is refused (its own calls are Redis's, unseen).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use herald_protocol::command::{self, CommandSpec, Group, flags};
use herald_protocol::{CommandError, Reply, Request};
use redis::RedisResult;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::Remote;
use super::pool::Target;
use super::scripted::DOMAIN;
use crate::config::Config;
use crate::dispatch::{Recheck, Session};
use crate::engine::glob::glob_match;
use crate::quota::{Candidate, Kind, Quotas};

/// SCAN's `COUNT` for the sweep of plain keys: keys Redis looks at per round trip.
const SCAN_COUNT: usize = 1000;

/// The node's counts of what the tenants with quotas hold in Redis.
pub struct Tally {
    quotas: Quotas,
    /// Per rule, per [`Kind`].
    slots: Vec<[Slot; 4]>,
    /// Per kind: requests through this node that may have freed room (a delete, a finished job ...).
    freed: [AtomicU64; 4],
    /// The number of the last sweep begun, and (sent) of the last one finished.
    begun: AtomicU64,
    finished: watch::Sender<u64>,
    /// A request at a bound wants a fresh sweep.
    wanted: Notify,
    every: Duration,
    /// Databases whose keys count (Redis Cluster has one).
    databases: usize,
}

#[derive(Default)]
struct Slot {
    counted: Mutex<Counted>,
    /// Requests this node let through that may have created one.
    created: AtomicU64,
}

/// A sweep's count, and where this node's counters stood when it began.
#[derive(Default, Clone, Copy)]
struct Counted {
    done: bool,
    count: u64,
    created: u64,
    freed: u64,
}

impl Tally {
    /// The tally for `config`'s quotas; `None` without any (the request path then pays one check).
    pub fn new(config: &Config, cluster: bool) -> Option<Tally> {
        let quotas = Quotas::new(&config.quotas)?;
        let slots = quotas.rules().map(|_| Default::default()).collect();
        Some(Tally {
            quotas,
            slots,
            freed: Default::default(),
            begun: AtomicU64::new(0),
            finished: watch::Sender::new(0),
            wanted: Notify::new(),
            every: Duration::from_millis(config.engine.quota_refresh_ms.max(1)),
            databases: if cluster { 1 } else { config.databases.max(1) },
        })
    }

    /// The rules (by index) with a bound of `kind` that `name` falls under, and the bound.
    fn bounds<'a>(&'a self, kind: Kind, name: &'a [u8]) -> impl Iterator<Item = (usize, u64)> + 'a {
        self.quotas.rules().enumerate().filter_map(move |(i, (pattern, limits))| {
            let limit = limits[kind as usize];
            (limit > 0 && glob_match(pattern, name)).then_some((i, limit))
        })
    }

    /// What the tenant of rule `i` holds of `kind`, as far as this node knows; `None` before the first sweep.
    fn estimate(&self, i: usize, kind: Kind) -> Option<u64> {
        let slot = &self.slots[i][kind as usize];
        let counted = *slot.counted.lock().expect("quota count");
        counted.done.then(|| counted.count + slot.created.load(Ordering::Relaxed).saturating_sub(counted.created))
    }

    /// Whether this node's count for rule `i` may be stale: never counted, or creations counted, or room
    /// perhaps freed through this node, since its sweep began.
    fn stale(&self, i: usize, kind: Kind) -> bool {
        let slot = &self.slots[i][kind as usize];
        let counted = *slot.counted.lock().expect("quota count");
        !counted.done
            || slot.created.load(Ordering::Relaxed) != counted.created
            || self.freed[kind as usize].load(Ordering::Relaxed) != counted.freed
    }

    /// Waits for a sweep that began after this call.
    async fn fresh(&self) {
        let after = self.begun.load(Ordering::SeqCst);
        let mut finished = self.finished.subscribe();
        self.wanted.notify_one();
        let _ = finished.wait_for(|n| *n > after).await;
    }

    /// Notes a request that may free room, before it runs (a delete of any kind, a finished job, a removed
    /// item ...): counts of sweeps that began before it are stale from then on.
    fn note_freeing(&self, spec: &CommandSpec) {
        if let Some(kind) = freeing(spec) {
            self.freed[kind as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts the request's creations (through this node, since the sweep).
    fn note_created(&self, found: &[Candidate]) {
        for c in found.iter().filter(|c| !matches!(c, Candidate::Declared(_))) {
            for (i, _) in self.bounds(c.kind(), c.name()) {
                self.slots[i][c.kind() as usize].created.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Candidates of `found` whose tenant is at a bound (or not counted yet), with the rule.
    fn at_bound(&self, found: &[Candidate]) -> Vec<(Candidate, usize)> {
        let mut out = Vec::new();
        for c in found {
            for (i, limit) in self.bounds(c.kind(), c.name()) {
                if self.estimate(i, c.kind()).is_none_or(|held| held >= limit) {
                    out.push((c.clone(), i));
                }
            }
        }
        out
    }

    /// The refusal when the tenant of rule `i` is at its bound of `kind` by this node's count.
    fn over(&self, i: usize, kind: Kind) -> Option<CommandError> {
        let (pattern, limits) = self.quotas.rules().nth(i)?;
        let limit = limits[kind as usize];
        self.estimate(i, kind).is_some_and(|held| held >= limit).then(|| crate::quota::refusal(kind, pattern, limit))
    }
}

/// The kind of holding a request may free room of, before it runs.
fn freeing(spec: &CommandSpec) -> Option<Kind> {
    match spec.group {
        Group::Bulletin if spec.has(flags::WRITE) && spec.name != "bl.publish" => Some(Kind::Items),
        Group::Jobs if spec.has(flags::WRITE) && spec.name != "job.submit" => Some(Kind::Jobs),
        Group::Stream if spec.name == "stream.del" => Some(Kind::Streams),
        Group::Blackboard if matches!(spec.name, "bb.del" | "bb.clear") => Some(Kind::Keys),
        Group::Scripting => Some(Kind::Keys),
        Group::Server if matches!(spec.name, "flushall" | "flushdb" | "swapdb") => Some(Kind::Keys),
        Group::Generic | Group::String | Group::List | Group::Hash | Group::Set | Group::SortedSet | Group::Bitmap | Group::Stream
            if spec.has(flags::WRITE) && !spec.has(flags::DENYOOM) =>
        {
            Some(Kind::Keys)
        }
        _ => None,
    }
}

/// What a request on the Redis engine may create, as `quota::candidates` names it (the plain commands
/// without parsing them: their keys), a `STREAM.*` only when it writes one, and the keys a script that
/// may write declares.
fn candidates(spec: &'static CommandSpec, req: &Request) -> Vec<Candidate> {
    let keys = |make: fn(Bytes) -> Candidate| spec.key_args(req).into_iter().map(|k| make(Bytes::copy_from_slice(k))).collect();
    match spec.name {
        "eval" | "evalsha" | "fcall" => keys(Candidate::Declared),
        "stream.write" => keys(Candidate::Stream),
        "bb.set" | "bl.publish" | "job.submit" => match command::parse(spec, req) {
            Ok(cmd) => crate::quota::candidates(spec, req, &cmd),
            // Refused as it stands, by the node.
            Err(_) => Vec::new(),
        },
        _ if spec.has(flags::DENYOOM) && crate::quota::redis_data(spec) => keys(Candidate::Key),
        _ => Vec::new(),
    }
}

/// The quota check of a request on the Redis engine (`remote::route`), before it is sent or queued:
/// `Ok` hands the request on; `Err` is what the session gets instead (a refusal, or a [`Recheck`]).
pub fn screen(
    remote: &Arc<Remote>,
    tally: &Tally,
    spec: &'static CommandSpec,
    req: Request,
    session: &mut Session,
) -> Result<Request, Screened> {
    tally.note_freeing(spec);
    let cleared = session.quota_cleared.take();
    let found = candidates(spec, &req);
    if found.is_empty() {
        return Ok(req);
    }
    if let Some(creates) = cleared {
        if creates {
            tally.note_created(&found);
        }
        return Ok(req);
    }
    let at_bound = tally.at_bound(&found);
    if at_bound.is_empty() {
        tally.note_created(&found);
        return Ok(req);
    }
    if session.in_multi() {
        // Nothing inside MULTI can wait for Redis: at the bound by this node's count, refused (see the module doc).
        return match at_bound.iter().find_map(|(c, i)| tally.over(*i, c.kind())) {
            Some(e) => Err(Screened::Refused(e)),
            None => {
                tally.note_created(&found);
                Ok(req)
            }
        };
    }
    // Whether a name of the request is not at a bound: then it counts as a creation, whatever the check finds.
    let unchecked = found.iter().any(|c| !at_bound.iter().any(|(b, _)| b.kind() == c.kind() && b.name() == c.name()));
    let (remote, db) = (remote.clone(), session.db());
    Err(Screened::Recheck(req, Recheck::new(async move { decide(&remote, db, at_bound).await.map(|new| new || unchecked) })))
}

/// Why [`screen`] did not hand a request on.
pub enum Screened {
    Refused(CommandError),
    Recheck(Request, Recheck),
}

/// Whether a request must wait for the session's requests in flight before it is dispatched: it may
/// create for a tenant at its bound, so its check asks Redis, which must have run those first.
pub fn holds(tally: &Tally, spec: &'static CommandSpec, req: &Request) -> bool {
    !tally.at_bound(&candidates(spec, req)).is_empty()
}

/// A request at a bound: `Ok` when it may go (what it names exists, or a fresh count leaves room), with
/// whether it creates one (an update of what exists does not count), else its refusal.
async fn decide(remote: &Remote, db: usize, at_bound: Vec<(Candidate, usize)>) -> Result<bool, Reply> {
    let Some(tally) = remote.quota.as_ref() else { return Ok(true) };
    let mut creates = false;
    for (c, i) in at_bound {
        if exists(remote, db, &c).await.map_err(|e| super::value::failed(&e))? {
            continue;
        }
        creates = true;
        if tally.stale(i, c.kind()) {
            tally.fresh().await;
        }
        if let Some(e) = tally.over(i, c.kind()) {
            return Err(Reply::Error(e));
        }
    }
    Ok(creates)
}

/// Whether what `c` names is there already (so the request only updates it). Items and jobs are always new.
async fn exists(remote: &Remote, db: usize, c: &Candidate) -> RedisResult<bool> {
    let (target, cmd) = match c {
        Candidate::Key(key) | Candidate::Declared(key) => (Target { db, resp3: false }, redis::cmd("EXISTS").arg(&key[..]).clone()),
        Candidate::ScopeKey { scope, key } => {
            let [values, ..] = super::blackboard::scope_keys(scope);
            (DOMAIN, redis::cmd("HEXISTS").arg(values).arg(&key[..]).clone())
        }
        Candidate::Stream(key) => (DOMAIN, redis::cmd("EXISTS").arg(super::stream::meta_key(key)).clone()),
        Candidate::Item(_) | Candidate::Job(_) => return Ok(false),
    };
    let n: i64 = cmd.query_async(&mut remote.pool.shared(target)).await?;
    Ok(n > 0)
}

/// Starts the node's sweep (every `engine.quota_refresh_ms`, and when a request at a bound wants one);
/// it ends with `stop`. Nothing runs without quotas.
pub fn start(remote: &Arc<Remote>, stop: CancellationToken) {
    if remote.quota.is_none() {
        return;
    }
    let remote = remote.clone();
    tokio::spawn(async move {
        let Some(tally) = remote.quota.as_ref() else { return };
        loop {
            sweep(&remote, tally).await;
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(tally.every) => {}
                _ = tally.wanted.notified() => {}
            }
        }
    });
}

/// Counts every rule's holdings in Redis. A count that fails keeps the previous one (logged); until a
/// first count succeeds, requests at no known bound go on (a node does not refuse on a count it lacks).
async fn sweep(remote: &Remote, tally: &Tally) {
    let n = tally.begun.fetch_add(1, Ordering::SeqCst) + 1;
    for (i, (pattern, limits)) in tally.quotas.rules().enumerate() {
        for kind in Kind::ALL.into_iter().filter(|k| limits[*k as usize] > 0) {
            let slot = &tally.slots[i][kind as usize];
            let begun = Counted {
                done: true,
                count: 0,
                created: slot.created.load(Ordering::Relaxed),
                freed: tally.freed[kind as usize].load(Ordering::Relaxed),
            };
            match count(remote, tally, kind, pattern).await {
                Ok(count) => *slot.counted.lock().expect("quota count") = Counted { count, ..begun },
                Err(e) => {
                    tracing::warn!(pattern = %String::from_utf8_lossy(pattern), error = %e, "quota count failed; keeping the last one")
                }
            }
        }
    }
    tally.finished.send_replace(n);
}

/// What the tenant of `pattern` holds of `kind` in Redis now.
async fn count(remote: &Remote, tally: &Tally, kind: Kind, pattern: &[u8]) -> RedisResult<u64> {
    match kind {
        Kind::Keys => Ok(plain_keys(remote, tally.databases, pattern).await? + super::blackboard::held_keys(remote, pattern).await?),
        Kind::Items => super::bulletin::held_items(remote, pattern).await,
        Kind::Jobs => super::jobs::held_jobs(remote, pattern).await,
        Kind::Streams => super::stream::held_streams(remote, pattern).await,
    }
}

/// Keys matching `pattern` in every database, Herald's own (`herald:...`, `{herald:...}`) left out.
async fn plain_keys(remote: &Remote, databases: usize, pattern: &[u8]) -> RedisResult<u64> {
    let mut held = 0;
    for db in 0..databases {
        let mut conn = remote.pool.shared(Target { db, resp3: false });
        let mut cursor = 0;
        loop {
            let (next, keys) = super::listing::scan_keys(&mut conn, cursor, pattern, SCAN_COUNT).await?;
            held += keys.iter().filter(|k| !k.starts_with(b"herald:") && !k.starts_with(b"{herald:")).count() as u64;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
    }
    Ok(held)
}
