//! The Redis engine on Redis Cluster (`redis+cluster://`, docs/scale-out.md): six real redis-server
//! processes (three masters, one replica each) and two Herald nodes. Plain commands go to their slot's
//! master with Redis Cluster's errors; the domains, listings, blocking commands and pub-sub work across
//! masters and nodes; and with a master `kill -9`ed mid-run, every write acknowledged after a
//! successful `WAIT` is still there once its replica took over (losses without `WAIT` are counted and
//! printed).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::redis_server::RedisCluster;
use common::{TestServer, cmd, fields, text};
use futures_util::StreamExt;
use herald_broker::Config;
use redis::Value;

fn config() -> Config {
    let mut config = Config::for_tests();
    config.engine.response_timeout_ms = 2000;
    config.engine.wait_poll_ms = 100;
    config.engine.cluster_poll_ms = 200;
    config
}

async fn nodes(cluster: &RedisCluster) -> (TestServer, TestServer) {
    (cluster.node_with(config()).await, cluster.node_with(config()).await)
}

fn error_of(r: redis::RedisResult<Value>) -> String {
    let e = r.unwrap_err();
    format!("{} {}", e.code().unwrap_or("?"), e.detail().unwrap_or(""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_commands_domains_and_pubsub_work_across_the_masters() {
    let cluster = RedisCluster::start("plain").await;
    let (a, b) = nodes(&cluster).await;
    let (mut ca, mut cb) = (a.conn().await, b.conn().await);

    // Keys on every master, written on one node and read on the other.
    for i in 0..30 {
        let _: () = cmd(&mut ca, &["SET", &format!("key:{i}"), &i.to_string()]).await.unwrap();
    }
    for i in 0..30 {
        assert_eq!(cmd::<String>(&mut cb, &["GET", &format!("key:{i}")]).await.unwrap(), i.to_string());
    }
    let per_master = {
        let mut counts = Vec::new();
        for port in cluster.masters(&[]).await {
            counts.push(cmd::<i64>(&mut common::redis_server::direct(port).await, &["DBSIZE"]).await.unwrap());
        }
        counts
    };
    assert_eq!(per_master.len(), 3);
    assert!(per_master.iter().all(|n| *n > 0), "keys on every master: {per_master:?}");
    // Keyless commands run on every master: DBSIZE sums, KEYS joins, SCAN walks each in turn.
    assert_eq!(cmd::<i64>(&mut cb, &["DBSIZE"]).await.unwrap(), 30);
    assert_eq!(cmd::<Vec<String>>(&mut cb, &["KEYS", "key:*"]).await.unwrap().len(), 30);
    let (mut cursor, mut scanned) = ("0".to_owned(), Vec::new());
    loop {
        let (next, keys): (String, Vec<String>) = cmd(&mut cb, &["SCAN", &cursor, "MATCH", "key:*", "COUNT", "7"]).await.unwrap();
        scanned.extend(keys);
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    scanned.sort();
    scanned.dedup();
    assert_eq!(scanned.len(), 30);

    // A script loaded through one node runs on every master by SHA through the other.
    let sha: String = cmd(&mut ca, &["SCRIPT", "LOAD", "return redis.call('GET', KEYS[1])"]).await.unwrap();
    for i in 0..30 {
        assert_eq!(cmd::<String>(&mut cb, &["EVALSHA", &sha, "1", &format!("key:{i}")]).await.unwrap(), i.to_string());
    }

    // Redis Cluster's own errors: keys of several slots, SELECT.
    let cross = error_of(cmd(&mut ca, &["MGET", "key:1", "key:2"]).await);
    assert_eq!(cross, "CROSSSLOT Keys in request don't hash to the same slot");
    assert!(error_of(cmd(&mut ca, &["DEL", "key:1", "key:2"]).await).starts_with("CROSSSLOT"));
    assert_eq!(cmd::<i64>(&mut cb, &["EXISTS", "key:1"]).await.unwrap(), 1, "nothing deleted");
    let _: () = cmd(&mut ca, &["MSET", "{t}a", "1", "{t}b", "2"]).await.unwrap();
    assert_eq!(cmd::<Vec<String>>(&mut cb, &["MGET", "{t}a", "{t}b"]).await.unwrap(), ["1", "2"]);
    assert_eq!(error_of(cmd(&mut ca, &["SELECT", "1"]).await), "ERR SELECT is not allowed in cluster mode");
    let _: () = cmd(&mut ca, &["SELECT", "0"]).await.unwrap();

    // Transactions: one slot, or EXEC answers CROSSSLOT and nothing runs.
    let mut raw = a.raw().await;
    for (req, reply) in [
        (&["MULTI"][..], "+OK\r\n"),
        (&["SET", "{t}a", "10"], "+QUEUED\r\n"),
        (&["SET", "key:9", "x"], "+QUEUED\r\n"),
        (&["EXEC"], "-CROSSSLOT Keys in request don't hash to the same slot\r\n"),
        (&["MULTI"], "+OK\r\n"),
        (&["INCR", "{t}a"], "+QUEUED\r\n"),
        (&["INCR", "{t}b"], "+QUEUED\r\n"),
        (&["EXEC"], "*2\r\n:2\r\n:3\r\n"),
        (&["WATCH", "{t}a"], "+OK\r\n"),
    ] {
        raw.cmd(req).await;
        raw.expect(reply).await;
    }
    let _: i64 = cmd(&mut cb, &["INCR", "{t}a"]).await.unwrap();
    for (req, reply) in [(&["MULTI"][..], "+OK\r\n"), (&["SET", "{t}b", "0"], "+QUEUED\r\n"), (&["EXEC"], "*-1\r\n")] {
        raw.cmd(req).await;
        raw.expect(reply).await;
    }

    // A blocking command on one node, served by a push through the other.
    let waiter = tokio::spawn({
        let mut c = b.conn().await;
        async move { cmd::<Vec<String>>(&mut c, &["BLPOP", "jobs", "0"]).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _: i64 = cmd(&mut ca, &["RPUSH", "jobs", "j1"]).await.unwrap();
    assert_eq!(waiter.await.unwrap(), ["jobs", "j1"]);

    // The blackboard: a BB.WAIT on one node woken by a BB.SET on the other; scopes on every master listed.
    let wait = tokio::spawn({
        let mut c = b.conn().await;
        async move { cmd::<Value>(&mut c, &["BB.WAIT", "wf", "approval", "TIMEOUT", "10000"]).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _: i64 = cmd(&mut ca, &["BB.SET", "wf", "approval", "yes"]).await.unwrap();
    assert!(format!("{:?}", wait.await.unwrap()).contains("yes"));
    for i in 0..12 {
        let _: i64 = cmd(&mut ca, &["BB.SET", &format!("scope{i}"), "k", "v"]).await.unwrap();
    }
    let (next, scopes): (String, Vec<Value>) = cmd(&mut cb, &["BB.SCOPES", "0", "MATCH", "scope*", "COUNT", "1000"]).await.unwrap();
    assert_eq!((next.as_str(), scopes.len()), ("0", 12), "{scopes:?}");

    // Jobs: submitted on one node, claimed and completed on the other; queues on every master listed.
    for q in ["q1", "q2", "q3", "q4", "q5", "q6"] {
        let _: String = cmd(&mut ca, &["JOB.SUBMIT", q, "payload"]).await.unwrap();
    }
    let job = fields(cmd(&mut cb, &["JOB.CLAIM", "q1", "BLOCK", "5000"]).await.unwrap());
    let (id, token) = (text(&job["id"]), common::int(&job["token"]).to_string());
    let _: () = cmd(&mut cb, &["JOB.COMPLETE", &id, &token, "result-1"]).await.unwrap();
    let status = format!("{:?}", cmd::<Value>(&mut ca, &["JOB.STATUS", &id]).await.unwrap());
    assert!(status.contains("done"), "{status}");
    let (_, queues): (String, Vec<Value>) = cmd(&mut cb, &["JOB.QUEUES", "0", "COUNT", "1000"]).await.unwrap();
    assert_eq!(queues.len(), 6, "{queues:?}");

    // Boards, mailboxes and streams run their scripts on their own slot too.
    let _: String = cmd(&mut ca, &["BL.PUBLISH", "board", r#"{"n": 1}"#]).await.unwrap();
    assert!(cmd::<Value>(&mut cb, &["BL.RETRIEVE", "board", "LOCK", "1000"]).await.unwrap() != Value::Nil);
    let _: i64 = cmd(&mut ca, &["MSG.SEND", "inbox", "t", "hello"]).await.unwrap();
    assert_eq!(cmd::<String>(&mut cb, &["MSG.RECV", "inbox", "t"]).await.unwrap(), "hello");
    let _: Value = cmd(&mut ca, &["STREAM.WRITE", "log", "line"]).await.unwrap();
    assert!(format!("{:?}", cmd::<Value>(&mut cb, &["STREAM.READ", "log"]).await.unwrap()).contains("line"));

    // The rest of the domains' scripts, each on its object's slot (a key of another slot inside a script
    // would be refused by the cluster).
    let _: i64 = cmd(&mut ca, &["BB.SET", "wf", "ttl", "x", "PX", "100"]).await.unwrap();
    assert!(cmd::<Vec<String>>(&mut cb, &["BB.KEYS", "wf"]).await.unwrap().contains(&"approval".to_owned()));
    let _: Value = cmd(&mut cb, &["BB.GETALL", "wf"]).await.unwrap();
    let _: Value = cmd(&mut cb, &["BB.CHANGES", "wf", "SINCE", "0"]).await.unwrap();
    common::redis_server::until(10, "the BB.SET PX expired by the sweep", || {
        let mut c = cb.clone();
        async move { cmd::<i64>(&mut c, &["BB.HAS", "wf", "ttl"]).await.unwrap() == 0 }
    })
    .await;
    assert_eq!(cmd::<i64>(&mut ca, &["BB.DEL", "wf", "approval"]).await.unwrap(), 1);
    assert_eq!(cmd::<i64>(&mut ca, &["BB.CLEAR", "scope1"]).await.unwrap(), 1);
    let id: String = cmd(&mut ca, &["BL.PUBLISH", "board", r#"{"n": 2}"#]).await.unwrap();
    assert_eq!(cmd::<Vec<Value>>(&mut cb, &["BL.ALL", "board"]).await.unwrap().len(), 2);
    assert_eq!(cmd::<i64>(&mut cb, &["BL.REMOVE", "board", &id]).await.unwrap(), 1);
    let (requester, mut replier) = (a.conn().await, b.conn().await);
    let asked = tokio::spawn(async move {
        let mut c = requester;
        cmd::<String>(&mut c, &["MSG.REQUEST", "calc", "square", "3", "TIMEOUT", "10000"]).await.unwrap()
    });
    let request = fields(cmd(&mut replier, &["MSG.RECV", "calc", "square", "TIMEOUT", "10000"]).await.unwrap());
    assert_eq!(cmd::<i64>(&mut replier, &["MSG.REPLY", &text(&request["reply_to"]), "9"]).await.unwrap(), 1);
    assert_eq!(asked.await.unwrap(), "9");
    assert_eq!(cmd::<i64>(&mut cb, &["STREAM.CLOSE", "log"]).await.unwrap(), 1);
    let job = fields(cmd(&mut cb, &["JOB.CLAIM", "q2"]).await.unwrap());
    let (id, token) = (text(&job["id"]), common::int(&job["token"]).to_string());
    assert_eq!(cmd::<i64>(&mut cb, &["JOB.CHUNK", &id, &token, "part"]).await.unwrap(), 0);
    assert!(format!("{:?}", cmd::<Value>(&mut ca, &["JOB.READ", &id]).await.unwrap()).contains("part"));
    assert_eq!(cmd::<i64>(&mut ca, &["JOB.CANCEL", &id]).await.unwrap(), 1);

    // Semaphores (a lock taken on one node, refused and released on the other, the lapsed token refused),
    // schemas (set on one node, guarding the other's writes), listings, BB.STATS, BB.WATCH, the global scope.
    let token: i64 = cmd(&mut ca, &["SEM.ACQUIRE", "lock", "1", "LEASE", "60000"]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut cb, &["SEM.ACQUIRE", "lock", "1"]).await.unwrap(), Value::Nil);
    let _: () = cmd(&mut cb, &["SEM.RELEASE", "lock", &token.to_string()]).await.unwrap();
    assert!(cmd::<Value>(&mut ca, &["SEM.EXTEND", "lock", &token.to_string(), "10"]).await.is_err());
    assert!(cmd::<i64>(&mut cb, &["SEM.ACQUIRE", "lock", "1", "BLOCK", "1000"]).await.unwrap() > token);
    let _: () = cmd(&mut ca, &["SCHEMA.SET", "queue", "typed", r#"{"type": "object"}"#]).await.unwrap();
    common::redis_server::until(10, "node B applies node A's schema", || {
        let mut c = cb.clone();
        async move { cmd::<String>(&mut c, &["JOB.SUBMIT", "typed", "[]"]).await.is_err() }
    })
    .await;
    let (_, boards): (String, Vec<Value>) = cmd(&mut cb, &["BL.BOARDS", "0", "COUNT", "1000"]).await.unwrap();
    assert_eq!(boards.len(), 1, "{boards:?}");
    let _: Value = cmd(&mut ca, &["MSG.SEND", "d", "t", "m"]).await.unwrap();
    let (_, dests): (String, Vec<Value>) = cmd(&mut cb, &["MSG.DESTS", "0", "COUNT", "1000"]).await.unwrap();
    assert_eq!(dests.len(), 1, "{dests:?}");
    assert_eq!(common::int(&common::field(&cmd(&mut cb, &["BB.STATS", "scope2"]).await.unwrap(), "keys")), 1);
    let _: i64 = cmd(&mut ca, &["BB.SET", "", "g", "v"]).await.unwrap();
    let _: () = cmd(&mut cb, &["BB.WATCH", "", "g"]).await.unwrap();
    let _: () = cmd(&mut cb, &["UNWATCH"]).await.unwrap();

    // Pub-sub across nodes (a PUBLISH reaches every cluster node, whichever one each bridge uses).
    let mut sub = b.client().get_async_pubsub().await.unwrap();
    sub.subscribe("news").await.unwrap();
    // (Its reply counts the receivers on the cluster node that took it, as in Redis Cluster.)
    let _: i64 = cmd(&mut ca, &["PUBLISH", "news", "hi"]).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.on_message().next()).await.unwrap().unwrap();
    assert_eq!(m.get_payload::<String>().unwrap(), "hi");

    // WAIT counts the replicas of every master: each has one.
    assert_eq!(cmd::<i64>(&mut ca, &["WAIT", "1", "5000"]).await.unwrap(), 1);
    assert!(cmd::<Vec<String>>(&mut cb, &["KEYS", "herald:fence:*"]).await.unwrap().is_empty(), "the fence leaves no key");
}

/// What one writer saw of one write.
#[derive(Default)]
struct Ledger {
    /// Acknowledged writes not yet covered by a WAIT that answered >= 1: key -> value.
    pending: BTreeMap<String, String>,
    /// Acknowledged and then fenced by a successful WAIT.
    durable: BTreeMap<String, String>,
    /// Acknowledged, and the WAIT after them answered 0 or failed.
    unfenced: BTreeMap<String, String>,
    /// Jobs: the same three.
    durable_jobs: Vec<String>,
    pending_jobs: Vec<String>,
    unfenced_jobs: Vec<String>,
    failed: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_acknowledged_after_wait_survive_a_master_killed_mid_run() {
    survives_a_master_killed_mid_run(RedisCluster::start("failover").await).await;
}

/// The same on a TLS-only cluster (`rediss+cluster://`): the nodes find the promoted replica and their
/// pub-sub connection a live node over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_acknowledged_after_wait_survive_a_master_killed_mid_run_over_tls() {
    let cluster = RedisCluster::start_tls_with_replicas("failover-tls").await;
    assert!(cluster.url().starts_with("rediss+cluster://"));
    survives_a_master_killed_mid_run(cluster).await;
}

/// Writes (and jobs) through node A while a master is `kill -9`ed, its replica stopped just before
/// so a burst is not replicated: every write a successful `WAIT` vouched for is read back through
/// node B, the others are counted and printed; pub-sub reaches node B's subscriber afterwards.
async fn survives_a_master_killed_mid_run(mut cluster: RedisCluster) {
    let (a, b) = nodes(&cluster).await;
    let mut c = a.conn().await;
    let mut sub = b.client().get_async_pubsub().await.unwrap();
    sub.subscribe("after").await.unwrap();
    let victim = cluster.masters(&[]).await[0];

    let mut ledger = Ledger::default();
    let mut lost_unfenced = (Vec::new(), Vec::new());
    let (mut killed, mut restarted) = (false, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(25);
    let mut i = 0usize;
    let mut durable_after_kill = 0usize;
    while tokio::time::Instant::now() < deadline && (!killed || durable_after_kill < 20 || i < 400) {
        i += 1;
        let (key, value) = (format!("w:{i}"), format!("v{i}"));
        let set: redis::RedisResult<()> = cmd(&mut c, &["SET", &key, &value]).await;
        match set {
            Ok(()) => {
                ledger.pending.insert(key, value);
            }
            Err(_) => ledger.failed += 1,
        }
        if i.is_multiple_of(5) {
            match cmd::<String>(&mut c, &["JOB.SUBMIT", &format!("jq{}", i % 3), &format!("p{i}")]).await {
                Ok(id) => ledger.pending_jobs.push(id),
                Err(_) => ledger.failed += 1,
            }
        }
        // A burst of writes without WAIT just before the kill, while the victim's replica is stopped
        // (big enough to outgrow the socket buffers): what replication had not carried yet is what
        // the failover loses.
        if i == 150 && !killed {
            let replica = cluster.replica_of(victim).await;
            cluster.signal(replica, "STOP");
            let big = "x".repeat(256 * 1024);
            for j in 0..60 {
                let (key, value) = (format!("burst:{j}"), format!("{j}{big}"));
                if cmd::<()>(&mut c, &["SET", &key, &value]).await.is_ok() {
                    ledger.pending.insert(key, value);
                }
            }
            cluster.kill(victim);
            cluster.signal(replica, "CONT");
            killed = true;
            continue;
        }
        if i.is_multiple_of(10) {
            // The writes since the previous WAIT are vouched for by this one, or not at all.
            match cmd::<i64>(&mut c, &["WAIT", "1", "300"]).await {
                Ok(n) if n >= 1 => {
                    if killed {
                        durable_after_kill += ledger.pending.len();
                    }
                    ledger.durable.append(&mut ledger.pending);
                    ledger.durable_jobs.append(&mut ledger.pending_jobs);
                }
                _ => {
                    ledger.unfenced.append(&mut ledger.pending);
                    ledger.unfenced_jobs.append(&mut ledger.pending_jobs);
                }
            }
        }
        if killed && !restarted && i.is_multiple_of(20) && cluster.masters(&[victim]).await.len() == 3 {
            // The replica took over: the killed master comes back as its replica, so WAIT 1 can
            // succeed again (a master without a replica answers 0).
            cluster.restart(victim);
            restarted = true;
        }
    }
    assert!(killed && restarted, "the replica was promoted within the run");
    cluster.until_ok(&[]).await;

    // Every write fenced by a successful WAIT is there; the others are counted.
    let mut check = b.conn().await;
    for (key, value) in &ledger.durable {
        assert_eq!(
            cmd::<Option<String>>(&mut check, &["GET", key]).await.unwrap().as_deref(),
            Some(value.as_str()),
            "{key} lost after WAIT"
        );
    }
    for id in &ledger.durable_jobs {
        let status = cmd::<Value>(&mut check, &["JOB.STATUS", id]).await;
        assert!(status.as_ref().is_ok_and(|s| *s != Value::Nil), "job {id} lost after WAIT: {status:?}");
    }
    ledger.unfenced.append(&mut ledger.pending);
    ledger.unfenced_jobs.append(&mut ledger.pending_jobs);
    for (key, value) in &ledger.unfenced {
        if cmd::<Option<String>>(&mut check, &["GET", key]).await.unwrap().as_deref() != Some(value.as_str()) {
            lost_unfenced.0.push(key.clone());
        }
    }
    for id in &ledger.unfenced_jobs {
        if !cmd::<Value>(&mut check, &["JOB.STATUS", id]).await.is_ok_and(|s| s != Value::Nil) {
            lost_unfenced.1.push(id.clone());
        }
    }
    println!(
        "redis cluster failover: {} writes and {} jobs fenced by WAIT, all kept; {} writes and {} jobs acknowledged without a \
         successful WAIT, of which {} writes and {} jobs lost; {} requests failed during the failover",
        ledger.durable.len(),
        ledger.durable_jobs.len(),
        ledger.unfenced.len(),
        ledger.unfenced_jobs.len(),
        lost_unfenced.0.len(),
        lost_unfenced.1.len(),
        ledger.failed
    );
    assert!(!ledger.durable.is_empty() && durable_after_kill > 0, "WAIT succeeded before and after the failover");

    // Pub-sub still reaches node B's subscriber (its bridge moved to a live node if it was on the
    // killed one): published until one arrives.
    let mut messages = sub.on_message();
    let mut received = None;
    for _ in 0..100 {
        let _: redis::RedisResult<i64> = cmd(&mut c, &["PUBLISH", "after", "failover"]).await;
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(100), messages.next()).await {
            received = Some(m.get_payload::<String>().unwrap());
            break;
        }
    }
    assert_eq!(received.as_deref(), Some("failover"));
}
