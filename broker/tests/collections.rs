//! Hashes, sets and sorted sets through a real client (the `redis` crate): typed replies in RESP2 and
//! RESP3, blocking pops proven blocked (INFO says so) before they are woken, FIFO among waiters,
//! WATCH, expiry, keyspace notifications and the encodings OBJECT ENCODING reports.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{blocked_clients, cmd, start, until_blocked};
use redis::{AsyncCommands, Value};

#[tokio::test]
async fn hashes_through_the_client() {
    let server = start().await;
    let mut c = server.conn().await;
    let added: i64 = cmd(&mut c, &["HSET", "user:1", "name", "ada", "lang", "rust"]).await.unwrap();
    assert_eq!(added, 2);
    let _: () = c.hset("user:1", "visits", 1).await.unwrap();
    assert_eq!(c.hincr::<_, _, _, i64>("user:1", "visits", 41).await.unwrap(), 42);
    assert_eq!(c.hincr::<_, _, _, f64>("user:1", "score", 1.5).await.unwrap(), 1.5);
    let all: HashMap<String, String> = c.hgetall("user:1").await.unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all["name"], "ada");
    let values: Vec<Option<String>> = redis::cmd("HMGET").arg("user:1").arg("lang").arg("nope").query_async(&mut c).await.unwrap();
    assert_eq!(values, [Some("rust".to_owned()), None]);
    assert!(c.hexists::<_, _, bool>("user:1", "lang").await.unwrap());
    assert_eq!(c.hdel::<_, _, i64>("user:1", &["name", "lang", "visits", "score"]).await.unwrap(), 4);
    assert!(!c.exists::<_, bool>("user:1").await.unwrap(), "the last field took the key with it");
    let _: () = c.set("s", "v").await.unwrap();
    let err = c.hget::<_, _, Value>("s", "f").await.unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"));
}

#[tokio::test]
async fn sets_through_the_client() {
    let server = start().await;
    let mut c = server.conn().await;
    assert_eq!(c.sadd::<_, _, i64>("a", &[1, 2, 3]).await.unwrap(), 3);
    assert_eq!(c.sadd::<_, _, i64>("b", &[2, 3, 4]).await.unwrap(), 3);
    let inter: HashSet<i64> = c.sinter(&["a", "b"]).await.unwrap();
    assert_eq!(inter, HashSet::from([2, 3]));
    let union: Vec<i64> = c.sunion(&["a", "b"]).await.unwrap();
    assert_eq!(union, [1, 2, 3, 4], "an intset answers in order");
    assert_eq!(c.sdiffstore::<_, _, i64>("d", &["a", "b"]).await.unwrap(), 1);
    assert!(c.sismember::<_, _, bool>("d", 1).await.unwrap());
    assert!(c.smove::<_, _, _, bool>("a", "d", 2).await.unwrap());
    let card: i64 = cmd(&mut c, &["SINTERCARD", "2", "a", "b", "LIMIT", "1"]).await.unwrap();
    assert_eq!(card, 1);
    let popped: Vec<String> = redis::cmd("SPOP").arg("d").arg(10).query_async(&mut c).await.unwrap();
    assert_eq!(popped, ["1", "2"]);
    assert!(!c.exists::<_, bool>("d").await.unwrap());
    let enc: String = cmd(&mut c, &["OBJECT", "ENCODING", "a"]).await.unwrap();
    assert_eq!(enc, "intset");
    let _: () = c.sadd("a", "word").await.unwrap();
    let enc: String = cmd(&mut c, &["OBJECT", "ENCODING", "a"]).await.unwrap();
    assert_eq!(enc, "hashtable");
}

