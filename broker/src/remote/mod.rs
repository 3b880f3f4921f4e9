//! The Redis engine: Herald nodes that share one Redis/Valkey server (`docs/scale-out.md`).
//!
//! Chosen with `engine.url` (`--engine`, `HERALD_ENGINE`). Dispatch asks [`route`] once per request,
//! after the permission check (the one check point stays in dispatch): plain Redis commands go to Redis
//! as they are (`forward.rs`), so their semantics are Redis's own; connection and server commands stay
//! with the node; subscriptions are the node's and are bridged (`bridge.rs`); MULTI queues here and EXEC
//! sends one `MULTI ... EXEC`; what cannot be done correctly yet is refused with an error naming the
//! engine. The embedded engine pays one `Option` check per request for all of this.
//!
//! Files: `routes.rs` (where each command goes), `connect.rs` (the URL, TLS, Sentinel), `failover.rs`
//! (following Sentinel's primary), `cluster.rs` (what differs on Redis Cluster), `pool.rs` and
//! `conn.rs` (connections), `import.rs` (moving an embedded data directory in), `value.rs` (value conversion), `forward.rs` (sending), `scripted.rs` (a domain operation's
//! script, pipelined like a plain command), `bridge.rs` (pub-sub, on `link.rs`'s connection, whose
//! frames `push.rs` cuts); the
//! domains `blackboard.rs` (with `notices.rs`, `bb_watch.rs`), `bulletin.rs`, `mailbox.rs`, `stream.rs`,
//! `semaphore.rs` (with `due.rs`), `schema.rs`, and `wake.rs` (their blocking waits); `quota.rs` (per-tenant
//! quotas counted in Redis).

mod bb_watch;
pub mod blackboard;
mod bridge;
pub mod bulletin;
mod cluster;
mod conn;
mod connect;
mod due;
mod failover;
mod forward;
pub mod import;
mod import_work;
mod job_notices;
mod job_store;
pub mod jobs;
mod lean;
mod link;
mod listing;
pub mod mailbox;
mod notices;
mod pool;
mod push;
pub mod quota;
mod resp;
pub mod routes;
pub mod schema;
mod scripted;
pub mod semaphore;
pub mod stream;
pub mod value;
mod waiting;
mod wake;
mod watch;

use std::sync::Arc;

use herald_protocol::command::{CommandSpec, flags};
use herald_protocol::{CommandError, Encoding, Reply, Request};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::dispatch::{Blocked, Outcome, Session};
use crate::pubsub::Hub;
pub use bridge::{Bridge, Listener};
pub use cluster::Seeds;
pub use connect::Sentinels;
use pool::{Pool, Target};
use routes::{Route, Routes};
pub use watch::Pinned;

/// Channels under this prefix carry the node's own notices between nodes, not publications.
pub const NOTICE_PREFIX: &[u8] = b"__herald__:engine:";

pub struct Remote {
    routes: Routes,
    pool: Pool,
    pub bridge: Arc<Bridge>,
    endpoint: Arc<connect::Endpoint>,
    /// How often the sentinels are asked whether the primary moved (`engine.sentinel_poll_ms`).
    sentinel_poll: std::time::Duration,
    /// How often the cluster is asked for its nodes (`engine.cluster_poll_ms`).
    cluster_poll: std::time::Duration,
    /// Under Redis Cluster: which masters serve the slots, and how often that changed.
    masters: cluster::Generation,
    scripts: blackboard::Scripts,
    /// Entries each scope's change log keeps (`blackboard.journal_max_entries`).
    journal_keep: usize,
    /// The fallback poll of BB.WAIT and the other blocking domain commands (`engine.wait_poll_ms`).
    wait_poll: std::time::Duration,
    waiters: notices::Waiters,
    /// Change notices the follower may have waiting (`engine.notice_backlog`).
    notice_backlog: usize,
    /// Jobs on Redis (`jobs.rs`).
    jobs: job_store::RemoteJobs,
    /// Waiters of the blocking domain commands (`wake.rs`).
    wakes: Arc<wake::Wakes>,
    boards: bulletin::Boards,
    mail: mailbox::Mail,
    streams: stream::Streams,
    semaphores: semaphore::Semaphores,
    /// This node's compiled replica of the schemas (`schema.rs`).
    pub schemas: schema::Replica,
    /// Plain commands a client connection may have on their way to Redis at once (`engine.max_in_flight`).
    pub max_in_flight: usize,
    /// Per-tenant quotas counted in Redis (`quota.rs`); `None` without `[[quotas]]`.
    quota: Option<quota::Tally>,
}

