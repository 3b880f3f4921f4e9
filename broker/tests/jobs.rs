//! Jobs through a real client: the dispatcher patterns end to end, leases and fencing, retries with
//! backoff, the concurrency limit, cancel, following a job's chunks across a reconnect.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::redis_server::{Backing, on_engine};
use common::{TestServer, cmd, eventually, fields, int, start, text};
use futures_util::StreamExt;
use redis::Value;

/// The conformance rule (docs/scale-out.md): these tests run against both engines, the embedded one
/// and the Redis engine on a real redis-server (a missing redis-server fails the test).
struct Engine {
    server: TestServer,
    _backing: Backing,
}

impl Engine {
    /// `engine` as `on_engine` names it: `embedded`, `redis` (one redis-server), `cluster` (a
    /// one-master Redis Cluster).
    async fn on(engine: &str, name: &str) -> Engine {
        // Short: the directory holds redis-server's Unix socket, whose path has a length limit.
        let (_backing, server) = on_engine(engine, &format!("jobs-{}", &name[..name.len().min(24)])).await;
        Engine { server, _backing }
    }

    /// Clients blocked in a job command now, whichever engine holds them.
    fn blocked(&self) -> usize {
        match &self.server.broker.remote {
            Some(remote) => remote.jobs_waiting(),
            None => self.server.broker.lock().blocking.len(),
        }
    }
}

impl std::ops::Deref for Engine {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.server
    }
}

/// Each named test body, once per engine: `<name>::embedded`, `<name>::redis`, `<name>::redis_cluster`.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name(super::Engine::on("embedded", stringify!($name)).await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                super::$name(super::Engine::on("redis", stringify!($name)).await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis_cluster() {
                super::$name(super::Engine::on("cluster", stringify!($name)).await).await
            }
        }
    )*};
}

on_both_engines!(
    a_batch_of_100_jobs_with_4_workers_runs_each_job_once,
    a_worker_that_dies_mid_job_loses_it_to_another_and_is_fenced_off,
    heartbeats_keep_the_lease,
    the_concurrency_limit_holds_under_16_competing_workers,
    failed_attempts_retry_after_their_backoff_then_the_job_is_dead,
    blocked_workers_get_one_job_each_in_blocking_order,
    a_follower_reconnecting_mid_stream_gets_every_chunk_once_in_order,
    job_result_blocks_until_completion_and_times_out,
    cancel_reaches_the_worker_at_once_and_at_its_next_heartbeat,
    submit_options_idempotency_priority_and_delay,
    claims_check_queues_in_order,
    submit_and_wait_and_complete_then_claim,
    a_paused_queue_takes_submissions_and_hands_out_nothing_until_resumed,
    join_waits_until_nothing_is_queued_delayed_or_running
);

struct Claim {
    id: String,
    payload: String,
    token: String,
    attempt: i64,
}

async fn claim(c: &mut redis::aio::MultiplexedConnection, args: &[&str]) -> Option<Claim> {
    let mut parts = vec!["JOB.CLAIM"];
    parts.extend_from_slice(args);
    let v: Value = cmd(c, &parts).await.unwrap();
    if v == Value::Nil {
        return None;
    }
    let f = fields(v);
    Some(Claim { id: text(&f["id"]), payload: text(&f["payload"]), token: int(&f["token"]).to_string(), attempt: int(&f["attempt"]) })
}

async fn a_batch_of_100_jobs_with_4_workers_runs_each_job_once(server: Engine) {
    let mut producer = server.conn().await;
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(cmd::<String>(&mut producer, &["JOB.SUBMIT", "batch", &format!("item-{i}")]).await.unwrap());
    }
    let mut workers = Vec::new();
    for _ in 0..4 {
        let mut c = server.conn().await;
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            while let Some(job) = claim(&mut c, &["batch", "BLOCK", "200"]).await {
                let _: () = cmd(&mut c, &["JOB.COMPLETE", &job.id, &job.token, &format!("{}!", job.payload)]).await.unwrap();
                done.push(job.id);
            }
            done
        }));
    }
    let mut done: Vec<String> = Vec::new();
    for w in workers {
        done.extend(w.await.unwrap());
    }
    done.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(done, expected, "every job completed exactly once");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(cmd::<String>(&mut producer, &["JOB.RESULT", id]).await.unwrap(), format!("item-{i}!"));
    }
    let stats = fields(cmd(&mut producer, &["JOB.STATS", "batch"]).await.unwrap());
    assert_eq!((int(&stats["done"]), int(&stats["completed"])), (100, 100));
}

