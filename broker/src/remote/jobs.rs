//! Jobs on the Redis engine: JOB.* across nodes (docs/scale-out.md).
//!
//! Each queue lives under one hash tag (`{herald:q:<queue>}:...`: its jobs, ready set, deadlines, dead
//! letters, counters), and each operation is one Lua script on that slot (`lua/job_*.lua`) that checks
//! the lease token, writes the state and publishes a notice on the queue's channel in one step, on
//! Redis's clock. Deadlines (delays, leases, backoff, result TTLs) are a sorted set per queue, reaped by
//! the next script on the queue and by every node's periodic sweep (`job_notices.rs`).
//!
//! A job's id names no queue, so each id has one index key, `herald:job:{<id>}` → queue, written by
//! the submit script for a fresh id (off Cluster; a `SET` in the same round trip under it), claimed with
//! `SET NX GET` before it for a given ID, and dropped by the sweep after the job is removed; the node caches it (a
//! job never changes queue; a stale entry is noticed by the script finding no job, and re-read).
//! Blocking claims and waits live above the scripts (`waiting.rs`): interest, re-check, wait for a
//! notice or the fallback poll. Scripts, keys, the id cache and ids: `job_store.rs`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use herald_protocol::command::{Command, CommandSpec, CompleteArgs, JobCommand, SubmitArgs, WaitMs};
use herald_protocol::{CommandError, Reply, Request};
use redis::Value;
use tokio::sync::{Notify, oneshot};

use super::Remote;
use super::job_store::{conn, index_key, int, invoke, is_no_job, job_view, no_job, opt_bytes, opt_int, unexpected};
use super::waiting::{Waited, wait_until};
use crate::dispatch::jobs::{claimed_reply, queue_entry, result_reply, stats_reply, status_reply};
use crate::dispatch::streams::{empty_read, read_reply};
use crate::dispatch::{Later, Outcome};
use crate::engine::jobs::{Claimed, JobResult, JobState, QueueConfig, QueueReport, QueueStats, QueueSummary};
use crate::engine::listing::Page;
use crate::engine::stream::{LogEntry, Read};

/// Runs a job command on the Redis engine: answered later (`scripted.rs`; `later`: the session is in
/// order with the domain connection) when it is one script on a queue known now ([`one_script`]), so a
/// client's pipeline of job operations travels as one write and no task is spawned; otherwise a task the
/// connection waits for (it may wait, or takes several round trips).
pub fn execute(remote: &Arc<Remote>, cmd: JobCommand, later: bool) -> Outcome {
    if later && one_script(remote, &cmd) {
        let remote = remote.clone();
        return Outcome::Later(Later::new(async move {
            // Nothing answered later waits: the sender only stands in for a blocked command's.
            let (mut tx, _rx) = oneshot::channel();
            run(&remote, cmd, &mut tx).await.unwrap_or(Reply::Nil)
        }));
    }
    super::scripted::task(remote, |remote, mut tx| async move {
        if let Some(reply) = run(&remote, cmd, &mut tx).await {
            let _ = tx.send(reply);
        }
    })
}

/// Whether `cmd` is one script on a queue this node knows now, written at its future's first poll:
/// what may be answered later and join a pipeline. A job named by id needs its queue cached (else the
/// index is read first); a claim, one queue and no BLOCK, and a previous job to complete on that same
/// queue (`job_claim.lua` does both); a submit, a fresh id and no WAIT. A cached queue that turns out
/// stale (the id was removed and submitted again to another queue, and this node has not yet seen the
/// `removed` notice) costs a second round trip, which then runs after the requests pipelined behind it.
pub fn one_script(remote: &Remote, cmd: &JobCommand) -> bool {
    let known = |id: &[u8]| remote.jobs.cached(id).is_some();
    match cmd {
        JobCommand::Submit(s) => s.id.is_none() && s.wait.is_none() && !remote.endpoint.is_cluster(),
        JobCommand::Claim { queues, block: None, complete, .. } => {
            queues.len() == 1 && complete.as_ref().is_none_or(|c| remote.jobs.cached(&c.id).as_ref() == queues.first())
        }
        JobCommand::Heartbeat { id, .. }
        | JobCommand::Progress { id, .. }
        | JobCommand::Chunk { id, .. }
        | JobCommand::Complete { id, .. }
        | JobCommand::Fail { id, .. }
        | JobCommand::Status(id)
        | JobCommand::Cancel(id)
        | JobCommand::Retry(id)
        | JobCommand::Result { id, block: None }
        | JobCommand::Read { id, block: None, .. } => known(id),
        JobCommand::List { .. }
        | JobCommand::Dead(_)
        | JobCommand::Stats(_)
        | JobCommand::Concurrency { .. }
        | JobCommand::Pause { .. } => true,
        _ => false,
    }
}