/// What dispatch does with a request on the Redis engine.
pub enum Routed {
    /// The node runs it, as on the embedded engine (the request is handed back).
    Local(Request),
    /// Handled here; the outcome is the connection's.
    Done(Outcome),
    /// Refused before it ran.
    Refused(CommandError),
    /// Its quota check asks Redis first (`quota.rs`).
    Recheck(Request, crate::dispatch::Recheck),
}

impl Remote {
    pub fn new(config: &Config) -> Result<Arc<Remote>, String> {
        let engine = &config.engine;
        let endpoint = Arc::new(connect::Endpoint::new(engine)?);
        let endpoint_is_cluster = endpoint.is_cluster();
        let pool = Pool::new(engine, endpoint.clone(), config.databases).map_err(|e| format!("engine.url: {e}"))?;
        Ok(Arc::new(Remote {
            routes: Routes::new(),
            pool,
            bridge: Arc::new(Bridge::new()),
            endpoint,
            sentinel_poll: std::time::Duration::from_millis(engine.sentinel_poll_ms.max(1)),
            cluster_poll: std::time::Duration::from_millis(engine.cluster_poll_ms.max(1)),
            masters: cluster::Generation::default(),
            scripts: blackboard::Scripts::new(),
            journal_keep: config.blackboard.journal_max_entries,
            wait_poll: std::time::Duration::from_millis(engine.wait_poll_ms.max(1)),
            waiters: notices::Waiters::default(),
            notice_backlog: engine.notice_backlog,
            jobs: job_store::RemoteJobs::new(config.jobs),
            wakes: Arc::default(),
            boards: bulletin::Boards::new(config.bulletin),
            mail: mailbox::Mail::new(config.mailboxes),
            streams: stream::Streams::new(config.streams),
            semaphores: semaphore::Semaphores::new(config.semaphores),
            schemas: schema::Replica::new(config.schemas),
            max_in_flight: engine.max_in_flight.max(1),
            quota: quota::Tally::new(config, endpoint_is_cluster),
        }))
    }

    /// Starts the node's background work on the current runtime: the pub-sub bridge, and the follower
    /// of the blackboard's change notices (watch events, waits, catch-up, the expiry sweep), and the
    /// follower of the job queues' notices (waits, job events, the deadline sweep).
    pub fn start(self: &Arc<Self>, hub: &Arc<Hub>, events: Arc<crate::events::Events>, stop: CancellationToken) {
        hub.set_watcher(self.bridge.clone());
        let inbox = notices::start(self, events.clone(), self.notice_backlog, stop.clone());
        let queues = job_notices::start(self, events, self.notice_backlog, stop.clone());
        bulletin::start_sweep(self, stop.clone());
        semaphore::start_sweep(self, stop.clone());
        quota::start(self, stop.clone());
        schema::follow(self, stop.clone());
        let endpoint = self.endpoint.clone();
        let source = Arc::new(move || endpoint.current_client());
        let internal = vec![blackboard::all_channels(), wake::all_channels(), job_store::all_channels()];
        let listeners = Arc::new(bridge::Listeners(vec![inbox, queues]));
        // The bridge's own connection where the lean one is used (not Cluster; a TLS address is the
        // crate's either way: `link.rs`).
        let settings = bridge::Settings { lean: !self.endpoint.is_cluster(), connect_timeout: self.endpoint.connect_timeout() };
        self.bridge.start(source, settings, hub.clone(), internal, listeners, stop.clone());
        if self.endpoint.sentinels().is_some() {
            tokio::spawn(failover::follow(self.clone(), stop));
        } else if self.endpoint.is_cluster() {
            tokio::spawn(cluster::follow(self.clone(), stop));
        }
    }
}

impl Remote {
    /// WAIT for a session on this engine: how many of Redis's replicas have what the session wrote.
    pub fn wait(self: &Arc<Self>, replicas: i64, timeout_ms: u64, session: &mut Session) -> Outcome {
        let since = session.masters_seen.replace(self.masters.current());
        forward::wait(self, replicas, timeout_ms, target(session), since.unwrap_or(0))
    }

