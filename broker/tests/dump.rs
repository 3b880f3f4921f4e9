//! DUMP and RESTORE through a real client: every type round-trips with its encoding, RESTORE's
//! options and errors, its notification, WATCH, and a restart with persistence on. Payloads exchanged
//! with a live redis-server are checked by tests/compat/dump_cross.py.

mod common;

use std::time::Duration;

use common::{cmd, start};
use futures_util::StreamExt;
use redis::{AsyncCommands, Value};

async fn dump(c: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<u8> {
    redis::cmd("DUMP").arg(key).query_async(c).await.unwrap()
}

async fn restore(
    c: &mut redis::aio::MultiplexedConnection,
    key: &str,
    ttl: i64,
    payload: &[u8],
    opts: &[&str],
) -> redis::RedisResult<Value> {
    redis::cmd("RESTORE").arg(key).arg(ttl).arg(payload).arg(opts).query_async(c).await
}

#[tokio::test]
async fn every_type_round_trips() {
    let server = start().await;
    let mut c = server.conn().await;
    let big: Vec<String> = (0..700).map(|i| format!("m{i}")).collect();
    for args in [
        vec!["SET", "str", "hello"],
        vec!["RPUSH", "list", "a", "1", "b"],
        vec!["SADD", "ints", "3", "1"],
        vec!["HSET", "hash", "f", "v"],
        vec!["ZADD", "zset", "1.5", "a", "-2", "b"],
    ] {
        let _: Value = cmd(&mut c, &args).await.unwrap();
    }
    let mut sadd = vec!["SADD", "bigset"];
    sadd.extend(big.iter().map(String::as_str));
    let _: i64 = cmd(&mut c, &sadd).await.unwrap();
    for key in ["str", "list", "ints", "hash", "zset", "bigset"] {
        let payload = dump(&mut c, key).await;
        let copy = format!("{key}:copy");
        assert_eq!(restore(&mut c, &copy, 0, &payload, &[]).await.unwrap(), Value::Okay);
        if key == "bigset" {
            // A table's order depends on its history: compare the members.
            let mut a: Vec<String> = c.smembers(key).await.unwrap();
            let mut b: Vec<String> = c.smembers(&copy).await.unwrap();
            a.sort();
            b.sort();
            assert_eq!(a, b);
        } else {
            assert_eq!(dump(&mut c, &copy).await, payload, "{key}");
        }
        let enc: String = cmd(&mut c, &["OBJECT", "ENCODING", key]).await.unwrap();
        assert_eq!(cmd::<String>(&mut c, &["OBJECT", "ENCODING", &copy]).await.unwrap(), enc, "{key}");
    }
    assert_eq!(c.zscore::<_, _, f64>("zset:copy", "a").await.unwrap(), 1.5);
    assert_eq!(cmd::<Option<Vec<u8>>>(&mut c, &["DUMP", "nokey"]).await.unwrap(), None);
}

#[tokio::test]
async fn restore_options_and_errors() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = c.set("k", "v").await.unwrap();
    let payload = dump(&mut c, "k").await;
    let err = restore(&mut c, "k", 0, &payload, &[]).await.unwrap_err();
    assert_eq!(err.code(), Some("BUSYKEY"));
    assert_eq!(restore(&mut c, "k", 100_000, &payload, &["REPLACE"]).await.unwrap(), Value::Okay);
    let ttl: i64 = c.pttl("k").await.unwrap();
    assert!(ttl > 90_000 && ttl <= 100_000, "{ttl}");
    assert_eq!(restore(&mut c, "abs", 4_000_000_000_000, &payload, &["ABSTTL", "IDLETIME", "1000"]).await.unwrap(), Value::Okay);
    assert_eq!(cmd::<i64>(&mut c, &["PEXPIRETIME", "abs"]).await.unwrap(), 4_000_000_000_000);
    assert!(cmd::<i64>(&mut c, &["OBJECT", "IDLETIME", "abs"]).await.unwrap() >= 1000);
    assert_eq!(restore(&mut c, "k", 1, &payload, &["REPLACE", "ABSTTL"]).await.unwrap(), Value::Okay, "a deadline already past");
    assert!(!c.exists::<_, bool>("k").await.unwrap(), "deletes a replaced key and stores nothing");
    let mut bad = payload.clone();
    bad[2] ^= 0xff;
    assert_eq!(restore(&mut c, "x", 0, &bad, &[]).await.unwrap_err().detail(), Some("DUMP payload version or checksum are wrong"));
    let err = restore(&mut c, "x", -1, &payload, &[]).await.unwrap_err();
    assert_eq!(err.detail(), Some("Invalid TTL value, must be >= 0"));
}