async fn a_worker_that_dies_mid_job_loses_it_to_another_and_is_fenced_off(server: Engine) {
    let mut producer = server.conn().await;
    let id: String = cmd(&mut producer, &["JOB.SUBMIT", "work", "payload", "LEASE", "150"]).await.unwrap();
    let mut doomed = server.conn().await;
    let first = claim(&mut doomed, &["work"]).await.unwrap();
    assert_eq!(first.attempt, 1);
    // The worker goes silent (no heartbeat); its lease runs out and the job is requeued.
    let mut rescuer = server.conn().await;
    let second = claim(&mut rescuer, &["work", "BLOCK", "5000"]).await.unwrap();
    assert_eq!((second.id.as_str(), second.attempt), (id.as_str(), 2));
    let err = cmd::<()>(&mut doomed, &["JOB.COMPLETE", &id, &first.token, "stale"]).await.unwrap_err();
    assert_eq!(err.code(), Some("LEASE"), "the old lease cannot complete the job");
    let _: () = cmd(&mut rescuer, &["JOB.COMPLETE", &id, &second.token, "fresh"]).await.unwrap();
    assert_eq!(cmd::<String>(&mut producer, &["JOB.RESULT", &id]).await.unwrap(), "fresh");
}

async fn heartbeats_keep_the_lease(server: Engine) {
    let mut c = server.conn().await;
    // Five heartbeats 400 ms apart outlive the 1 s lease twice over, with 600 ms of slack for each one to
    // arrive on a loaded machine (100 ms and 50 ms apart failed when the test machine was busy).
    let id: String = cmd(&mut c, &["JOB.SUBMIT", "long", "x", "LEASE", "1000"]).await.unwrap();
    let job = claim(&mut c, &["long"]).await.unwrap();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let _: i64 = cmd(&mut c, &["JOB.HEARTBEAT", &id, &job.token]).await.unwrap();
    }
    let _: () = cmd(&mut c, &["JOB.COMPLETE", &id, &job.token]).await.unwrap();
    let status = fields(cmd(&mut c, &["JOB.STATUS", &id]).await.unwrap());
    assert_eq!((text(&status["state"]), int(&status["attempt"])), ("done".into(), 1));
}

/// Backoff on tokio's paused clock: the retry is claimable no earlier than the backoff allows.
#[tokio::test(start_paused = true)]
async fn retries_wait_for_their_backoff_then_the_job_is_dead() {
    let server = start().await;
    let mut c = server.conn().await;
    let id: String = cmd(&mut c, &["JOB.SUBMIT", "flaky", "x", "ATTEMPTS", "3", "BACKOFF", "exponential", "1000"]).await.unwrap();
    let mut waits = Vec::new();
    for attempt in 1..=3 {
        let before = tokio::time::Instant::now();
        let job = claim(&mut c, &["flaky", "BLOCK", "60000"]).await.unwrap();
        waits.push(before.elapsed());
        assert_eq!(job.attempt, attempt);
        let state: String = cmd(&mut c, &["JOB.FAIL", &id, &job.token, "boom"]).await.unwrap();
        assert_eq!(state, if attempt < 3 { "delayed" } else { "dead" });
    }
    assert!(waits[0] < Duration::from_millis(10));
    assert!(waits[1] >= Duration::from_millis(1000) && waits[1] < Duration::from_millis(1200), "{waits:?}");
    assert!(waits[2] >= Duration::from_millis(2000) && waits[2] < Duration::from_millis(2200), "exponential: {waits:?}");
    assert_eq!(cmd::<Vec<String>>(&mut c, &["JOB.DEAD", "flaky"]).await.unwrap(), std::slice::from_ref(&id));
    let err = cmd::<Value>(&mut c, &["JOB.RESULT", &id]).await.unwrap_err();
    assert_eq!(err.code(), Some("JOBDEAD"));
    assert!(err.detail().unwrap().contains("boom"));
    let _: () = cmd(&mut c, &["JOB.RETRY", &id]).await.unwrap();
    assert_eq!(claim(&mut c, &["flaky"]).await.unwrap().attempt, 1, "a retried job starts its attempts over");
}

