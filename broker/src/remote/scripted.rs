//! A domain operation that is one script invocation, answered [`Outcome::Later`] as a plain command is
//! (`forward.rs`): its `EVALSHA` is sent on the domain's shared connection at the future's first poll,
//! which the client connection makes in request order (`server/conn/in_flight.rs`), so a client's
//! pipeline of domain operations and plain commands travels as one, and no task is spawned. The rules
//! that keep it exact (docs/scale-out.md, "Pipelines"):
//!
//! - **Order.** Redis runs one connection's requests in the order they are written, so only a session
//!   whose plain commands use the domain's connection (database 0, RESP2) gets its domain operations
//!   answered later; another one's (a RESP3 or JSON client, another database), and every one under
//!   Redis Cluster, run as a spawned task the connection waits for, as before. Blocking forms (BLOCK,
//!   TIMEOUT, WAIT, MSG.REQUEST) and operations of several round trips stay spawned too.
//! - **Joining.** An operation joins replies still in flight only while the domain connection is settled
//!   and its scripts are known to be loaded ([`pipelines`], `Pool::scripts_loaded`); otherwise it waits
//!   for them and goes alone.
//! - **Loading.** An operation that finds the scripts not known to be loaded (a new connection, one after
//!   an error, a SCRIPT FLUSH sent through this node) writes `SCRIPT LOAD` of every pipelined script and
//!   its own `EVALSHA` as one, so a `NOSCRIPT` retry (which would run after requests pipelined behind it)
//!   is needed only when the scripts were flushed behind this node's back.

use std::future::Future;
use std::sync::Arc;

use herald_protocol::command::CommandSpec;
use herald_protocol::{Reply, Request};
use redis::aio::ConnectionLike;
use redis::{Cmd, RedisResult, ToRedisArgs, Value};
use tokio::sync::oneshot;

use super::Remote;
use super::conn::Shared;
use super::pool::{Ready, Target};
use crate::dispatch::{Blocked, Later, Outcome, Session};
use crate::unblock::Unblocker;

/// The connection every domain script runs on (the domains' keys live in database 0).
pub const DOMAIN: Target = Target { db: 0, resp3: false };

/// A domain script: the `redis` crate's (hash, invocation, NOSCRIPT retry) with its code at hand, which
/// the crate keeps to itself, for loading several in one write ([`evaluate`]).
pub struct Script {
    code: &'static str,
    script: redis::Script,
}

impl Script {
    pub fn new(code: &'static str) -> Script {
        Script { code, script: redis::Script::new(code) }
    }
}

impl std::ops::Deref for Script {
    type Target = redis::Script;

    fn deref(&self) -> &redis::Script {
        &self.script
    }
}

/// Picks one of the node's scripts (a plain function, so the future owns no copy of its code).
pub type Pick = fn(&Remote) -> &Script;

/// The scripts an operation answered later may send: loaded together before such an operation joins a
/// pipeline (see the module doc), so none of them answers `NOSCRIPT` inside one.
pub fn pipelined_scripts(remote: &Remote) -> [&Script; 20] {
    let (bb, bl) = (&remote.scripts, &remote.boards);
    let [submit, claim, held, manage, read, queue] = remote.jobs.scripts.all();
    [
        &remote.mail.boxes,
        &remote.mail.requests,
        &remote.streams.script,
        &bb.set,
        &bb.get,
        &bb.del,
        &bb.changes,
        &bb.getall,
        &bb.clear,
        &bb.stats,
        &bl.publish,
        &bl.retrieve,
        &bl.item,
        &remote.semaphores.script,
        submit,
        claim,
        held,
        manage,
        read,
        queue,
    ]
}