#[tokio::test]
async fn streams_round_trip_with_their_groups() {
    let server = start().await;
    let mut c = server.conn().await;
    for i in 1..=150 {
        let _: String = cmd(&mut c, &["XADD", "s", &format!("{i}-0"), "f", &format!("v{i}")]).await.unwrap();
    }
    let _: i64 = cmd(&mut c, &["XDEL", "s", "7-0"]).await.unwrap();
    let _: () = cmd(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]).await.unwrap();
    let _: Value = cmd(&mut c, &["XREADGROUP", "GROUP", "g", "alice", "COUNT", "3", "STREAMS", "s", ">"]).await.unwrap();
    let payload: Vec<u8> = cmd(&mut c, &["DUMP", "s"]).await.unwrap();
    assert_eq!(restore(&mut c, "copy", 0, &payload, &[]).await.unwrap(), Value::Okay);
    for probe in [&["XRANGE", "{}", "-", "+"][..], &["XINFO", "STREAM", "{}", "FULL"], &["XPENDING", "{}", "g"]] {
        let read = |key: &str| probe.iter().map(|a| if *a == "{}" { key.to_string() } else { a.to_string() }).collect::<Vec<_>>();
        let (a, b) = (read("s"), read("copy"));
        let original: Value = cmd(&mut c, &a.iter().map(String::as_str).collect::<Vec<_>>()).await.unwrap();
        let copy: Value = cmd(&mut c, &b.iter().map(String::as_str).collect::<Vec<_>>()).await.unwrap();
        assert_eq!(original, copy, "{probe:?}");
    }
}

#[tokio::test]
async fn restore_notifies_and_dirties_watch() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]).await.unwrap();
    let _: () = c.rpush("src", "x").await.unwrap();
    let payload = dump(&mut c, "src").await;
    let mut sub = server.client().get_async_pubsub().await.unwrap();
    sub.psubscribe("__keyevent@0__:*").await.unwrap();
    let mut watcher = server.conn().await;
    let _: () = cmd(&mut watcher, &["WATCH", "dst"]).await.unwrap();
    assert_eq!(restore(&mut c, "dst", 0, &payload, &[]).await.unwrap(), Value::Okay);
    let _: () = cmd(&mut watcher, &["MULTI"]).await.unwrap();
    let _: () = cmd(&mut watcher, &["LLEN", "dst"]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut watcher, &["EXEC"]).await.unwrap(), Value::Nil);
    let mut stream = sub.on_message();
    let m = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap();
    assert_eq!((m.get_channel_name(), m.get_payload::<String>().unwrap()), ("__keyevent@0__:restore", "dst".to_owned()));
}

#[tokio::test]
async fn restored_keys_survive_a_restart() {
    let dir = common::data_dir("dump");
    let server = common::start_persistent(&dir).await;
    let mut c = server.conn().await;
    let _: () = c.hset_multiple("h", &[("a", "1"), ("b", "2")]).await.unwrap();
    let payload = dump(&mut c, "h").await;
    assert_eq!(restore(&mut c, "copy", 500_000, &payload, &[]).await.unwrap(), Value::Okay);
    server.stop().await;

    let server = common::start_persistent(&dir).await;
    let mut c = server.conn().await;
    let h: Vec<String> = cmd(&mut c, &["HGETALL", "copy"]).await.unwrap();
    assert_eq!(h, ["a", "1", "b", "2"]);
    assert!(c.ttl::<_, i64>("copy").await.unwrap() > 400);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
