//! Following the job queues on the Redis engine: every node receives every queue's notices (through
//! the pub-sub bridge), in order, and
//!
//! - wakes its blocked claims and JOB.JOINs on `wake` / `drained`, and its JOB.RESULT / JOB.READ waits
//!   on a change of their job (a `done` notice's result handed to the JOB.RESULTs waiting on it);
//! - renders the job's events (`__job__:<id>`) for its own subscribers on every wire, as the embedded
//!   engine's typed `Change::Job` (at most once, as pub-sub: followers resume by offset with JOB.READ);
//! - remembers each queue's next deadline and sweeps the queue when it is due (`job_queue.lua` sweep),
//!   so leases expire and delays end on time whether or not anyone touches the queue; the sweep also
//!   drops the index keys of removed jobs. Every node sweeps; the sweep is idempotent.
//!
//! A notice dropped (a full backlog, a pub-sub reconnect) costs latency only: waits poll, and every
//! known queue is swept at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use redis::Value;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::Remote;
use super::bridge::Listener;
use super::job_store::{self as jobs, index_key, invoke, job_view};
use super::notices::{SWEEP_EVERY, now_ms, objects_with};
use crate::engine::change::{Change, JobChange, JobEvent};
use crate::engine::jobs::JobState;
use crate::events::Events;

/// One notice: `"<event>:<attempt>:<state>:<deadline>:<offset>:<has data>:<id length>:" id data`.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice<'a> {
    pub event: &'a [u8],
    pub attempt: u32,
    pub state: &'a [u8],
    /// The job's pending deadline (unix ms, 0: none).
    pub deadline: u64,
    pub offset: u64,
    pub id: &'a [u8],
    pub data: Option<&'a [u8]>,
}

impl<'a> Notice<'a> {
    pub fn parse(text: &'a [u8]) -> Option<Notice<'a>> {
        let mut h = super::notices::Header::new(text);
        let event = h.field()?;
        let attempt = h.num()? as u32;
        let state = h.field()?;
        let (deadline, offset) = (h.num()?, h.num()?);
        let has_data = h.field()? == b"1";
        let id_len = h.num()? as usize;
        let (id, data) = h.name_and_data(id_len, has_data)?;
        Some(Notice { event, attempt, state, deadline, offset, id, data })
    }
}

/// A queue's notice for the follower task, in the order the bridge received it.
struct Queued {
    object: Bytes,
    entry: Bytes,
}

/// The bridge's listener for queue notices: hands them to the follower in order, through a queue
/// bounded by `engine.notice_backlog`; one that finds it full is dropped and the follower told (waits
/// poll, every known queue is swept), so a slow follower costs latency, not jobs.
pub struct Inbox {
    queue: mpsc::Sender<Queued>,
    gap: Arc<AtomicBool>,
    bell: Arc<Notify>,
}

impl Inbox {
    fn new(backlog: usize) -> (Arc<Inbox>, mpsc::Receiver<Queued>) {
        let (tx, rx) = mpsc::channel(backlog.max(1));
        (Arc::new(Inbox { queue: tx, gap: Arc::new(AtomicBool::new(false)), bell: Arc::new(Notify::new()) }), rx)
    }

    fn gap(&self) {
        self.gap.store(true, Ordering::Release);
        self.bell.notify_one();
    }
}

impl Listener for Inbox {
    fn message(&self, channel: &Bytes, payload: &Bytes) {
        if let Some(queue) = jobs::queue_of(channel) {
            let notice = Queued { object: channel.slice_ref(queue), entry: payload.clone() };
            if self.queue.try_send(notice).is_err() {
                self.gap();
            }
        }
    }

