//! The node's side of jobs on the Redis engine (`jobs.rs` runs the commands): the scripts, each
//! queue's keys under its hash tag, one invocation, the id → queue cache, the waits' doorbells, job
//! ids, and reading a script's values.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use herald_protocol::{CommandError, Reply};
use redis::Value;

use super::Remote;
use super::notices::Waiters;
use super::pool::Target;
use super::scripted::{self, Script};
use crate::engine::jobs::{Backoff, BackoffKind, Job, JobSettings, JobState};
use crate::engine::stream::{Retention, StreamLog};

/// The scripts, run by SHA on the domain connection (`scripted.rs`: loaded with the other domains'
/// before an operation joins a pipeline).
pub struct Scripts {
    pub(super) submit: Script,
    pub(super) claim: Script,
    pub(super) held: Script,
    pub(super) manage: Script,
    pub(super) read: Script,
    pub(super) queue: Script,
}

impl Scripts {
    /// Every job script, for `scripted::pipelined_scripts`.
    pub fn all(&self) -> [&Script; 6] {
        [&self.submit, &self.claim, &self.held, &self.manage, &self.read, &self.queue]
    }
}

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(include_str!("lua/job_prelude.lua"), "\n", include_str!($file), "\n", include_str!("lua/job_epilogue.lua")))
    };
}

/// A result a `done` notice carried: the job's seq (which job of its id) and the result.
type Carried = (u64, Option<Bytes>);

/// The node's side of jobs on Redis: scripts, settings, the id → queue cache and the waits.
pub struct RemoteJobs {
    pub(super) scripts: Scripts,
    pub(super) settings: JobSettings,
    /// Job id → queue, as the index says (bounded: cleared when full).
    queues_of: Mutex<HashMap<Bytes, Bytes>>,
    /// Workers and JOB.JOINs waiting on a queue, by (queue, "").
    pub(super) queue_waiters: Waiters,
    /// JOB.RESULT / JOB.READ / JOB.SUBMIT ... WAIT waiting on a job, by (queue, id).
    pub(super) job_waiters: Waiters,
    /// Results carried by `done` notices for jobs this node's JOB.RESULTs wait on: (queue, id) → (the
    /// job's seq, its result), taken by the wait instead of reading the job again (bounded: cleared when full).
    done: Mutex<HashMap<(Bytes, Bytes), Carried>>,
    /// Jobs this node submitted and has seen no notice about since (id → (queue, seq; 0 while the submit
    /// is in flight)): entered before the submit's script, left at the first notice that could change a
    /// wait's answer (`job_notices::rings_waits`), or taken by the first blocked JOB.RESULT, which then
    /// knows the job pending without reading it. A notice lost (a pub-sub gap) empties it; bounded:
    /// cleared when full. Either costs a read, never an answer.
    fresh: Mutex<HashMap<Bytes, (Bytes, u64)>>,
    /// Job ids this node makes: unique per node (a counter) and across nodes (a random tag).
    pub(super) next_id: AtomicU64,
    pub(super) tag: u32,
    random: AtomicU64,
    /// Blocked job commands now (JOB.CLAIM BLOCK, JOB.RESULT BLOCK, ...): INFO-style visibility, tests.
    pub(super) waiting: AtomicUsize,
}

impl Remote {
    /// Job commands of this node's clients blocked now (waiting for a job, a result, chunks, a join).
    pub fn jobs_waiting(&self) -> usize {
        self.jobs.waiting.load(Ordering::Relaxed)
    }
}

/// Entries the id → queue cache holds before it starts over.
const CACHE_MAX: usize = 100_000;

impl RemoteJobs {
    pub fn new(settings: JobSettings) -> RemoteJobs {
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1;
        let seed = seed ^ u64::from(std::process::id()).rotate_left(32);
        RemoteJobs {
            scripts: Scripts {
                submit: script!("lua/job_submit.lua"),
                claim: script!("lua/job_claim.lua"),
                held: script!("lua/job_held.lua"),
                manage: script!("lua/job_manage.lua"),
                read: script!("lua/job_read.lua"),
                queue: script!("lua/job_queue.lua"),
            },
            settings,
            queues_of: Mutex::new(HashMap::new()),
            queue_waiters: Waiters::default(),
            job_waiters: Waiters::default(),
            done: Mutex::new(HashMap::new()),
            fresh: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            tag: (splitmix(seed) >> 32) as u32,
            random: AtomicU64::new(seed),
            waiting: AtomicUsize::new(0),
        }
    }