/// Whether a job request may join the requests in flight (`scripted::pipelines`): [`one_script`].
pub fn pipelines(remote: &Remote, spec: &CommandSpec, req: &Request) -> bool {
    matches!(herald_protocol::command::parse(spec, req), Ok(Command::Jobs(cmd)) if one_script(remote, &cmd))
}

/// The command's reply (`None`: the client left while it waited).
async fn run(remote: &Arc<Remote>, cmd: JobCommand, tx: &mut oneshot::Sender<Reply>) -> Option<Reply> {
    let reply = match cmd {
        JobCommand::Submit(s) => return submit(remote, s, tx).await,
        JobCommand::Claim { queues, block, lease_ms, complete } => return claim(remote, queues, block, lease_ms, complete, tx).await,
        JobCommand::Heartbeat { id, token, lease_ms } => {
            let lease = lease_ms.map(|l| l.to_string()).unwrap_or_default();
            held(remote, &id, "heartbeat", token, Some(lease.as_bytes())).await.map(|v| Reply::Int(int(&v)))
        }
        JobCommand::Progress { id, token, value } => held(remote, &id, "progress", token, Some(&value)).await.map(|_| Reply::ok()),
        JobCommand::Chunk { id, token, data } => held(remote, &id, "chunk", token, Some(&data)).await.map(|v| Reply::Int(int(&v))),
        JobCommand::Complete { id, token, result } => held(remote, &id, "complete", token, result.as_deref()).await.map(|_| Reply::ok()),
        JobCommand::Fail { id, token, error, no_retry } => {
            let what = if no_retry { "fail-noretry" } else { "fail" };
            held(remote, &id, what, token, Some(&error)).await.map(|v| Reply::Bulk(opt_bytes(&v).unwrap_or_default()))
        }
        JobCommand::Status(id) => status(remote, &id).await,
        JobCommand::Result { id, block } => return result(remote, id, block, None, tx).await,
        JobCommand::Read { id, from, count, block } => return read(remote, id, from, count, block, tx).await,
        JobCommand::Cancel(id) => on_job(remote, &id, &remote.jobs.scripts.manage, &[b"cancel"]).await.map(|(_, v)| Reply::Int(int(&v))),
        JobCommand::Retry(id) => on_job(remote, &id, &remote.jobs.scripts.manage, &[b"retry"]).await.map(|_| Reply::ok()),
        JobCommand::List { queue, state } => {
            let state = state.map(|s| (JobState::parse(&s), s));
            match state {
                Some((None, text)) => {
                    Err(Reply::Error(CommandError::new(format!("ERR unknown job state '{}'", String::from_utf8_lossy(&text)))))
                }
                state => {
                    let name = state.and_then(|(s, _)| s).map_or("", JobState::name);
                    queue_op(remote, &queue, &[b"list", name.as_bytes()]).await.map(|v| bulks(&v))
                }
            }
        }
        JobCommand::Dead(queue) => queue_op(remote, &queue, &[b"dead"]).await.map(|v| bulks(&v)),
        JobCommand::Stats(queue) => queue_op(remote, &queue, &[b"stats"]).await.and_then(|v| stats(&v)),
        JobCommand::Concurrency { queue, limit } => {
            let n = limit.to_string();
            queue_op(remote, &queue, &[b"concurrency", n.as_bytes()]).await.map(|_| Reply::ok())
        }
        JobCommand::Pause { queue, paused } => {
            queue_op(remote, &queue, &[if paused { b"pause".as_slice() } else { b"resume" }]).await.map(|_| Reply::ok())
        }
        JobCommand::Join { queue, timeout } => return join(remote, queue, timeout, tx).await,
        JobCommand::Queues(list) => queues(remote, &crate::dispatch::listing::args(&list)).await,
    };
    Some(reply.unwrap_or_else(|e| e))
}