/// Domain commands answered later when they carry no waiting option (see [`pipelines`]).
const LATER: &[&str] = &[
    "msg.send",
    "msg.recv",
    "msg.len",
    "msg.config",
    "msg.reply",
    "stream.write",
    "stream.read",
    "stream.close",
    "stream.info",
    "stream.config",
    "bb.set",
    "bb.get",
    "bb.has",
    "bb.del",
    "bb.changes",
    "bb.keys",
    "bb.getall",
    "bb.clear",
    "bb.stats",
    "bl.publish",
    "bl.retrieve",
    "bl.all",
    "bl.get",
    "bl.len",
    "bl.dead",
    "bl.extend",
    "bl.release",
    "bl.remove",
    "bl.redrive",
    "bl.config",
    "sem.acquire",
    "sem.extend",
    "sem.release",
    "sem.info",
    // Jobs: only those `jobs::one_script` finds are one script on a queue known now (see `pipelines`).
    "job.submit",
    "job.claim",
    "job.heartbeat",
    "job.progress",
    "job.chunk",
    "job.complete",
    "job.fail",
    "job.status",
    "job.result",
    "job.read",
    "job.cancel",
    "job.retry",
    "job.list",
    "job.dead",
    "job.stats",
    "job.queue",
];

/// Arguments that make a domain command wait; a request carrying one anywhere (even as a payload) is
/// taken for a blocking one: it then waits for the replies in flight, which is always correct.
const WAITS: &[&[u8]] = &[b"block", b"timeout", b"wait"];

/// `EVALSHA` of `script` on `keys`; the caller adds the arguments.
pub fn evalsha<K: ToRedisArgs>(script: &redis::Script, keys: &[K]) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys.len()).arg(keys);
    cmd
}

/// Whether this session's domain operations are answered later (it writes its plain commands on the
/// domain's connection, so Redis sees both in the order sent).
pub fn in_order(remote: &Remote, session: &Session) -> bool {
    !remote.endpoint.is_cluster() && super::target(session) == DOMAIN
}

/// Whether a domain request may join the session's requests in flight: one answered later, whose
/// scripts are known to be on the domain connection's server (`remote::forwards_plainly`).
pub fn pipelines(remote: &Remote, spec: &CommandSpec, req: &Request, session: &Session) -> bool {
    LATER.contains(&spec.name)
        && !req.parts()[1..].iter().any(|a| WAITS.iter().any(|w| a.eq_ignore_ascii_case(w)))
        && in_order(remote, session)
        && remote.pool.scripts_loaded(DOMAIN)
        && (!spec.name.starts_with("job.") || super::jobs::pipelines(remote, spec, req))
        && (spec.name != "sem.acquire" || super::semaphore::pipelines(remote))
}

/// A forwarded `SCRIPT FLUSH`: the scripts are gone for everyone once it runs, so from its dispatch on no
/// domain operation joins a pipeline until one has loaded them again.
pub fn flushes(spec: &CommandSpec, req: &Request) -> bool {
    spec.name == "script|flush" || (spec.name == "script" && req.parts().get(1).is_some_and(|sub| sub.eq_ignore_ascii_case(b"flush")))
}

/// Forgets that the scripts are loaded (see [`flushes`]).
pub fn forget(remote: &Remote) {
    remote.pool.shared_tracked(DOMAIN).1.forget_scripts();
}

/// One domain operation: `cmd` (an [`evalsha`] of `script`), its result made the reply by `then`.
/// Answered later when `later` (the session is [`in_order`]), else run as a task the connection waits for.
pub fn run(
    remote: &Arc<Remote>,
    later: bool,
    script: Pick,
    cmd: Cmd,
    then: impl FnOnce(&Remote, RedisResult<Value>) -> Reply + Send + 'static,
) -> Outcome {
    run_then(remote, later, script, cmd, move |remote, value| std::future::ready(then(&remote, value)))
}

/// [`run`] whose reply takes a further step of its own after the script (a bulletin board's deadline
/// registered for the sweep): that step is the node's, not the client's, so it may reach Redis after the
/// requests pipelined behind this one; the reply waits for it all the same, as before.
pub fn run_then<F>(
    remote: &Arc<Remote>,
    later: bool,
    script: Pick,
    cmd: Cmd,
    then: impl FnOnce(Arc<Remote>, RedisResult<Value>) -> F + Send + 'static,
) -> Outcome
where
    F: Future<Output = Reply> + Send + 'static,
{
    debug_assert!(
        pipelined_scripts(remote).iter().any(|s| std::ptr::eq(*s, script(remote))),
        "a script answered later must be one `pipelined_scripts` loads"
    );
    let remote_of_task = remote.clone();
    let remote = remote.clone();
    let reply = async move {
        let value = evaluate(&remote, script(&remote), &cmd).await;
        then(remote, value).await
    };
    if later {
        return Outcome::Later(Later::new(reply));
    }
    task(&remote_of_task, move |_, tx| async move {
        let _ = tx.send(reply.await);
    })
}

