//! A connection to the backing Redis that is either one server (standalone, Sentinel's primary) or a
//! whole Redis Cluster (`redis+cluster://`, `cluster.rs`). The domains, listings and forwarding hold
//! one of these and do not care which: both are a [`ConnectionLike`], so scripts (`invoke_async`),
//! commands and pipelines work unchanged, and on a Cluster the `redis` crate's cluster client sends
//! each to the master of its first key's slot (following `MOVED`/`ASK` and failovers).
//!
//! Two things differ on a Cluster and are handled here rather than in every caller: a pipeline whose
//! commands touch several slots (the blackboard's per-scope figures, say) is sent command by command,
//! concurrently, instead of failing as one cross-slot pipeline; and [`Shared::send_routed`] lets the
//! forwarding of plain commands pick the node itself (the first key's slot owner, so a multi-key
//! command across slots gets Redis Cluster's own `CROSSSLOT` instead of being split by the client).

use std::sync::Arc;

use futures_util::FutureExt;
use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use tokio::sync::OnceCell;

use super::lean::Lean;

/// The shared, multiplexed connection of a target: Herald's own to one server (`lean.rs`), the crate's
/// over TLS, or a cluster connection.
#[derive(Clone)]
pub enum Shared {
    Lean(Arc<Lean>),
    Single(ConnectionManager),
    Cluster(LazyCluster),
}

/// A cluster connection made on first use (the node is built before its runtime runs), and made
/// again on a later use if the first attempt failed (the cluster was not up yet).
#[derive(Clone)]
pub struct LazyCluster(Arc<(ClusterClient, OnceCell<ClusterConnection>)>);

impl LazyCluster {
    pub fn new(client: ClusterClient) -> LazyCluster {
        LazyCluster(Arc::new((client, OnceCell::new())))
    }

    pub async fn get(&self) -> RedisResult<ClusterConnection> {
        let (client, conn) = &*self.0;
        conn.get_or_try_init(|| client.get_async_connection()).await.cloned()
    }
}

/// A dedicated connection (blocking commands, WATCH, WAIT's fence): to the one server, or a cluster
/// connection of its own (one socket per node it talks to, so a blocked command holds nobody else's).
/// A cluster connection a session WATCHes on is pinned to the watched keys' slot: its transaction
/// goes to that slot's master, where the watches are, whatever keys it holds.
pub enum Dedicated {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection, Option<Slot>),
}

impl Shared {
    /// The cluster connection, when this is a Cluster.
    pub async fn cluster(&self) -> Option<RedisResult<ClusterConnection>> {
        match self {
            Shared::Lean(_) | Shared::Single(_) => None,
            Shared::Cluster(lazy) => Some(lazy.get().await),
        }
    }

    /// `cmd` to the node `route` names on a Cluster (`None`: the cluster client's own routing), or to
    /// the one server.
    pub async fn send_routed(&mut self, cmd: &Cmd, route: Option<RoutingInfo>) -> RedisResult<Value> {
        match self {
            Shared::Lean(lean) => on_lean(lean, cmd).await,
            Shared::Single(m) => m.send_packed_command(cmd).await,
            Shared::Cluster(lazy) => send_on_cluster(&mut lazy.get().await?, cmd, route).await,
        }
    }
}

impl Dedicated {
    /// See [`Shared::send_routed`].
    pub async fn send_routed(&mut self, cmd: &Cmd, route: Option<RoutingInfo>) -> RedisResult<Value> {
        match self {
            Dedicated::Single(m) => m.send_packed_command(cmd).await,
            Dedicated::Cluster(c, _) => send_on_cluster(c, cmd, route).await,
        }
    }

    pub fn cluster(&mut self) -> Option<&mut ClusterConnection> {
        match self {
            Dedicated::Single(_) => None,
            Dedicated::Cluster(c, _) => Some(c),
        }
    }