/// Retries and dead letters on either engine (the paused-clock test above checks the backoff's timing
/// on the embedded engine; Redis's clock cannot be paused).
async fn failed_attempts_retry_after_their_backoff_then_the_job_is_dead(server: Engine) {
    let mut c = server.conn().await;
    // Backoffs of 0.5-1 s and 1-2 s (JITTER draws from the upper half): long enough that the status read
    // right after each FAIL still finds the retry waiting on a busy machine (20 ms was not).
    let id: String = cmd(&mut c, &["JOB.SUBMIT", "flaky", "x", "ATTEMPTS", "3", "BACKOFF", "exponential", "1000", "JITTER"]).await.unwrap();
    for attempt in 1..=3 {
        let job = claim(&mut c, &["flaky", "BLOCK", "60000"]).await.unwrap();
        assert_eq!(job.attempt, attempt);
        let state: String = cmd(&mut c, &["JOB.FAIL", &id, &job.token, "boom"]).await.unwrap();
        assert_eq!(state, if attempt < 3 { "delayed" } else { "dead" });
        let status = fields(cmd(&mut c, &["JOB.STATUS", &id]).await.unwrap());
        assert_eq!(text(&status["error"]), "boom");
        if attempt < 3 {
            assert_ne!(status["run_at"], Value::Nil, "a retry waits for its backoff");
        }
    }
    assert_eq!(cmd::<Vec<String>>(&mut c, &["JOB.DEAD", "flaky"]).await.unwrap(), std::slice::from_ref(&id));
    let err = cmd::<Value>(&mut c, &["JOB.RESULT", &id]).await.unwrap_err();
    assert_eq!(err.code(), Some("JOBDEAD"));
    assert!(err.detail().unwrap().contains("boom"));
    let stats = fields(cmd(&mut c, &["JOB.STATS", "flaky"]).await.unwrap());
    assert_eq!((int(&stats["dead"]), int(&stats["failed"]), int(&stats["retried"]), int(&stats["dead_total"])), (1, 3, 2, 1));
    let _: () = cmd(&mut c, &["JOB.RETRY", &id]).await.unwrap();
    let again = claim(&mut c, &["flaky"]).await.unwrap();
    assert_eq!(again.attempt, 1, "a retried job starts its attempts over");
    let err = cmd::<Value>(&mut c, &["JOB.RETRY", &id]).await.unwrap_err();
    assert!(err.to_string().contains("only dead, error or cancelled"), "{err}");
    let state: String = cmd(&mut c, &["JOB.FAIL", &id, &again.token, "fatal", "NORETRY"]).await.unwrap();
    assert_eq!(state, "error");
    let err = cmd::<Value>(&mut c, &["JOB.RESULT", &id]).await.unwrap_err();
    assert_eq!(err.code(), Some("JOBFAILED"));
    assert!(cmd::<Vec<String>>(&mut c, &["JOB.DEAD", "flaky"]).await.unwrap().is_empty());
}

