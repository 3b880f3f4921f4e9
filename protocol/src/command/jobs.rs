//! Jobs (JOB.*): submit, claim under a lease, progress, chunks, complete / fail, follow, wait.

use bytes::Bytes;

use super::WaitMs;
use super::conn::spec;
use super::flags::*;
use super::streams::DEFAULT_READ_COUNT;
use super::{Command, CommandSpec, Group, ListArgs, NO_KEYS, keys, parse_list};
use crate::error::CommandError;
use crate::request::{Args, is_word};

/// JOB.SUBMIT's retry delay policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffSpec {
    pub exponential: bool,
    pub base_ms: u64,
    pub jitter: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SubmitArgs {
    pub queue: Bytes,
    pub payload: Bytes,
    pub id: Option<Bytes>,
    pub priority: i64,
    pub delay_ms: u64,
    pub attempts: Option<u32>,
    pub backoff: Option<BackoffSpec>,
    pub lease_ms: Option<u64>,
    pub result_ttl_ms: Option<u64>,
    /// `WAIT ms`: reply with the job's result instead of its id, as `JOB.RESULT id BLOCK ms` would.
    pub wait: Option<WaitMs>,
}

/// `COMPLETE id token result` on a claim: the worker's previous job, completed in the same round trip.
#[derive(Debug, Clone, PartialEq)]
pub struct CompleteArgs {
    pub id: Bytes,
    pub token: u64,
    pub result: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobCommand {
    Submit(SubmitArgs),
    Claim {
        queues: Vec<Bytes>,
        block: Option<WaitMs>,
        lease_ms: Option<u64>,
        complete: Option<CompleteArgs>,
    },
    Heartbeat {
        id: Bytes,
        token: u64,
        lease_ms: Option<u64>,
    },
    Progress {
        id: Bytes,
        token: u64,
        value: Bytes,
    },
    Chunk {
        id: Bytes,
        token: u64,
        data: Bytes,
    },
    Complete {
        id: Bytes,
        token: u64,
        result: Option<Bytes>,
    },
    Fail {
        id: Bytes,
        token: u64,
        error: Bytes,
        no_retry: bool,
    },
    Status(Bytes),
    Result {
        id: Bytes,
        block: Option<WaitMs>,
    },
    Read {
        id: Bytes,
        from: u64,
        count: usize,
        block: Option<WaitMs>,
    },
    Cancel(Bytes),
    List {
        queue: Bytes,
        state: Option<Bytes>,
    },
    Stats(Bytes),
    Dead(Bytes),
    Retry(Bytes),
    Concurrency {
        queue: Bytes,
        limit: usize,
    },
    /// JOB.QUEUE queue PAUSE (true) | RESUME (false).
    Pause {
        queue: Bytes,
        paused: bool,
    },
    /// JOB.QUEUES cursor [MATCH pattern] [COUNT n].
    Queues(ListArgs),
    /// JOB.JOIN queue [TIMEOUT ms]: `None` waits forever.
    Join {
        queue: Bytes,
        timeout: Option<WaitMs>,
    },
}

fn ok(c: JobCommand) -> Result<Command, CommandError> {
    Ok(Command::Jobs(c))
}

fn token(a: &mut Args) -> Result<u64, CommandError> {
    a.next_u64().map_err(|_| CommandError::fixed("ERR invalid lease token"))
}

fn parse_submit(mut a: Args) -> Result<Command, CommandError> {
    let mut s = SubmitArgs { queue: a.next_bytes()?, payload: a.next_bytes()?, ..Default::default() };
    while let Some(opt) = a.next_opt() {
        if is_word(&opt, "ID") {
            s.id = Some(a.next_bytes()?);
        } else if is_word(&opt, "PRIORITY") {
            s.priority = a.next_i64()?;
        } else if is_word(&opt, "DELAY") {
            s.delay_ms = a.next_u64()?;
        } else if is_word(&opt, "ATTEMPTS") {
            let n = a.next_u64()?;
            if n == 0 || n > u64::from(u32::MAX) {
                return Err(CommandError::fixed("ERR ATTEMPTS must be at least 1"));
            }
            s.attempts = Some(n as u32);
        } else if is_word(&opt, "BACKOFF") {
            let kind = a.next_bytes()?;
            let exponential = if is_word(&kind, "exponential") {
                true
            } else if is_word(&kind, "fixed") {
                false
            } else {
                return Err(CommandError::syntax());
            };
            let base_ms = a.next_u64()?;
            let jitter = a.eat("JITTER");
            s.backoff = Some(BackoffSpec { exponential, base_ms, jitter });
        } else if is_word(&opt, "LEASE") {
            s.lease_ms = Some(a.next_u64()?.max(1));
        } else if is_word(&opt, "RESULT-TTL") {
            s.result_ttl_ms = Some(a.next_u64()?);
        } else if is_word(&opt, "WAIT") {
            s.wait = Some(WaitMs(a.next_u64()?));
        } else {
            return Err(CommandError::syntax());
        }
    }
    ok(JobCommand::Submit(s))
}

fn parse_claim(mut a: Args) -> Result<Command, CommandError> {
    let mut queues = Vec::new();
    let (mut block, mut lease_ms, mut complete) = (None, None, None);
    while let Some(word) = a.next_opt() {
        if is_word(&word, "BLOCK") && !queues.is_empty() {
            block = Some(WaitMs(a.next_u64()?));
        } else if is_word(&word, "LEASE") && !queues.is_empty() {
            lease_ms = Some(a.next_u64()?.max(1));
        } else if is_word(&word, "COMPLETE") && !queues.is_empty() {
            complete = Some(CompleteArgs { id: a.next_bytes()?, token: token(&mut a)?, result: a.next_bytes()? });
        } else if block.is_none() && lease_ms.is_none() && complete.is_none() {
            queues.push(word);
        } else {
            return Err(CommandError::syntax());
        }
    }
    if queues.is_empty() {
        return Err(CommandError::syntax());
    }
    ok(JobCommand::Claim { queues, block, lease_ms, complete })
}

fn parse_read(mut a: Args) -> Result<Command, CommandError> {
    let id = a.next_bytes()?;
    let (mut from, mut count, mut block) = (0, DEFAULT_READ_COUNT, None);
    while let Some(opt) = a.next_opt() {
        if is_word(&opt, "FROM") {
            from = a.next_u64()?;
        } else if is_word(&opt, "COUNT") {
            count = a.next_u64()?.max(1) as usize;
        } else if is_word(&opt, "BLOCK") {
            block = Some(WaitMs(a.next_u64()?));
        } else {
            return Err(CommandError::syntax());
        }
    }
    ok(JobCommand::Read { id, from, count, block })
}

fn optional_block(a: &mut Args) -> Result<Option<WaitMs>, CommandError> {
    if a.eat("BLOCK") { Ok(Some(WaitMs(a.next_u64()?))) } else { Ok(None) }
}

const W: u32 = WRITE | FAST;

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!(
        "job.submit",
        -3,
        WRITE | DENYOOM | BLOCKING,
        keys(1, 1, 1),
        Jobs,
        "0.1.0",
        "Submits a job to a queue; replies its id (with WAIT, its result). JOB.SUBMIT queue payload [ID id] [PRIORITY n] [DELAY ms] [ATTEMPTS n] [BACKOFF fixed|exponential ms [JITTER]] [LEASE ms] [RESULT-TTL ms] [WAIT ms]",
        parse_submit
    ),
    spec!(
        "job.claim",
        -2,
        WRITE | BLOCKING,
        NO_KEYS,
        Jobs,
        "0.1.0",
        "Claims the next job of the first queue that has one, under a lease. JOB.CLAIM queue [queue ...] [BLOCK ms] [LEASE ms] [COMPLETE id token result]",
        parse_claim
    ),
    spec!("job.heartbeat", -3, W, NO_KEYS, Jobs, "0.1.0", "Extends a claimed job's lease. JOB.HEARTBEAT id token [LEASE ms]", |mut a| {
        let (id, token) = (a.next_bytes()?, token(&mut a)?);
        let lease_ms = if a.eat("LEASE") { Some(a.next_u64()?.max(1)) } else { None };
        a.finish()?;
        ok(JobCommand::Heartbeat { id, token, lease_ms })
    }),
    spec!("job.progress", 4, W, NO_KEYS, Jobs, "0.1.0", "Reports a claimed job's progress. JOB.PROGRESS id token value", |mut a| ok(
        JobCommand::Progress { id: a.next_bytes()?, token: token(&mut a)?, value: a.next_bytes()? }
    )),
    spec!(
        "job.chunk",
        4,
        W | DENYOOM,
        NO_KEYS,
        Jobs,
        "0.1.0",
        "Appends a result chunk to a claimed job; replies its offset. JOB.CHUNK id token data",
        |mut a| ok(JobCommand::Chunk { id: a.next_bytes()?, token: token(&mut a)?, data: a.next_bytes()? })
    ),
    spec!(
        "job.complete",
        -3,
        W,
        NO_KEYS,
        Jobs,
        "0.1.0",
        "Completes a claimed job with an optional result. JOB.COMPLETE id token [result]",
        |mut a| {
            let (id, token) = (a.next_bytes()?, token(&mut a)?);
            let result = a.next_opt();
            a.finish()?;
            ok(JobCommand::Complete { id, token, result })
        }
    ),
    spec!(
        "job.fail",
        -4,
        W,
        NO_KEYS,
        Jobs,
        "0.1.0",
        "Fails a claimed job: retried after its backoff, or dead after the last attempt. JOB.FAIL id token error [NORETRY]",
        |mut a| {
            let (id, token, error) = (a.next_bytes()?, token(&mut a)?, a.next_bytes()?);
            let no_retry = a.eat("NORETRY");
            a.finish()?;
            ok(JobCommand::Fail { id, token, error, no_retry })
        }
    ),
    spec!(
        "job.status",
        2,
        READONLY | FAST,
        NO_KEYS,
        Jobs,
        "0.1.0",
        "A job's state, attempts, progress and timestamps. JOB.STATUS id",
        |mut a| ok(JobCommand::Status(a.next_bytes()?))
    ),
    spec!(
        "job.result",
        -2,
        READONLY | BLOCKING,
        NO_KEYS,
        Jobs,
        "0.1.0",
        "A job's result, optionally waiting for it; nil on timeout. JOB.RESULT id [BLOCK ms]",
        |mut a| {
            let id = a.next_bytes()?;
            let block = optional_block(&mut a)?;
            a.finish()?;
            ok(JobCommand::Result { id, block })
        }
    ),
    spec!(
        "job.read",
        -2,
        READONLY | BLOCKING,
        NO_KEYS,
        Jobs,
        "0.1.0",
        "A job's result chunks from an offset. JOB.READ id [FROM offset] [COUNT n] [BLOCK ms]",
        parse_read
    ),
    spec!(
        "job.cancel",
        2,
        W,
        NO_KEYS,
        Jobs,
        "0.1.0",
        "Cancels a job; a running job's worker learns it at once or at its next heartbeat. JOB.CANCEL id",
        |mut a| ok(JobCommand::Cancel(a.next_bytes()?))
    ),
    spec!(
        "job.list",
        -2,
        READONLY,
        NO_KEYS,
        Jobs,
        "0.1.0",
        "Ids of a queue's jobs, optionally in one state. JOB.LIST queue [state]",
        |mut a| {
            let queue = a.next_bytes()?;
            let state = a.next_opt();
            a.finish()?;
            ok(JobCommand::List { queue, state })
        }
    ),
    spec!("job.stats", 2, READONLY, NO_KEYS, Jobs, "0.1.0", "A queue's jobs per state, limit and counters. JOB.STATS queue", |mut a| ok(
        JobCommand::Stats(a.next_bytes()?)
    )),
    spec!("job.dead", 2, READONLY, NO_KEYS, Jobs, "0.1.0", "A queue's dead-letter jobs. JOB.DEAD queue", |mut a| ok(JobCommand::Dead(
        a.next_bytes()?
    ))),
    spec!(
        "job.retry",
        2,
        W,
        NO_KEYS,
        Jobs,
        "0.1.0",
        "Requeues a dead, failed or cancelled job with fresh attempts. JOB.RETRY id",
        |mut a| ok(JobCommand::Retry(a.next_bytes()?))
    ),
    spec!(
        "job.queue",
        -3,
        WRITE,
        NO_KEYS,
        Jobs,
        "0.1.0",
        "Sets a queue's concurrency limit (0: none), or pauses / resumes its claims. JOB.QUEUE queue CONCURRENCY n | PAUSE | RESUME",
        |mut a| {
            let queue = a.next_bytes()?;
            let command = if a.eat("CONCURRENCY") {
                JobCommand::Concurrency { queue, limit: a.next_u64()? as usize }
            } else if a.eat("PAUSE") {
                JobCommand::Pause { queue, paused: true }
            } else if a.eat("RESUME") {
                JobCommand::Pause { queue, paused: false }
            } else {
                return Err(CommandError::fixed("ERR JOB.QUEUE takes CONCURRENCY n, PAUSE or RESUME"));
            };
            a.finish()?;
            ok(command)
        }
    ),
    spec!(
        "job.queues",
        -2,
        READONLY,
        NO_KEYS,
        Jobs,
        "0.1.0",
        "Lists queues by pattern with a cursor, each with its jobs queued, delayed, running and dead, its limit and whether it is paused; replies [next-cursor, [queue ...]]. JOB.QUEUES cursor [MATCH pattern] [COUNT n]",
        |a| ok(JobCommand::Queues(parse_list(a, false)?))
    ),
    spec!(
        "job.join",
        -2,
        READONLY | BLOCKING,
        NO_KEYS,
        Jobs,
        "0.1.0",
        "Waits until a queue has no job queued, delayed or running; nil on timeout. JOB.JOIN queue [TIMEOUT ms]",
        |mut a| {
            let queue = a.next_bytes()?;
            let timeout = if a.eat("TIMEOUT") { Some(WaitMs(a.next_u64()?)) } else { None };
            a.finish()?;
            ok(JobCommand::Join { queue, timeout })
        }
    ),
];