#[tokio::test]
async fn sorted_sets_through_the_client() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = c.zadd_multiple("board", &[(10, "ann"), (20, "bob"), (15, "cid")]).await.unwrap();
    let top: Vec<(String, f64)> = c.zrevrange_withscores("board", 0, 1).await.unwrap();
    assert_eq!(top, [("bob".to_owned(), 20.0), ("cid".to_owned(), 15.0)]);
    assert_eq!(c.zincr::<_, _, _, f64>("board", "ann", 10.5).await.unwrap(), 20.5);
    assert_eq!(c.zrank::<_, _, Option<i64>>("board", "ann").await.unwrap(), Some(2));
    let by_score: Vec<String> = cmd(&mut c, &["ZRANGE", "board", "(15", "+inf", "BYSCORE"]).await.unwrap();
    assert_eq!(by_score, ["bob", "ann"]);
    let score: f64 = c.zscore("board", "cid").await.unwrap();
    assert_eq!(score, 15.0);
    let stored: i64 = cmd(&mut c, &["ZUNIONSTORE", "both", "2", "board", "board", "WEIGHTS", "1", "2"]).await.unwrap();
    assert_eq!(stored, 3);
    assert_eq!(c.zscore::<_, _, f64>("both", "bob").await.unwrap(), 60.0);
    let popped: Vec<(String, f64)> = c.zpopmin("board", 2).await.unwrap();
    assert_eq!(popped, [("cid".to_owned(), 15.0), ("bob".to_owned(), 20.0)]);
    // A large set: ranks and ranges stay right past the packed encoding.
    let members: Vec<(i64, String)> = (0..1000).map(|i| (i, format!("m{i:04}"))).collect();
    let _: () = c.zadd_multiple("big", &members).await.unwrap();
    let enc: String = cmd(&mut c, &["OBJECT", "ENCODING", "big"]).await.unwrap();
    assert_eq!(enc, "skiplist");
    assert_eq!(c.zrank::<_, _, Option<i64>>("big", "m0500").await.unwrap(), Some(500));
    let mid: Vec<String> = c.zrange("big", 998, -1).await.unwrap();
    assert_eq!(mid, ["m0998", "m0999"]);
    assert_eq!(c.zcount::<_, _, _, i64>("big", "(100", 199).await.unwrap(), 99);
}

#[tokio::test]
async fn resp3_answers_doubles_maps_and_nested_pairs() {
    let server = start().await;
    let mut c = server.client3().get_multiplexed_async_connection().await.unwrap();
    let _: () = cmd(&mut c, &["ZADD", "z", "1.5", "a", "2", "b"]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut c, &["ZSCORE", "z", "a"]).await.unwrap(), Value::Double(1.5));
    let pairs: Value = cmd(&mut c, &["ZRANGE", "z", "0", "-1", "WITHSCORES"]).await.unwrap();
    let Value::Array(items) = pairs else { panic!("{pairs:?}") };
    assert_eq!(items[0], Value::Array(vec![Value::BulkString(b"a".to_vec()), Value::Double(1.5)]));
    let _: () = cmd(&mut c, &["HSET", "h", "f", "v"]).await.unwrap();
    let map: Value = cmd(&mut c, &["HGETALL", "h"]).await.unwrap();
    assert_eq!(map, Value::Map(vec![(Value::BulkString(b"f".to_vec()), Value::BulkString(b"v".to_vec()))]));
    let _: () = cmd(&mut c, &["SADD", "s", "x"]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut c, &["SMEMBERS", "s"]).await.unwrap(), Value::Set(vec![Value::BulkString(b"x".to_vec())]));
}