/// A domain operation that may wait or takes several round trips: `work` runs as a task of its own, and
/// the connection waits for the reply it sends (`Blocked::elsewhere`), its pushes flowing.
pub fn task<F>(remote: &Arc<Remote>, work: impl FnOnce(Arc<Remote>, oneshot::Sender<Reply>) -> F) -> Outcome
where
    F: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    // A wait inside `work` (`waiting.rs`) finds this through the task-local: CLIENT UNBLOCK ends it.
    let unblocker = Unblocker::new();
    tokio::spawn(unblocker.scope(work(remote.clone(), tx)));
    Outcome::Block(Blocked::elsewhere(rx, super::abandoned()).unblockable(unblocker))
}

/// Sends `cmd` (an [`evalsha`] of `script`) on the domain connection; Redis's error replies as errors.
/// Everything it writes is written at its first poll: the scripts' loads, when they are not known to be
/// loaded, and the `EVALSHA`.
pub async fn evaluate(remote: &Remote, script: &Script, cmd: &Cmd) -> RedisResult<Value> {
    let (mut conn, ready) = remote.pool.shared_tracked(DOMAIN);
    // Under Cluster a `SCRIPT LOAD` goes to other nodes than the script: the crate's NOSCRIPT retry only.
    let sent = if ready.scripts_loaded() || remote.endpoint.is_cluster() {
        conn.req_packed_command(cmd).await
    } else {
        load_then(remote, &mut conn, &ready, cmd).await
    };
    let value = match sent {
        Ok(Value::ServerError(e)) if e.kind() == Some(redis::ServerErrorKind::NoScript) => {
            // Flushed behind this node's back (another node's SCRIPT FLUSH, a restarted Redis): the script
            // did not run; it runs now, after whatever was pipelined behind it.
            ready.forget_scripts();
            match script.prepare_invoke().load_async(&mut conn).await {
                Ok(_) => conn.req_packed_command(cmd).await,
                Err(e) => Err(e),
            }
        }
        other => other,
    };
    ready.answered(value.is_ok());
    value?.extract_error()
}

/// `SCRIPT LOAD` of every pipelined script, then `cmd`, in one write; `cmd`'s reply. Marks the scripts
/// loaded when every load succeeded.
async fn load_then(remote: &Remote, conn: &mut Shared, ready: &Ready, cmd: &Cmd) -> RedisResult<Value> {
    let scripts = pipelined_scripts(remote);
    let mut pipe = redis::pipe();
    for script in scripts {
        pipe.cmd("SCRIPT").arg("LOAD").arg(script.code);
    }
    pipe.add_command(cmd.clone());
    let mut values = conn.req_packed_commands(&pipe, 0, scripts.len() + 1).await?;
    let value = values.pop().unwrap_or(Value::Nil);
    if values.iter().all(|v| matches!(v, Value::BulkString(_) | Value::SimpleString(_))) {
        ready.loaded();
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::routes::{Route, Routes};

    #[test]
    fn every_command_answered_later_is_a_domain_command_by_its_name() {
        let routes = Routes::new();
        for name in LATER {
            let req = Request::new(vec![bytes::Bytes::from(name.to_uppercase()), "a".into(), "b".into(), "c".into()]);
            let found = herald_protocol::command::lookup_known(&req).unwrap_or_else(|(_, arity)| arity.expect("known"));
            let spec = found.spec;
            assert_eq!(spec.name, *name);
            assert_eq!(routes.of(spec, &req), Route::Domain, "{name}");
        }
        assert_eq!(LATER.len(), 50);
    }
}
