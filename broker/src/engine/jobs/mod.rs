//! Jobs (JOB.*): the dispatcher as a service. Producers submit jobs to named queues; workers claim them
//! under a lease, report progress, stream result chunks and complete or fail them; anyone can follow a
//! job live or wait for its result.
//!
//! Every change of a job goes through this engine's operations, under the state lock. Claims are
//! atomic: a job goes to exactly one worker, highest priority first, FIFO within a priority, and never
//! beyond a queue's concurrency limit. A lease token is a fencing token: a worker whose lease expired
//! (the job was requeued, perhaps claimed again) can no longer heartbeat, chunk, complete or fail it.
//! Deadlines (delays, leases, result TTLs) run from the timer through [`Jobs::run_due`].

mod job;
mod ops;
mod restore;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

pub use job::{Backoff, BackoffKind, Job, JobState, Lease};
pub use ops::{Claimed, JobResult, QueueReport, QueueSummary, SubmitOptions};

use super::change::{Change, ChangeSink, JobChange, JobEvent};
use super::schedule::Schedule;
use super::stream::Retention;
use super::wait::{Ready, WaitKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    /// Most jobs held at once (all states); submits beyond it are refused.
    pub max_jobs: usize,
    pub default_attempts: u32,
    pub default_lease_ms: u64,
    pub default_result_ttl_ms: u64,
    /// Chunks kept per job.
    pub max_chunks: usize,
    /// Dead jobs kept per queue (the oldest are dropped beyond it).
    pub max_dead: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    pub submitted: u64,
    pub claimed: u64,
    pub completed: u64,
    pub failed: u64,
    pub retried: u64,
    pub dead: u64,
    pub cancelled: u64,
    pub lease_expired: u64,
}

/// A queue's settings (JOB.QUEUE).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Most jobs running at once (0: no limit): the Semaphore.
    pub concurrency: usize,
    /// Claims stop while paused; submissions go on.
    pub paused: bool,
}

#[derive(Debug, Default)]
struct Queue {
    /// Claimable jobs ordered by (-priority, seq): highest priority first, then FIFO.
    ready: BTreeSet<(i64, u64, Bytes)>,
    /// Jobs held by workers now.
    running: usize,
    /// Jobs not finished yet (queued, delayed, running, streaming): JOB.JOIN waits for none.
    open: usize,
    config: QueueConfig,
    dead: VecDeque<Bytes>,
    stats: QueueStats,
}

impl Queue {
    fn has_slot(&self) -> bool {
        !self.config.paused && (self.config.concurrency == 0 || self.running < self.config.concurrency)
    }
}

pub struct Jobs {
    jobs: HashMap<Bytes, Job>,
    queues: HashMap<Bytes, Queue>,
    /// Each job's one pending deadline.
    timers: Schedule<Bytes>,
    settings: JobSettings,
    next_seq: u64,
    next_token: u64,
    sink: Arc<dyn ChangeSink>,
    ready: Ready,
}

/// The wait-key domain of job queues.
pub const QUEUE_DOMAIN: &str = "jobq";

/// Where workers wait for a queue.
pub fn queue_wait_key(queue: &[u8]) -> WaitKey {
    WaitKey::Named { domain: QUEUE_DOMAIN, name: Bytes::copy_from_slice(queue) }
}

/// Where JOB.JOIN waits for a queue to have no unfinished job.
pub fn join_wait_key(queue: &[u8]) -> WaitKey {
    WaitKey::Named { domain: "jobjoin", name: Bytes::copy_from_slice(queue) }
}

/// Where followers wait for a job's chunks, progress or end.
pub fn job_wait_key(id: &[u8]) -> WaitKey {
    WaitKey::Named { domain: "job", name: Bytes::copy_from_slice(id) }
}

/// The pub-sub channel a job's events go out on.
pub fn job_channel(id: &[u8]) -> Vec<u8> {
    let mut channel = b"__job__:".to_vec();
    channel.extend_from_slice(id);
    channel
}

impl Jobs {
    pub fn new(settings: JobSettings, sink: Arc<dyn ChangeSink>) -> Self {
        Jobs {
            jobs: HashMap::new(),
            queues: HashMap::new(),
            timers: Schedule::default(),
            settings,
            next_seq: 0,
            next_token: 0,
            sink,
            ready: Ready::default(),
        }
    }

    /// The keys this engine's changes made ready since the state last collected them.
    pub fn ready_mut(&mut self) -> &mut Ready {
        &mut self.ready
    }

