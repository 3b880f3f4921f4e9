//! Putting the jobs back from persistence, and reading them out for a snapshot.
//!
//! Records restore the jobs themselves (each job whole, its chunks one by one); everything derived
//! from them (each queue's claimable set, running count and dead letters, every job's deadline, the
//! sequence and token counters) is rebuilt once at the end by [`Jobs::finish_restore`], so it cannot
//! disagree with the jobs.

use bytes::Bytes;

use super::{Job, JobState, Jobs, QueueConfig};

impl Jobs {
    /// A job as recorded. A record without a payload updates a job already restored (its payload is
    /// kept); the job's chunk entries already restored stay. Every record's seq and lease token count
    /// towards the counters, superseded ones too: a token handed out before (to a lease that since
    /// ended) is never handed out again after a restart.
    pub fn restore_job(&mut self, mut job: Job, payload_recorded: bool) {
        self.next_seq = self.next_seq.max(job.seq);
        if let Some(lease) = job.lease {
            self.next_token = self.next_token.max(lease.token);
        }
        if let Some(old) = self.jobs.remove(&job.id) {
            if !payload_recorded {
                job.payload = old.payload;
            }
            let mut chunks = old.chunks;
            chunks.restore_shape(job.chunks.epoch(), job.chunks.retention(), job.chunks.next_offset(), job.chunks.is_closed());
            job.chunks = chunks;
        } else if !payload_recorded {
            // An update of a job whose submission is not in the files (it cannot happen with an
            // intact log): without its payload the job is not worth keeping.
            return;
        }
        self.jobs.insert(job.id.clone(), job);
    }

    pub fn restore_chunk(&mut self, id: &[u8], offset: u64, data: Bytes, at_ms: u64) {
        if let Some(job) = self.jobs.get_mut(id) {
            job.chunks.restore_entry(offset, data, at_ms);
        }
    }

    pub fn restore_gone(&mut self, id: &[u8]) {
        self.jobs.remove(id);
    }

    pub fn restore_queue(&mut self, queue: &Bytes, config: QueueConfig) {
        self.queues.entry(queue.clone()).or_default().config = config;
    }

    /// Counters that must not go backwards: job sequence and fencing token.
    pub fn restore_counters(&mut self, seq: u64, token: u64) {
        self.next_seq = self.next_seq.max(seq);
        self.next_token = self.next_token.max(token);
    }

    pub fn counters(&self) -> (u64, u64) {
        (self.next_seq, self.next_token)
    }

    /// Rebuilds what is derived from the jobs. A lease that ran out while the broker was down (or a
    /// delay, or a result TTL) is due at once: the timer handles it as soon as the broker runs.
    pub fn finish_restore(&mut self) {
        for q in self.queues.values_mut() {
            q.ready.clear();
            q.running = 0;
            q.open = 0;
            q.dead.clear();
        }
        let mut dead: Vec<(u64, u64, Bytes, Bytes)> = Vec::new();
        let mut timers: Vec<(Bytes, Option<u64>)> = Vec::new();
        for job in self.jobs.values() {
            self.next_seq = self.next_seq.max(job.seq);
            if let Some(lease) = job.lease {
                self.next_token = self.next_token.max(lease.token);
            }
            let queue = self.queues.entry(job.queue.clone()).or_default();
            if !job.state.is_final() {
                queue.open += 1;
            }
            let deadline = match job.state {
                JobState::Queued => {
                    queue.ready.insert((-job.priority, job.seq, job.id.clone()));
                    None
                }
                JobState::Delayed => job.run_at_ms,
                JobState::Running | JobState::Streaming => {
                    queue.running += 1;
                    job.lease.map(|l| l.expires_ms)
                }
                JobState::Dead => {
                    dead.push((job.finished_ms.unwrap_or(0), job.seq, job.queue.clone(), job.id.clone()));
                    None
                }
                JobState::Done | JobState::Error | JobState::Cancelled => job.finished_ms.map(|f| f + job.result_ttl_ms),
            };
            timers.push((job.id.clone(), deadline));
        }
        dead.sort();
        for (_, _, queue, id) in dead {
            self.queues.entry(queue).or_default().dead.push_back(id);
        }
        for (id, at) in timers {
            if let Some(job) = self.jobs.get_mut(&id) {
                job.timer_at = None;
            }
            self.set_timer(&id, at);
        }
        let claimable: Vec<Bytes> = self.queues.iter().filter(|(_, q)| !q.ready.is_empty()).map(|(n, _)| n.clone()).collect();
        for name in claimable {
            self.ready.push(super::queue_wait_key(&name));
        }
    }

    /// Every job id (for a snapshot, which then reads each job in turn).
    pub fn ids(&self) -> Vec<Bytes> {
        self.jobs.keys().cloned().collect()
    }

    /// Every queue whose settings are not the defaults, and its settings.
    pub fn configs(&self) -> Vec<(Bytes, QueueConfig)> {
        self.queues.iter().filter(|(_, q)| q.config != QueueConfig::default()).map(|(n, q)| (n.clone(), q.config)).collect()
    }
}