#[tokio::test]
async fn bzpopmin_is_blocked_until_a_sorted_set_arrives() {
    let server = start().await;
    let mut waiter = server.conn().await;
    let mut other = server.conn().await;
    let blocked = tokio::spawn(async move { cmd::<(String, String, f64)>(&mut waiter, &["BZPOPMIN", "none", "jobs", "0"]).await });
    until_blocked(&server, 1).await;
    // A list at the key is not what it waits for: it stays blocked, as in Redis.
    let _: () = cmd(&mut other, &["RPUSH", "jobs", "not-a-zset"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(blocked_clients(&mut other).await, 1);
    assert!(!blocked.is_finished());
    let _: () = cmd(&mut other, &["DEL", "jobs"]).await.unwrap();
    let _: () = cmd(&mut other, &["ZADD", "jobs", "2", "later", "1", "first"]).await.unwrap();
    assert_eq!(blocked.await.unwrap().unwrap(), ("jobs".to_owned(), "first".to_owned(), 1.0));
    assert_eq!(blocked_clients(&mut other).await, 0);
    assert_eq!(cmd::<Vec<String>>(&mut other, &["ZRANGE", "jobs", "0", "-1"]).await.unwrap(), ["later"]);
}

#[tokio::test]
async fn blocked_pops_are_served_in_blocking_order_one_member_each() {
    let server = start().await;
    let mut waiters = Vec::new();
    for (i, command) in ["BZPOPMAX", "BZPOPMAX", "BZPOPMIN"].into_iter().enumerate() {
        let mut c = server.conn().await;
        waiters.push(tokio::spawn(async move { cmd::<(String, String, f64)>(&mut c, &[command, "q", "5"]).await.unwrap().1 }));
        until_blocked(&server, i + 1).await;
    }
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["ZADD", "q", "1", "low", "2", "mid", "3", "high"]).await.unwrap();
    let got: Vec<String> = futures_util::future::join_all(waiters).await.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(got, ["high", "mid", "low"]);
    assert!(!c.exists::<_, bool>("q").await.unwrap(), "the last pop deleted the key");
    // BZMPOP takes up to COUNT from the set that arrives, here moved into place by RENAME.
    let mut waiter = server.conn().await;
    let blocked = tokio::spawn(async move {
        cmd::<(String, Vec<(String, f64)>)>(&mut waiter, &["BZMPOP", "5", "2", "x", "y", "MIN", "COUNT", "2"]).await
    });
    until_blocked(&server, 1).await;
    let _: () = cmd(&mut c, &["ZADD", "staging", "3", "c", "1", "a", "2", "b"]).await.unwrap();
    let _: () = cmd(&mut c, &["RENAME", "staging", "y"]).await.unwrap();
    let (key, items) = blocked.await.unwrap().unwrap();
    assert_eq!((key.as_str(), items), ("y", vec![("a".to_owned(), 1.0), ("b".to_owned(), 2.0)]));
}

#[tokio::test]
async fn blocking_pops_time_out_and_do_not_block_inside_exec() {
    let server = start().await;
    let mut c = server.conn().await;
    assert_eq!(cmd::<Value>(&mut c, &["BZPOPMIN", "nothing", "0.05"]).await.unwrap(), Value::Nil);
    assert_eq!(cmd::<Value>(&mut c, &["BZMPOP", "0.05", "1", "nothing", "MAX"]).await.unwrap(), Value::Nil);
    assert_eq!(blocked_clients(&mut c).await, 0, "timed-out waiters are withdrawn");
    let replies: Vec<Value> = redis::pipe().atomic().cmd("BZPOPMIN").arg("nothing").arg(0).query_async(&mut c).await.unwrap();
    assert_eq!(replies, [Value::Nil]);
}

#[tokio::test]
async fn watch_sees_changes_to_hashes_sets_and_sorted_sets() {
    let server = start().await;
    let mut c = server.conn().await;
    let mut other = server.conn().await;
    for (key, change) in [("h", &["HSET", "h", "f", "2"][..]), ("s", &["SADD", "s", "m"]), ("z", &["ZINCRBY", "z", "1", "m"])] {
        let _: () = cmd(&mut c, &["WATCH", key]).await.unwrap();
        let _: () = cmd(&mut other, change).await.unwrap();
        let result: Value = redis::pipe().atomic().cmd("PING").query_async(&mut c).await.unwrap();
        assert_eq!(result, Value::Nil, "{key}: EXEC aborted after a change to a watched key");
    }
    let _: () = cmd(&mut c, &["WATCH", "h"]).await.unwrap();
    let _: () = cmd(&mut other, &["HGET", "h", "f"]).await.unwrap();
    let result: Vec<String> = redis::pipe().atomic().cmd("PING").query_async(&mut c).await.unwrap();
    assert_eq!(result, ["PONG"], "a read does not abort");
}

#[tokio::test]
async fn aggregates_expire_and_announce_their_events() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Ehszgx"]).await.unwrap();
    let mut sub = server.client().get_async_pubsub().await.unwrap();
    sub.psubscribe("__keyevent@0__:*").await.unwrap();
    let _: () = cmd(&mut c, &["HSET", "h", "a", "1"]).await.unwrap();
    let _: () = cmd(&mut c, &["HDEL", "h", "a"]).await.unwrap();
    let _: () = cmd(&mut c, &["SADD", "s", "a", "b"]).await.unwrap();
    let _: () = cmd(&mut c, &["SMOVE", "s", "t", "a"]).await.unwrap();
    let _: () = cmd(&mut c, &["ZADD", "z", "INCR", "1", "m"]).await.unwrap();
    let _: () = cmd(&mut c, &["ZPOPMIN", "z"]).await.unwrap();
    let _: () = cmd(&mut c, &["PEXPIRE", "t", "30"]).await.unwrap();
    let mut stream = sub.on_message();
    let mut seen = Vec::new();
    for _ in 0..11 {
        let msg = futures_util::StreamExt::next(&mut stream).await.unwrap();
        let event = msg.get_channel_name().trim_start_matches("__keyevent@0__:").to_owned();
        seen.push(format!("{event}:{}", msg.get_payload::<String>().unwrap()));
    }
    let expected = ["hset:h", "hdel:h", "del:h", "sadd:s", "srem:s", "sadd:t", "zincr:z", "zpopmin:z", "del:z", "expire:t", "expired:t"];
    assert_eq!(seen, expected, "Redis's event names, in Redis's order");
    assert!(!c.exists::<_, bool>("t").await.unwrap(), "the set expired");
}