    /// Pins a cluster connection to `slot` (a WATCH); false if it is pinned to another one already.
    pub fn pin(&mut self, slot: Slot) -> bool {
        match self {
            Dedicated::Single(_) => true,
            Dedicated::Cluster(_, pinned) => *pinned.get_or_insert(slot) == slot,
        }
    }

    /// The slot this connection's watches are on (`None`: none, or not a Cluster).
    pub fn pinned(&self) -> Option<Slot> {
        match self {
            Dedicated::Single(_) => None,
            Dedicated::Cluster(_, pinned) => *pinned,
        }
    }

    /// Forgets the pin (the watches ended).
    pub fn unpin(&mut self) {
        if let Dedicated::Cluster(_, pinned) = self {
            *pinned = None;
        }
    }
}

async fn send_on_cluster(conn: &mut ClusterConnection, cmd: &Cmd, route: Option<RoutingInfo>) -> RedisResult<Value> {
    match route {
        Some(route) => conn.route_command(cmd.clone(), route).await,
        None => conn.req_packed_command(cmd).await,
    }
}

/// `cmd` on the lean connection, its reply as the crate's connection gives it (`redis::Value`, Redis's
/// error replies as [`Value::ServerError`]). Written at the future's first poll.
async fn on_lean(lean: &Arc<Lean>, cmd: &Cmd) -> RedisResult<Value> {
    let frame = lean.send(1, |out| cmd.write_packed_command(out)).await?.one();
    value_of(&frame)
}

thread_local! {
    /// The crate's parser, kept: `redis::parse_redis_value` makes (and zeroes) a new buffer per call,
    /// which cost more than the rest of a script's round trip on the node (docs/benchmarks.md).
    static PARSER: std::cell::RefCell<redis::Parser> = std::cell::RefCell::new(redis::Parser::new());
}

/// A complete reply frame as the crate's `redis::Value`: the common shapes read directly
/// (`resp::plain_value`, the same values), the rest by the crate's own parser, so the values are the ones
/// the domains always read.
fn value_of(frame: &[u8]) -> RedisResult<Value> {
    if let Some(value) = super::resp::plain_value(frame) {
        return Ok(value);
    }
    PARSER.with(|parser| {
        let mut parser = parser.borrow_mut();
        let value = parser.parse_value(frame);
        if value.is_err() {
            *parser = redis::Parser::new();
        }
        value
    })
}

/// A pipeline on the lean connection, answered as the crate's multiplexed connection answers one: the
/// replies after the first `offset`, `count` of them, Redis's errors among them as values; for a
/// transaction (`atomic`), an error queueing a command fails the whole (the crate's aborted transaction).
async fn pipeline_on_lean(lean: &Arc<Lean>, pipe: &Pipeline, offset: usize, count: usize) -> RedisResult<Vec<Value>> {
    let transaction = pipe.is_transaction();
    let replies = if transaction { pipe.len() + 2 } else { pipe.len() };
    if replies == 0 {
        return Ok(Vec::new());
    }
    let frames = lean
        .send(replies, |out| {
            if transaction {
                out.extend_from_slice(&pipe.get_packed_pipeline());
            } else {
                for cmd in pipe.cmd_iter() {
                    cmd.write_packed_command(out);
                }
            }
        })
        .await?
        .all();
    let mut values = frames.iter().map(|f| value_of(f)).collect::<RedisResult<Vec<_>>>()?;
    if transaction && let Some(Value::ServerError(e)) = values.iter().take(offset).find(|v| matches!(v, Value::ServerError(_))) {
        return Err(e.clone().into());
    }
    values.truncate(offset + count);
    Ok(values.split_off(offset.min(values.len())))
}

