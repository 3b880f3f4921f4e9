//! Plain Redis commands sent to the backing Redis as they are. Dispatch runs under no lock here, but it
//! must not wait for the network either: a plain command is answered [`Outcome::Later`], a future the
//! connection polls in request order while it goes on with the requests behind it (a client's pipeline
//! travels as one, `engine.max_in_flight` deep); the rest (blocking commands, WAIT, EXEC) are spawned as
//! their own task and the connection waits for the reply as for a blocked command (`Blocked::elsewhere`),
//! pushes flowing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use herald_protocol::command::CommandSpec;
use herald_protocol::{Reply, Request};
use redis::Value;
use redis::aio::ConnectionLike;
use tokio::sync::oneshot;

use super::Remote;
use super::conn::{Dedicated, Shared};
use super::pool::{Ready, Target};
use super::value::{self, nil_of};
use crate::dispatch::{Blocked, Later, Outcome};
use crate::unblock::Unblocker;

use super::abandoned as lost;

/// One command on the shared connection of the session's database and protocol (under Redis Cluster,
/// to its first key's master, and SCAN across the masters: `cluster.rs`). Nothing is sent until the
/// connection first polls the reply (`server/conn/in_flight.rs`), which it does in request order: the
/// shared connection queues what it is handed in that order, so Redis runs a client's commands as sent
/// (under Cluster: per master). A client that goes away drops the future: the reply, when it comes, is
/// discarded by the connection's driver.
pub fn single(remote: &Arc<Remote>, spec: &'static CommandSpec, req: Request, target: Target) -> Outcome {
    if super::scripted::flushes(spec, &req) {
        super::scripted::forget(remote);
    }
    let (conn, settled) = remote.pool.shared_tracked(target);
    let lean = match conn {
        Shared::Lean(lean) => lean,
        conn => return crate_single(remote, spec, req, conn, settled),
    };
    // The request's own bytes go out and Redis's reply frame comes back as the reply (`resp.rs`): a
    // RESP2 frame says itself which null it is, a RESP3 null is one null whatever the command.
    Outcome::Later(Later::new(async move {
        let sent = lean.send(1, |out| super::resp::write_request(&req, out)).await;
        settled.answered(sent.is_ok());
        match sent.map(|frames| super::resp::reply(&frames.one())) {
            Ok(Ok(reply)) => reply,
            Ok(Err(super::resp::Malformed)) => Reply::error("ERR redis engine: a malformed reply from redis"),
            Err(e) => value::failed(&e.into()),
        }
    }))
}

/// [`single`] on the `redis` crate's connections (TLS, Cluster).
fn crate_single(remote: &Arc<Remote>, spec: &'static CommandSpec, req: Request, mut conn: Shared, settled: Arc<Ready>) -> Outcome {
    let nil = nil_of(spec, req.len(), false);
    let cmd = value::command(&req);
    let route = if remote.endpoint.is_cluster() {
        if spec.name == "scan" {
            let (tx, rx) = oneshot::channel();
            let req = req.clone();
            tokio::spawn(async move {
                let _ = tx.send(super::cluster::scan(&conn, &req).await);
            });
            return Outcome::Block(Blocked::elsewhere(rx, lost()));
        }
        super::cluster::route_of(spec, &req)
    } else {
        None
    };
    Outcome::Later(Later::new(async move {
        let sent = conn.send_routed(&cmd, route).await;
        settled.answered(sent.is_ok());
        match sent {
            Ok(v) => value::reply(v, &nil),
            Err(e) => value::failed(&e),
        }
    }))
}

/// A blocking command (BLPOP, BZPOPMIN, XREAD BLOCK, ...) on a dedicated connection from the bounded
/// pool. If the client goes away first (disconnect, CLIENT KILL, shutdown), the dedicated connection is
/// closed rather than reused, so Redis forgets the waiter and pops nothing for a client that is gone.
pub fn blocking(remote: &Arc<Remote>, spec: &'static CommandSpec, req: &Request, target: Target) -> Outcome {
    let mut one = redis::pipe();
    one.add_command(value::command(req));
    dedicated(remote, target, one, 0, nil_of(spec, req.len(), false))
}

/// `WAIT numreplicas timeout` for a session: Redis counts the replicas that acknowledged the
/// connection's own last write, but the session's writes went over shared connections. So a dedicated
/// connection first makes a write of its own (a PUBLISH on the node's notice prefix, which nobody
/// follows: it only moves the replication offset), necessarily after the session's acknowledged ones,
/// and waits for that: replicas that have it have everything the session wrote before.
///
/// Under Redis Cluster every master is fenced (`cluster::fence`): the answer is the least count.
pub fn wait(remote: &Arc<Remote>, replicas: i64, timeout_ms: u64, target: Target, masters_since: u64) -> Outcome {
    if remote.endpoint.is_cluster() {
        let node = remote.clone();
        return on_dedicated(remote, target, Reply::Int(0), move |conn| {
            Box::pin(async move {
                match conn.cluster() {
                    Some(cluster) => super::cluster::fence(cluster, replicas, timeout_ms, &node.masters, masters_since).await,
                    None => Ok(Value::Int(0)),
                }
            })
        });
    }
    let mut fence = redis::pipe();
    fence.cmd("PUBLISH").arg([super::NOTICE_PREFIX, b"wait-fence"].concat()).arg("").cmd("WAIT").arg(replicas).arg(timeout_ms);
    dedicated(remote, target, fence, 1, Reply::Int(0))
}

