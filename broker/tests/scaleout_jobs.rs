//! Jobs across Herald nodes on the Redis engine, with a node killed (`kill -9`) mid-run
//! (docs/scale-out.md): three `herald` processes share one redis-server; 500 jobs on a queue with a
//! concurrency limit of 5, workers on every node. Every job ends completed exactly once (or dead), the
//! workers never see more than 5 jobs in flight, the dead node's workers' tokens are refused once their
//! jobs moved on, and every job's chunks are gap-free.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::redis_server::RedisServer;
use common::{cmd, fields, int, text};
use redis::Value;

/// A `herald` process on the Redis engine; its port is read from its log.
struct Node {
    child: Child,
    port: u16,
}

impl Node {
    async fn start(redis: &RedisServer, log: &Path) -> Node {
        let file = std::fs::File::create(log).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["--port", "0", "--http-port", "0", "--engine", &redis.url()])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("the herald binary starts");
        for _ in 0..1000 {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(at) = text.find("listening for RESP on ") {
                let rest = &text[at + "listening for RESP on ".len()..];
                let addr: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect();
                let port = addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
                return Node { child, port };
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("herald did not report its port: {}", std::fs::read_to_string(log).unwrap_or_default());
    }

    async fn conn(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.port)).unwrap();
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        client.get_multiplexed_async_connection_with_config(&config).await.expect("connect to herald")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const JOBS: usize = 500;
const LIMIT: usize = 5;
const CHUNKS: usize = 3;

/// What the workers saw, shared by all of them.
#[derive(Default)]
struct Seen {
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    /// Acknowledged JOB.COMPLETEs per job id.
    completed: Mutex<HashMap<String, usize>>,
    /// (id, token) of every claim made through the node that is killed.
    doomed_claims: Mutex<Vec<(String, String)>>,
    /// Jobs whose JOB.COMPLETE went out through the killed node and got no reply: Redis may have run it
    /// (the node died before answering), so done without an acknowledgement is right for these.
    unacknowledged: Mutex<Vec<String>>,
    stop: AtomicBool,
}

/// One worker: claim, three chunks, complete, until told to stop or its node dies.
async fn work(mut c: redis::aio::MultiplexedConnection, seen: Arc<Seen>, doomed: bool) {
    while !seen.stop.load(Ordering::SeqCst) {
        let claimed: redis::RedisResult<Value> = cmd(&mut c, &["JOB.CLAIM", "work", "BLOCK", "200"]).await;
        let job = match claimed {
            Ok(Value::Nil) => continue,
            Ok(v) => fields(v),
            Err(_) => return, // its node is gone
        };
        let (id, token) = (text(&job["id"]), int(&job["token"]).to_string());
        let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        seen.peak.fetch_max(now, Ordering::SeqCst);
        if doomed {
            seen.doomed_claims.lock().unwrap().push((id.clone(), token.clone()));
        }
        let mut ok = true;
        for i in 0..CHUNKS {
            let chunk: redis::RedisResult<i64> = cmd(&mut c, &["JOB.CHUNK", &id, &token, &format!("{id}/{i}")]).await;
            ok &= chunk.is_ok();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        seen.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !ok {
            continue;
        }
        let done: redis::RedisResult<()> = cmd(&mut c, &["JOB.COMPLETE", &id, &token, "ok"]).await;
        match done {
            Ok(()) => *seen.completed.lock().unwrap().entry(id).or_default() += 1,
            Err(e) if e.code().is_none() => seen.unacknowledged.lock().unwrap().push(id),
            Err(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_jobs_with_a_limit_of_five_survive_a_node_killed_mid_run() {
    let redis = RedisServer::start("kill9").await;
    let logs = std::env::temp_dir().join(format!("herald-kill9-{}", std::process::id()));
    std::fs::create_dir_all(&logs).unwrap();
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(Node::start(&redis, &logs.join(format!("node{i}.log"))).await);
    }
    let mut admin = nodes[0].conn().await;
    let _: () = cmd(&mut admin, &["JOB.QUEUE", "work", "CONCURRENCY", &LIMIT.to_string()]).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..JOBS {
        // Leases short enough that the dead node's jobs come back soon, long enough that a live worker on a
        // busy machine keeps its job to the end; three attempts each.
        let id: String = cmd(&mut admin, &["JOB.SUBMIT", "work", &format!("job-{i}"), "LEASE", "3000", "ATTEMPTS", "3"]).await.unwrap();
        ids.push(id);
    }

    let seen = Arc::new(Seen::default());
    let mut workers = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for _ in 0..3 {
            workers.push(tokio::spawn(work(node.conn().await, seen.clone(), n == 2)));
        }
    }
    let finished = |stats: &HashMap<String, Value>| int(&stats["done"]) + int(&stats["dead"]);
    let run = async {
        let mut killed = false;
        loop {
            let stats = fields(cmd(&mut admin, &["JOB.STATS", "work"]).await.unwrap());
            if !killed && int(&stats["done"]) >= 150 {
                // kill -9: no shutdown, the node's workers lose their connection with jobs in hand.
                nodes[2].child.kill().unwrap();
                nodes[2].child.wait().unwrap();
                killed = true;
            }
            if finished(&stats) == JOBS as i64 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(120), run).await.expect("all 500 jobs finish within 2 minutes");
    seen.stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }

    // Every job completed exactly once, or dead; the limit held as the workers saw it.
    let completed = seen.completed.lock().unwrap().clone();
    let unacknowledged = seen.unacknowledged.lock().unwrap().clone();
    let (mut dead, mut done) = (0, 0);
    for id in &ids {
        let status = fields(cmd(&mut admin, &["JOB.STATUS", id]).await.unwrap());
        match text(&status["state"]).as_str() {
            "done" => {
                match completed.get(id) {
                    Some(n) => assert_eq!(*n, 1, "{id} completed exactly once"),
                    None => assert!(unacknowledged.contains(id), "{id} is done, completed by nobody"),
                }
                assert_eq!(cmd::<String>(&mut admin, &["JOB.RESULT", id]).await.unwrap(), "ok");
                done += 1;
            }
            "dead" => {
                assert_eq!(completed.get(id), None, "{id} is dead and was never completed");
                dead += 1;
            }
            other => panic!("{id} ended {other}"),
        }
    }
    assert_eq!(done + dead, JOBS);
    let stats = fields(cmd(&mut admin, &["JOB.STATS", "work"]).await.unwrap());
    assert_eq!(int(&stats["completed"]), done as i64, "one completion per done job, none twice");
    let peak = seen.peak.load(Ordering::SeqCst);
    assert!(peak <= LIMIT, "at most {LIMIT} jobs in flight, the workers saw {peak}");

    // The killed node's workers' tokens: refused everywhere now (their jobs finished under other tokens).
    let doomed = seen.doomed_claims.lock().unwrap().clone();
    assert!(!doomed.is_empty(), "the killed node's workers had claimed jobs");
    let mut live = nodes[1].conn().await;
    for (id, token) in doomed.iter().rev().take(20) {
        let err = cmd::<()>(&mut live, &["JOB.COMPLETE", id, token, "stale"]).await.unwrap_err();
        assert_eq!(err.code(), Some("LEASE"), "{id} {token}: {err}");
    }

    // Chunks: offsets 0, 1, 2 ... with no gap; a job claimed more than once has its earlier attempts'
    // chunks first.
    for id in &ids {
        let read = fields(cmd(&mut admin, &["JOB.READ", id, "FROM", "0", "COUNT", "1000"]).await.unwrap());
        let Value::Array(entries) = &read["entries"] else { panic!("{read:?}") };
        assert!(entries.len() >= CHUNKS || !completed.contains_key(id), "{id}: {entries:?}");
        for (i, e) in entries.iter().enumerate() {
            let Value::Array(pair) = e else { panic!("{e:?}") };
            assert_eq!(int(&pair[0]), i as i64, "{id}: gap-free offsets");
            assert!(text(&pair[1]).starts_with(&format!("{id}/")), "{id}: its own chunks");
        }
        assert_eq!(int(&read["next"]), entries.len() as i64);
    }
    eprintln!(
        "peak in flight {peak}, claims through the killed node {}, leases expired {}, dead {dead}",
        doomed.len(),
        int(&stats["lease_expired"])
    );
    let _ = std::fs::remove_dir_all(&logs);
}

/// A worker blocked on one node gets a job submitted on another; a follower on a third sees the job's
/// events in order, and a JOB.RESULT blocked there wakes when the worker completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_results_and_job_events_cross_nodes() {
    use futures_util::StreamExt;
    let redis = RedisServer::start("jobx").await;
    let (a, b, c) = (redis.node().await, redis.node().await, redis.node().await);
    let mut worker = b.conn().await;
    let claim = tokio::spawn(async move {
        let job = fields(cmd(&mut worker, &["JOB.CLAIM", "x", "BLOCK", "10000"]).await.unwrap());
        (worker, job)
    });
    common::eventually(|| b.broker.remote.as_ref().unwrap().jobs_waiting() == 1).await;
    let mut events = c.client().get_async_pubsub().await.unwrap();
    events.subscribe("__job__:cross-1").await.unwrap();
    let mut producer = a.conn().await;
    let id: String = cmd(&mut producer, &["JOB.SUBMIT", "x", "payload", "ID", "cross-1"]).await.unwrap();
    let mut waiter = c.conn().await;
    let wid = id.clone();
    let result = tokio::spawn(async move { cmd::<String>(&mut waiter, &["JOB.RESULT", &wid, "BLOCK", "10000"]).await.unwrap() });

    let (mut worker, job) = claim.await.unwrap();
    assert_eq!(text(&job["id"]), id);
    let token = int(&job["token"]).to_string();
    let _: i64 = cmd(&mut worker, &["JOB.CHUNK", &id, &token, "part"]).await.unwrap();
    let _: () = cmd(&mut worker, &["JOB.COMPLETE", &id, &token, "whole"]).await.unwrap();
    assert_eq!(result.await.unwrap(), "whole");

    let mut stream = events.on_message();
    let mut seen = Vec::new();
    while seen.last().map(|e: &serde_json::Value| e["event"] != "done").unwrap_or(true) {
        let msg = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("an event").unwrap();
        seen.push(serde_json::from_slice(&msg.get_payload::<Vec<u8>>().unwrap()).unwrap());
    }
    let names: Vec<&str> = seen.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["claimed", "chunk", "done"], "{seen:?}");
    assert_eq!(seen[0]["attempt"].as_i64(), Some(1));
    assert_eq!((seen[1]["offset"].as_i64(), seen[1]["data"].as_str()), (Some(0), Some("part")));
    assert_eq!((seen[2]["id"].as_str(), seen[2]["result"].as_str()), (Some(id.as_str()), Some("whole")));
}

/// Two in-process nodes whose fallback poll for blocking commands is `poll_ms`.
async fn polling_every(redis: &RedisServer, poll_ms: u64) -> (common::TestServer, common::TestServer) {
    let node = || {
        let mut config = herald_broker::Config::for_tests();
        config.engine.wait_poll_ms = poll_ms;
        redis.node_with(config)
    };
    (node().await, node().await)
}

/// With a ten-minute fallback poll only the notices can end these waits: a worker blocked on one node
/// gets a job submitted on another (the claim marked the queue, so the `wake` went out), a JOB.RESULT
/// blocked there gets the result the `done` notice carried, and a JOB.JOIN the `drained`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_claims_results_and_joins_are_woken_across_nodes_by_notices_alone() {
    let redis = RedisServer::start("job-marked").await;
    let (a, b) = polling_every(&redis, 600_000).await;
    let waiting = |n: usize| a.broker.remote.as_ref().unwrap().jobs_waiting() == n;
    let mut worker = a.conn().await;
    let claim = tokio::spawn(async move {
        let job = fields(cmd(&mut worker, &["JOB.CLAIM", "w", "BLOCK", "0"]).await.unwrap());
        (worker, job)
    });
    common::eventually(|| waiting(1)).await;
    let mut producer = b.conn().await;
    let id: String = cmd(&mut producer, &["JOB.SUBMIT", "w", "payload"]).await.unwrap();
    let (_worker, job) = tokio::time::timeout(Duration::from_secs(60), claim).await.expect("claimed").unwrap();
    assert_eq!(text(&job["id"]), id);

    let (mut waiter, wid) = (a.conn().await, id.clone());
    let result = tokio::spawn(async move { cmd::<String>(&mut waiter, &["JOB.RESULT", &wid, "BLOCK", "0"]).await.unwrap() });
    let mut joiner = a.conn().await;
    let join = tokio::spawn(async move { cmd::<Value>(&mut joiner, &["JOB.JOIN", "w", "TIMEOUT", "0"]).await.unwrap() });
    common::eventually(|| waiting(2)).await;
    let token = int(&job["token"]).to_string();
    let mut completer = b.conn().await;
    let _: () = cmd(&mut completer, &["JOB.COMPLETE", &id, &token, "whole"]).await.unwrap();
    assert_eq!(tokio::time::timeout(Duration::from_secs(60), result).await.expect("result").unwrap(), "whole");
    assert_eq!(tokio::time::timeout(Duration::from_secs(60), join).await.expect("joined").unwrap(), Value::Okay);
}

/// A blocked claim whose marker is gone (deleted here, as if it had expired) is not woken by the submit,
/// which publishes nothing; its fallback poll claims the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_claim_whose_marker_is_gone_is_served_by_the_fallback_poll() {
    let redis = RedisServer::start("job-lost").await;
    let (a, b) = polling_every(&redis, 300).await;
    let mut worker = a.conn().await;
    let claim = tokio::spawn(async move { fields(cmd(&mut worker, &["JOB.CLAIM", "l", "BLOCK", "0"]).await.unwrap()) });
    common::eventually(|| a.broker.remote.as_ref().unwrap().jobs_waiting() == 1).await;
    let mut backing = redis.conn().await;
    let gone: i64 = redis::cmd("DEL").arg("{herald:q:l}:waiting").query_async(&mut backing).await.unwrap();
    assert_eq!(gone, 1, "the blocked claim marked the queue");
    let mut producer = b.conn().await;
    let id: String = cmd(&mut producer, &["JOB.SUBMIT", "l", "payload"]).await.unwrap();
    let job = tokio::time::timeout(Duration::from_secs(60), claim).await.expect("claimed").unwrap();
    assert_eq!(text(&job["id"]), id);
}