async fn the_concurrency_limit_holds_under_16_competing_workers(server: Engine) {
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["JOB.QUEUE", "gpu", "CONCURRENCY", "3"]).await.unwrap();
    for i in 0..60 {
        let _: String = cmd(&mut c, &["JOB.SUBMIT", "gpu", &i.to_string()]).await.unwrap();
    }
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let mut w = server.conn().await;
        let (in_flight, peak) = (in_flight.clone(), peak.clone());
        workers.push(tokio::spawn(async move {
            let mut count = 0;
            while let Some(job) = claim(&mut w, &["gpu", "BLOCK", "300"]).await {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                let _: () = cmd(&mut w, &["JOB.COMPLETE", &job.id, &job.token]).await.unwrap();
                count += 1;
            }
            count
        }));
    }
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap();
    }
    assert_eq!(total, 60);
    assert!(peak.load(Ordering::SeqCst) <= 3, "peak {}", peak.load(Ordering::SeqCst));
}

async fn a_follower_reconnecting_mid_stream_gets_every_chunk_once_in_order(server: Engine) {
    let mut producer = server.conn().await;
    let id: String = cmd(&mut producer, &["JOB.SUBMIT", "llm", "prompt"]).await.unwrap();
    let mut worker = server.conn().await;
    let job = claim(&mut worker, &["llm"]).await.unwrap();
    let (wid, token) = (id.clone(), job.token.clone());
    let streaming = tokio::spawn(async move {
        for i in 0..40 {
            let offset: i64 = cmd(&mut worker, &["JOB.CHUNK", &wid, &token, &format!("tok{i}")]).await.unwrap();
            assert_eq!(offset, i);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let _: () = cmd(&mut worker, &["JOB.COMPLETE", &wid, &token, "all"]).await.unwrap();
    });
    let (mut got, mut from) = (Vec::new(), 0i64);
    for connection in 0..2 {
        let mut follower = server.conn().await;
        loop {
            let f = fields(cmd(&mut follower, &["JOB.READ", &id, "FROM", &from.to_string(), "BLOCK", "5000"]).await.unwrap());
            let Value::Array(entries) = &f["entries"] else { panic!() };
            for e in entries {
                let Value::Array(pair) = e else { panic!() };
                assert_eq!(int(&pair[0]), got.len() as i64, "offsets arrive in order, none twice");
                got.push(text(&pair[1]));
            }
            from = int(&f["next"]);
            if f["closed"] == Value::Int(1) || (connection == 0 && got.len() >= 15) {
                break;
            }
        }
    }
    streaming.await.unwrap();
    assert_eq!(got, (0..40).map(|i| format!("tok{i}")).collect::<Vec<_>>());
}

async fn job_result_blocks_until_completion_and_times_out(server: Engine) {
    let mut producer = server.conn().await;
    let id: String = cmd(&mut producer, &["JOB.SUBMIT", "q", "x"]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut producer, &["JOB.RESULT", &id, "BLOCK", "50"]).await.unwrap(), Value::Nil, "times out");
    let mut waiter = server.conn().await;
    let wid = id.clone();
    let future = tokio::spawn(async move { cmd::<String>(&mut waiter, &["JOB.RESULT", &wid, "BLOCK", "0"]).await.unwrap() });
    eventually(|| server.blocked() == 1).await;
    let mut worker = server.conn().await;
    let job = claim(&mut worker, &["q"]).await.unwrap();
    let _: () = cmd(&mut worker, &["JOB.COMPLETE", &id, &job.token, "42"]).await.unwrap();
    assert_eq!(future.await.unwrap(), "42");
}

