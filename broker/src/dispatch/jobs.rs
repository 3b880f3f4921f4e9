//! Job commands: producers, workers and followers.

use herald_protocol::command::{JobCommand, SubmitArgs};
use herald_protocol::{CommandError, Reply};

use super::listing;
use super::streams::read_reply;
use super::{Cx, Outcome};
use crate::engine::jobs::{self, Backoff, BackoffKind, Claimed, Job, JobResult, JobState, QueueReport, QueueSummary, SubmitOptions};
use crate::engine::schema::SchemaKind;
use crate::state::State;

/// JOB.CLAIM's reply (the Redis engine's too).
pub(crate) fn claimed_reply(c: Claimed) -> Reply {
    Reply::fields(vec![
        ("id", Reply::Bulk(c.id)),
        ("queue", Reply::Bulk(c.queue)),
        ("payload", Reply::Bulk(c.payload)),
        ("attempt", Reply::Int(i64::from(c.attempt))),
        ("token", Reply::Int(c.token as i64)),
        ("lease", Reply::Int(c.lease_ms as i64)),
    ])
}

fn opt_int(v: Option<u64>) -> Reply {
    v.map_or(Reply::Nil, |v| Reply::Int(v as i64))
}

/// JOB.STATUS's reply; `chunks` is the next chunk offset (the Redis engine keeps the chunks apart).
pub(crate) fn status_reply(j: &Job, chunks: u64) -> Reply {
    Reply::fields(vec![
        ("id", Reply::Bulk(j.id.clone())),
        ("queue", Reply::Bulk(j.queue.clone())),
        ("state", Reply::text(j.state.name())),
        ("attempt", Reply::Int(i64::from(j.attempt))),
        ("max_attempts", Reply::Int(i64::from(j.max_attempts))),
        ("priority", Reply::Int(j.priority)),
        ("progress", Reply::bulk_or_nil(j.progress.clone())),
        ("error", Reply::bulk_or_nil(j.last_error.clone())),
        ("chunks", Reply::Int(chunks as i64)),
        ("created", Reply::Int(j.created_ms as i64)),
        ("started", opt_int(j.started_ms)),
        ("finished", opt_int(j.finished_ms)),
        ("run_at", opt_int(j.run_at_ms)),
        ("lease_expires", opt_int(j.lease.filter(|_| j.state.is_active()).map(|l| l.expires_ms))),
    ])
}

/// The Future's outcome (the Redis engine's too): the result, `None` while pending, or the failure as an error reply.
pub(crate) fn result_reply(r: JobResult) -> Result<Option<Reply>, CommandError> {
    match r {
        JobResult::Pending => Ok(None),
        JobResult::Done(result) => Ok(Some(Reply::Bulk(result.unwrap_or_default()))),
        JobResult::Failed { state, error } => {
            let why = error.map(|e| String::from_utf8_lossy(&e).into_owned()).unwrap_or_default();
            Err(match state {
                JobState::Cancelled => CommandError::fixed("CANCELLED the job was cancelled"),
                JobState::Dead => CommandError::new(format!("JOBDEAD the job ran out of attempts; last error: {why}")),
                _ => CommandError::new(format!("JOBFAILED {why}")),
            })
        }
    }
}

fn submit_options(s: &SubmitArgs) -> SubmitOptions {
    SubmitOptions {
        id: s.id.clone(),
        priority: s.priority,
        delay_ms: s.delay_ms,
        attempts: s.attempts,
        backoff: s.backoff.map(|b| Backoff {
            kind: if b.exponential { BackoffKind::Exponential } else { BackoffKind::Fixed },
            base_ms: b.base_ms,
            jitter: b.jitter,
        }),
        lease_ms: s.lease_ms,
        result_ttl_ms: s.result_ttl_ms,
    }
}