    pub fn take_scheduled(&mut self) -> Option<u64> {
        self.timers.take_scheduled()
    }

    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.next()
    }

    /// Whether a claim on `queue` would get a job now (one is ready and a slot is free).
    pub fn claimable(&self, queue: &[u8]) -> bool {
        self.queues.get(queue).is_some_and(|q| q.has_slot() && !q.ready.is_empty())
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    fn chunk_retention(&self) -> Retention {
        Retention { max_len: self.settings.max_chunks, max_age_ms: 0 }
    }

    /// Sets (or clears) a job's one deadline.
    fn set_timer(&mut self, id: &Bytes, at: Option<u64>) {
        let Some(job) = self.jobs.get_mut(id) else { return };
        if let Some(old) = job.timer_at.take() {
            self.timers.remove(old, id.clone());
        }
        if let Some(at) = at {
            job.timer_at = Some(at);
            self.timers.add(at, id.clone());
        }
    }

    /// Puts a job on its queue's ready set and wakes a waiting worker.
    fn make_ready(&mut self, id: &Bytes) {
        let Some(job) = self.jobs.get_mut(id) else { return };
        job.state = JobState::Queued;
        job.run_at_ms = None;
        let queue = self.queues.entry(job.queue.clone()).or_default();
        queue.ready.insert((-job.priority, job.seq, id.clone()));
        // The job's own copy of the name, shared rather than copied again.
        self.ready.push(WaitKey::Named { domain: QUEUE_DOMAIN, name: job.queue.clone() });
    }

    /// A job left the running set (done, failed, cancelled, lease lost): frees its queue's slot.
    fn release_slot(&mut self, queue: &Bytes) {
        if let Some(q) = self.queues.get_mut(queue) {
            q.running = q.running.saturating_sub(1);
            if q.config.concurrency > 0 && !q.ready.is_empty() {
                self.ready.push(queue_wait_key(queue));
            }
        }
    }

    /// The one place a job change is produced: wakes the job's followers (JOB.RESULT, JOB.READ and
    /// JOB.SUBMIT ... WAIT blocked on it) when the change is one they wait for, and emits it. A claim,
    /// a heartbeat or a progress report changes neither the job's chunks nor its outcome, so they wake
    /// nobody: a blocked JOB.RESULT is not re-run for nothing.
    fn emit(&mut self, id: &Bytes, event: JobEvent<'_>) {
        let wakes = !matches!(event, JobEvent::Submitted | JobEvent::Claimed | JobEvent::Heartbeat | JobEvent::Progress);
        if wakes {
            self.ready.push(WaitKey::Named { domain: "job", name: id.clone() });
        }
        if let Some(job) = self.jobs.get(id) {
            self.sink.emit(&Change::Job(JobChange { job, event }));
        }
    }

    /// After a failed or lost attempt: retry after the backoff, or bury the job.
    fn retry_or_bury(&mut self, id: &Bytes, now: u64, random: u64) -> JobState {
        let job = self.jobs.get_mut(id).expect("caller checked");
        let queue = job.queue.clone();
        if job.attempt < job.max_attempts {
            let delay = job.backoff.delay(job.attempt + 1, random);
            self.queues.entry(queue).or_default().stats.retried += 1;
            if delay == 0 {
                self.make_ready(id);
                return JobState::Queued;
            }
            let job = self.jobs.get_mut(id).expect("present");
            job.state = JobState::Delayed;
            job.run_at_ms = Some(now + delay);
            self.set_timer(id, Some(now + delay));
            JobState::Delayed
        } else {
            job.state = JobState::Dead;
            job.finished_ms = Some(now);
            job.chunks.close();
            self.closed(&queue);
            let max_dead = self.settings.max_dead;
            let q = self.queues.entry(queue).or_default();
            q.stats.dead += 1;
            q.dead.push_back(id.clone());
            let dropped = if max_dead > 0 && q.dead.len() > max_dead { q.dead.pop_front() } else { None };
            if let Some(old) = dropped {
                self.remove_job(&old);
            }
            JobState::Dead
        }
    }

    /// A job of `queue` became final: one fewer unfinished; the last one wakes JOB.JOIN.
    fn closed(&mut self, queue: &Bytes) {
        if let Some(q) = self.queues.get_mut(queue) {
            q.open = q.open.saturating_sub(1);
            if q.open == 0 {
                self.ready.push(join_wait_key(queue));
            }
        }
    }

    /// Whether `queue` has no job queued, delayed or running (JOB.JOIN).
    pub fn drained(&self, queue: &[u8]) -> bool {
        self.queues.get(queue).is_none_or(|q| q.open == 0)
    }

    fn remove_job(&mut self, id: &Bytes) {
        self.emit(id, JobEvent::Removed);
        self.set_timer(id, None);
        if let Some(job) = self.jobs.remove(id)
            && let Some(q) = self.queues.get_mut(&job.queue)
        {
            q.ready.remove(&(-job.priority, job.seq, id.clone()));
        }
    }

    /// Runs due deadlines: delayed jobs become claimable, expired leases requeue (or bury) their job,
    /// finished jobs past their result TTL are dropped. At most `budget`; returns how many ran.
    pub fn run_due(&mut self, now: u64, budget: usize, mut random: impl FnMut() -> u64) -> usize {
        let mut ran = 0;
        while ran < budget {
            let Some((_, id)) = self.timers.pop_due(now) else { break };
            ran += 1;
            let Some(job) = self.jobs.get_mut(&id) else { continue };
            job.timer_at = None;
            match job.state {
                JobState::Delayed => {
                    self.make_ready(&id);
                    self.emit(&id, JobEvent::Queued { retried: false });
                }
                s if s.is_active() => {
                    let queue = job.queue.clone();
                    job.lease = None;
                    self.queues.entry(queue.clone()).or_default().stats.lease_expired += 1;
                    self.release_slot(&queue);
                    self.retry_or_bury(&id, now, random());
                    self.emit(&id, JobEvent::LeaseExpired);
                }
                s if s.is_final() && s != JobState::Dead => self.remove_job(&id),
                _ => {}
            }
        }
        ran
    }
}
