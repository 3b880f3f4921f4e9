//! Moving from one node to several (docs/scale-out.md): an embedded node's data directory written into
//! a real redis-server by `herald --data-dir DIR --migrate-to URL`, then served by a node on the Redis
//! engine: Redis's own types with their deadlines, every database, the blackboard with its revisions,
//! Herald streams with their offsets and epochs, schemas and Lua libraries. A directory holding work in
//! flight (a job) is refused with nothing written.

mod common;

use std::process::Command;

use common::redis_server::RedisServer;
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
    assert!(printed.contains("moved 8 keys, 2 blackboard scopes (5 entries), 2 streams (4 entries), 1 schemas, 1 libraries"), "{printed}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_in_flight_is_refused_and_nothing_is_written() {
    let dir = data_dir("inflight");
    let node = start_with(embedded(&dir)).await;
    let mut c = node.conn().await;
    let _: () = cmd(&mut c, &["SET", "plain", "v"]).await.unwrap();
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "q", "work"]).await.unwrap();
    drop(c);
    node.stop().await;
    let redis = RedisServer::start("migrate-refused").await;
    let (ok, printed) = migrate(&dir, &redis.url());
    assert!(!ok, "{printed}");
    assert!(printed.contains("work in flight (1 jobs)"), "{printed}");
    assert_eq!(cmd::<i64>(&mut redis.conn().await, &["DBSIZE"]).await.unwrap(), 0);
    // Without a data directory there is nothing to move.
    let out = Command::new(env!("CARGO_BIN_EXE_herald")).args(["--migrate-to", &redis.url()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--migrate-to needs --data-dir"));
    // A directory that is not a Herald data directory is refused, not read as an empty one.
    let empty = data_dir("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, printed) = migrate(&empty, &redis.url());
    assert!(!ok && printed.contains("holds no Herald data directory"), "{printed}");
    let _ = std::fs::remove_dir_all(&empty);
    let _ = std::fs::remove_dir_all(&dir);
}