async fn cancel_reaches_the_worker_at_once_and_at_its_next_heartbeat(server: Engine) {
    let mut producer = server.conn().await;
    let id: String = cmd(&mut producer, &["JOB.SUBMIT", "q", "x"]).await.unwrap();
    let mut worker = server.conn().await;
    let job = claim(&mut worker, &["q"]).await.unwrap();
    let mut events = server.client().get_async_pubsub().await.unwrap();
    events.subscribe(format!("__job__:{id}")).await.unwrap();
    assert_eq!(cmd::<i64>(&mut producer, &["JOB.CANCEL", &id]).await.unwrap(), 1);
    // On the Redis engine the claim's own event, rendered by the node a moment later, may come first.
    let mut stream = events.on_message();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap();
        let event: serde_json::Value = serde_json::from_slice(&msg.get_payload::<Vec<u8>>().unwrap()).unwrap();
        if event["event"] == "cancelled" {
            break;
        }
        assert_eq!(event["event"], "claimed", "{event}");
    }
    drop(stream);
    let err = cmd::<i64>(&mut worker, &["JOB.HEARTBEAT", &id, &job.token]).await.unwrap_err();
    assert_eq!(err.code(), Some("CANCELLED"));
    let err = cmd::<Value>(&mut producer, &["JOB.RESULT", &id]).await.unwrap_err();
    assert_eq!(err.code(), Some("CANCELLED"));
    assert_eq!(cmd::<i64>(&mut producer, &["JOB.CANCEL", &id]).await.unwrap(), 0);
}

async fn submit_options_idempotency_priority_and_delay(server: Engine) {
    let mut c = server.conn().await;
    let a: String = cmd(&mut c, &["JOB.SUBMIT", "q", "first", "ID", "order-1"]).await.unwrap();
    let b: String = cmd(&mut c, &["JOB.SUBMIT", "q", "again", "ID", "order-1"]).await.unwrap();
    assert_eq!((a.as_str(), b.as_str()), ("order-1", "order-1"));
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "q", "urgent", "PRIORITY", "10"]).await.unwrap();
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "q", "later", "DELAY", "100"]).await.unwrap();
    assert_eq!(claim(&mut c, &["q"]).await.unwrap().payload, "urgent");
    assert_eq!(claim(&mut c, &["q"]).await.unwrap().payload, "first");
    assert!(claim(&mut c, &["q"]).await.is_none(), "the delayed job is not claimable yet");
    assert_eq!(claim(&mut c, &["q", "BLOCK", "5000"]).await.unwrap().payload, "later");
    let listed: Vec<String> = cmd(&mut c, &["JOB.LIST", "q", "running"]).await.unwrap();
    assert_eq!(listed.len(), 3);
    let err = cmd::<Value>(&mut c, &["JOB.LIST", "q", "sleeping"]).await.unwrap_err();
    assert!(err.detail().unwrap().contains("unknown job state"));
    let err = cmd::<Value>(&mut c, &["JOB.COMPLETE", "order-1", "999"]).await.unwrap_err();
    assert_eq!(err.code(), Some("LEASE"));
    let err = cmd::<Value>(&mut c, &["JOB.STATUS", "nope"]).await.unwrap();
    assert_eq!(err, Value::Nil);
}

/// Each submit goes to one blocked worker, in the order they blocked; the others stay blocked. The
/// third worker also waits on a second queue, and gets that queue's job though it blocked last on the
/// first.
async fn blocked_workers_get_one_job_each_in_blocking_order(server: Engine) {
    let mut workers = Vec::new();
    for (i, queues) in [vec!["q"], vec!["q"], vec!["q", "other"]].into_iter().enumerate() {
        let mut c = server.conn().await;
        workers.push(tokio::spawn(async move {
            let mut args = queues;
            args.extend(["BLOCK", "5000"]);
            claim(&mut c, &args).await.unwrap().payload
        }));
        eventually(|| server.blocked() == i + 1).await;
    }
    let mut producer = server.conn().await;
    let _: String = cmd(&mut producer, &["JOB.SUBMIT", "other", "for-third"]).await.unwrap();
    let third = workers.pop().unwrap().await.unwrap();
    assert_eq!(third, "for-third");
    let _: String = cmd(&mut producer, &["JOB.SUBMIT", "q", "first"]).await.unwrap();
    eventually(|| server.blocked() == 1).await;
    assert!(!workers[1].is_finished(), "one job, one worker");
    let _: String = cmd(&mut producer, &["JOB.SUBMIT", "q", "second"]).await.unwrap();
    let got: Vec<String> = futures_util::future::join_all(workers).await.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(got, ["first", "second"]);
}