/// Sends `commands` (the reply of the one after the first `skip` is the answer) on a dedicated connection
/// from the bounded pool; see [`blocking`].
fn dedicated(remote: &Arc<Remote>, target: Target, commands: redis::Pipeline, skip: usize, nil: Reply) -> Outcome {
    on_dedicated(remote, target, nil, move |conn| {
        Box::pin(async move { conn.send_packed_commands(&commands, skip, 1).await.map(|mut v| v.pop().unwrap_or(Value::Nil)) })
    })
}

/// What [`on_dedicated`] runs on the lent connection (boxed: a closure whose future borrows it).
type Work = Box<dyn for<'c> FnOnce(&'c mut Dedicated) -> futures_util::future::BoxFuture<'c, redis::RedisResult<Value>> + Send>;

/// Runs `work` on a dedicated connection from the bounded pool; its value is the reply (`nil` for a
/// null). A client gone first closes the connection rather than reusing it; see [`blocking`]. CLIENT
/// UNBLOCK of the client is passed on to Redis, naming that connection (`unblock.rs`), so Redis answers
/// the blocked command as it would its own client.
fn on_dedicated(
    remote: &Arc<Remote>,
    target: Target,
    nil: Reply,
    work: impl for<'c> FnOnce(&'c mut Dedicated) -> futures_util::future::BoxFuture<'c, redis::RedisResult<Value>> + Send + 'static,
) -> Outcome {
    let work: Work = Box::new(work);
    let (mut tx, rx) = oneshot::channel();
    let remote = remote.clone();
    let unblocker = Unblocker::new();
    let relay_from = unblocker.clone();
    tokio::spawn(async move {
        let work = async {
            let mut lent = match remote.pool.lend(target).await {
                Ok(lent) => lent,
                Err(e) => return value::failed(&e),
            };
            let answered = Arc::new(AtomicBool::new(false));
            if let Some(id) = lent.redis_id {
                let (remote, answered) = (remote.clone(), answered.clone());
                relay_from.relay(Box::new(move |error| unblock_in_redis(&remote, target, id, error, answered.clone())));
            }
            let result = work(&mut lent.conn).await;
            answered.store(true, Ordering::Release);
            // A CLIENT UNBLOCK already sent may reach Redis late: the connection is not lent again,
            // where it would unblock someone else's command.
            let relayed = relay_from.end_relay();
            match result {
                Ok(v) => {
                    if !relayed {
                        remote.pool.give_back(lent);
                    }
                    value::reply(v, &nil)
                }
                Err(e) => value::failed(&e),
            }
        };
        tokio::select! {
            reply = work => {
                let _ = tx.send(reply);
            }
            _ = tx.closed() => {}
        }
    });
    Outcome::Block(Blocked::elsewhere(rx, lost()).unblockable(unblocker))
}

/// `CLIENT UNBLOCK id TIMEOUT|ERROR` to Redis on the shared connection, for the dedicated connection `id`
/// a client's command is blocked on; the blocked command's own reply then says what happened. The
/// command and the unblock travel on two connections, so Redis may see the unblock first and answer 0
/// (not blocked yet): it is sent again, after a growing pause, until Redis answers 1 or the command
/// is `answered` (by Redis, or failed with its connection).
fn unblock_in_redis(remote: &Arc<Remote>, target: Target, id: u64, error: bool, answered: Arc<AtomicBool>) {
    let mut conn = remote.pool.shared(target);
    let mut cmd = redis::cmd("CLIENT");
    cmd.arg("UNBLOCK").arg(id).arg(if error { "ERROR" } else { "TIMEOUT" });
    tokio::spawn(async move {
        let mut pause = Duration::from_millis(1);
        while !answered.load(Ordering::Acquire) {
            match conn.send_routed(&cmd, None).await {
                Ok(Value::Int(0)) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                _ => return,
            }
        }
    });
}

/// EXEC: the queued commands as one `MULTI ... EXEC` written at once on the shared connection, so Redis
/// runs them as one transaction; EXEC's reply is the reply.
pub fn exec(remote: &Arc<Remote>, queued: Vec<(&'static CommandSpec, Request)>, target: Target) -> Outcome {
    let (tx, rx) = oneshot::channel();
    let mut conn = remote.pool.shared(target);
    tokio::spawn(async move {
        let (reply, _) = transaction(&mut conn, &queued).await;
        let _ = tx.send(reply);
    });
    Outcome::Block(Blocked::elsewhere(rx, lost()))
}

/// Runs `MULTI`, the queued requests, `EXEC` on `conn` in one write; EXEC's reply (a null array when a
/// WATCH aborted it), and whether the connection is still sound.
pub async fn transaction(conn: &mut impl ConnectionLike, queued: &[(&'static CommandSpec, Request)]) -> (Reply, bool) {
    let mut pipe = redis::pipe();
    pipe.cmd("MULTI");
    for (_, req) in queued {
        pipe.add_command(value::command(req));
    }
    pipe.cmd("EXEC");
    let nils: Vec<Reply> = queued.iter().map(|(spec, req)| nil_of(spec, req.len(), true)).collect();
    match conn.req_packed_commands(&pipe, nils.len() + 1, 1).await {
        Ok(mut values) => {
            let reply = match values.pop() {
                Some(Value::Array(items)) => Reply::Array(items.into_iter().zip(&nils).map(|(v, nil)| value::reply(v, nil)).collect()),
                Some(other) => value::reply(other, &Reply::NilArray),
                None => Reply::error("ERR redis engine: EXEC got no reply"),
            };
            (reply, true)
        }
        Err(e) => (value::failed(&e), false),
    }
}