/// One queue of `JOB.QUEUES`'s page, on either engine.
pub(crate) fn queue_entry(q: QueueSummary) -> Reply {
    Reply::fields(vec![
        ("queue", Reply::Bulk(q.name)),
        ("queued", listing::int(q.queued)),
        ("delayed", listing::int(q.delayed)),
        ("running", listing::int(q.running)),
        ("dead", listing::int(q.dead)),
        ("paused", Reply::Int(i64::from(q.config.paused))),
        ("concurrency", listing::int(q.config.concurrency)),
        ("completed", Reply::Int(q.stats.completed as i64)),
        ("failed", Reply::Int(q.stats.failed as i64)),
    ])
}

/// JOB.STATS's reply (the Redis engine's too).
pub(crate) fn stats_reply(r: QueueReport) -> Reply {
    let mut fields: Vec<(&'static str, Reply)> = r.counts.iter().map(|(s, n)| (s.name(), Reply::Int(*n as i64))).collect();
    let n = |v: u64| Reply::Int(v as i64);
    fields.extend([
        ("concurrency", Reply::Int(r.config.concurrency as i64)),
        ("paused", Reply::Int(i64::from(r.config.paused))),
        ("submitted", n(r.stats.submitted)),
        ("claimed", n(r.stats.claimed)),
        ("completed", n(r.stats.completed)),
        ("failed", n(r.stats.failed)),
        ("retried", n(r.stats.retried)),
        ("dead_total", n(r.stats.dead)),
        ("cancelled_total", n(r.stats.cancelled)),
        ("lease_expired", n(r.stats.lease_expired)),
    ]);
    Reply::fields(fields)
}

pub fn execute(cmd: JobCommand, cx: &mut Cx<'_>) -> Outcome {
    // The Redis engine runs jobs on Redis (the routes let only its commands through).
    if let Some(remote) = &cx.broker.remote {
        if let JobCommand::Submit(s) = &cmd
            && let Err(e) = remote.schemas.check(SchemaKind::Queue, b"", &s.queue, &s.payload)
        {
            return e.into();
        }
        return crate::remote::jobs::execute(remote, cmd, crate::remote::in_order(remote, cx.session));
    }
    let now = cx.now();
    let result: Result<Reply, CommandError> = match cmd {
        JobCommand::Submit(s) => {
            let opts = submit_options(&s);
            if let Err(e) = cx.state().schemas.check(SchemaKind::Queue, b"", &s.queue, &s.payload) {
                return e.into();
            }
            let submitted = cx.state().jobs.submit(&s.queue, &s.payload, opts, now).map(|(id, _)| id);
            return match (submitted, s.wait) {
                (Err(e), _) => e.into(),
                (Ok(id), None) => Reply::Bulk(id).into(),
                (Ok(id), Some(wait)) => {
                    // Submit-and-wait: one round trip for the Future. On timeout the error names the
                    // job, so the caller can wait on with JOB.RESULT.
                    let text = String::from_utf8_lossy(&id);
                    let timeout = CommandError::new(format!("TIMEOUT job {text} has not finished; JOB.RESULT {text} BLOCK ms waits on"));
                    let keys = vec![jobs::job_wait_key(&id)];
                    let result = move |state: &mut State, _now| result_reply(state.jobs.result(&id)?);
                    cx.now_or_block(keys, wait.duration(), Reply::Error(timeout), result)
                }
            };
        }
        JobCommand::Claim { queues, block, lease_ms, complete } => {
            // A worker's previous job is completed first, in the same round trip; if that fails
            // (a lost lease, say) nothing is claimed and the error is the reply.
            if let Some(c) = complete
                && let Err(e) = cx.state().jobs.complete(&c.id, c.token, Some(&c.result), now)
            {
                return e.into();
            }
            let keys = queues.iter().map(|q| jobs::queue_wait_key(q)).collect();
            let claim = move |state: &mut State, now| Ok(state.jobs.claim(&queues, lease_ms, now).map(claimed_reply));
            return match block {
                Some(wait) => cx.now_or_block(keys, wait.duration(), Reply::Nil, claim),
                None => run_once(cx, claim, Reply::Nil),
            };
        }
        JobCommand::Heartbeat { id, token, lease_ms } => {
            cx.state().jobs.heartbeat(&id, token, lease_ms, now).map(|at| Reply::Int(at as i64)).map_err(Into::into)
        }
        JobCommand::Progress { id, token, value } => cx.state().jobs.progress(&id, token, &value).map(|_| Reply::ok()).map_err(Into::into),
        JobCommand::Chunk { id, token, data } => {
            cx.state().jobs.chunk(&id, token, &data, now).map(|o| Reply::Int(o as i64)).map_err(Into::into)
        }
        JobCommand::Complete { id, token, result } => {
            cx.state().jobs.complete(&id, token, result.as_deref(), now).map(|_| Reply::ok()).map_err(Into::into)
        }
        JobCommand::Fail { id, token, error, no_retry } => {
            let random = cx.state().random();
            cx.state().jobs.fail(&id, token, &error, no_retry, now, random).map(|s| Reply::text(s.name())).map_err(Into::into)
        }
        JobCommand::Status(id) => Ok(cx.state().jobs.job(&id).map_or(Reply::Nil, |j| status_reply(j, j.chunks.next_offset()))),
        JobCommand::Result { id, block } => {
            let keys = vec![jobs::job_wait_key(&id)];
            let result = move |state: &mut State, _now| result_reply(state.jobs.result(&id)?);
            return match block {
                Some(wait) => cx.now_or_block(keys, wait.duration(), Reply::Nil, result),
                None => run_once(cx, result, Reply::Nil),
            };
        }
        JobCommand::Read { id, from, count, block } => {
            let keys = vec![jobs::job_wait_key(&id)];
            let read = move |state: &mut State, now| {
                let (read, epoch) = state.jobs.read(&id, from, count, now)?;
                read_reply(read, Some(epoch), from)
            };
            return match block {
                Some(wait) => cx.now_or_block(keys, wait.duration(), Reply::Nil, read),
                None => run_once(cx, read, super::streams::empty_read(from)),
            };
        }
        JobCommand::Cancel(id) => cx.state().jobs.cancel(&id, now).map(|c| Reply::Int(i64::from(c))).map_err(Into::into),
        JobCommand::List { queue, state } => match state.as_deref().map(|s| (s, JobState::parse(s))) {
            Some((text, None)) => Err(CommandError::new(format!("ERR unknown job state '{}'", String::from_utf8_lossy(text)))),
            parsed => Ok(Reply::bulks(cx.state().jobs.list(&queue, parsed.and_then(|(_, s)| s)))),
        },
        JobCommand::Stats(queue) => Ok(stats_reply(cx.state().jobs.stats(&queue))),
        JobCommand::Dead(queue) => Ok(Reply::bulks(cx.state().jobs.dead(&queue))),
        JobCommand::Retry(id) => cx.state().jobs.retry(&id).map(|_| Reply::ok()).map_err(Into::into),
        JobCommand::Concurrency { queue, limit } => {
            cx.state().jobs.set_concurrency(&queue, limit);
            Ok(Reply::ok())
        }
        JobCommand::Pause { queue, paused } => {
            cx.state().jobs.set_paused(&queue, paused);
            Ok(Reply::ok())
        }
        JobCommand::Queues(list) => Ok(listing::reply(cx.state().jobs.queues(&listing::args(&list)), queue_entry)),
        JobCommand::Join { queue, timeout } => {
            let keys = vec![jobs::join_wait_key(&queue)];
            let join = move |state: &mut State, _now| Ok(state.jobs.drained(&queue).then(Reply::ok));
            return cx.now_or_block(keys, timeout.and_then(|t| t.duration()), Reply::Nil, join);
        }
    };
    result.into()
}

/// A non-blocking run of a blocking command's operation: its reply, or `otherwise` when it has
/// nothing yet.
pub(super) fn run_once(cx: &mut Cx<'_>, mut op: impl super::block::BlockingOp, otherwise: Reply) -> Outcome {
    let now = cx.now();
    match op(cx.state(), now) {
        Ok(Some(reply)) => reply.into(),
        Ok(None) => otherwise.into(),
        Err(e) => e.into(),
    }
}