async fn claims_check_queues_in_order(server: Engine) {
    let mut c = server.conn().await;
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "low", "from-low"]).await.unwrap();
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "high", "from-high"]).await.unwrap();
    assert_eq!(claim(&mut c, &["high", "low"]).await.unwrap().payload, "from-high");
    assert_eq!(claim(&mut c, &["high", "low"]).await.unwrap().payload, "from-low");
}

/// The two-round-trip job: `JOB.SUBMIT ... WAIT` is submit plus the Future, and a worker completes its
/// previous job inside its next `JOB.CLAIM ... COMPLETE`.
async fn submit_and_wait_and_complete_then_claim(server: Engine) {
    let mut worker = server.conn().await;
    let mut producer = server.conn().await;
    let first = tokio::spawn(async move { cmd::<String>(&mut producer, &["JOB.SUBMIT", "rpc", "ping-1", "WAIT", "0"]).await.unwrap() });
    let job = claim(&mut worker, &["rpc", "BLOCK", "0"]).await.unwrap();
    assert_eq!(job.payload, "ping-1");
    let mut producer2 = server.conn().await;
    let second =
        tokio::spawn(async move { cmd::<String>(&mut producer2, &["JOB.SUBMIT", "rpc", "ping-2", "WAIT", "5000"]).await.unwrap() });
    // Completing the first and claiming the second is one command.
    let next = claim(&mut worker, &["rpc", "BLOCK", "0", "COMPLETE", &job.id, &job.token, "pong-1"]).await.unwrap();
    assert_eq!(first.await.unwrap(), "pong-1");
    assert_eq!(next.payload, "ping-2");
    let none = claim(&mut worker, &["rpc", "COMPLETE", &next.id, &next.token, "pong-2"]).await;
    assert!(none.is_none(), "nothing left to claim");
    assert_eq!(second.await.unwrap(), "pong-2");

    // A stale token completes nothing and claims nothing.
    let mut c = server.conn().await;
    let id: String = cmd(&mut c, &["JOB.SUBMIT", "rpc", "x"]).await.unwrap();
    let err = cmd::<Value>(&mut c, &["JOB.CLAIM", "rpc", "COMPLETE", &job.id, &job.token, "again"]).await.unwrap_err();
    assert!(err.to_string().contains("LEASE") || err.to_string().contains("NOJOB"), "{err}");
    let status: Value = cmd(&mut c, &["JOB.STATUS", &id]).await.unwrap();
    assert_eq!(text(&fields(status)["state"]), "queued");

    // A wait that times out names the job, which can be waited on further.
    let err = cmd::<Value>(&mut c, &["JOB.SUBMIT", "idle", "x", "ID", "slow-1", "WAIT", "30"]).await.unwrap_err();
    assert_eq!(err.code(), Some("TIMEOUT"));
    assert!(err.to_string().contains("JOB.RESULT slow-1"), "{err}");
    assert_ne!(cmd::<Value>(&mut c, &["JOB.STATUS", "slow-1"]).await.unwrap(), Value::Nil);
    // Bad input: refused before anything is submitted, completed or claimed.
    for (args, expected) in [
        (&["JOB.SUBMIT", "bad", "x", "WAIT"][..], "syntax error"),
        (&["JOB.SUBMIT", "bad", "x", "WAIT", "abc"][..], "not an integer"),
        (&["JOB.SUBMIT", "bad", "x", "WAIT", "-1"][..], "must be positive"),
        (&["JOB.CLAIM", "bad", "COMPLETE"][..], "syntax error"),
        (&["JOB.CLAIM", "bad", "COMPLETE", "id", "tok", "r"][..], "invalid lease token"),
        (&["JOB.CLAIM", "bad", "COMPLETE", "id", "1"][..], "syntax error"),
    ] {
        let err = cmd::<Value>(&mut c, args).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{args:?}: {err}");
    }
    assert!(cmd::<Vec<String>>(&mut c, &["JOB.LIST", "bad"]).await.unwrap().is_empty());
    // A failed job's error is the reply.
    let mut p = server.conn().await;
    let failing = tokio::spawn(async move { cmd::<Value>(&mut p, &["JOB.SUBMIT", "f", "x", "ATTEMPTS", "1", "WAIT", "0"]).await });
    let job = claim(&mut worker, &["f", "BLOCK", "0"]).await.unwrap();
    let _: Value = cmd(&mut worker, &["JOB.FAIL", &job.id, &job.token, "boom"]).await.unwrap();
    let err = failing.await.unwrap().unwrap_err();
    assert_eq!(err.code(), Some("JOBDEAD"));
}

