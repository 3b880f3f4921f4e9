//! Moving from one node to several (docs/scale-out.md): an embedded node's data directory written into
//! a real redis-server by `herald --data-dir DIR --migrate-to URL`, then served by a node on the Redis
//! engine: Redis's own types with their deadlines, every database, the blackboard with its revisions,
//! Herald streams with their offsets and epochs, schemas and Lua libraries; and the work in flight:
//! jobs in every state, bulletin items, mailbox messages and held semaphore permits, with their ids,
//! leases (a holder carries on after the move, a lapsed lease ends as on one node) and counters, into one
//! redis-server and into a Redis Cluster.

mod common;

use std::process::Command;

use common::redis_server::{RedisCluster, RedisServer};
use common::{cmd, field, int, start_with, text};
use herald_broker::Config;
use redis::Value;

fn data_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("herald-migrate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn embedded(dir: &std::path::Path) -> Config {
    let mut config = Config::for_tests();
    config.persistence.data_dir = dir.display().to_string();
    config
}

/// `herald --data-dir DIR --migrate-to URL`: its exit status and what it printed.
fn migrate(dir: &std::path::Path, url: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["--data-dir", &dir.display().to_string(), "--migrate-to", url])
        .output()
        .expect("run herald");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_moves_into_redis_and_a_node_on_the_redis_engine_serves_it() {
    let dir = data_dir("all");
    let node = start_with(embedded(&dir)).await;
    let mut c = node.conn().await;
    for args in [
        &["SET", "plain", "v"][..],
        &["SET", "expiring", "soon", "PX", "600000"],
        &["HSET", "h", "f", "1", "g", "2"],
        &["ZADD", "z", "1", "a", "2", "b"],
        &["RPUSH", "l", "x", "y"],
        &["SADD", "s", "m"],
        &["SELECT", "3"],
        &["SET", "in-three", "3"],
        &["SELECT", "0"],
        &["SCHEMA.SET", "scope", "team", r#"{"type":"string"}"#],
        &["FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('hello', function() return 'hi' end)"],
    ] {
        let _: Value = cmd(&mut c, args).await.unwrap();
    }
    let _: String = cmd(&mut c, &["XADD", "x", "1-1", "f", "v"]).await.unwrap();
    for (key, value) in [("k", "\"one\""), ("k", "\"two\""), ("other", "\"x\"")] {
        let _: i64 = cmd(&mut c, &["BB.SET", "team", key, value]).await.unwrap();
    }
    let _: i64 = cmd(&mut c, &["BB.SET", "team", "lease", "\"t\"", "PX", "600000"]).await.unwrap();
    for data in ["a", "b", "c"] {
        let _: i64 = cmd(&mut c, &["STREAM.WRITE", "log", data]).await.unwrap();
    }
    let _: i64 = cmd(&mut c, &["STREAM.WRITE", "done", "last"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["STREAM.CLOSE", "done"]).await.unwrap();
    let epoch = int(&field(&cmd::<Value>(&mut c, &["STREAM.INFO", "log"]).await.unwrap(), "epoch"));
    drop(c);
    node.stop().await;

    let redis = RedisServer::start("migrate").await;
    let (ok, printed) = migrate(&dir, &redis.url());
    assert!(ok, "{printed}");
    let summary = "moved 8 keys, 2 blackboard scopes (5 entries), 2 streams (4 entries), 0 jobs (0 running), 0 bulletin items \
                   (0 leased, 0 dead), 0 mailbox messages, 0 held semaphore permits, 1 schemas, 1 libraries";
    assert!(printed.contains(summary), "{printed}");
    // A second run writes the same again (nothing appended twice).
    let (ok, again) = migrate(&dir, &redis.url());
    assert!(ok && again == printed, "{again}");

    let node = redis.node().await;
    let mut c = node.conn().await;
    assert_eq!(cmd::<String>(&mut c, &["GET", "plain"]).await.unwrap(), "v");
    let ttl: i64 = cmd(&mut c, &["PTTL", "expiring"]).await.unwrap();
    assert!(ttl > 500_000 && ttl <= 600_000, "{ttl}");
    assert_eq!(cmd::<Vec<String>>(&mut c, &["HMGET", "h", "f", "g"]).await.unwrap(), ["1", "2"]);
    assert_eq!(cmd::<Vec<String>>(&mut c, &["ZRANGE", "z", "0", "-1"]).await.unwrap(), ["a", "b"]);
    assert_eq!(cmd::<Vec<String>>(&mut c, &["LRANGE", "l", "0", "-1"]).await.unwrap(), ["x", "y"]);
    assert_eq!(cmd::<i64>(&mut c, &["XLEN", "x"]).await.unwrap(), 1);
    assert_eq!(cmd::<String>(&mut c, &["FCALL", "hello", "0"]).await.unwrap(), "hi");
    let mut three = redis.client().get_multiplexed_async_connection().await.unwrap();
    let _: () = cmd(&mut three, &["SELECT", "3"]).await.unwrap();
    assert_eq!(cmd::<String>(&mut three, &["GET", "in-three"]).await.unwrap(), "3");

    // The blackboard keeps its revisions: a compare-and-swap against the old revision succeeds.
    let k = cmd::<Value>(&mut c, &["BB.GET", "team", "k"]).await.unwrap();
    assert_eq!(text(&field(&k, "value")), "\"two\"");
    assert_eq!(int(&field(&k, "revision")), 2);
    assert_eq!(cmd::<i64>(&mut c, &["BB.SET", "team", "k", "\"three\"", "IFREV", "2"]).await.unwrap(), 3);
    let lease = int(&field(&cmd::<Value>(&mut c, &["BB.GET", "team", "lease"]).await.unwrap(), "ttl"));
    assert!(lease > 500_000 && lease <= 600_000, "{lease}");
    let keys: Vec<String> = cmd(&mut c, &["BB.KEYS", "team"]).await.unwrap();
    assert_eq!(keys.len(), 3, "{keys:?}");
    // The schema still guards the scope.
    let refused = cmd::<i64>(&mut c, &["BB.SET", "team", "k", "7"]).await.unwrap_err();
    assert_eq!(refused.code(), Some("SCHEMA"), "{refused}");

    // Streams keep their offsets and epoch: a reader resumes where it was.
    let read = cmd::<Value>(&mut c, &["STREAM.READ", "log", "FROM", "1", "EPOCH", &epoch.to_string()]).await.unwrap();
    let Value::Array(entries) = field(&read, "entries") else { panic!("{read:?}") };
    let entries: Vec<(i64, String)> = entries
        .iter()
        .map(|e| match e {
            Value::Array(pair) => (int(&pair[0]), text(&pair[1])),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(entries, [(1, "b".to_string()), (2, "c".to_string())]);
    assert_eq!(cmd::<i64>(&mut c, &["STREAM.WRITE", "log", "d"]).await.unwrap(), 3);
    let done = cmd::<Value>(&mut c, &["STREAM.INFO", "done"]).await.unwrap();
    assert_eq!(int(&field(&done, "closed")), 1, "{done:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `args` (through the node) and returns the reply.
async fn run(c: &mut redis::aio::MultiplexedConnection, args: &[&str]) -> Value {
    cmd::<Value>(c, args).await.unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// A claim's (id, attempt, token), or `None` when nothing was claimed.
async fn claim(c: &mut redis::aio::MultiplexedConnection, args: &[&str]) -> Option<(String, i64, i64)> {
    match run(c, args).await {
        Value::Nil => None,
        v => Some((text(&field(&v, "id")), int(&field(&v, "attempt")), int(&field(&v, "token")))),
    }
}

/// Where the work moves: one redis-server, or a Redis Cluster of one master holding every slot (as strict
/// as a bigger one about keys of several slots in one command).
enum Backing {
    Server(RedisServer),
    Cluster(RedisCluster),
}

impl Backing {
    fn url(&self) -> String {
        match self {
            Backing::Server(s) => s.url(),
            Backing::Cluster(c) => c.url(),
        }
    }

    async fn node(&self) -> common::TestServer {
        match self {
            Backing::Server(s) => s.node().await,
            Backing::Cluster(c) => c.node_with(Config::for_tests()).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_in_flight_moves_with_its_ids_leases_and_counters() {
    work_in_flight_moves(Backing::Server(RedisServer::start("migrate-work").await), "work").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_in_flight_moves_into_a_redis_cluster() {
    work_in_flight_moves(Backing::Cluster(RedisCluster::single("migrate-work").await), "work-cluster").await;
}

/// A directory holding every kind of work, moved into `redis`, then served by a node on it.
async fn work_in_flight_moves(redis: Backing, name: &str) {
    let dir = data_dir(name);
    let node = start_with(embedded(&dir)).await;
    let mut c = node.conn().await;
    // Jobs: queued, delayed, held under a long lease (streaming), held under a short one, done with
    // chunks, dead, and queued on a paused queue.
    let queued = text(&run(&mut c, &["JOB.SUBMIT", "ready", "first"]).await);
    let later = text(&run(&mut c, &["JOB.SUBMIT", "later", "soon", "DELAY", "1500"]).await);
    let held = text(&run(&mut c, &["JOB.SUBMIT", "held", "long"]).await);
    let (_, _, held_token) = claim(&mut c, &["JOB.CLAIM", "held", "LEASE", "600000"]).await.unwrap();
    let held_token = held_token.to_string();
    run(&mut c, &["JOB.PROGRESS", &held, &held_token, "50%"]).await;
    run(&mut c, &["JOB.CHUNK", &held, &held_token, "part0"]).await;
    let lost = text(&run(&mut c, &["JOB.SUBMIT", "lost", "short", "ATTEMPTS", "3"]).await);
    let (_, _, lost_token) = claim(&mut c, &["JOB.CLAIM", "lost", "LEASE", "1000"]).await.unwrap();
    let done = text(&run(&mut c, &["JOB.SUBMIT", "done", "work", "RESULT-TTL", "600000"]).await);
    let (_, _, done_token) = claim(&mut c, &["JOB.CLAIM", "done"]).await.unwrap();
    let done_token = done_token.to_string();
    for data in ["c0", "c1"] {
        run(&mut c, &["JOB.CHUNK", &done, &done_token, data]).await;
    }
    run(&mut c, &["JOB.COMPLETE", &done, &done_token, "the result"]).await;
    let dead = text(&run(&mut c, &["JOB.SUBMIT", "dl", "bad", "ATTEMPTS", "1"]).await);
    let (_, _, dead_token) = claim(&mut c, &["JOB.CLAIM", "dl"]).await.unwrap();
    assert_eq!(text(&run(&mut c, &["JOB.FAIL", &dead, &dead_token.to_string(), "boom"]).await), "dead");
    run(&mut c, &["JOB.QUEUE", "paused", "PAUSE"]).await;
    let waiting = text(&run(&mut c, &["JOB.SUBMIT", "paused", "wait"]).await);
    // Bulletin items: free, leased long, leased briefly, with a TTL, and a dead letter.
    let free = text(&run(&mut c, &["BL.PUBLISH", "tasks", r#"{"n":1}"#]).await);
    let kept = text(&run(&mut c, &["BL.PUBLISH", "tasks", r#"{"n":2}"#]).await);
    let kept_token = int(&field(&run(&mut c, &["BL.RETRIEVE", "tasks", "WHERE", "n", "=", "2", "LOCK", "600000"]).await, "token"));
    let brief = text(&run(&mut c, &["BL.PUBLISH", "tasks", r#"{"n":3}"#]).await);
    let brief_token = int(&field(&run(&mut c, &["BL.RETRIEVE", "tasks", "WHERE", "n", "=", "3", "LOCK", "1000"]).await, "token"));
    let aging = text(&run(&mut c, &["BL.PUBLISH", "tasks", r#"{"n":4}"#, "TTL", "600000"]).await);
    run(&mut c, &["BL.CONFIG", "dlq", "MAXLEASES", "1"]).await;
    let buried = text(&run(&mut c, &["BL.PUBLISH", "dlq", r#"{"n":5}"#]).await);
    let token = int(&field(&run(&mut c, &["BL.RETRIEVE", "dlq", "LOCK", "60000"]).await, "token"));
    run(&mut c, &["BL.RELEASE", "dlq", &buried, &token.to_string()]).await;
    // Mailbox messages (one with an idempotency key) and a mailbox's own bound.
    let one = int(&run(&mut c, &["MSG.SEND", "inbox", "t", "one", "IDEMPOTENCY", "k1"]).await);
    let two = int(&run(&mut c, &["MSG.SEND", "inbox", "t", "two"]).await);
    run(&mut c, &["MSG.SEND", "inbox", "", "plain"]).await;
    run(&mut c, &["MSG.CONFIG", "small", "MAXLEN", "2"]).await;
    // Semaphores: one held and released (the node forgets it), a lock held long, and one held briefly.
    let forgotten = cmd::<i64>(&mut c, &["SEM.ACQUIRE", "gone", "1"]).await.unwrap();
    run(&mut c, &["SEM.RELEASE", "gone", &forgotten.to_string()]).await;
    let lock = cmd::<i64>(&mut c, &["SEM.ACQUIRE", "lock", "1", "LEASE", "600000"]).await.unwrap();
    let short = cmd::<i64>(&mut c, &["SEM.ACQUIRE", "brief", "1", "LEASE", "1000"]).await.unwrap();
    drop(c);
    node.stop().await;

    let (ok, printed) = migrate(&dir, &redis.url());
    assert!(ok, "{printed}");
    // The leases that were short may have ended on the node already: only the rest is certain.
    for part in ["7 jobs (", "5 bulletin items (", " leased, 1 dead), 3 mailbox messages, "] {
        assert!(printed.contains(part), "{part}: {printed}");
    }
    let (ok, again) = migrate(&dir, &redis.url());
    assert!(ok && again == printed, "{again}");

    let node = redis.node().await;
    let mut c = node.conn().await;
    // The worker holding a job carries on with its token, and its progress and chunks are there.
    let status = run(&mut c, &["JOB.STATUS", &held]).await;
    assert_eq!((text(&field(&status, "state")), text(&field(&status, "progress"))), ("streaming".into(), "50%".into()));
    run(&mut c, &["JOB.COMPLETE", &held, &held_token, "after the move"]).await;
    assert_eq!(text(&run(&mut c, &["JOB.RESULT", &held]).await), "after the move");
    // A finished job's result and chunks, by the same id.
    assert_eq!(text(&run(&mut c, &["JOB.RESULT", &done]).await), "the result");
    let read = run(&mut c, &["JOB.READ", &done, "FROM", "0"]).await;
    let Value::Array(entries) = field(&read, "entries") else { panic!("{read:?}") };
    assert_eq!(entries.len(), 2, "{read:?}");
    assert_eq!(int(&field(&read, "closed")), 1, "{read:?}");
    // The queued job is claimed first, then a new one; tokens continue beyond the node's.
    let old_tokens = [held_token.parse().unwrap(), lost_token, done_token.parse().unwrap(), dead_token];
    let (id, attempt, token) = claim(&mut c, &["JOB.CLAIM", "ready"]).await.unwrap();
    assert_eq!((id, attempt), (queued.clone(), 1));
    assert!(old_tokens.iter().all(|&t| token > t), "{token} {old_tokens:?}");
    let fresh = text(&run(&mut c, &["JOB.SUBMIT", "ready", "new"]).await);
    assert!(![&queued, &later, &held, &lost, &done, &dead, &waiting].contains(&&fresh), "{fresh}");
    assert_eq!(claim(&mut c, &["JOB.CLAIM", "ready"]).await.map(|(id, _, _)| id), Some(fresh));
    // The job whose lease ran out comes back with its attempt counted (a blocked claim is woken by the
    // sweep, within a generous deadline); its old token is refused. The delayed job comes at its time.
    let again = claim(&mut c, &["JOB.CLAIM", "lost", "BLOCK", "30000"]).await;
    assert_eq!(again.map(|(id, attempt, _)| (id, attempt)), Some((lost.clone(), 2)));
    let stale = cmd::<Value>(&mut c, &["JOB.COMPLETE", &lost, &lost_token.to_string(), "late"]).await.unwrap_err();
    assert_eq!(stale.code(), Some("LEASE"), "{stale}");
    assert_eq!(claim(&mut c, &["JOB.CLAIM", "later", "BLOCK", "30000"]).await.map(|(id, _, _)| id), Some(later));
    // Dead letters, and the paused queue's setting.
    assert_eq!(cmd::<Vec<String>>(&mut c, &["JOB.DEAD", "dl"]).await.unwrap(), std::slice::from_ref(&dead));
    run(&mut c, &["JOB.RETRY", &dead]).await;
    assert_eq!(claim(&mut c, &["JOB.CLAIM", "dl"]).await.map(|(id, attempt, _)| (id, attempt)), Some((dead, 1)));
    assert_eq!(claim(&mut c, &["JOB.CLAIM", "paused"]).await, None);
    run(&mut c, &["JOB.QUEUE", "paused", "RESUME"]).await;
    assert_eq!(claim(&mut c, &["JOB.CLAIM", "paused"]).await.map(|(id, _, _)| id), Some(waiting));

    // Items: the free one first, its lease's token beyond the node's; the long lease's holder acks.
    let got = run(&mut c, &["BL.RETRIEVE", "tasks", "LOCK", "60000"]).await;
    assert_eq!(text(&field(&got, "id")), free);
    assert!(int(&field(&got, "token")) > kept_token.max(brief_token), "{got:?}");
    assert_eq!(int(&run(&mut c, &["BL.REMOVE", "tasks", &kept, &kept_token.to_string()]).await), 1);
    let back = run(&mut c, &["BL.RETRIEVE", "tasks", "WHERE", "n", "=", "3", "BLOCK", "30000"]).await;
    assert_eq!((text(&field(&back, "id")), int(&field(&back, "failed_leases"))), (brief.clone(), 1), "{back:?}");
    let dead_items = run(&mut c, &["BL.DEAD", "dlq"]).await;
    let Value::Array(dead_items) = dead_items else { panic!("{dead_items:?}") };
    assert_eq!(dead_items.iter().map(|i| text(&field(i, "id"))).collect::<Vec<_>>(), [buried]);
    let newest = text(&run(&mut c, &["BL.PUBLISH", "tasks", r#"{"n":6}"#]).await);
    let Value::Array(all) = run(&mut c, &["BL.ALL", "tasks"]).await else { panic!() };
    let order: Vec<String> = all.iter().map(|i| text(&field(i, "id"))).collect();
    assert_eq!(order, [free, brief, aging, newest]);

    // Messages in order, the idempotency key remembered, ids beyond the node's, the bound kept.
    assert_eq!(int(&run(&mut c, &["MSG.SEND", "inbox", "t", "one", "IDEMPOTENCY", "k1"]).await), one);
    assert_eq!(int(&run(&mut c, &["MSG.LEN", "inbox"]).await), 3);
    assert!(int(&run(&mut c, &["MSG.SEND", "inbox", "t", "three"]).await) > two);
    for (topic, payload) in [("t", "one"), ("t", "two"), ("t", "three"), ("", "plain")] {
        assert_eq!(text(&run(&mut c, &["MSG.RECV", "inbox", topic]).await), payload);
    }
    for _ in 0..2 {
        run(&mut c, &["MSG.SEND", "small", "", "x"]).await;
    }
    let full = cmd::<i64>(&mut c, &["MSG.SEND", "small", "", "x"]).await.unwrap_err();
    assert_eq!(full.code(), Some("FULL"), "{full}");

    // The lock's holder still holds it and releases it; the next holder's token is beyond the node's.
    assert_eq!(cmd::<Option<i64>>(&mut c, &["SEM.ACQUIRE", "lock", "1"]).await.unwrap(), None);
    run(&mut c, &["SEM.RELEASE", "lock", &lock.to_string()]).await;
    let next = cmd::<i64>(&mut c, &["SEM.ACQUIRE", "lock", "1"]).await.unwrap();
    assert!(next > lock.max(short), "{next}");
    let after = cmd::<i64>(&mut c, &["SEM.ACQUIRE", "brief", "1", "BLOCK", "30000"]).await.unwrap();
    assert!(after > short, "{after}");
    // A semaphore the node had forgotten still hands out tokens beyond its old ones.
    let again = cmd::<i64>(&mut c, &["SEM.ACQUIRE", "gone", "1"]).await.unwrap();
    assert!(again > forgotten.max(lock).max(short), "{again}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_written_without_a_loadable_directory() {
    let redis = RedisServer::start("migrate-refused").await;
    // Without a data directory there is nothing to move.
    let out = Command::new(env!("CARGO_BIN_EXE_herald")).args(["--migrate-to", &redis.url()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--migrate-to needs --data-dir"));
    // A directory that is not a Herald data directory is refused, not read as an empty one.
    let empty = data_dir("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, printed) = migrate(&empty, &redis.url());
    assert!(!ok && printed.contains("holds no Herald data directory"), "{printed}");
    assert_eq!(cmd::<i64>(&mut redis.conn().await, &["DBSIZE"]).await.unwrap(), 0);
    let _ = std::fs::remove_dir_all(&empty);
}