    fn reconnected(&self) {
        self.gap();
    }
}

/// Whether an event about a job may change what a wait on it answers: JOB.RESULT's (a final state, a
/// removal), JOB.READ's (chunks, their end, a retry's fresh stream, a removal). A submit, a claim, a
/// heartbeat or progress changes neither, so they ring nobody: a SUBMIT ... WAIT's first check then
/// needs no script (`jobs.rs`), and a worker's heartbeats cost no reads. A ring missed by mistake
/// would cost latency (the fallback poll), never an answer.
fn rings_waits(event: &[u8]) -> bool {
    !matches!(event, b"submitted" | b"claimed" | b"heartbeat" | b"progress")
}

/// Deadlines one sweep of one queue runs at most (the next tick takes the rest).
const SWEEP_BATCH: &[u8] = b"1000";

/// Drops each index key (KEYS) that still names the queue (ARGV[1]): the ID may have been submitted
/// again elsewhere since.
static DROP_INDEX: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        "local n = 0 for _, k in ipairs(KEYS) do if redis.call('GET', k) == ARGV[1] then n = n + redis.call('DEL', k) end end return n",
    )
});

struct Follower {
    remote: Arc<Remote>,
    events: Arc<Events>,
    due: Due,
}

/// Each known queue's next deadline (`u64::MAX`: none known): the follower learns them from the
/// notices, the sweeper runs them. Two tasks, so a sweep never holds up wake-ups.
type Due = Arc<Mutex<HashMap<Bytes, u64>>>;

struct Sweeper {
    remote: Arc<Remote>,
    due: Due,
}

/// Starts following: returns the bridge's listener; the tasks end with `stop`.
pub fn start(remote: &Arc<Remote>, events: Arc<Events>, backlog: usize, stop: CancellationToken) -> Arc<Inbox> {
    let (inbox, mut rx) = Inbox::new(backlog);
    let (gap, bell) = (inbox.gap.clone(), inbox.bell.clone());
    let due = Due::default();
    let follower = Follower { remote: remote.clone(), events, due: due.clone() };
    let stopped = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped.cancelled() => return,
                _ = bell.notified() => {}
                notice = rx.recv() => match notice {
                    Some(Queued { object, entry }) => follower.noticed(object, &entry),
                    None => return,
                },
            }
            if gap.swap(false, Ordering::AcqRel) {
                // Notices about jobs submitted here may be lost: none is known untouched any more.
                follower.remote.jobs.forget_fresh();
                // Deadlines may have passed unseen: sweep everything known now.
                follower.due.lock().expect("due").values_mut().for_each(|d| *d = 0);
            }
        }
    });
    let sweeper = Sweeper { remote: remote.clone(), due };
    tokio::spawn(async move {
        sweeper.discover().await;
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => sweeper.sweep().await,
            }
        }
    });
    inbox
}

impl Follower {
    fn noticed(&self, queue: Bytes, text: &[u8]) {
        let Some(n) = Notice::parse(text) else { return };
        let jobs = &self.remote.jobs;
        match n.event {
            // One blocked worker per job that became claimable (`attempt` carries the count).
            b"wake" => jobs.queue_waiters.ring_some(&queue, b"", n.attempt as usize),
            b"drained" => jobs.queue_waiters.ring(&queue, b"drained"),
            event => {
                if rings_waits(event) {
                    jobs.touched(&queue, n.id);
                }
                if event == b"done" && n.state == b"done" && n.offset > 0 {
                    jobs.carry(&queue, n.id, n.offset, n.data.map(Bytes::copy_from_slice));
                }
                if rings_waits(event) {
                    jobs.job_waiters.ring(&queue, n.id);
                }
                if event == b"removed" {
                    jobs.forget(n.id);
                    jobs.drop_done(&queue, n.id);
                }
                self.render(&queue, &n);
            }
        }
        let mut due = self.due.lock().expect("due");
        let at = due.entry(queue).or_insert(u64::MAX);
        if n.deadline > 0 {
            *at = (*at).min(n.deadline);
        }
    }