/// `JOB.QUEUE q PAUSE` stops claims (a blocked worker stays blocked) while submissions go on;
/// `RESUME` lets the blocked worker have the first job.
async fn a_paused_queue_takes_submissions_and_hands_out_nothing_until_resumed(server: Engine) {
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["JOB.QUEUE", "q", "PAUSE"]).await.unwrap();
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "q", "first"]).await.unwrap();
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "q", "second"]).await.unwrap();
    assert!(claim(&mut c, &["q"]).await.is_none(), "paused: nothing to claim");
    let stats = fields(cmd(&mut c, &["JOB.STATS", "q"]).await.unwrap());
    assert_eq!((int(&stats["paused"]), int(&stats["queued"])), (1, 2));
    let mut w = server.conn().await;
    let worker = tokio::spawn(async move { claim(&mut w, &["q", "BLOCK", "0"]).await.unwrap().payload });
    eventually(|| server.blocked() == 1).await;
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "q", "third"]).await.unwrap();
    assert_eq!(server.blocked(), 1, "a submit to a paused queue wakes nobody");
    let _: () = cmd(&mut c, &["JOB.QUEUE", "q", "RESUME"]).await.unwrap();
    assert_eq!(worker.await.unwrap(), "first");
    assert_eq!(int(&fields(cmd(&mut c, &["JOB.STATS", "q"]).await.unwrap())["paused"]), 0);
    for (args, expected) in [
        (&["JOB.QUEUE", "q"][..], "wrong number of arguments"),
        (&["JOB.QUEUE", "q", "STOP"][..], "CONCURRENCY n, PAUSE or RESUME"),
        (&["JOB.QUEUE", "q", "PAUSE", "now"][..], "syntax error"),
        (&["JOB.QUEUE", "q", "CONCURRENCY", "-1"][..], "must be positive"),
    ] {
        let err = cmd::<Value>(&mut c, args).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{args:?}: {err}");
    }
}

/// `JOB.JOIN` answers at once for an idle queue, and otherwise waits until the last queued, delayed
/// or running job finished (the seeds' `join`); a timeout answers nil.
async fn join_waits_until_nothing_is_queued_delayed_or_running(server: Engine) {
    let mut c = server.conn().await;
    assert_eq!(cmd::<Value>(&mut c, &["JOB.JOIN", "q"]).await.unwrap(), Value::Okay, "an unknown queue is idle");
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "q", "now"]).await.unwrap();
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "q", "later", "DELAY", "60000", "ID", "delayed"]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut c, &["JOB.JOIN", "q", "TIMEOUT", "20"]).await.unwrap(), Value::Nil);
    let mut j = server.conn().await;
    let joiner = tokio::spawn(async move { cmd::<Value>(&mut j, &["JOB.JOIN", "q", "TIMEOUT", "0"]).await.unwrap() });
    eventually(|| server.blocked() == 1).await;
    let job = claim(&mut c, &["q"]).await.unwrap();
    let _: () = cmd(&mut c, &["JOB.COMPLETE", &job.id, &job.token]).await.unwrap();
    assert_eq!(server.blocked(), 1, "the delayed job is still open");
    assert_eq!(cmd::<i64>(&mut c, &["JOB.CANCEL", "delayed"]).await.unwrap(), 1);
    assert_eq!(joiner.await.unwrap(), Value::Okay);
    // A failed attempt that will be retried keeps the queue open; a dead job closes it.
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "r", "x", "ATTEMPTS", "2"]).await.unwrap();
    let job = claim(&mut c, &["r"]).await.unwrap();
    let _: String = cmd(&mut c, &["JOB.FAIL", &job.id, &job.token, "boom"]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut c, &["JOB.JOIN", "r", "TIMEOUT", "10"]).await.unwrap(), Value::Nil);
    let job = claim(&mut c, &["r"]).await.unwrap();
    assert_eq!(cmd::<String>(&mut c, &["JOB.FAIL", &job.id, &job.token, "boom"]).await.unwrap(), "dead");
    assert_eq!(cmd::<Value>(&mut c, &["JOB.JOIN", "r"]).await.unwrap(), Value::Okay);
    let _: () = cmd(&mut c, &["JOB.RETRY", &job.id]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut c, &["JOB.JOIN", "r", "TIMEOUT", "10"]).await.unwrap(), Value::Nil, "a retried job is open again");
    for (args, expected) in [
        (&["JOB.JOIN", "q", "TIMEOUT"][..], "syntax error"),
        (&["JOB.JOIN", "q", "TIMEOUT", "soon"][..], "not an integer"),
        (&["JOB.JOIN", "q", "WAIT", "1"][..], "syntax error"),
    ] {
        let err = cmd::<Value>(&mut c, args).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{args:?}: {err}");
    }
}