fn bulks(v: &Value) -> Reply {
    match v {
        Value::Array(items) => Reply::Array(items.iter().filter_map(opt_bytes).map(Reply::Bulk).collect()),
        _ => Reply::Array(Vec::new()),
    }
}

async fn queue_op(remote: &Remote, queue: &[u8], args: &[&[u8]]) -> Result<Value, Reply> {
    invoke(remote, &remote.jobs.scripts.queue, queue, args).await.map_err(|e| super::value::failed(&e))
}

/// The job's queue: cached, else from its index key (`None`: no such job).
async fn locate(remote: &Remote, id: &[u8], fresh: bool) -> Result<Option<Bytes>, Reply> {
    if !fresh && let Some(q) = remote.jobs.cached(id) {
        return Ok(Some(q));
    }
    let found: redis::RedisResult<Option<Vec<u8>>> = redis::cmd("GET").arg(index_key(id)).query_async(&mut conn(remote)).await;
    match found {
        Ok(Some(q)) => {
            let q = Bytes::from(q);
            remote.jobs.remember(id, &q);
            Ok(Some(q))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(super::value::failed(&e)),
    }
}

/// Runs `script` on the job's queue with (what, id, rest...) — `args[0]` is the operation's name —
/// re-reading the index once if a cached queue turned out stale. No such job: NOJOB.
async fn on_job(remote: &Remote, id: &[u8], script: &super::scripted::Script, args: &[&[u8]]) -> Result<(Bytes, Value), Reply> {
    let mut full: Vec<&[u8]> = Vec::with_capacity(args.len() + 1);
    full.push(args[0]);
    full.push(id);
    full.extend_from_slice(&args[1..]);
    let mut fresh = false;
    loop {
        let Some(queue) = locate(remote, id, fresh).await? else { return Err(no_job()) };
        let r = invoke(remote, script, &queue, &full).await;
        if is_no_job(&r) && !fresh && remote.jobs.cached(id).is_some() {
            remote.jobs.forget(id);
            fresh = true;
            continue;
        }
        return match r {
            Ok(Value::Nil) => Err(no_job()),
            Ok(v) => Ok((queue, v)),
            Err(e) => Err(super::value::failed(&e)),
        };
    }
}

/// A worker's operation on the job it holds, fenced by its lease token in the script.
async fn held(remote: &Remote, id: &[u8], what: &str, token: u64, value: Option<&[u8]>) -> Result<Value, Reply> {
    let token = token.to_string();
    let mut args: Vec<&[u8]> = vec![what.as_bytes(), token.as_bytes()];
    args.extend(value);
    on_job(remote, id, &remote.jobs.scripts.held, &args).await.map(|(_, v)| v)
}

/// Submits: a given ID's index key first (a repeated ID finds its job's queue there), then the queue's
/// script, which writes a fresh id's index key itself.
async fn submit(remote: &Arc<Remote>, s: SubmitArgs, tx: &mut oneshot::Sender<Reply>) -> Option<Reply> {
    let jobs = &remote.jobs;
    let id = match &s.id {
        Some(id) => id.clone(),
        None => {
            let n = jobs.next_id.fetch_add(1, Ordering::Relaxed) + 1;
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
            Bytes::from(format!("{now}-{n}-{:08x}", jobs.tag))
        }
    };
    let backoff = s.backoff;
    let (attempts, lease, ttl) = (
        s.attempts.unwrap_or(jobs.settings.default_attempts).max(1).to_string(),
        s.lease_ms.unwrap_or(jobs.settings.default_lease_ms).to_string(),
        s.result_ttl_ms.unwrap_or(jobs.settings.default_result_ttl_ms).to_string(),
    );
    let (priority, delay, base, max) =
        (s.priority.to_string(), s.delay_ms.to_string(), backoff.map_or(0, |b| b.base_ms).to_string(), jobs.settings.max_jobs.to_string());
    let kind: &[u8] = if backoff.is_some_and(|b| b.exponential) { b"e" } else { b"f" };
    let jitter: &[u8] = if backoff.is_some_and(|b| b.jitter) { b"1" } else { b"0" };
    // A fresh id's queue is the one named; a given id's, the one its index names.
    let queue = match &s.id {
        Some(given) => match home(remote, given, &s.queue).await {
            Ok(queue) => queue,
            Err(e) => return Some(e),
        },
        None => s.queue.clone(),
    };
    let args: [&[u8]; 12] = [
        &id,
        &s.payload,
        priority.as_bytes(),
        delay.as_bytes(),
        attempts.as_bytes(),
        kind,
        base.as_bytes(),
        jitter,
        lease.as_bytes(),
        ttl.as_bytes(),
        max.as_bytes(),
        &queue,
    ];
    // Known untouched from here until a notice about it comes: a JOB.RESULT on this node then needs no
    // first read (`RemoteJobs::fresh`).
    jobs.expect(&id, &queue);
    let submitted = if s.id.is_some() {
        invoke(remote, &jobs.scripts.submit, &queue, &args).await
    } else if remote.endpoint.is_cluster() {
        // A fresh id: its index entry (another slot) and the job in the same round trip.
        let mut c = conn(remote);
        let mut set = redis::cmd("SET");
        set.arg(index_key(&id)).arg(&queue[..]);
        let index = set.query_async::<()>(&mut c);
        let (index, submitted) = tokio::join!(index, invoke(remote, &jobs.scripts.submit, &queue, &args));
        if let Err(e) = index {
            return Some(super::value::failed(&e));
        }
        submitted
    } else {
        // A fresh id: the script writes its index entry too (one script may span slots off Cluster).
        let call = super::job_store::call(remote, &jobs.scripts.submit, &queue, &args, Some(index_key(&id)));
        super::scripted::evaluate(remote, &jobs.scripts.submit, &call).await
    };
    let submitted = match submitted {
        // {id, 1, seq}: created, so pending as of the script; {id, 0}: the id names a job already.
        Ok(Value::Array(items)) if !items.is_empty() => {
            let seq = if items.get(1).map(int) == Some(1) { items.get(2).map_or(0, int) as u64 } else { 0 };
            jobs.submitted(&id, seq);
            opt_bytes(&items[0]).unwrap_or(id)
        }
        Ok(_) => {
            jobs.submitted(&id, 0);
            return Some(unexpected("JOB.SUBMIT"));
        }
        Err(e) => {
            jobs.submitted(&id, 0);
            return Some(super::value::failed(&e));
        }
    };
    jobs.remember(&submitted, &queue);
    match s.wait {
        None => Some(Reply::Bulk(submitted)),
        Some(wait) => {
            let text = String::from_utf8_lossy(&submitted).into_owned();
            let timeout = CommandError::new(format!("TIMEOUT job {text} has not finished; JOB.RESULT {text} BLOCK ms waits on"));
            result(remote, submitted, Some(wait), Some(Reply::Error(timeout)), tx).await
        }
    }
}

/// The queue a submit with a given ID goes to: the ID may already name a job, perhaps of another queue,
/// and the index says which (`SET NX GET`); an index entry that outlived its job is taken over.
async fn home(remote: &Remote, id: &Bytes, queue: &Bytes) -> Result<Bytes, Reply> {
    let failed = |e: redis::RedisError| super::value::failed(&e);
    let claimed: Option<Vec<u8>> =
        redis::cmd("SET").arg(index_key(id)).arg(&queue[..]).arg("NX").arg("GET").query_async(&mut conn(remote)).await.map_err(failed)?;
    let Some(existing) = claimed.filter(|q| q != queue) else { return Ok(queue.clone()) };
    let existing = Bytes::from(existing);
    match invoke(remote, &remote.jobs.scripts.read, &existing, &[b"status", id]).await.map_err(failed)? {
        Value::Nil => {
            let _: () = redis::cmd("SET").arg(index_key(id)).arg(&queue[..]).query_async(&mut conn(remote)).await.map_err(failed)?;
            Ok(queue.clone())
        }
        _ => Ok(existing),
    }
}

/// JOB.CLAIM: each queue's claim script in the order given (one atomic claim per queue); with BLOCK,
/// a wait on the queues' `wake` notices with the fallback poll. The worker's previous job (COMPLETE) is
/// completed by the first queue's claim script when it is of that queue (as cached), else by a script of
/// its own first; either way its error is the reply and nothing is claimed.
async fn claim(
    remote: &Arc<Remote>,
    queues: Vec<Bytes>,
    block: Option<WaitMs>,
    lease_ms: Option<u64>,
    complete: Option<CompleteArgs>,
    tx: &mut oneshot::Sender<Reply>,
) -> Option<Reply> {
    let lease = lease_ms.map(|l| l.to_string()).unwrap_or_default();
    let mark = super::wake::mark_ms(remote, block.is_some());
    let combined = match complete {
        Some(c) if remote.jobs.cached(&c.id).as_ref() == queues.first() => Some(c),
        Some(c) => {
            if let Err(e) = complete_alone(remote, &c).await {
                return Some(e);
            }
            None
        }
        None => None,
    };
    let combined = std::sync::Mutex::new(combined);
    let once = || async {
        for queue in &queues {
            let mut previous = combined.lock().expect("claim").take();
            let claimed = loop {
                let token = previous.as_ref().map(|c| c.token.to_string()).unwrap_or_default();
                let mut args: Vec<&[u8]> = vec![lease.as_bytes(), mark.as_bytes()];
                if let Some(c) = &previous {
                    args.extend([&c.id[..], token.as_bytes(), &c.result[..]]);
                }
                let r = invoke(remote, &remote.jobs.scripts.claim, queue, &args).await;
                match (r, previous.take()) {
                    (r, Some(c)) if matches!(&r, Err(e) if e.code() == Some("NOJOB")) => {
                        // The cached queue was stale (its script found no such job; nil would be nothing to claim):
                        // complete the job where the index says, then claim.
                        remote.jobs.forget(&c.id);
                        if let Err(e) = complete_alone(remote, &c).await {
                            return Some(e);
                        }
                    }
                    (r, _) => break r,
                }
            };
            match claimed {
                Ok(Value::Array(items)) if items.len() == 5 => {
                    let id = opt_bytes(&items[0]).unwrap_or_default();
                    remote.jobs.remember(&id, queue);
                    return Some(claimed_reply(Claimed {
                        id,
                        queue: queue.clone(),
                        payload: opt_bytes(&items[1]).unwrap_or_default(),
                        attempt: int(&items[2]) as u32,
                        token: int(&items[3]) as u64,
                        lease_ms: int(&items[4]) as u64,
                    }));
                }
                Ok(_) => {}
                Err(e) => return Some(super::value::failed(&e)),
            }
        }
        None
    };
    let Some(wait) = block else { return Some(once().await.unwrap_or(Reply::Nil)) };
    let interest = || queues.iter().map(|q| remote.jobs.queue_waiters.interest(q, &Bytes::new())).collect::<Vec<Arc<Notify>>>();
    block_on(remote, interest, wait.duration(), tx, once, Reply::Nil).await
}

/// JOB.COMPLETE of a claim's previous job, as a script of its own.
async fn complete_alone(remote: &Remote, c: &CompleteArgs) -> Result<(), Reply> {
    let token = c.token.to_string();
    on_job(remote, &c.id, &remote.jobs.scripts.held, &[b"complete", token.as_bytes(), &c.result]).await.map(|_| ())
}

/// A blocking job command's wait (`waiting.rs`), counted while it is blocked.
async fn block_on<I, C, F>(
    remote: &Remote,
    interest: I,
    timeout: Option<std::time::Duration>,
    tx: &mut oneshot::Sender<Reply>,
    check: C,
    on_timeout: Reply,
) -> Option<Reply>
where
    I: Fn() -> Vec<Arc<Notify>>,
    C: FnMut() -> F,
    F: std::future::Future<Output = Option<Reply>>,
{
    finish_wait(wait_until(interest, remote.wait_poll, timeout, tx, &remote.jobs.waiting, check).await, on_timeout)
}

fn finish_wait(waited: Waited, on_timeout: Reply) -> Option<Reply> {
    match waited {
        Waited::Ready(reply) => Some(reply),
        Waited::TimedOut => Some(on_timeout),
        Waited::Gone => None,
    }
}

/// Before a job wait: the job's queue in the cache, so the wait's doorbell exists from the start.
async fn located(remote: &Remote, id: &[u8]) -> Result<(), Reply> {
    locate(remote, id, false).await?.map(|_| ()).ok_or_else(no_job)
}

/// The doorbell of a job's waits (its queue known from the index).
fn job_bell(remote: &Remote, id: &Bytes) -> Vec<Arc<Notify>> {
    remote.jobs.cached(id).map(|q| remote.jobs.job_waiters.interest(&q, id)).into_iter().collect()
}

/// JOB.RESULT (and SUBMIT ... WAIT): the Future's outcome, waiting for it with BLOCK.
async fn result(
    remote: &Arc<Remote>,
    id: Bytes,
    block: Option<WaitMs>,
    on_timeout: Option<Reply>,
    tx: &mut oneshot::Sender<Reply>,
) -> Option<Reply> {
    // The job's seq once a check found it pending: a `done` notice for that job hands its result over
    // (`job_notices.rs`), so the check after the wake-up reads nothing (0: not known yet). A job this
    // node submitted and has seen no notice about since is pending as of now: a blocked check (its
    // doorbell already rings for what comes next) then reads nothing either.
    let pending = std::sync::atomic::AtomicU64::new(0);
    let waits = block.is_some();
    let once = || async {
        let seq = pending.load(Ordering::Relaxed);
        if let Some(queue) = remote.jobs.cached(&id) {
            if seq > 0
                && let Some(result) = remote.jobs.take_done(&queue, &id, seq)
            {
                return result_reply(JobResult::Done(result)).unwrap_or_else(|e| Some(Reply::Error(e)));
            }
            if waits && let Some(seq) = remote.jobs.untouched(&queue, &id) {
                pending.store(seq, Ordering::Relaxed);
                return None;
            }
        }
        let outcome = match on_job(remote, &id, &remote.jobs.scripts.read, &[b"result"]).await {
            Ok((_, Value::Array(items))) if !items.is_empty() => {
                let first = opt_bytes(&items[0]).unwrap_or_default();
                let second = items.get(1).and_then(opt_bytes);
                match &first[..] {
                    b"pending" => {
                        pending.store(items.get(1).map_or(0, int) as u64, Ordering::Relaxed);
                        JobResult::Pending
                    }
                    b"done" => JobResult::Done(second),
                    state => JobResult::Failed { state: JobState::parse(state).unwrap_or(JobState::Error), error: second },
                }
            }
            Ok(_) => return Some(unexpected("JOB.RESULT")),
            Err(e) => return Some(e),
        };
        match result_reply(outcome) {
            Ok(Some(reply)) => Some(reply),
            Ok(None) => None,
            Err(e) => Some(Reply::Error(e)),
        }
    };
    let Some(wait) = block else { return Some(once().await.unwrap_or(Reply::Nil)) };
    if let Err(e) = located(remote, &id).await {
        return Some(e);
    }
    let on_timeout = on_timeout.unwrap_or(Reply::Nil);
    block_on(remote, || job_bell(remote, &id), wait.duration(), tx, once, on_timeout).await
}

/// JOB.READ: the job's chunks from an offset, gap-free (one list per job, offsets from its base).
async fn read(
    remote: &Arc<Remote>,
    id: Bytes,
    from: u64,
    count: usize,
    block: Option<WaitMs>,
    tx: &mut oneshot::Sender<Reply>,
) -> Option<Reply> {
    let (from_arg, count_arg) = (from.to_string(), count.to_string());
    let once = || async {
        let v = match on_job(remote, &id, &remote.jobs.scripts.read, &[b"chunks", from_arg.as_bytes(), count_arg.as_bytes()]).await {
            Ok((_, Value::Array(items))) => items,
            Ok(_) => return Some(unexpected("JOB.READ")),
            Err(e) => return Some(e),
        };
        let read = match v.first() {
            Some(Value::BulkString(t)) if t == b"trimmed" => Read::Trimmed { first: v.get(1).map_or(0, int) as u64 },
            _ if v.len() >= 3 => {
                let entries = v[3..]
                    .iter()
                    .enumerate()
                    .map(|(i, d)| LogEntry { offset: from + i as u64, data: opt_bytes(d).unwrap_or_default(), at_ms: 0 })
                    .collect();
                Read::Entries { entries, next: int(&v[2]) as u64, ended: int(&v[1]) == 1 }
            }
            _ => return Some(unexpected("JOB.READ")),
        };
        let epoch = v.first().filter(|_| v.len() >= 3).map(|e| int(e) as u64);
        match read_reply(read, epoch, from) {
            Ok(reply) => reply,
            Err(e) => Some(Reply::Error(e)),
        }
    };
    let Some(wait) = block else { return Some(once().await.unwrap_or_else(|| empty_read(from))) };
    if let Err(e) = located(remote, &id).await {
        return Some(e);
    }
    block_on(remote, || job_bell(remote, &id), wait.duration(), tx, once, Reply::Nil).await
}

/// JOB.JOIN: waits until the queue has nothing queued, delayed or running.
async fn join(remote: &Arc<Remote>, queue: Bytes, timeout: Option<WaitMs>, tx: &mut oneshot::Sender<Reply>) -> Option<Reply> {
    let mark = super::wake::mark_ms(remote, true);
    let once = || async {
        match queue_op(remote, &queue, &[b"drained", mark.as_bytes()]).await {
            Ok(v) if int(&v) == 1 => Some(Reply::ok()),
            Ok(_) => None,
            Err(e) => Some(e),
        }
    };
    let interest = || vec![remote.jobs.queue_waiters.interest(&queue, &Bytes::from_static(b"drained"))];
    block_on(remote, interest, timeout.and_then(|t| t.duration()), tx, once, Reply::Nil).await
}

/// JOB.STATUS from the script's fields.
async fn status(remote: &Remote, id: &Bytes) -> Result<Reply, Reply> {
    let (queue, v) = match on_job(remote, id, &remote.jobs.scripts.read, &[b"status"]).await {
        Ok(found) => found,
        Err(Reply::Error(e)) if e.code() == "NOJOB" => return Ok(Reply::Nil),
        Err(e) => return Err(e),
    };
    let Value::Array(f) = v else { return Err(unexpected("JOB.STATUS")) };
    if f.len() < 12 {
        return Err(unexpected("JOB.STATUS"));
    }
    let state = opt_bytes(&f[0]).and_then(|s| JobState::parse(&s)).ok_or_else(|| unexpected("JOB.STATUS"))?;
    let mut job = job_view(id.clone(), queue, state, int(&f[1]) as u32);
    job.max_attempts = int(&f[2]) as u32;
    job.priority = int(&f[3]);
    job.progress = opt_bytes(&f[4]);
    job.last_error = opt_bytes(&f[5]);
    job.created_ms = int(&f[7]) as u64;
    job.started_ms = opt_int(&f[8]);
    job.finished_ms = opt_int(&f[9]);
    job.run_at_ms = opt_int(&f[10]);
    job.lease = opt_int(&f[11]).map(|expires_ms| crate::engine::jobs::Lease { token: 0, expires_ms });
    Ok(status_reply(&job, int(&f[6]) as u64))
}

/// JOB.QUEUES: a page of queue names (a SCAN over the queues' meta keys, `listing.rs`), each with the
/// figures JOB.STATS reads (one script per queue).
async fn queues(remote: &Remote, args: &crate::engine::listing::ListArgs) -> Result<Reply, Reply> {
    let (cursor, names) = super::listing::scan_names(remote, b"{herald:q:", b"}:meta", args).await.map_err(|e| super::value::failed(&e))?;
    let mut entries = Vec::with_capacity(names.len());
    for name in names {
        let report = report(&queue_op(remote, &name, &[b"stats"]).await?)?;
        let count = |s: JobState| report.counts.iter().find(|(state, _)| *state == s).map_or(0, |(_, n)| *n);
        entries.push(QueueSummary {
            name,
            queued: count(JobState::Queued),
            delayed: count(JobState::Delayed),
            running: count(JobState::Running) + count(JobState::Streaming),
            dead: count(JobState::Dead),
            config: report.config,
            stats: report.stats,
        });
    }
    Ok(crate::dispatch::listing::reply(Page { cursor, entries }, queue_entry))
}

/// The jobs a tenant holds (per-tenant quotas, `quota.rs`): in every queue whose name matches `pattern`
/// (a SCAN over the queues' `meta` keys), the unfinished ones (the queue's `open` count: queued, delayed
/// and running) and its dead letters, read in one round trip per queue rather than JOB.STATS's pass over
/// every job.
pub(super) async fn held_jobs(remote: &Remote, pattern: &[u8]) -> redis::RedisResult<u64> {
    let mine =
        crate::engine::listing::ListArgs { pattern: Some(Bytes::copy_from_slice(pattern)), ..crate::engine::listing::ListArgs::all() };
    let (_, names) = super::listing::scan_names(remote, b"{herald:q:", b"}:meta", &mine).await?;
    let mut c = conn(remote);
    let mut held = 0;
    for queue in names.iter().filter(|q| crate::engine::glob::glob_match(pattern, q)) {
        let [meta, _, _, dead, ..] = super::job_store::queue_keys(queue);
        let (open, dead): (Option<u64>, u64) =
            redis::pipe().cmd("HGET").arg(meta).arg("open").cmd("LLEN").arg(dead).query_async(&mut c).await?;
        held += open.unwrap_or(0) + dead;
    }
    Ok(held)
}

/// JOB.STATS from the script's counts and counters.
fn stats(v: &Value) -> Result<Reply, Reply> {
    report(v).map(stats_reply)
}

/// The script's counts per state and counters, as the embedded engine reports a queue.
fn report(v: &Value) -> Result<QueueReport, Reply> {
    let Value::Array(f) = v else { return Err(unexpected("JOB.STATS")) };
    if f.len() != 18 {
        return Err(unexpected("JOB.STATS"));
    }
    let n = |i: usize| int(&f[i]) as u64;
    let counts = JobState::ALL.iter().enumerate().map(|(i, s)| (*s, n(i) as usize)).collect();
    let stats = QueueStats {
        submitted: n(10),
        claimed: n(11),
        completed: n(12),
        failed: n(13),
        retried: n(14),
        dead: n(15),
        cancelled: n(16),
        lease_expired: n(17),
    };
    Ok(QueueReport { counts, config: QueueConfig { concurrency: n(8) as usize, paused: n(9) == 1 }, stats })
}
