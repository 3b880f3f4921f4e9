//! What producers, workers and followers do with jobs.

use crate::engine::Error;
use bytes::Bytes;

use super::job::{Backoff, BackoffKind, Job, JobState, Lease};
use super::{Jobs, QueueStats};
use crate::engine::change::{Change, JobEvent};
use crate::engine::listing::{ListArgs, Page, select};
use crate::engine::stream::{Read, StreamLog};

/// JOB.SUBMIT's options; `None` takes the configured default.
#[derive(Debug, Clone, Default)]
pub struct SubmitOptions {
    pub id: Option<Bytes>,
    pub priority: i64,
    pub delay_ms: u64,
    pub attempts: Option<u32>,
    pub backoff: Option<Backoff>,
    pub lease_ms: Option<u64>,
    pub result_ttl_ms: Option<u64>,
}

/// A job handed to a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub id: Bytes,
    pub queue: Bytes,
    pub payload: Bytes,
    pub attempt: u32,
    pub token: u64,
    pub lease_ms: u64,
}

/// The Future's state, for JOB.RESULT.
#[derive(Debug, Clone, PartialEq)]
pub enum JobResult {
    Pending,
    Done(Option<Bytes>),
    Failed { state: JobState, error: Option<Bytes> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueReport {
    pub counts: Vec<(JobState, usize)>,
    pub config: super::QueueConfig,
    pub stats: QueueStats,
}

/// One queue as JOB.QUEUES lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSummary {
    pub name: Bytes,
    pub queued: usize,
    pub delayed: usize,
    pub running: usize,
    pub dead: usize,
    pub config: super::QueueConfig,
    pub stats: QueueStats,
}

fn no_job() -> Error {
    Error::fixed("NOJOB no such job")
}

fn lease_lost() -> Error {
    Error::fixed("LEASE the job is not held with this token (the lease expired or the job moved on)")
}

fn cancelled() -> Error {
    Error::fixed("CANCELLED the job was cancelled")
}

impl Jobs {
    /// JOB.SUBMIT: the job's id, and whether this call created it (a repeated ID returns the
    /// existing job).
    pub fn submit(&mut self, queue: &Bytes, payload: &[u8], opts: SubmitOptions, now: u64) -> Result<(Bytes, bool), Error> {
        if let Some(id) = &opts.id
            && self.jobs.contains_key(id)
        {
            return Ok((id.clone(), false));
        }
        if self.jobs.len() >= self.settings.max_jobs {
            return Err(Error::fixed("FULL too many jobs (jobs.max_jobs)"));
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        // The command's arguments are views into the connection's read buffer: a job kept for its
        // result TTL would keep that whole buffer alive (and make the connection allocate a new one).
        // So the id is copied, and the queue name is the queue table's own copy, shared by its jobs.
        let id = opts.id.as_deref().map_or_else(|| Bytes::from(format!("{now}-{seq}")), Bytes::copy_from_slice);
        let queue = match self.queues.get_key_value(queue) {
            Some((name, _)) => name.clone(),
            None => Bytes::copy_from_slice(queue),
        };
        let job = Job {
            id: id.clone(),
            queue: queue.clone(),
            payload: Bytes::copy_from_slice(payload),
            priority: opts.priority,
            max_attempts: opts.attempts.unwrap_or(self.settings.default_attempts).max(1),
            backoff: opts.backoff.unwrap_or(Backoff { kind: BackoffKind::Fixed, base_ms: 0, jitter: false }),
            lease_ms: opts.lease_ms.unwrap_or(self.settings.default_lease_ms),
            result_ttl_ms: opts.result_ttl_ms.unwrap_or(self.settings.default_result_ttl_ms),
            state: JobState::Queued,
            attempt: 0,
            seq,
            lease: None,
            progress: None,
            result: None,
            last_error: None,
            created_ms: now,
            started_ms: None,
            finished_ms: None,
            run_at_ms: None,
            timer_at: None,
            chunks: StreamLog::new(seq, self.chunk_retention()),
        };
        self.jobs.insert(id.clone(), job);
        let q = self.queues.entry(queue).or_default();
        q.stats.submitted += 1;
        q.open += 1;
        if opts.delay_ms > 0 {
            let job = self.jobs.get_mut(&id).expect("just inserted");
            job.state = JobState::Delayed;
            job.run_at_ms = Some(now + opts.delay_ms);
            self.set_timer(&id, Some(now + opts.delay_ms));
        } else {
            self.make_ready(&id);
        }
        self.emit(&id, JobEvent::Submitted);
        Ok((id, true))
    }

    /// JOB.CLAIM: the best claimable job of the first queue (in the order given) that has one and a
    /// free concurrency slot; it becomes Running under a new lease.
    pub fn claim(&mut self, queues: &[Bytes], lease_ms: Option<u64>, now: u64) -> Option<Claimed> {
        for name in queues {
            let Some(queue) = self.queues.get_mut(name) else { continue };
            if !queue.has_slot() {
                continue;
            }
            let Some((_, _, id)) = queue.ready.pop_first() else { continue };
            queue.running += 1;
            queue.stats.claimed += 1;
            self.next_token += 1;
            let token = self.next_token;
            let job = self.jobs.get_mut(&id).expect("ready jobs exist");
            let lease_ms = lease_ms.unwrap_or(job.lease_ms);
            job.attempt += 1;
            job.state = if job.chunks.next_offset() > 0 { JobState::Streaming } else { JobState::Running };
            job.started_ms.get_or_insert(now);
            job.lease = Some(Lease { token, expires_ms: now + lease_ms });
            let claimed =
                Claimed { id: id.clone(), queue: name.clone(), payload: job.payload.clone(), attempt: job.attempt, token, lease_ms };
            self.set_timer(&id, Some(now + lease_ms));
            self.emit(&id, JobEvent::Claimed);
            return Some(claimed);
        }
        None
    }

    /// The job held under `token`, or why it is not.
    fn held(&mut self, id: &[u8], token: u64) -> Result<&mut Job, Error> {
        let job = self.jobs.get_mut(id).ok_or_else(no_job)?;
        let same_lease = job.lease.is_some_and(|l| l.token == token);
        if job.state == JobState::Cancelled && same_lease {
            return Err(cancelled());
        }
        if !job.state.is_active() || !same_lease {
            return Err(lease_lost());
        }
        Ok(job)
    }

    /// JOB.HEARTBEAT: extends the lease (by `lease_ms`, or the job's lease length); the new expiry.
    pub fn heartbeat(&mut self, id: &Bytes, token: u64, lease_ms: Option<u64>, now: u64) -> Result<u64, Error> {
        let job = self.held(id, token)?;
        let expires = now + lease_ms.unwrap_or(job.lease_ms);
        job.lease = Some(Lease { token, expires_ms: expires });
        self.set_timer(id, Some(expires));
        self.emit(id, JobEvent::Heartbeat);
        Ok(expires)
    }

    pub fn progress(&mut self, id: &Bytes, token: u64, value: &[u8]) -> Result<(), Error> {
        let job = self.held(id, token)?;
        job.progress = Some(Bytes::copy_from_slice(value));
        self.emit(id, JobEvent::Progress);
        Ok(())
    }

    /// JOB.CHUNK: appends to the job's result stream; the chunk's offset.
    pub fn chunk(&mut self, id: &Bytes, token: u64, data: &[u8], now: u64) -> Result<u64, Error> {
        let job = self.held(id, token)?;
        let offset = job.chunks.append(Bytes::copy_from_slice(data), now).map_err(|_| lease_lost())?;
        job.state = JobState::Streaming;
        self.emit(id, JobEvent::Chunk { offset, data, at_ms: now });
        Ok(offset)
    }

    /// Ends an attempt for good: records the outcome, frees the slot, closes the chunk stream and
    /// starts the result TTL (dead jobs stay until retried).
    fn finish(&mut self, id: &Bytes, state: JobState, now: u64) {
        let job = self.jobs.get_mut(id).expect("caller checked");
        let queue = job.queue.clone();
        let was_active = job.state.is_active();
        let was_open = !job.state.is_final();
        job.state = state;
        job.finished_ms = Some(now);
        job.chunks.close();
        let ttl = job.result_ttl_ms;
        if was_active {
            self.release_slot(&queue);
        }
        if was_open {
            self.closed(&queue);
        }
        self.set_timer(id, (state != JobState::Dead).then_some(now + ttl));
    }

    pub fn complete(&mut self, id: &Bytes, token: u64, result: Option<&[u8]>, now: u64) -> Result<(), Error> {
        let job = self.held(id, token)?;
        job.result = result.map(Bytes::copy_from_slice);
        job.lease = None;
        let queue = job.queue.clone();
        self.finish(id, JobState::Done, now);
        self.queues.entry(queue).or_default().stats.completed += 1;
        self.emit(id, JobEvent::Done);
        Ok(())
    }

    /// JOB.FAIL: retries after the backoff while attempts remain (unless `no_retry`), else the job is
    /// dead; with `no_retry` it ends in `error`. The state it moved to.
    pub fn fail(&mut self, id: &Bytes, token: u64, error: &[u8], no_retry: bool, now: u64, random: u64) -> Result<JobState, Error> {
        let job = self.held(id, token)?;
        job.last_error = Some(Bytes::copy_from_slice(error));
        job.lease = None;
        let queue = job.queue.clone();
        self.queues.entry(queue.clone()).or_default().stats.failed += 1;
        let state = if no_retry {
            self.finish(id, JobState::Error, now);
            JobState::Error
        } else {
            self.release_slot(&queue);
            let state = self.retry_or_bury(id, now, random);
            if state == JobState::Dead {
                self.set_timer(id, None);
            }
            state
        };
        self.emit(id, JobEvent::Failed);
        Ok(state)
    }

    /// JOB.CANCEL: a waiting job is cancelled at once; a running one too, and its worker learns it at
    /// its next heartbeat or chunk (or at once, on the job's channel). False if already final.
    pub fn cancel(&mut self, id: &Bytes, now: u64) -> Result<bool, Error> {
        let job = self.jobs.get_mut(id).ok_or_else(no_job)?;
        if job.state.is_final() {
            return Ok(false);
        }
        let queue = job.queue.clone();
        if let Some(q) = self.queues.get_mut(&queue) {
            q.ready.remove(&(-job.priority, job.seq, id.clone()));
            q.stats.cancelled += 1;
        }
        self.finish(id, JobState::Cancelled, now);
        self.emit(id, JobEvent::Cancelled);
        Ok(true)
    }

    /// JOB.RETRY: a dead, failed or cancelled job goes back to its queue with fresh attempts.
    pub fn retry(&mut self, id: &Bytes) -> Result<(), Error> {
        let job = self.jobs.get_mut(id).ok_or_else(no_job)?;
        if !matches!(job.state, JobState::Dead | JobState::Error | JobState::Cancelled) {
            return Err(Error::fixed("ERR only dead, error or cancelled jobs can be retried"));
        }
        job.attempt = 0;
        job.lease = None;
        job.finished_ms = None;
        job.result = None;
        job.chunks = StreamLog::new(job.seq + job.chunks.epoch() + 1, job.chunks.retention());
        let queue = job.queue.clone();
        let q = self.queues.entry(queue).or_default();
        q.dead.retain(|d| d != id);
        q.open += 1;
        self.set_timer(id, None);
        self.make_ready(id);
        self.emit(id, JobEvent::Queued { retried: true });
        Ok(())
    }

    pub fn job(&self, id: &[u8]) -> Option<&Job> {
        self.jobs.get(id)
    }

    pub fn result(&self, id: &[u8]) -> Result<JobResult, Error> {
        let job = self.jobs.get(id).ok_or_else(no_job)?;
        Ok(match job.state {
            JobState::Done => JobResult::Done(job.result.clone()),
            s if s.is_final() => JobResult::Failed { state: s, error: job.last_error.clone() },
            _ => JobResult::Pending,
        })
    }

    /// JOB.READ: the job's chunks from an offset (ended once the job is final and all were read).
    pub fn read(&mut self, id: &[u8], from: u64, count: usize, now: u64) -> Result<(Read, u64), Error> {
        let job = self.jobs.get_mut(id).ok_or_else(no_job)?;
        let epoch = job.chunks.epoch();
        Ok((job.chunks.read(from, count, now), epoch))
    }

    pub fn list(&self, queue: &[u8], state: Option<JobState>) -> Vec<Bytes> {
        let mut found: Vec<&Job> = self.jobs.values().filter(|j| j.queue == queue && state.is_none_or(|s| j.state == s)).collect();
        found.sort_by_key(|j| j.seq);
        found.into_iter().map(|j| j.id.clone()).collect()
    }

    pub fn dead(&self, queue: &[u8]) -> Vec<Bytes> {
        self.queues.get(queue).map(|q| q.dead.iter().cloned().collect()).unwrap_or_default()
    }

    pub fn stats(&self, queue: &[u8]) -> QueueReport {
        let counts =
            JobState::ALL.into_iter().map(|s| (s, self.jobs.values().filter(|j| j.queue == queue && j.state == s).count())).collect();
        let q = self.queues.get(queue);
        QueueReport { counts, config: q.map(|q| q.config).unwrap_or_default(), stats: q.map(|q| q.stats).unwrap_or_default() }
    }

    /// Every queue's counters added up (the per-second rates INFO reports are sampled from these).
    pub fn totals(&self) -> QueueStats {
        self.queues.values().fold(QueueStats::default(), |mut t, q| {
            let s = q.stats;
            t.submitted += s.submitted;
            t.claimed += s.claimed;
            t.completed += s.completed;
            t.failed += s.failed;
            t.retried += s.retried;
            t.dead += s.dead;
            t.cancelled += s.cancelled;
            t.lease_expired += s.lease_expired;
            t
        })
    }

    /// JOB.QUEUES: a page of the queues, each with its counts from the queue's own bookkeeping (no
    /// pass over the jobs): unfinished jobs are queued (claimable), running (held by a worker,
    /// streaming included) or else delayed (waiting for their time or a retry backoff).
    pub fn queues(&self, args: &ListArgs) -> Page<QueueSummary> {
        select(self.queues.iter(), |(name, _)| name, args).map(|(name, q)| QueueSummary {
            name: name.clone(),
            queued: q.ready.len(),
            delayed: q.open.saturating_sub(q.ready.len() + q.running),
            running: q.running,
            dead: q.dead.len(),
            config: q.config,
            stats: q.stats,
        })
    }

    /// JOB.QUEUE ... CONCURRENCY n (0: unlimited).
    pub fn set_concurrency(&mut self, queue: &Bytes, limit: usize) {
        self.configure(queue, |c| c.concurrency = limit);
    }

    /// JOB.QUEUE ... PAUSE | RESUME: claims stop (and start again); submissions go on either way.
    pub fn set_paused(&mut self, queue: &Bytes, paused: bool) {
        self.configure(queue, |c| c.paused = paused);
    }

    /// Changes a queue's settings; the one place a queue change is produced. Workers blocked on the
    /// queue may now claim.
    fn configure(&mut self, queue: &Bytes, change: impl FnOnce(&mut super::QueueConfig)) {
        let q = self.queues.entry(queue.clone()).or_default();
        change(&mut q.config);
        self.sink.emit(&Change::Queue { name: queue, config: q.config });
        if !q.ready.is_empty() {
            self.ready.push(super::queue_wait_key(queue));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::JobSettings;
    use super::*;
    use std::sync::Arc;

    fn jobs() -> Jobs {
        let settings = JobSettings {
            max_jobs: 1000,
            default_attempts: 3,
            default_lease_ms: 1000,
            default_result_ttl_ms: 60_000,
            max_chunks: 100,
            max_dead: 10,
        };
        Jobs::new(settings, Arc::new(crate::engine::change::Discard))
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn priority_then_fifo_and_idempotent_ids() {
        let mut j = jobs();
        let q = b("q");
        let (low, _) = j.submit(&q, b"low", SubmitOptions::default(), 0).unwrap();
        let (high, _) = j.submit(&q, b"high", SubmitOptions { priority: 5, ..Default::default() }, 0).unwrap();
        let (low2, _) = j.submit(&q, b"low2", SubmitOptions::default(), 0).unwrap();
        let (same, created) = j.submit(&q, b"x", SubmitOptions { id: Some(high.clone()), ..Default::default() }, 0).unwrap();
        assert_eq!((same, created), (high.clone(), false));
        let order: Vec<Bytes> = (0..3).map(|_| j.claim(std::slice::from_ref(&q), None, 0).unwrap().id).collect();
        assert_eq!(order, vec![high, low, low2]);
        assert!(j.claim(&[q], None, 0).is_none());
    }

    #[test]
    fn fencing_retries_with_backoff_and_dead_letters() {
        let mut j = jobs();
        let q = b("q");
        let opts = SubmitOptions {
            attempts: Some(2),
            backoff: Some(Backoff { kind: BackoffKind::Fixed, base_ms: 500, jitter: false }),
            ..Default::default()
        };
        let (id, _) = j.submit(&q, b"p", opts, 0).unwrap();
        let first = j.claim(std::slice::from_ref(&q), Some(100), 0).unwrap();
        assert_eq!(j.run_due(100, 10, || 0), 1, "the lease expires on time");
        assert_eq!(j.job(&id).unwrap().state, JobState::Delayed);
        assert_eq!(j.complete(&id, first.token, None, 150), Err(lease_lost()), "the old holder is fenced off");
        j.run_due(599, 10, || 0);
        assert!(j.claim(std::slice::from_ref(&q), None, 599).is_none(), "backoff not over");
        j.run_due(600, 10, || 0);
        let second = j.claim(std::slice::from_ref(&q), None, 600).unwrap();
        assert_eq!(second.attempt, 2);
        assert_eq!(j.fail(&id, second.token, b"boom", false, 700, 0).unwrap(), JobState::Dead);
        assert_eq!(j.dead(&q), vec![id.clone()]);
        j.retry(&id).unwrap();
        assert_eq!(j.claim(&[q], None, 800).unwrap().attempt, 1);
    }

    #[test]
    fn concurrency_limit_and_cancel() {
        let mut j = jobs();
        let q = b("q");
        j.set_concurrency(&q, 1);
        let (a, _) = j.submit(&q, b"a", SubmitOptions::default(), 0).unwrap();
        j.submit(&q, b"b", SubmitOptions::default(), 0).unwrap();
        let held = j.claim(std::slice::from_ref(&q), None, 0).unwrap();
        assert!(j.claim(std::slice::from_ref(&q), None, 0).is_none(), "the limit holds");
        assert!(j.cancel(&a, 1).unwrap());
        assert_eq!(j.heartbeat(&a, held.token, None, 2), Err(cancelled()), "the worker learns of the cancel");
        assert!(j.claim(&[q], None, 2).is_some(), "the slot was freed");
    }

    #[test]
    fn chunks_complete_and_result_ttl() {
        let mut j = jobs();
        let q = b("q");
        let (id, _) = j.submit(&q, b"p", SubmitOptions { result_ttl_ms: Some(1000), ..Default::default() }, 0).unwrap();
        let c = j.claim(&[q], None, 0).unwrap();
        assert_eq!(j.chunk(&id, c.token, b"a", 1).unwrap(), 0);
        assert_eq!(j.chunk(&id, c.token, b"b", 1).unwrap(), 1);
        assert_eq!(j.result(&id).unwrap(), JobResult::Pending);
        j.complete(&id, c.token, Some(b"ok"), 10).unwrap();
        assert_eq!(j.result(&id).unwrap(), JobResult::Done(Some(b("ok"))));
        let (read, _) = j.read(&id, 1, 10, 10).unwrap();
        assert!(matches!(read, Read::Entries { ended: true, next: 2, .. }));
        j.run_due(1010, 10, || 0);
        assert!(j.job(&id).is_none(), "gone after the result TTL");
    }

    #[test]
    fn queues_list_counts_that_agree_with_the_jobs() {
        let mut j = jobs();
        let (q, other) = (b("q"), b("other"));
        j.set_concurrency(&q, 3);
        j.submit(&q, b"a", SubmitOptions::default(), 0).unwrap();
        j.submit(&q, b"b", SubmitOptions { delay_ms: 100, ..Default::default() }, 0).unwrap();
        let (c, _) = j.submit(&q, b"c", SubmitOptions { attempts: Some(1), ..Default::default() }, 0).unwrap();
        j.submit(&q, b"d", SubmitOptions::default(), 0).unwrap();
        j.submit(&other, b"x", SubmitOptions::default(), 0).unwrap();
        let held: Vec<Claimed> = (0..3).map(|_| j.claim(std::slice::from_ref(&q), None, 0).unwrap()).collect();
        let dead = held.iter().find(|h| h.id == c).unwrap();
        j.fail(&c, dead.token, b"boom", false, 1, 0).unwrap();
        let page = j.queues(&ListArgs { cursor: 0, pattern: Some(b("q*")), count: 10 });
        assert_eq!(page.cursor, 0);
        let [s] = &page.entries[..] else { panic!("one queue matches: {page:?}") };
        let report = j.stats(&q);
        let count = |state| report.counts.iter().find(|(s, _)| *s == state).unwrap().1;
        assert_eq!((s.name.clone(), s.queued, s.delayed, s.running, s.dead), (q.clone(), 0, 1, 2, 1));
        assert_eq!(
            (s.queued, s.delayed, s.running, s.dead),
            (count(JobState::Queued), count(JobState::Delayed), count(JobState::Running), count(JobState::Dead))
        );
        assert_eq!(s.config.concurrency, 3);
        assert_eq!(j.queues(&ListArgs::all()).entries.len(), 2);
    }
}