/// A paused queue stays paused across a restart (from the log, then from a snapshot).
#[tokio::test]
async fn a_pause_survives_restarts() {
    let dir = common::data_dir("jobs-pause");
    for step in 0..3 {
        let server = common::start_persistent(&dir).await;
        let mut c = server.conn().await;
        match step {
            0 => {
                let _: () = cmd(&mut c, &["JOB.QUEUE", "q", "CONCURRENCY", "2"]).await.unwrap();
                let _: () = cmd(&mut c, &["JOB.QUEUE", "q", "PAUSE"]).await.unwrap();
                let _: String = cmd(&mut c, &["JOB.SUBMIT", "q", "kept"]).await.unwrap();
            }
            _ => {
                let stats = fields(cmd(&mut c, &["JOB.STATS", "q"]).await.unwrap());
                assert_eq!((int(&stats["paused"]), int(&stats["concurrency"]), int(&stats["queued"])), (1, 2, 1), "step {step}");
                assert!(claim(&mut c, &["q"]).await.is_none());
                assert_eq!(cmd::<Value>(&mut c, &["JOB.JOIN", "q", "TIMEOUT", "10"]).await.unwrap(), Value::Nil);
                common::rewrite(&mut c).await;
            }
        }
        server.stop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A lease token is never handed out twice, across a restart from the log alone: a job completed
/// under token 1, retried after the restart, is claimed under a later token, so its old worker's token
/// stays refused.
#[tokio::test]
async fn a_restart_from_the_log_hands_out_no_old_lease_token() {
    let dir = common::data_dir("jobs-tokens");
    let server = common::start_persistent(&dir).await;
    let mut c = server.conn().await;
    let id: String = cmd(&mut c, &["JOB.SUBMIT", "q", "once", "ATTEMPTS", "1"]).await.unwrap();
    let first = claim(&mut c, &["q"]).await.unwrap();
    let _: String = cmd(&mut c, &["JOB.FAIL", &id, &first.token, "boom"]).await.unwrap();
    drop(c);
    server.stop().await;
    let server = common::start_persistent(&dir).await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["JOB.RETRY", &id]).await.unwrap();
    let again = claim(&mut c, &["q"]).await.unwrap();
    assert!(again.token.parse::<u64>().unwrap() > first.token.parse::<u64>().unwrap(), "{} {}", again.token, first.token);
    let stale = cmd::<()>(&mut c, &["JOB.COMPLETE", &id, &first.token]).await.unwrap_err();
    assert_eq!(stale.code(), Some("LEASE"), "{stale}");
    drop(c);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
