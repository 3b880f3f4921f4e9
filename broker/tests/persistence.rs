//! Persistence through a real client: every domain survives a restart (and a compaction in between),
//! deadlines are wall-clock across the restart, and the commands and INFO fields of persistence answer
//! as Redis's do. Crashes (SIGKILL at random moments, torn tails, corruption, a full disk) are tested
//! end to end by tests/durability/crash.py.

mod common;

use std::time::Duration;

use common::{cmd, start_with};
use herald_broker::Config;
use redis::Value;

fn config(dir: &std::path::Path, policy: &str) -> Config {
    let mut config = Config::for_tests();
    config.persistence.data_dir = dir.display().to_string();
    config.persistence.appendfsync = policy.into();
    config
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("herald-persist-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A map reply's field.
fn field(v: &Value, name: &str) -> Value {
    let Value::Array(items) = v else { panic!("not a map reply: {v:?}") };
    items
        .chunks(2)
        .find(|kv| matches!(&kv[0], Value::BulkString(k) if k == name.as_bytes()))
        .map(|kv| kv[1].clone())
        .unwrap_or_else(|| panic!("no field {name} in {v:?}"))
}

#[tokio::test]
async fn every_domain_survives_a_restart_and_a_compaction() {
    let dir = temp_dir("domains");
    let server = start_with(config(&dir, "always")).await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["SET", "greeting", "hello", "EX", "600"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["RPUSH", "list", "a", "b", "c"]).await.unwrap();
    let _: Value = cmd(&mut c, &["LPOP", "list"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["BB.SET", "team", "plan", "v1"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["BB.SET", "team", "plan", "v2"]).await.unwrap();
    let job: String = cmd(&mut c, &["JOB.SUBMIT", "render", "page-3", "ID", "job-1"]).await.unwrap();
    let claimed: Value = cmd(&mut c, &["JOB.CLAIM", "render"]).await.unwrap();
    let token = match field(&claimed, "token") {
        Value::Int(t) => t.to_string(),
        other => panic!("token {other:?}"),
    };
    let _: i64 = cmd(&mut c, &["JOB.CHUNK", &job, &token, "part-1"]).await.unwrap();
    // Compact in the middle: what follows goes to the new log, what came before to the snapshot.
    let started: String = cmd(&mut c, &["BGREWRITEAOF"]).await.unwrap();
    assert_eq!(started, "Background append only file rewriting started");
    let _: () = cmd(&mut c, &["JOB.COMPLETE", &job, &token, "done!"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["MSG.SEND", "wf", "approval", "yes"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["MSG.SEND", "wf", "approval", "later"]).await.unwrap();
    let first: String = cmd(&mut c, &["MSG.RECV", "wf", "approval"]).await.unwrap();
    assert_eq!(first, "yes");
    let _: i64 = cmd(&mut c, &["STREAM.WRITE", "tokens", "hel"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["STREAM.WRITE", "tokens", "lo"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["STREAM.CLOSE", "tokens"]).await.unwrap();
    let item: String = cmd(&mut c, &["BL.PUBLISH", "tasks", r#"{"kind":"report"}"#]).await.unwrap();
    let epoch = field(&cmd::<Value>(&mut c, &["STREAM.INFO", "tokens"]).await.unwrap(), "epoch");
    common::eventually(|| server.broker.persist.as_ref().is_some_and(|p| !p.rewrite_in_progress())).await;
    server.stop().await;

    let server = start_with(config(&dir, "always")).await;
    let mut c = server.conn().await;
    let greeting: String = cmd(&mut c, &["GET", "greeting"]).await.unwrap();
    assert_eq!(greeting, "hello");
    let ttl: i64 = cmd(&mut c, &["TTL", "greeting"]).await.unwrap();
    assert!((590..=600).contains(&ttl), "the deadline is absolute: {ttl}");
    let list: Vec<String> = cmd(&mut c, &["LRANGE", "list", "0", "-1"]).await.unwrap();
    assert_eq!(list, ["b", "c"]);
    let plan: Value = cmd(&mut c, &["BB.GET", "team", "plan"]).await.unwrap();
    assert_eq!(field(&plan, "value"), Value::BulkString(b"v2".to_vec()));
    assert_eq!(field(&plan, "revision"), Value::Int(2), "revisions continue");
    let result: String = cmd(&mut c, &["JOB.RESULT", &job]).await.unwrap();
    assert_eq!(result, "done!");
    let read: Value = cmd(&mut c, &["JOB.READ", &job]).await.unwrap();
    assert_eq!(field(&read, "closed"), Value::Int(1));
    let left: String = cmd(&mut c, &["MSG.RECV", "wf", "approval"]).await.unwrap();
    assert_eq!(left, "later", "a received message stays received");
    let tokens: Value = cmd(&mut c, &["STREAM.READ", "tokens"]).await.unwrap();
    assert_eq!(field(&tokens, "closed"), Value::Int(1));
    assert_eq!(field(&tokens, "epoch"), epoch, "a reader's epoch still matches");
    let got: Value = cmd(&mut c, &["BL.GET", "tasks", &item]).await.unwrap();
    assert_eq!(field(&got, "item"), Value::BulkString(br#"{"kind":"report"}"#.to_vec()));
    // Journal positions continue: a watcher resuming from before the restart is told what it lost.
    let changes: Value = cmd(&mut c, &["BB.CHANGES", "team", "SINCE", "0"]).await.unwrap();
    assert_eq!(field(&changes, "seq"), Value::Int(2));
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_lease_that_ran_out_while_down_returns_the_job_and_the_item() {
    let dir = temp_dir("leases");
    let server = start_with(config(&dir, "everysec")).await;
    let mut c = server.conn().await;
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "q", "work", "ID", "j"]).await.unwrap();
    let claimed: Value = cmd(&mut c, &["JOB.CLAIM", "q", "LEASE", "100"]).await.unwrap();
    let old_token = field(&claimed, "token");
    let _: String = cmd(&mut c, &["BL.PUBLISH", "b", r#"{"x":1}"#]).await.unwrap();
    let locked: Value = cmd(&mut c, &["BL.RETRIEVE", "b", "LOCK", "100"]).await.unwrap();
    let _: String = cmd(&mut c, &["SET", "short", "lived", "PX", "100"]).await.unwrap();
    server.stop().await;
    tokio::time::sleep(Duration::from_millis(250)).await;

    let server = start_with(config(&dir, "everysec")).await;
    let mut c = server.conn().await;
    let gone: Option<String> = cmd(&mut c, &["GET", "short"]).await.unwrap();
    assert_eq!(gone, None, "a key that expired while the broker was down is gone");
    let again: Value = cmd(&mut c, &["JOB.CLAIM", "q", "BLOCK", "5000"]).await.unwrap();
    assert_eq!(field(&again, "id"), Value::BulkString(b"j".to_vec()), "the job came back to its queue");
    assert_eq!(field(&again, "attempt"), Value::Int(2));
    let (Value::Int(old), Value::Int(new)) = (old_token, field(&again, "token")) else { panic!("tokens") };
    assert!(new > old, "fencing tokens never go backwards: {old} then {new}");
    let stale = cmd::<Value>(&mut c, &["JOB.COMPLETE", "j", &old.to_string(), "late"]).await;
    assert!(stale.unwrap_err().to_string().contains("LEASE"), "the old lease is refused");
    let item: Value = cmd(&mut c, &["BL.RETRIEVE", "b", "LOCK", "1000", "BLOCK", "5000"]).await.unwrap();
    assert_eq!(field(&item, "id"), field(&locked, "id"), "the item came back to its board");
    assert_eq!(field(&item, "failed_leases"), Value::Int(1));
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn persistence_commands_config_and_info() {
    let dir = temp_dir("commands");
    let server = start_with(config(&dir, "everysec")).await;
    let mut c = server.conn().await;
    let info: String = cmd(&mut c, &["INFO", "persistence"]).await.unwrap();
    for field in ["aof_enabled:1", "aof_last_write_status:ok", "rdb_bgsave_in_progress:0", "herald_appendfsync:everysec"] {
        assert!(info.contains(field), "{field} in {info}");
    }
    let policy: Vec<String> = cmd(&mut c, &["CONFIG", "GET", "appendfsync"]).await.unwrap();
    assert_eq!(policy, ["appendfsync", "everysec"]);
    let _: () = cmd(&mut c, &["CONFIG", "SET", "appendfsync", "always"]).await.unwrap();
    let policy: Vec<String> = cmd(&mut c, &["CONFIG", "GET", "appendfsync"]).await.unwrap();
    assert_eq!(policy, ["appendfsync", "always"]);
    let bad = cmd::<()>(&mut c, &["CONFIG", "SET", "appendfsync", "sometimes"]).await.unwrap_err();
    assert!(bad.to_string().contains("always, everysec, no"), "{bad}");
    let appendonly: Vec<String> = cmd(&mut c, &["CONFIG", "GET", "appendonly"]).await.unwrap();
    assert_eq!(appendonly, ["appendonly", "yes"]);
    let _: () = cmd(&mut c, &["SET", "k", "v"]).await.unwrap();
    let before: i64 = cmd(&mut c, &["LASTSAVE"]).await.unwrap();
    let _: () = cmd(&mut c, &["SAVE"]).await.unwrap();
    let after: i64 = cmd(&mut c, &["LASTSAVE"]).await.unwrap();
    assert!(after >= before);
    let info: String = cmd(&mut c, &["INFO", "persistence"]).await.unwrap();
    assert!(info.contains("rdb_changes_since_last_save:0"), "{info}");
    assert!(info.contains("aof_rewrites:1"), "{info}");
    let arity = cmd::<()>(&mut c, &["SAVE", "now"]).await.unwrap_err();
    assert!(arity.to_string().contains("wrong number of arguments"), "{arity}");
    server.stop().await;

    let off = common::start().await;
    let mut c = off.conn().await;
    let refused = cmd::<()>(&mut c, &["BGSAVE"]).await.unwrap_err();
    assert!(refused.to_string().contains("persistence is off"), "{refused}");
    let info: String = cmd(&mut c, &["INFO", "persistence"]).await.unwrap();
    assert!(info.contains("aof_enabled:0"), "{info}");
    off.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn shutdown_save_leaves_one_snapshot_and_an_empty_log() {
    let dir = temp_dir("shutdown");
    let server = start_with(config(&dir, "no")).await;
    let mut c = server.conn().await;
    for i in 0..100 {
        let _: () = cmd(&mut c, &["SET", &format!("key:{i}"), "value"]).await.unwrap();
    }
    let gone = cmd::<()>(&mut c, &["SHUTDOWN", "SAVE"]).await;
    assert!(gone.is_err(), "SHUTDOWN answers nothing: the connection closes");
    server.stop().await;
    let manifest = std::fs::read_to_string(dir.join("MANIFEST")).unwrap();
    assert!(manifest.contains("snapshot snapshot-2.hsnap"), "{manifest}");

    let server = start_with(config(&dir, "no")).await;
    let mut c = server.conn().await;
    let size: i64 = cmd(&mut c, &["DBSIZE"]).await.unwrap();
    assert_eq!(size, 100);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn redis_streams_survive_a_restart_node_for_node() {
    let dir = temp_dir("xstreams");
    let server = start_with(config(&dir, "always")).await;
    let mut c = server.conn().await;
    for i in 1..=260 {
        let _: String = cmd(&mut c, &["XADD", "s", "MAXLEN", "~", "200", &format!("{i}-1"), "f", &format!("v{i}")]).await.unwrap();
    }
    let _: i64 = cmd(&mut c, &["XDEL", "s", "150-1", "151-1", "260-1"]).await.unwrap();
    let _: () = cmd(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]).await.unwrap();
    let _: Value = cmd(&mut c, &["XREADGROUP", "GROUP", "g", "alice", "COUNT", "20", "STREAMS", "s", ">"]).await.unwrap();
    let started: String = cmd(&mut c, &["BGREWRITEAOF"]).await.unwrap();
    assert_eq!(started, "Background append only file rewriting started");
    let _: Value = cmd(&mut c, &["XREADGROUP", "GROUP", "g", "bob", "COUNT", "5", "STREAMS", "s", ">"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["XACK", "s", "g", "101-1", "102-1"]).await.unwrap();
    let _: Value = cmd(&mut c, &["XCLAIM", "s", "g", "carol", "0", "103-1", "121-1", "RETRYCOUNT", "5"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["XDEL", "s", "104-1"]).await.unwrap();
    let _: Value = cmd(&mut c, &["XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "3"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["XTRIM", "s", "MINID", "110-1"]).await.unwrap();
    let _: () = cmd(&mut c, &["XGROUP", "CREATE", "s", "late", "$", "ENTRIESREAD", "7"]).await.unwrap();
    let _: () = cmd(&mut c, &["XSETID", "s", "300-0", "ENTRIESADDED", "400"]).await.unwrap();
    let _: () = cmd(&mut c, &["XGROUP", "CREATE", "empty", "g", "$", "MKSTREAM"]).await.unwrap();
    let full = |c: &mut redis::aio::MultiplexedConnection| {
        let mut c = c.clone();
        async move { cmd::<Value>(&mut c, &["XINFO", "STREAM", "s", "FULL", "COUNT", "0"]).await.unwrap() }
    };
    let before = full(&mut c).await;
    common::eventually(|| server.broker.persist.as_ref().is_some_and(|p| !p.rewrite_in_progress())).await;
    server.stop().await;

    let server = start_with(config(&dir, "always")).await;
    let mut c = server.conn().await;
    // XINFO STREAM FULL shows it all: entries, the node layout (radix-tree figures), counters, each
    // group's position and read counter, every pending entry with its owner, delivery time and count.
    assert_eq!(full(&mut c).await, before);
    let kind: String = cmd(&mut c, &["TYPE", "empty"]).await.unwrap();
    assert_eq!(kind, "stream");
    let next: String = cmd(&mut c, &["XADD", "s", "300-*", "f", "v"]).await.unwrap();
    assert_eq!(next, "300-1", "the last ID carried over");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