/// A pipeline on a Cluster: a transaction (`MULTI` first) goes as one to its slot's master (the
/// cluster client refuses one across slots); any other pipeline goes command by command,
/// concurrently, each to its own slot's master, the replies in the pipeline's order (a command's
/// error in its place, as in a pipeline's reply).
async fn pipeline_on_cluster(
    conn: &mut ClusterConnection,
    pinned: Option<Slot>,
    pipe: &Pipeline,
    offset: usize,
    count: usize,
) -> RedisResult<Vec<Value>> {
    let transaction = pipe
        .cmd_iter()
        .next()
        .and_then(|c| c.args_iter().next())
        .is_some_and(|a| matches!(a, redis::Arg::Simple(name) if name.eq_ignore_ascii_case(b"MULTI")));
    if let (true, Some(slot)) = (transaction, pinned) {
        let route = SingleNodeRoutingInfo::SpecificNode(Route::with_slot(slot, SlotAddr::Master));
        return conn.route_pipeline(pipe.clone(), offset, count, route).await;
    }
    if transaction || pipe.cmd_iter().count() <= 1 {
        return conn.req_packed_commands(pipe, offset, count).await;
    }
    let sends = pipe.cmd_iter().skip(offset).take(count).map(|cmd| {
        let mut conn = conn.clone();
        async move {
            match conn.req_packed_command(cmd).await {
                Ok(v) => Ok(v),
                Err(e) => match redis::ServerError::try_from(e) {
                    Ok(server) => Ok(Value::ServerError(server)),
                    Err(e) => Err(e),
                },
            }
        }
    });
    futures_util::future::join_all(sends).await.into_iter().collect()
}

/// The inherent `send_packed_*` of the crate's connections, so callers read the same on either kind.
impl Dedicated {
    pub async fn send_packed_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        self.req_packed_command(cmd).await
    }

    pub async fn send_packed_commands(&mut self, pipe: &Pipeline, offset: usize, count: usize) -> RedisResult<Vec<Value>> {
        self.req_packed_commands(pipe, offset, count).await
    }
}

impl ConnectionLike for Shared {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Shared::Lean(lean) => on_lean(lean, cmd).boxed(),
            Shared::Single(m) => m.req_packed_command(cmd),
            Shared::Cluster(lazy) => async move { lazy.get().await?.req_packed_command(cmd).await }.boxed(),
        }
    }

    fn req_packed_commands<'a>(&'a mut self, pipe: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Shared::Lean(lean) => pipeline_on_lean(lean, pipe, offset, count).boxed(),
            Shared::Single(m) => m.req_packed_commands(pipe, offset, count),
            Shared::Cluster(lazy) => async move { pipeline_on_cluster(&mut lazy.get().await?, None, pipe, offset, count).await }.boxed(),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Shared::Lean(lean) => lean.db(),
            Shared::Single(m) => m.get_db(),
            Shared::Cluster(_) => 0,
        }
    }
}

impl ConnectionLike for Dedicated {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Dedicated::Single(m) => m.req_packed_command(cmd),
            Dedicated::Cluster(c, _) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(&'a mut self, pipe: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Dedicated::Single(m) => m.req_packed_commands(pipe, offset, count),
            Dedicated::Cluster(c, pinned) => pipeline_on_cluster(c, *pinned, pipe, offset, count).boxed(),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Dedicated::Single(m) => m.get_db(),
            Dedicated::Cluster(..) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_kept_parser_reads_frame_after_frame_as_a_new_one_does() {
        let frames: [&[u8]; 5] = [b"+OK\r\n", b"*2\r\n$1\r\na\r\n:3\r\n", b"-ERR bad\r\n", b"$-1\r\n", b"%1\r\n+k\r\n,1.5\r\n"];
        for _ in 0..3 {
            for frame in frames {
                assert_eq!(super::value_of(frame).ok(), redis::parse_redis_value(frame).ok(), "{}", String::from_utf8_lossy(frame));
            }
        }
        assert!(super::value_of(b"?bad\r\n").is_err());
        assert_eq!(super::value_of(b":1\r\n").unwrap(), redis::Value::Int(1));
    }
}
