//! Several Herald nodes on the Redis engine, sharing one real redis-server (docs/scale-out.md).

mod common;

use std::time::Duration;

use common::redis_server::RedisServer;
use common::{TestServer, cmd};
use futures_util::StreamExt;
use redis::Value;
use serde_json::json;

async fn cluster(name: &str) -> (RedisServer, Vec<TestServer>) {
    let redis = RedisServer::start(name).await;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(redis.node().await);
    }
    (redis, nodes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_commands_written_on_one_node_are_read_on_another_with_redis_semantics() {
    let (redis, nodes) = cluster("plain").await;
    let mut a = nodes[0].conn().await;
    let mut b = nodes[1].conn().await;
    let mut direct = redis.conn().await;

    let _: () = cmd(&mut a, &["SET", "greeting", "hello", "EX", "100"]).await.unwrap();
    let v: String = cmd(&mut b, &["GET", "greeting"]).await.unwrap();
    assert_eq!(v, "hello");
    let ttl: i64 = cmd(&mut b, &["TTL", "greeting"]).await.unwrap();
    assert!(ttl > 0 && ttl <= 100);
    let stored: String = cmd(&mut direct, &["GET", "greeting"]).await.unwrap();
    assert_eq!(stored, "hello", "the data lives in redis-server");

    let _: i64 = cmd(&mut a, &["RPUSH", "list", "x", "y", "z"]).await.unwrap();
    let _: i64 = cmd(&mut a, &["HSET", "h", "f", "1", "g", "2"]).await.unwrap();
    let _: i64 = cmd(&mut a, &["ZADD", "z", "1.5", "m"]).await.unwrap();
    let _: String = cmd(&mut a, &["XADD", "s", "1-1", "k", "v"]).await.unwrap();
    let list: Vec<String> = cmd(&mut b, &["LRANGE", "list", "0", "-1"]).await.unwrap();
    assert_eq!(list, ["x", "y", "z"]);
    let score: String = cmd(&mut b, &["ZSCORE", "z", "m"]).await.unwrap();
    assert_eq!(score, "1.5");
    let len: i64 = cmd(&mut b, &["XLEN", "s"]).await.unwrap();
    assert_eq!(len, 1);

    // Errors are Redis's own, code and text; and node and redis-server agree reply for reply.
    for parts in [
        &["GET", "list"][..],
        &["INCR", "greeting"],
        &["LPOP", "missing", "2"],
        &["LPOP", "missing"],
        &["HGETALL", "h"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["XRANGE", "s", "-", "+"],
        &["EXPIRE", "greeting", "10", "XX", "NX"],
        &["OBJECT", "ENCODING", "list"],
    ] {
        let through: redis::RedisResult<Value> = cmd(&mut b, parts).await;
        let straight: redis::RedisResult<Value> = cmd(&mut direct, parts).await;
        assert_eq!(format!("{through:?}"), format!("{straight:?}"), "{parts:?}");
    }

    // RESP3 sessions get Redis's RESP3 shapes (a map for HGETALL).
    let mut three = nodes[2].client3().get_multiplexed_async_connection().await.unwrap();
    let map: Value = cmd(&mut three, &["HGETALL", "h"]).await.unwrap();
    assert!(matches!(map, Value::Map(ref m) if m.len() == 2), "{map:?}");

    // SELECT picks the database on Redis too.
    let _: () = cmd(&mut a, &["SELECT", "3"]).await.unwrap();
    let _: () = cmd(&mut a, &["SET", "greeting", "three"]).await.unwrap();
    let in_zero: String = cmd(&mut b, &["GET", "greeting"]).await.unwrap();
    assert_eq!(in_zero, "hello");
    let _: () = cmd(&mut b, &["SELECT", "3"]).await.unwrap();
    let in_three: String = cmd(&mut b, &["GET", "greeting"]).await.unwrap();
    assert_eq!(in_three, "three");

    // Connection commands stay with the node.
    let pong: String = cmd(&mut a, &["PING"]).await.unwrap();
    assert_eq!(pong, "PONG");
    let id: i64 = cmd(&mut a, &["CLIENT", "ID"]).await.unwrap();
    assert!(id > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_run_on_redis_as_one_and_what_cannot_be_done_is_refused() {
    let (_redis, nodes) = cluster("multi").await;
    let mut a = nodes[0].conn().await;
    let mut b = nodes[1].conn().await;

    let mut raw = nodes[0].raw().await;
    raw.cmd(&["MULTI"]).await;
    raw.expect("+OK\r\n").await;
    raw.cmd(&["SET", "n", "1"]).await;
    raw.expect("+QUEUED\r\n").await;
    raw.cmd(&["INCR", "n"]).await;
    raw.expect("+QUEUED\r\n").await;
    raw.cmd(&["LPUSH", "n", "x"]).await;
    raw.expect("+QUEUED\r\n").await;
    raw.cmd(&["BLPOP", "empty", "0"]).await;
    raw.expect("+QUEUED\r\n").await;
    raw.cmd(&["EXEC"]).await;
    raw.expect("*4\r\n+OK\r\n:2\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n*-1\r\n").await;
    let n: i64 = cmd(&mut b, &["GET", "n"]).await.unwrap();
    assert_eq!(n, 2);

    // A command the node answers itself cannot join a Redis transaction: refused, and EXEC aborts.
    raw.cmd(&["MULTI"]).await;
    raw.expect("+OK\r\n").await;
    raw.cmd(&["SET", "n", "5"]).await;
    raw.expect("+QUEUED\r\n").await;
    raw.cmd(&["CLIENT", "ID"]).await;
    raw.expect("-ERR CLIENT ID inside MULTI is not supported by the redis engine (docs/scale-out.md)\r\n").await;
    raw.cmd(&["EXEC"]).await;
    raw.expect("-EXECABORT Transaction discarded because of previous errors.\r\n").await;
    let n: i64 = cmd(&mut a, &["GET", "n"]).await.unwrap();
    assert_eq!(n, 2);

    let watch: redis::RedisResult<()> = cmd(&mut a, &["WATCH", "n"]).await;
    let e = watch.unwrap_err();
    assert!(e.to_string().contains("WATCH is not supported by the redis engine"), "{e}");
    let jobs: redis::RedisResult<Value> = cmd(&mut a, &["JOB.SUBMIT", "q", "{}"]).await;
    assert!(jobs.unwrap_err().to_string().contains("not supported by the redis engine"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_commands_wait_on_their_own_connection_and_are_served_from_any_node() {
    let (redis, nodes) = cluster("blocking").await;
    let mut a = nodes[0].conn().await;
    let mut b = nodes[1].conn().await;

    // A BLPOP on node B does not hold node B's other clients (the shared connection stays free).
    let waiter = tokio::spawn({
        let mut c = nodes[1].conn().await;
        async move { cmd::<Vec<String>>(&mut c, &["BLPOP", "jobs", "0"]).await.unwrap() }
    });
    let mut direct = redis.conn().await;
    wait_for_blocked(&mut direct, 1).await;
    let _: () = cmd(&mut b, &["SET", "other", "1"]).await.unwrap();
    let _: i64 = cmd(&mut a, &["RPUSH", "jobs", "j1"]).await.unwrap();
    assert_eq!(waiter.await.unwrap(), ["jobs", "j1"]);

    // A timeout is Redis's null array.
    let mut raw = nodes[2].raw().await;
    raw.cmd(&["BLPOP", "nothing", "0.05"]).await;
    raw.expect("*-1\r\n").await;

    // A client that goes away while blocked takes its wait with it: nothing is popped for it.
    let mut gone = nodes[1].raw().await;
    gone.cmd(&["BLPOP", "later", "0"]).await;
    wait_for_blocked(&mut direct, 1).await;
    drop(gone);
    wait_for_blocked(&mut direct, 0).await;
    let _: i64 = cmd(&mut a, &["RPUSH", "later", "kept"]).await.unwrap();
    let left: Vec<String> = cmd(&mut b, &["LRANGE", "later", "0", "-1"]).await.unwrap();
    assert_eq!(left, ["kept"]);
}

async fn wait_for_blocked(direct: &mut redis::aio::MultiplexedConnection, n: usize) {
    for _ in 0..500 {
        let info: String = cmd(direct, &["INFO", "clients"]).await.unwrap();
        if info.lines().any(|l| l == format!("blocked_clients:{n}")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("redis-server never reported {n} blocked clients");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publications_reach_subscribers_on_every_node_and_wire_once_and_in_order() {
    let (_redis, nodes) = cluster("pubsub").await;
    let mut on_a = nodes[0].client().get_async_pubsub().await.unwrap();
    on_a.subscribe("news").await.unwrap();
    let mut pattern_on_b = nodes[1].client().get_async_pubsub().await.unwrap();
    pattern_on_b.psubscribe("ne*").await.unwrap();
    let mut ws_on_c = nodes[2].ws().await;
    ws_on_c.send(json!(["SUBSCRIBE", "news"])).await;
    let confirm = ws_on_c.recv().await;
    assert_eq!(confirm["result"][0][0], "subscribe", "{confirm}");

    let mut publisher = nodes[1].conn().await;
    const N: usize = 50;
    for i in 0..N {
        let receivers: i64 = cmd(&mut publisher, &["PUBLISH", "news", &i.to_string()]).await.unwrap();
        assert_eq!(receivers, 3, "one per node that follows the channel (docs/scale-out.md)");
    }
    let mut a = on_a.on_message();
    let mut b = pattern_on_b.on_message();
    for i in 0..N {
        let m = tokio::time::timeout(Duration::from_secs(5), a.next()).await.unwrap().unwrap();
        assert_eq!(m.get_payload::<String>().unwrap(), i.to_string());
        let m = tokio::time::timeout(Duration::from_secs(5), b.next()).await.unwrap().unwrap();
        assert_eq!(m.get_payload::<String>().unwrap(), i.to_string());
        assert_eq!(m.get_pattern::<String>().unwrap(), "ne*");
        let push = ws_on_c.recv().await;
        assert_eq!(push["push"], "message", "{push}");
        assert_eq!(push["data"], json!(i.to_string()), "{push}");
    }
    // Exactly once: nothing more arrives on any of them.
    let _: i64 = cmd(&mut publisher, &["PUBLISH", "news", "end"]).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), a.next()).await.unwrap().unwrap();
    assert_eq!(m.get_payload::<String>().unwrap(), "end");
    let m = tokio::time::timeout(Duration::from_secs(5), b.next()).await.unwrap().unwrap();
    assert_eq!(m.get_payload::<String>().unwrap(), "end");
    assert_eq!(ws_on_c.recv().await["data"], json!("end"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_pubsub_connection_is_reestablished_and_later_messages_delivered() {
    let (redis, nodes) = cluster("pubsub-kill").await;
    let mut sub = nodes[0].client().get_async_pubsub().await.unwrap();
    sub.subscribe("alerts").await.unwrap();
    let mut direct = redis.conn().await;
    let killed: i64 = cmd(&mut direct, &["CLIENT", "KILL", "TYPE", "pubsub"]).await.unwrap();
    assert_eq!(killed, 1, "node A's bridge is the one pub-sub client of redis-server");
    // The bridge comes back and follows the channel again.
    let mut followed = false;
    for _ in 0..500 {
        let counts: Vec<Value> = cmd(&mut direct, &["PUBSUB", "NUMSUB", "alerts"]).await.unwrap();
        if counts.get(1) == Some(&Value::Int(1)) {
            followed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(followed, "the node subscribed to its channel again");
    let mut publisher = nodes[2].conn().await;
    let _: i64 = cmd(&mut publisher, &["PUBLISH", "alerts", "after"]).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.on_message().next()).await.unwrap().unwrap();
    assert_eq!(m.get_payload::<String>().unwrap(), "after");
}