    /// Clients waiting in a blocking domain command on this node (INFO `blocked_clients`).
    pub fn blocked(&self) -> usize {
        self.wakes.blocked() + self.jobs_waiting()
    }

    /// The mailbox counters with this node's share on this engine added.
    pub fn mail_stats(&self, mut stats: crate::engine::mailbox::MailStats) -> crate::engine::mailbox::MailStats {
        self.mail.add_stats(&mut stats);
        stats
    }
}

/// The reply a connection gets when the task answering its request vanished (shutdown).
pub(crate) fn abandoned() -> Reply {
    Reply::error("ERR redis engine: the request was abandoned (shutting down)")
}

/// The refusal for what the Redis engine does not do (yet), naming the command.
pub fn unsupported(spec: &CommandSpec) -> CommandError {
    CommandError::new(format!("ERR {} is not supported by the redis engine (docs/scale-out.md)", spec.display_name()))
}

fn target(session: &Session) -> Target {
    Target { db: session.db(), resp3: session.encoding() != Encoding::Resp2 }
}

/// Decides what happens to a request on the Redis engine; called by dispatch after the permission and
/// mode checks, before MULTI queueing.
pub fn route(remote: &Arc<Remote>, spec: &'static CommandSpec, req: Request, session: &mut Session) -> Routed {
    let (spec, req) = if spec.name == "spublish" { bridge::shard_publish(&req) } else { (spec, req) };
    let route = remote.routes.of(spec, &req);
    let cluster = remote.endpoint.is_cluster();
    if cluster {
        if let Some(refused) = cluster::refused(spec, &req) {
            return Routed::Refused(refused);
        }
        session.masters_seen.get_or_insert_with(|| remote.masters.current());
    }
    match spec.name {
        "watch" if !session.in_multi() => {
            let slot = match cluster.then(|| cluster::one_slot(spec.key_args(&req))).transpose() {
                Ok(slot) => slot.flatten(),
                Err(e) => return Routed::Refused(e),
            };
            let pinned = session.pinned.get_or_insert_with(Pinned::default).clone();
            return Routed::Done(watch::watch(remote, &req, pinned, target(session), slot));
        }
        "bb.watch" if session.in_multi() => return Routed::Done(CommandError::fixed("ERR WATCH inside MULTI is not allowed").into()),
        "bb.watch" => {
            let pinned = session.pinned.get_or_insert_with(Pinned::default).clone();
            return Routed::Done(bb_watch::watch(remote, &req, pinned, target(session)));
        }
        "unwatch" if !session.in_multi() => {
            return Routed::Done(match session.pinned.take() {
                Some(pinned) => watch::release(remote, pinned, Reply::ok()),
                None => Reply::ok().into(),
            });
        }
        "discard" if session.in_multi() && session.pinned.is_some() => {
            session.take_multi();
            let pinned = session.pinned.take().expect("watching");
            return Routed::Done(watch::release(remote, pinned, Reply::ok()));
        }
        _ => {}
    }
    if session.in_multi() && !spec.has(flags::TX_CONTROL) {
        if spec.has(flags::NO_MULTI) {
            // As on the embedded engine (MSG.REQUEST, blocking-only commands).
            return Routed::Refused(CommandError::fixed("ERR Command not allowed inside a transaction"));
        }
        // Inside MULTI only what Redis itself can run joins the transaction; PING, ECHO and UNWATCH
        // answer the same there, and WAIT does not block inside a transaction: Redis answers at once
        // with the replicas that have the connection's writes. Anything else would run outside the
        // transaction: refused (EXEC aborts).
        let joins = matches!(route, Route::Forward | Route::ForwardBlocking) || matches!(spec.name, "ping" | "echo" | "unwatch" | "wait");
        if !joins {
            return Routed::Refused(CommandError::new(format!(
                "ERR {} inside MULTI is not supported by the redis engine (docs/scale-out.md)",
                spec.display_name()
            )));
        }
        let req = match screened(remote, spec, req, session) {
            Ok(req) => req,
            Err(routed) => return routed,
        };
        session.queue_forwarded(spec, req);
        return Routed::Done(Reply::status("QUEUED").into());
    }
    let req = match screened(remote, spec, req, session) {
        Ok(req) => req,
        Err(routed) => return routed,
    };
    match route {
        Route::Forward => Routed::Done(forward::single(remote, spec, req, target(session))),
        Route::ForwardBlocking => Routed::Done(forward::blocking(remote, spec, &req, target(session))),
        Route::Local if spec.name == "exec" && session.in_multi() => Routed::Done(exec(remote, session)),
        Route::Local | Route::Domain => Routed::Local(req),
        Route::Unsupported => Routed::Refused(unsupported(spec)),
    }
}