    /// The notice as the embedded engine's typed change, for this node's subscribers.
    fn render(&self, queue: &Bytes, n: &Notice<'_>) {
        if !self.events.listening() {
            return;
        }
        let Some(state) = JobState::parse(n.state) else { return };
        let mut job = job_view(Bytes::copy_from_slice(n.id), queue.clone(), state, n.attempt);
        let data = n.data.map(Bytes::copy_from_slice);
        let event = match n.event {
            b"claimed" => JobEvent::Claimed,
            b"progress" => {
                job.progress = data;
                JobEvent::Progress
            }
            b"chunk" => JobEvent::Chunk { offset: n.offset, data: n.data.unwrap_or_default(), at_ms: 0 },
            b"done" => {
                job.result = data;
                JobEvent::Done
            }
            b"failed" => {
                job.last_error = data;
                JobEvent::Failed
            }
            b"cancelled" => JobEvent::Cancelled,
            b"queued" => JobEvent::Queued { retried: false },
            b"queued-retried" => JobEvent::Queued { retried: true },
            b"lease-expired" => JobEvent::LeaseExpired,
            _ => return,
        };
        self.events.observe(&Change::Job(JobChange { job: &job, event }));
    }
}

impl Sweeper {
    /// At start: every queue with deadlines is swept soon (its leases are this node's to expire too,
    /// in case no other node runs).
    async fn discover(&self) {
        let queues = objects_with(&self.remote, b"{herald:q:", b"}:due").await;
        let mut due = self.due.lock().expect("due");
        for queue in queues {
            due.insert(queue, 0);
        }
    }

    /// Sweeps every queue whose deadline is due by this node's clock; the script decides by Redis's.
    async fn sweep(&self) {
        let now = now_ms();
        let due: Vec<Bytes> = self.due.lock().expect("due").iter().filter(|(_, at)| **at <= now).map(|(q, _)| q.clone()).collect();
        for queue in due {
            let swept = invoke(&self.remote, &self.remote.jobs.scripts.queue, &queue, &[b"sweep", SWEEP_BATCH]).await;
            let next = match swept {
                Ok(Value::Array(items)) if !items.is_empty() => {
                    self.drop_index(&queue, &items[1..]).await;
                    match &items[0] {
                        Value::Int(0) => u64::MAX,
                        // Not before the next tick: clocks of nodes and Redis differ by a little.
                        Value::Int(n) => (*n as u64).max(now + SWEEP_EVERY.as_millis() as u64),
                        _ => now + 1000,
                    }
                }
                _ => now + 1000,
            };
            // A notice may have brought an earlier deadline meanwhile.
            let mut due = self.due.lock().expect("due");
            let at = due.entry(queue).or_insert(u64::MAX);
            *at = if *at <= now { next } else { (*at).min(next) };
        }
    }

    /// Drops the index keys of removed jobs, each only if it still names this queue (the ID may have
    /// been submitted again elsewhere since).
    async fn drop_index(&self, queue: &Bytes, ids: &[Value]) {
        if ids.is_empty() {
            return;
        }
        let conn = self.remote.pool.shared(super::pool::Target { db: 0, resp3: false });
        let keys: Vec<Vec<u8>> =
            ids.iter().filter_map(|id| if let Value::BulkString(id) = id { Some(index_key(id)) } else { None }).collect();
        if !self.remote.endpoint.is_cluster() {
            // One script for them all (its keys may span slots off Cluster): one per sweep, not per job.
            let _: redis::RedisResult<i64> = DROP_INDEX.prepare_invoke().key(keys).arg(&queue[..]).invoke_async(&mut conn.clone()).await;
            return;
        }
        let script = &*DROP_INDEX;
        // All at once: the multiplexed connection pipelines them.
        let drops = keys.into_iter().map(|key| {
            let mut conn = conn.clone();
            async move {
                let _: redis::RedisResult<i64> = script.key(key).arg(&queue[..]).invoke_async(&mut conn).await;
            }
        });
        futures_util::future::join_all(drops).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_parse_binary_ids_and_data() {
        let n = Notice::parse(b"chunk:2:streaming:1700:5:1:3:a:bd:a\xff").unwrap();
        assert_eq!(
            (n.event, n.attempt, n.state, n.deadline, n.offset, n.id, n.data),
            (&b"chunk"[..], 2, &b"streaming"[..], 1700, 5, &b"a:b"[..], Some(&b"d:a\xff"[..]))
        );
        let n = Notice::parse(b"wake:0:-:0:0:0:0:").unwrap();
        assert_eq!((n.event, n.id, n.data), (&b"wake"[..], &b""[..], None));
        assert!(Notice::parse(b"done:x").is_none());
    }
}