    /// A fresh random number (backoff jitter): splitmix64 over a shared counter.
    fn random(&self) -> u64 {
        splitmix(self.random.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed))
    }

    pub(super) fn remember(&self, id: &[u8], queue: &Bytes) {
        let mut map = self.queues_of.lock().expect("job cache");
        if map.len() >= CACHE_MAX {
            map.clear();
        }
        map.insert(Bytes::copy_from_slice(id), queue.clone());
    }

    pub(super) fn forget(&self, id: &[u8]) {
        self.queues_of.lock().expect("job cache").remove(id);
    }

    /// A `done` notice's result, kept for this node's waits on the job (if any wait now).
    pub(super) fn carry(&self, queue: &Bytes, id: &[u8], seq: u64, result: Option<Bytes>) {
        if !self.job_waiters.has(queue, id) {
            return;
        }
        let mut map = self.done.lock().expect("done results");
        if map.len() >= CACHE_MAX {
            map.clear();
        }
        map.insert((queue.clone(), Bytes::copy_from_slice(id)), (seq, result));
    }

    /// The result a `done` notice carried for the job `seq` of this id, taken (`None`: none here, or of
    /// another job with the same id).
    pub(super) fn take_done(&self, queue: &Bytes, id: &Bytes, seq: u64) -> Option<Option<Bytes>> {
        let mut map = self.done.lock().expect("done results");
        let key = (queue.clone(), id.clone());
        match map.get(&key) {
            Some((s, _)) if *s == seq => map.remove(&key).map(|(_, r)| r),
            _ => None,
        }
    }

    /// Forgets a carried result (the job was removed).
    pub(super) fn drop_done(&self, queue: &Bytes, id: &[u8]) {
        let mut map = self.done.lock().expect("done results");
        if !map.is_empty() {
            map.remove(&(queue.clone(), Bytes::copy_from_slice(id)));
        }
    }

    /// A job about to be submitted to `queue` (see `fresh`).
    pub(super) fn expect(&self, id: &Bytes, queue: &Bytes) {
        let mut map = self.fresh.lock().expect("fresh jobs");
        if map.len() >= CACHE_MAX {
            map.clear();
        }
        map.insert(id.clone(), (queue.clone(), 0));
    }

    /// The submit's answer: the job's seq when it created the job (0: it did not, or failed).
    pub(super) fn submitted(&self, id: &Bytes, seq: u64) {
        let mut map = self.fresh.lock().expect("fresh jobs");
        match map.get_mut(id) {
            Some((_, s)) if seq > 0 => *s = seq,
            Some(_) => {
                map.remove(id);
            }
            None => {}
        }
    }

    /// A notice that may change a wait's answer about the job came (see `fresh`).
    pub(super) fn touched(&self, queue: &[u8], id: &[u8]) {
        let mut map = self.fresh.lock().expect("fresh jobs");
        if map.get(id).is_some_and(|(q, _)| q == queue) {
            map.remove(id);
        }
    }

    /// Notices may have been lost: nothing is known untouched any more.
    pub(super) fn forget_fresh(&self) {
        self.fresh.lock().expect("fresh jobs").clear();
    }

    /// The seq of a job this node submitted and has seen no notice about since, taken (see `fresh`).
    pub(super) fn untouched(&self, queue: &Bytes, id: &Bytes) -> Option<u64> {
        let mut map = self.fresh.lock().expect("fresh jobs");
        match map.get(id) {
            Some((q, seq)) if q == queue && *seq > 0 => map.remove(id).map(|(_, seq)| seq),
            _ => None,
        }
    }

    pub(super) fn cached(&self, id: &[u8]) -> Option<Bytes> {
        self.queues_of.lock().expect("job cache").get(id).cloned()
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A queue's Redis keys (one hash tag): meta, ready, deadlines, dead, all, gone, the waiter marker.
pub(super) fn queue_keys(queue: &[u8]) -> [Vec<u8>; 7] {
    let key = |suffix: &[u8]| [prefix(queue).as_slice(), suffix].concat();
    [key(b"meta"), key(b"ready"), key(b"due"), key(b"dead"), key(b"all"), key(b"gone"), key(b"waiting")]
}

/// The prefix of a queue's keys: its jobs at `prefix job:<id>`, their chunks at `prefix chunks:<id>`.
pub(super) fn prefix(queue: &[u8]) -> Vec<u8> {
    [b"{herald:q:".as_slice(), queue, b"}:"].concat()
}

/// The channel a queue's notices go out on.
pub fn channel(queue: &[u8]) -> Vec<u8> {
    [super::NOTICE_PREFIX, b"job:", queue].concat()
}

/// The pattern every node follows for every queue.
pub fn all_channels() -> Bytes {
    Bytes::from([super::NOTICE_PREFIX, b"job:*"].concat())
}

/// The queue of a notice channel.
pub fn queue_of(channel: &[u8]) -> Option<&[u8]> {
    channel.strip_prefix(super::NOTICE_PREFIX)?.strip_prefix(b"job:")
}

/// The index key naming a job's queue.
pub(super) fn index_key(id: &[u8]) -> Vec<u8> {
    [b"herald:job:{".as_slice(), id, b"}"].concat()
}

pub(super) fn conn(remote: &Remote) -> super::conn::Shared {
    remote.pool.shared(Target { db: 0, resp3: false })
}

/// The `EVALSHA` of a job script on `queue`, with its own arguments after the prelude's; `index`, a key
/// of another slot the script writes too (a fresh job's index key: `job_submit.lua`).
pub(super) fn call(remote: &Remote, script: &Script, queue: &[u8], args: &[&[u8]], index: Option<Vec<u8>>) -> redis::Cmd {
    let jobs = &remote.jobs;
    let mut keys = queue_keys(queue).to_vec();
    keys.extend(index);
    let mut cmd = scripted::evalsha(script, &keys);
    cmd.arg(channel(queue)).arg(prefix(queue)).arg(jobs.random() >> 33).arg(jobs.settings.max_chunks).arg(jobs.settings.max_dead);
    for a in args {
        cmd.arg(*a);
    }
    cmd
}

/// One invocation of a job script on `queue` ([`call`]), written at the future's first poll.
pub(super) async fn invoke(remote: &Remote, script: &Script, queue: &[u8], args: &[&[u8]]) -> redis::RedisResult<Value> {
    scripted::evaluate(remote, script, &call(remote, script, queue, args, None)).await
}

pub(super) fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        Value::BulkString(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).unwrap_or(0),
        _ => 0,
    }
}

