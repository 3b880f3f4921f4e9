//! Generic key commands and expiry through a real client.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{cmd, start};
use futures_util::StreamExt;
use redis::AsyncCommands;

#[tokio::test]
async fn scan_returns_every_key_of_a_large_database() {
    let server = start().await;
    let mut c = server.conn().await;
    let mut pipe = redis::pipe();
    for i in 0..10_000 {
        pipe.cmd("SET").arg(format!("key:{i}")).arg(i).ignore();
    }
    let _: () = pipe.query_async(&mut c).await.unwrap();
    let mut seen = HashSet::new();
    let mut iter: redis::AsyncIter<String> = c.scan_match("key:*").await.unwrap();
    while let Some(key) = iter.next_item().await {
        seen.insert(key.unwrap());
    }
    drop(iter);
    assert_eq!(seen.len(), 10_000);
    let page: (String, Vec<String>) =
        redis::cmd("SCAN").arg(0).arg("COUNT").arg(5000).arg("TYPE").arg("list").query_async(&mut c).await.unwrap();
    assert!(page.1.is_empty(), "no list keys exist");
    assert_eq!(cmd::<i64>(&mut c, &["DBSIZE"]).await.unwrap(), 10_000);
}

#[tokio::test]
async fn keys_patterns_rename_copy_move() {
    let server = start().await;
    let mut c = server.conn().await;
    for k in ["hello", "hallo", "hxllo", "hllo", "heeeello", "h*llo"] {
        let _: () = cmd(&mut c, &["SET", k, "1"]).await.unwrap();
    }
    let mut keys: Vec<String> = cmd(&mut c, &["KEYS", "h?llo"]).await.unwrap();
    keys.sort();
    assert_eq!(keys, ["h*llo", "hallo", "hello", "hxllo"]);
    let mut keys: Vec<String> = cmd(&mut c, &["KEYS", "h[ae]llo"]).await.unwrap();
    keys.sort();
    assert_eq!(keys, ["hallo", "hello"]);
    let keys: Vec<String> = cmd(&mut c, &["KEYS", r"h\*llo"]).await.unwrap();
    assert_eq!(keys, ["h*llo"]);
    let mut keys: Vec<String> = cmd(&mut c, &["KEYS", "h[^e]llo"]).await.unwrap();
    keys.sort();
    assert_eq!(keys, ["h*llo", "hallo", "hxllo"]);

    let _: () = cmd(&mut c, &["SET", "src", "v", "EX", "100"]).await.unwrap();
    let _: () = cmd(&mut c, &["RENAME", "src", "dst"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["TTL", "dst"]).await.unwrap(), 100, "RENAME keeps the TTL");
    assert_eq!(cmd::<i64>(&mut c, &["COPY", "dst", "dst2", "DB", "3"]).await.unwrap(), 1);
    assert_eq!(cmd::<i64>(&mut c, &["MOVE", "dst", "3"]).await.unwrap(), 1);
    let _: () = cmd(&mut c, &["SELECT", "3"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["EXISTS", "dst", "dst2"]).await.unwrap(), 2);
    let err = cmd::<()>(&mut c, &["RENAME", "nope", "x"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("no such key"));
}

#[tokio::test]
async fn expire_family_and_ttl() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["SET", "k", "v"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["TTL", "k"]).await.unwrap(), -1);
    assert_eq!(cmd::<i64>(&mut c, &["TTL", "missing"]).await.unwrap(), -2);
    assert_eq!(cmd::<i64>(&mut c, &["EXPIRE", "k", "100", "GT"]).await.unwrap(), 0, "GT never applies to a key without TTL");
    assert_eq!(cmd::<i64>(&mut c, &["EXPIRE", "k", "100", "NX"]).await.unwrap(), 1);
    assert_eq!(cmd::<i64>(&mut c, &["EXPIRE", "k", "50", "LT"]).await.unwrap(), 1);
    assert_eq!(cmd::<i64>(&mut c, &["TTL", "k"]).await.unwrap(), 50);
    let at: i64 = cmd(&mut c, &["EXPIRETIME", "k"]).await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((at - now - 50).abs() <= 2, "EXPIRETIME is an absolute unix time");
    assert_eq!(cmd::<i64>(&mut c, &["PERSIST", "k"]).await.unwrap(), 1);
    assert_eq!(cmd::<i64>(&mut c, &["TTL", "k"]).await.unwrap(), -1);
    assert_eq!(cmd::<i64>(&mut c, &["EXPIRE", "k", "-1"]).await.unwrap(), 1, "a past deadline deletes");
    assert_eq!(cmd::<i64>(&mut c, &["EXISTS", "k"]).await.unwrap(), 0);
}

/// Active expiry: the key disappears and `expired` is published without anyone reading the key.
#[tokio::test]
async fn keys_expire_on_time_without_being_read() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Ex"]).await.unwrap();
    let mut events = server.client().get_async_pubsub().await.unwrap();
    events.subscribe("__keyevent@0__:expired").await.unwrap();
    for i in 0..100 {
        let _: () = cmd(&mut c, &["SET", &format!("temp:{i}"), "v", "PX", "30"]).await.unwrap();
    }
    let _: () = cmd(&mut c, &["SET", "keeper", "v"]).await.unwrap();
    let mut stream = events.on_message();
    let mut expired = HashSet::new();
    while expired.len() < 100 {
        let msg = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("expired events").unwrap();
        expired.insert(msg.get_payload::<String>().unwrap());
    }
    assert!(expired.contains("temp:0") && expired.contains("temp:99"));
    assert_eq!(cmd::<i64>(&mut c, &["DBSIZE"]).await.unwrap(), 1, "expired keys are gone from the table");
    let info: String = cmd(&mut c, &["INFO", "stats"]).await.unwrap();
    assert!(info.contains("expired_keys:100"), "{info}");
}

#[tokio::test]
async fn watch_is_invalidated_by_expiry() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["SET", "w", "v", "PX", "20"]).await.unwrap();
    let _: () = cmd(&mut c, &["WATCH", "w"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let _: () = cmd(&mut c, &["MULTI"]).await.unwrap();
    let _: () = cmd(&mut c, &["SET", "w", "new"]).await.unwrap();
    let result: redis::Value = cmd(&mut c, &["EXEC"]).await.unwrap();
    assert_eq!(result, redis::Value::Nil, "EXEC aborts: the watched key expired");
}

#[tokio::test]
async fn object_and_type() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["SET", "i", "12345"]).await.unwrap();
    let _: () = cmd(&mut c, &["SET", "s", "short"]).await.unwrap();
    let _: () = cmd(&mut c, &["SET", "r", &"x".repeat(100)]).await.unwrap();
    assert_eq!(cmd::<String>(&mut c, &["OBJECT", "ENCODING", "i"]).await.unwrap(), "int");
    assert_eq!(cmd::<String>(&mut c, &["OBJECT", "ENCODING", "s"]).await.unwrap(), "embstr");
    assert_eq!(cmd::<String>(&mut c, &["OBJECT", "ENCODING", "r"]).await.unwrap(), "raw");
    assert_eq!(cmd::<i64>(&mut c, &["OBJECT", "IDLETIME", "i"]).await.unwrap(), 0);
    assert_eq!(cmd::<String>(&mut c, &["TYPE", "i"]).await.unwrap(), "string");
    assert_eq!(cmd::<String>(&mut c, &["TYPE", "nothing"]).await.unwrap(), "none");
}
