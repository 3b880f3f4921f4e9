//! One job: its definition (queue, payload, retry policy) and its life (state, attempts, lease,
//! progress, result, chunks).

use bytes::Bytes;

use crate::engine::stream::StreamLog;

/// Where a job is in its life. `Streaming` is `Running` with chunks written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    Queued,
    Delayed,
    Running,
    Streaming,
    Done,
    /// Failed for good (`JOB.FAIL ... NORETRY`).
    Error,
    Cancelled,
    /// Out of attempts: in the queue's dead-letter list.
    Dead,
}

impl JobState {
    pub fn name(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Delayed => "delayed",
            JobState::Running => "running",
            JobState::Streaming => "streaming",
            JobState::Done => "done",
            JobState::Error => "error",
            JobState::Cancelled => "cancelled",
            JobState::Dead => "dead",
        }
    }

    /// Every state, in the order JOB.STATS reports them.
    pub const ALL: [JobState; 8] = [
        JobState::Queued,
        JobState::Delayed,
        JobState::Running,
        JobState::Streaming,
        JobState::Done,
        JobState::Error,
        JobState::Cancelled,
        JobState::Dead,
    ];

    pub fn parse(text: &[u8]) -> Option<JobState> {
        JobState::ALL.into_iter().find(|s| s.name().as_bytes().eq_ignore_ascii_case(text))
    }

    /// Held by a worker under a lease.
    pub fn is_active(self) -> bool {
        matches!(self, JobState::Running | JobState::Streaming)
    }

    /// Finished one way or another: the result (or failure) is final until a JOB.RETRY.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Done | JobState::Error | JobState::Cancelled | JobState::Dead)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackoffKind {
    Fixed,
    Exponential,
}

/// How long to wait before a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub kind: BackoffKind,
    pub base_ms: u64,
    pub jitter: bool,
}

impl Backoff {
    /// The delay before attempt `next` (2 for the first retry): fixed, or base * 2^(retries-1),
    /// capped at one day; with jitter, a uniform draw in [delay/2, delay].
    pub fn delay(self, next_attempt: u32, random: u64) -> u64 {
        let retries = next_attempt.saturating_sub(1).max(1);
        let delay = match self.kind {
            BackoffKind::Fixed => self.base_ms,
            BackoffKind::Exponential => self.base_ms.saturating_mul(1u64 << (retries - 1).min(40)),
        }
        .min(86_400_000);
        if self.jitter && delay > 1 { delay / 2 + random % (delay - delay / 2 + 1) } else { delay }
    }
}

/// A worker's hold on a running job. The token is a fencing token: unique, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub token: u64,
    pub expires_ms: u64,
}

#[derive(Debug)]
pub struct Job {
    pub id: Bytes,
    pub queue: Bytes,
    pub payload: Bytes,
    pub priority: i64,
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub lease_ms: u64,
    pub result_ttl_ms: u64,
    pub state: JobState,
    /// Attempts started so far (a claim starts one).
    pub attempt: u32,
    /// Submission order, the FIFO tie-break within a priority.
    pub seq: u64,
    pub lease: Option<Lease>,
    pub progress: Option<Bytes>,
    pub result: Option<Bytes>,
    pub last_error: Option<Bytes>,
    pub created_ms: u64,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    /// When a delayed job becomes claimable.
    pub run_at_ms: Option<u64>,
    /// The job's one pending deadline in the engine's timer index, if any.
    pub timer_at: Option<u64>,
    pub chunks: StreamLog,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_jitters_within_bounds() {
        let fixed = Backoff { kind: BackoffKind::Fixed, base_ms: 100, jitter: false };
        assert_eq!((fixed.delay(2, 0), fixed.delay(5, 0)), (100, 100));
        let exp = Backoff { kind: BackoffKind::Exponential, base_ms: 100, jitter: false };
        assert_eq!((exp.delay(2, 0), exp.delay(3, 0), exp.delay(4, 0)), (100, 200, 400));
        let jittered = Backoff { jitter: true, ..exp };
        for r in [0, 1, 77, u64::MAX] {
            let d = jittered.delay(4, r);
            assert!((200..=400).contains(&d), "{d}");
        }
        assert_eq!(JobState::parse(b"DEAD"), Some(JobState::Dead));
    }
}