pub(super) fn opt_bytes(v: &Value) -> Option<Bytes> {
    match v {
        Value::BulkString(b) => Some(Bytes::copy_from_slice(b)),
        _ => None,
    }
}

pub(super) fn opt_int(v: &Value) -> Option<u64> {
    matches!(v, Value::BulkString(_) | Value::Int(_)).then(|| int(v) as u64)
}

pub(super) fn no_job() -> Reply {
    Reply::error("NOJOB no such job")
}

pub(super) fn unexpected(what: &str) -> Reply {
    Reply::Error(CommandError::new(format!("ERR redis engine: unexpected {what} reply")))
}

pub(super) fn is_no_job(r: &redis::RedisResult<Value>) -> bool {
    matches!(r, Err(e) if e.code() == Some("NOJOB")) || matches!(r, Ok(Value::Nil))
}

/// A job as the embedded engine's replies and events read it, from what a script told.
pub(super) fn job_view(id: Bytes, queue: Bytes, state: JobState, attempt: u32) -> Job {
    Job {
        id,
        queue,
        payload: Bytes::new(),
        priority: 0,
        max_attempts: 0,
        backoff: Backoff { kind: BackoffKind::Fixed, base_ms: 0, jitter: false },
        lease_ms: 0,
        result_ttl_ms: 0,
        state,
        attempt,
        seq: 0,
        lease: None,
        progress: None,
        result: None,
        last_error: None,
        created_ms: 0,
        started_ms: None,
        finished_ms: None,
        run_at_ms: None,
        timer_at: None,
        chunks: StreamLog::new(0, Retention { max_len: 0, max_age_ms: 0 }),
    }
}