/// The quota check (`quota.rs`), when the node has quotas: one `Option` check otherwise.
fn screened(remote: &Arc<Remote>, spec: &'static CommandSpec, req: Request, session: &mut Session) -> Result<Request, Routed> {
    match &remote.quota {
        None => Ok(req),
        Some(tally) => quota::screen(remote, tally, spec, req, session).map_err(|screened| match screened {
            quota::Screened::Refused(e) => Routed::Refused(e),
            quota::Screened::Recheck(req, check) => Routed::Recheck(req, check),
        }),
    }
}

/// Whether [`route`] would answer `req` [`Outcome::Later`] as it stands, so it may go while the session's
/// earlier such requests are in flight (`dispatch::forwards_plainly`): a plain command sent to Redis as it
/// is on the shared connection ([`forward::single`]), or a domain operation that is one script on it
/// (`scripted.rs`). A request that is then refused (a permission, a pause) is answered in its turn all the
/// same.
pub fn forwards_plainly(remote: &Remote, req: &Request, session: &Session) -> bool {
    match herald_protocol::command::lookup_known(req) {
        // A request whose quota check must ask Redis waits for what is in flight (`quota::holds`).
        Ok(found) if remote.quota.as_ref().is_some_and(|tally| quota::holds(tally, found.spec, req)) => false,
        // Under Cluster, SCAN visits every master on connections of its own: it waits for what is in flight.
        // A connection not known to be connected takes one request at a time (`Pool::settled`).
        Ok(found) if !session.in_multi() => match remote.routes.of(found.spec, req) {
            Route::Forward => !(found.spec.name == "scan" && remote.endpoint.is_cluster()) && remote.pool.settled(target(session)),
            Route::Domain => scripted::pipelines(remote, found.spec, req, session),
            _ => false,
        },
        _ => false,
    }
}

/// Whether this session's domain operations that are one script are answered [`Outcome::Later`]
/// (`scripted.rs`); the domains' `execute` take it.
pub fn in_order(remote: &Remote, session: &Session) -> bool {
    scripted::in_order(remote, session)
}

fn exec(remote: &Arc<Remote>, session: &mut Session) -> Outcome {
    let Some(multi) = session.take_multi() else { return CommandError::fixed("ERR EXEC without MULTI").into() };
    let pinned = session.pinned.take();
    if multi.failed {
        // Redis forgets the watches of an aborted transaction too.
        return match pinned {
            Some(pinned) => watch::release(remote, pinned, Reply::error("EXECABORT Transaction discarded because of previous errors.")),
            None => CommandError::fixed("EXECABORT Transaction discarded because of previous errors.").into(),
        };
    }
    if remote.endpoint.is_cluster() {
        // Redis Cluster runs a transaction on one slot: its keys' (and its watches'), or EXEC answers
        // CROSSSLOT and the transaction is discarded.
        let keys = multi.forwarded.iter().flat_map(|(spec, req)| spec.key_args(req));
        let watched = pinned.as_ref().and_then(Pinned::slot);
        let one = cluster::one_slot(keys).and_then(|slot| match (slot, watched) {
            (Some(a), Some(b)) if a != b => Err(CommandError::fixed(cluster::CROSSSLOT)),
            _ => Ok(()),
        });
        if let Err(e) = one {
            return match pinned {
                Some(pinned) => watch::release(remote, pinned, Reply::Error(e)),
                None => e.into(),
            };
        }
    }
    if multi.forwarded.iter().any(|(spec, req)| scripted::flushes(spec, req)) {
        scripted::forget(remote);
    }
    match pinned {
        Some(pinned) => watch::exec(remote, pinned, multi.forwarded, target(session)),
        None => forward::exec(remote, multi.forwarded, target(session)),
    }
}

/// SUBSCRIBE / PSUBSCRIBE on the Redis engine: the confirmations wait until the node's pub-sub
/// connection to Redis follows what was just subscribed to.
pub fn subscribed(remote: &Remote, replies: Vec<Reply>) -> Outcome {
    Outcome::RepliesAfter(Blocked::elsewhere(remote.bridge.barrier(), Reply::ok()), replies)
}