/// Hashes, sets and sorted sets are logged as their deltas (HSET's fields, SREM's members, ZADD's
/// scores) or whole (the STORE forms, RENAME), snapshotted whole, and come back with the encodings
/// Redis gives loaded values.
#[tokio::test]
async fn collections_survive_a_restart_and_a_compaction() {
    let dir = common::data_dir("collections");
    let server = common::start_persistent(&dir).await;
    let mut c = server.conn().await;
    let big: Vec<String> = (0..300).map(|i| format!("m{i:03}")).collect();
    for cmd_line in [
        vec!["HSET", "h", "a", "1", "b", "2", "c", "3"],
        vec!["HDEL", "h", "b"],
        vec!["HINCRBYFLOAT", "h", "a", "0.5"],
        vec!["SADD", "ints", "3", "1", "2"],
        vec!["SADD", "s", "x", "y", "z"],
        vec!["SREM", "s", "y"],
        vec!["ZADD", "z", "1", "a", "2", "b", "-0", "c"],
        vec!["ZINCRBY", "z", "10", "a"],
        vec!["ZPOPMIN", "z"],
        vec!["ZUNIONSTORE", "zu", "2", "z", "ints"],
        vec!["RENAME", "zu", "zr"],
    ] {
        let _: Value = cmd(&mut c, &cmd_line).await.unwrap();
    }
    common::rewrite(&mut c).await;
    let mut zadd = vec!["ZADD", "bigz"];
    for (i, m) in big.iter().enumerate() {
        zadd.push(if i % 2 == 0 { "1.5" } else { "-2" });
        zadd.push(m);
    }
    let _: i64 = cmd(&mut c, &zadd).await.unwrap();
    let _: i64 = cmd(&mut c, &["ZREM", "bigz", "m000", "m001"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["HSET", "h", "d", "4"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["SREM", "s", "x", "z"]).await.unwrap();
    server.stop().await;

    let server = common::start_persistent(&dir).await;
    let mut c = server.conn().await;
    let h: Vec<String> = cmd(&mut c, &["HGETALL", "h"]).await.unwrap();
    assert_eq!(h, ["a", "1.5", "c", "3", "d", "4"], "fields and their order survive");
    assert_eq!(cmd::<Vec<String>>(&mut c, &["SMEMBERS", "ints"]).await.unwrap(), ["1", "2", "3"]);
    assert!(!c.exists::<_, bool>("s").await.unwrap(), "a set emptied before the restart stays gone");
    let z: Vec<(String, f64)> = c.zrange_withscores("z", 0, -1).await.unwrap();
    assert_eq!(z, [("b".to_owned(), 2.0), ("a".to_owned(), 11.0)]);
    let zr: Vec<(String, f64)> = c.zrange_withscores("zr", 0, -1).await.unwrap();
    assert_eq!(zr.len(), 5);
    assert_eq!(c.zcard::<_, i64>("bigz").await.unwrap(), 298);
    assert_eq!(c.zrank::<_, _, Option<i64>>("bigz", "m003").await.unwrap(), Some(0), "odd members scored -2 come first");
    for (key, encoding) in [("h", "listpack"), ("ints", "intset"), ("z", "listpack"), ("bigz", "skiplist")] {
        assert_eq!(cmd::<String>(&mut c, &["OBJECT", "ENCODING", key]).await.unwrap(), encoding, "{key}");
    }
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client blocked on several keys is served from the key that became ready first, as Redis serves
/// it, even when an earlier key of its list gets a sorted set in the same transaction.
#[tokio::test]
async fn a_waiter_pops_from_the_key_signalled_first() {
    let server = start().await;
    let mut waiter = server.conn().await;
    let blocked = tokio::spawn(async move { cmd::<(String, String, f64)>(&mut waiter, &["BZPOPMIN", "a", "b", "0"]).await });
    until_blocked(&server, 1).await;
    let mut c = server.conn().await;
    let replies: Vec<i64> = redis::pipe()
        .atomic()
        .cmd("ZADD")
        .arg("b")
        .arg(1)
        .arg("from-b")
        .cmd("ZADD")
        .arg("a")
        .arg(1)
        .arg("from-a")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(replies, [1, 1]);
    assert_eq!(blocked.await.unwrap().unwrap(), ("b".to_owned(), "from-b".to_owned(), 1.0));
    assert_eq!(c.zcard::<_, i64>("a").await.unwrap(), 1, "a is untouched");
}
