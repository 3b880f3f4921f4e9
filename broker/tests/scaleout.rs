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
    talk(
        &mut raw,
        &[
            (&["MULTI"], "+OK\r\n"),
            (&["SET", "n", "1"], "+QUEUED\r\n"),
            (&["INCR", "n"], "+QUEUED\r\n"),
            (&["LPUSH", "n", "x"], "+QUEUED\r\n"),
            (&["BLPOP", "empty", "0"], "+QUEUED\r\n"),
            // WAIT joins too and, as in Redis, answers at once inside a transaction (no replicas here).
            (&["WAIT", "1", "10000"], "+QUEUED\r\n"),
            (&["EXEC"], "*5\r\n+OK\r\n:2\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n*-1\r\n:0\r\n"),
        ],
    )
    .await;
    let n: i64 = cmd(&mut b, &["GET", "n"]).await.unwrap();
    assert_eq!(n, 2);

    // A command the node answers itself cannot join a Redis transaction: refused, and EXEC aborts.
    talk(
        &mut raw,
        &[
            (&["MULTI"], "+OK\r\n"),
            (&["SET", "n", "5"], "+QUEUED\r\n"),
            (&["CLIENT", "ID"], "-ERR CLIENT ID inside MULTI is not supported by the redis engine (docs/scale-out.md)\r\n"),
            (&["EXEC"], "-EXECABORT Transaction discarded because of previous errors.\r\n"),
        ],
    )
    .await;
    let n: i64 = cmd(&mut a, &["GET", "n"]).await.unwrap();
    assert_eq!(n, 2);

    // WATCH: a write on another node to a watched key aborts the EXEC; untouched, it runs.
    talk(&mut raw, &[(&["WATCH", "n"], "+OK\r\n")]).await;
    let _: i64 = cmd(&mut b, &["INCR", "n"]).await.unwrap();
    talk(
        &mut raw,
        &[
            (&["MULTI"], "+OK\r\n"),
            (&["SET", "n", "100"], "+QUEUED\r\n"),
            (&["EXEC"], "*-1\r\n"),
            (&["WATCH", "n"], "+OK\r\n"),
            (&["MULTI"], "+OK\r\n"),
            (&["INCR", "n"], "+QUEUED\r\n"),
            (&["EXEC"], "*1\r\n:4\r\n"),
        ],
    )
    .await;
    // UNWATCH and DISCARD end a watch; a later EXEC is not aborted by an old one.
    talk(&mut raw, &[(&["WATCH", "n"], "+OK\r\n"), (&["UNWATCH"], "+OK\r\n")]).await;
    let _: i64 = cmd(&mut b, &["INCR", "n"]).await.unwrap();
    talk(&mut raw, &[(&["MULTI"], "+OK\r\n"), (&["GET", "n"], "+QUEUED\r\n"), (&["EXEC"], "*1\r\n$1\r\n5\r\n")]).await;
    talk(&mut raw, &[(&["WATCH", "n"], "+OK\r\n"), (&["MULTI"], "+OK\r\n"), (&["DISCARD"], "+OK\r\n")]).await;
    let _: i64 = cmd(&mut b, &["INCR", "n"]).await.unwrap();
    talk(&mut raw, &[(&["MULTI"], "+OK\r\n"), (&["GET", "n"], "+QUEUED\r\n"), (&["EXEC"], "*1\r\n$1\r\n6\r\n")]).await;

    // BB.WATCH on node A: a change to the watched key made on node B (a write, a delete, an expiry)
    // aborts A's EXEC; a write to another key of the scope does not, nor one after UNWATCH.
    let _: i64 = cmd(&mut b, &["BB.SET", "s", "k", "1"]).await.unwrap();
    talk(&mut raw, &[(&["BB.WATCH", "s", "k"], "+OK\r\n")]).await;
    let _: i64 = cmd(&mut b, &["BB.SET", "s", "other", "x"]).await.unwrap();
    incr_in_tx(&mut raw, "*1\r\n:7\r\n").await;
    for interfere in [&["BB.SET", "s", "k", "2"][..], &["BB.DEL", "s", "k"][..], &["BB.SET", "s", "k", "3", "PX", "30"][..]] {
        if interfere.len() == 6 {
            let _: Value = cmd(&mut b, interfere).await.unwrap();
            talk(&mut raw, &[(&["BB.WATCH", "s", "k"], "+OK\r\n")]).await;
            tokio::time::sleep(Duration::from_millis(60)).await;
        } else {
            talk(&mut raw, &[(&["BB.WATCH", "s", "k", "k2"], "+OK\r\n")]).await;
            let _: Value = cmd(&mut b, interfere).await.unwrap();
        }
        incr_in_tx(&mut raw, "*-1\r\n").await;
    }
    talk(&mut raw, &[(&["BB.WATCH", "s", "k"], "+OK\r\n"), (&["UNWATCH"], "+OK\r\n")]).await;
    let _: i64 = cmd(&mut b, &["BB.SET", "s", "k", "4"]).await.unwrap();
    incr_in_tx(&mut raw, "*1\r\n:8\r\n").await;
    talk(
        &mut raw,
        &[
            (&["MULTI"], "+OK\r\n"),
            (&["BB.WATCH", "s", "k"], "-ERR WATCH inside MULTI is not allowed\r\n"),
            (&["DISCARD"], "+OK\r\n"),
            (&["BB.WATCH", "", "k"], "+OK\r\n"),
        ],
    )
    .await;
    // The global scope's keys are watched the same way.
    let _: i64 = cmd(&mut b, &["BB.SET", "", "k", "global"]).await.unwrap();
    incr_in_tx(&mut raw, "*-1\r\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bb_memory_answers_a_keys_share_of_its_scope_in_redis() {
    let (_redis, nodes) = cluster("bbmemory").await;
    let mut a = nodes[0].conn().await;
    let mut b = nodes[1].conn().await;
    let long = "x".repeat(1000);
    let _: i64 = cmd(&mut a, &["BB.SET", "team", "long", &long]).await.unwrap();
    // Alone in its scope, the key is the whole of the scope's hashes: at least its own bytes.
    let alone: i64 = cmd(&mut b, &["BB.MEMORY", "team", "long"]).await.unwrap();
    assert!(alone >= 1000, "{alone}");
    // With others, its share follows its size; SAMPLES 0 reads every key, as MEMORY USAGE does.
    let _: i64 = cmd(&mut a, &["BB.SET", "team", "short", "y"]).await.unwrap();
    let long_share: i64 = cmd(&mut b, &["BB.MEMORY", "team", "long", "SAMPLES", "0"]).await.unwrap();
    let short_share: i64 = cmd(&mut b, &["BB.MEMORY", "team", "short", "SAMPLES", "0"]).await.unwrap();
    assert!(long_share >= 1000 && short_share < long_share / 10, "{long_share} {short_share}");
    // The global scope, and nil for a missing key or scope, as on one node.
    let _: i64 = cmd(&mut a, &["BB.SET", "", "g", "v"]).await.unwrap();
    assert!(cmd::<i64>(&mut b, &["BB.MEMORY", "", "g"]).await.unwrap() > 0);
    assert_eq!(cmd::<Value>(&mut b, &["BB.MEMORY", "team", "nokey"]).await.unwrap(), Value::Nil);
    assert_eq!(cmd::<Value>(&mut b, &["BB.MEMORY", "noscope", "long"]).await.unwrap(), Value::Nil);
    // A key past its deadline is absent at once.
    let _: i64 = cmd(&mut a, &["BB.SET", "team", "brief", "v", "PX", "1"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(cmd::<Value>(&mut b, &["BB.MEMORY", "team", "brief"]).await.unwrap(), Value::Nil);
    let err = cmd::<Value>(&mut b, &["BB.MEMORY", "team", "long", "SAMPLES", "-1"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("syntax error"));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_are_checked_by_the_node_before_anything_goes_to_redis() {
    let redis = RedisServer::start("acl").await;
    let mut config = herald_broker::Config::for_tests();
    config.acl.users = vec!["alice on >pw ~tenant:* +@all -flushall".into()];
    let node = redis.node_with(config).await;
    let mut raw = node.raw().await;
    talk(&mut raw, &[(&["AUTH", "alice", "pw"], "+OK\r\n"), (&["SET", "tenant:a", "1"], "+OK\r\n")]).await;
    for refused in [&["SET", "other", "1"][..], &["FLUSHALL"]] {
        raw.cmd(refused).await;
        let line = raw.read_until("\r\n").await;
        assert!(line.starts_with("-NOPERM "), "{refused:?}: {line}");
    }
    let mut direct = redis.conn().await;
    let keys: Vec<String> = cmd(&mut direct, &["KEYS", "*"]).await.unwrap();
    assert_eq!(keys, ["tenant:a"], "the refused write never reached redis-server");
}

/// Sends each request on a raw connection and expects exactly its reply bytes.
/// MULTI, INCR n, EXEC, with EXEC's expected reply.
async fn incr_in_tx(raw: &mut common::Raw, exec: &str) {
    talk(raw, &[(&["MULTI"], "+OK\r\n"), (&["INCR", "n"], "+QUEUED\r\n"), (&["EXEC"], exec)]).await;
}

async fn talk(raw: &mut common::Raw, steps: &[(&[&str], &str)]) {
    for (request, reply) in steps {
        raw.cmd(request).await;
        raw.expect(reply).await;
    }
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

    let mut sse_on_a = Sse::subscribe(&nodes[0], "news").await;

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
        assert_eq!(sse_on_a.next().await, json!({"push": "message", "channel": "news", "data": i.to_string()}));
    }
    // Exactly once: nothing more arrives on any of them.
    let _: i64 = cmd(&mut publisher, &["PUBLISH", "news", "end"]).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), a.next()).await.unwrap().unwrap();
    assert_eq!(m.get_payload::<String>().unwrap(), "end");
    let m = tokio::time::timeout(Duration::from_secs(5), b.next()).await.unwrap().unwrap();
    assert_eq!(m.get_payload::<String>().unwrap(), "end");
    assert_eq!(ws_on_c.recv().await["data"], json!("end"));
    assert_eq!(sse_on_a.next().await["data"], json!("end"));
}

/// The RESP frame of a shard message (`smessage`).
fn smessage(channel: &str, data: &str) -> String {
    format!("*3\r\n$8\r\nsmessage\r\n${}\r\n{channel}\r\n${}\r\n{data}\r\n", channel.len(), data.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_publications_reach_shard_subscribers_on_every_node_and_nothing_else() {
    let (redis, nodes) = cluster("spubsub").await;
    let mut on_a = nodes[0].raw().await;
    on_a.cmd(&["SSUBSCRIBE", "orders"]).await;
    on_a.expect("*3\r\n$10\r\nssubscribe\r\n$6\r\norders\r\n:1\r\n").await;
    let mut on_c = nodes[2].raw().await;
    on_c.cmd(&["SSUBSCRIBE", "orders"]).await;
    on_c.expect("*3\r\n$10\r\nssubscribe\r\n$6\r\norders\r\n:1\r\n").await;
    // Shard channels are apart from plain channels and patterns, as in Redis: these see nothing below.
    let mut plain_on_b = nodes[1].client().get_async_pubsub().await.unwrap();
    plain_on_b.subscribe("orders").await.unwrap();

    let mut publisher = nodes[1].conn().await;
    const N: usize = 30;
    for i in 0..N {
        let receivers: i64 = cmd(&mut publisher, &["SPUBLISH", "orders", &i.to_string()]).await.unwrap();
        assert_eq!(receivers, 2, "one per node that follows the shard channel (docs/scale-out.md)");
    }
    for i in 0..N {
        on_a.expect(&smessage("orders", &i.to_string())).await;
        on_c.expect(&smessage("orders", &i.to_string())).await;
    }
    // A pattern never sees a shard message (a node with a pattern matching the carrier channel counts
    // in SPUBLISH's reply, docs/scale-out.md); a plain PUBLISH on the same name reaches the plain
    // subscriber only, once.
    plain_on_b.psubscribe("*").await.unwrap();
    let _: i64 = cmd(&mut publisher, &["SPUBLISH", "orders", "shard"]).await.unwrap();
    on_a.expect(&smessage("orders", "shard")).await;
    on_c.expect(&smessage("orders", "shard")).await;
    let receivers: i64 = cmd(&mut publisher, &["PUBLISH", "orders", "plain"]).await.unwrap();
    assert_eq!(receivers, 2, "node B's channel and its pattern");
    let mut b = plain_on_b.on_message();
    for _ in 0..2 {
        let m = tokio::time::timeout(Duration::from_secs(5), b.next()).await.unwrap().unwrap();
        assert_eq!(m.get_payload::<String>().unwrap(), "plain", "no shard message reached a plain subscriber or pattern");
    }
    drop(b);

    // The node stops following the shard channel with its last subscriber.
    on_c.cmd(&["SUNSUBSCRIBE", "orders"]).await;
    on_c.expect("*3\r\n$12\r\nsunsubscribe\r\n$6\r\norders\r\n:0\r\n").await;
    let mut direct = redis.conn().await;
    let mut followed = 2;
    for _ in 0..500 {
        let counts: Vec<Value> = cmd(&mut direct, &["PUBSUB", "NUMSUB", "__herald__:engine:shard:orders"]).await.unwrap();
        followed = match counts.get(1) {
            Some(Value::Int(n)) => *n,
            _ => -1,
        };
        if followed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(followed, 1, "node C unsubscribed from the carrier");
    // In a transaction too, SPUBLISH goes out as its carrier's PUBLISH (counted: node A, and node B's
    // pattern on the carrier).
    let mut raw = nodes[1].raw().await;
    for c in [&["MULTI"][..], &["SPUBLISH", "orders", "tx"], &["EXEC"]] {
        raw.cmd(c).await;
    }
    raw.expect("+OK\r\n+QUEUED\r\n*1\r\n:2\r\n").await;
    on_a.expect(&smessage("orders", "tx")).await;
    // After the node's pub-sub connection is killed it follows the shard channel again.
    let killed: i64 = cmd(&mut direct, &["CLIENT", "KILL", "TYPE", "pubsub"]).await.unwrap();
    assert_eq!(killed, 3);
    let mut delivered = false;
    for i in 0..500 {
        let receivers: i64 = cmd(&mut publisher, &["SPUBLISH", "orders", &format!("again{i}")]).await.unwrap();
        if receivers == 2 {
            on_a.read_until(&smessage("orders", &format!("again{i}"))).await;
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(delivered, "node A followed its shard channel again after the reconnection");
}

/// A server-sent event stream of a node's `/v1/subscribe` (docs/http.md), read raw.
struct Sse {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Sse {
    /// Opens the stream and reads its head: once it has come, the subscription is in effect.
    async fn subscribe(node: &TestServer, channel: &str) -> Sse {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(node.http).await.unwrap();
        let head = format!("GET /v1/subscribe?channel={channel} HTTP/1.1\r\nHost: herald\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut sse = Sse { stream, buf: Vec::new() };
        let head = sse.until("retry: 1000\n\n").await;
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        sse
    }

    async fn until(&mut self, needle: &str) -> String {
        use tokio::io::AsyncReadExt;
        loop {
            if let Some(at) = self.buf.windows(needle.len()).position(|w| w == needle.as_bytes()) {
                let text = String::from_utf8(self.buf.drain(..at + needle.len()).collect()).unwrap();
                return text;
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk)).await.expect("an event in time").unwrap();
            assert!(n > 0, "the event stream closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next event's JSON data.
    async fn next(&mut self) -> serde_json::Value {
        let event = self.until("\n\n").await;
        let data = event.lines().find_map(|l| l.strip_prefix("data: ")).expect("a data line");
        serde_json::from_str(data).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_pubsub_connection_is_reestablished_and_later_messages_delivered() {
    let (redis, nodes) = cluster("pubsub-kill").await;
    let mut sub = nodes[0].client().get_async_pubsub().await.unwrap();
    sub.subscribe("alerts").await.unwrap();
    let mut direct = redis.conn().await;
    let killed: i64 = cmd(&mut direct, &["CLIENT", "KILL", "TYPE", "pubsub"]).await.unwrap();
    assert_eq!(killed, 3, "each node has one pub-sub connection to redis-server (its bridge)");
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

/// A pattern subscription through a node.
async fn watcher_on(node: &TestServer, pattern: &str) -> redis::aio::PubSub {
    let mut w = node.client().get_async_pubsub().await.unwrap();
    w.psubscribe(pattern).await.unwrap();
    w
}

/// A blackboard watch event's JSON.
fn event(m: &redis::Msg) -> serde_json::Value {
    serde_json::from_slice(m.get_payload_bytes()).expect("watch events are JSON")
}

async fn next_event(stream: &mut (impl futures_util::Stream<Item = redis::Msg> + Unpin)) -> serde_json::Value {
    let m = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("a watch event in time").expect("open");
    event(&m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compare_and_swap_race_across_nodes_gives_gap_free_revisions_seen_by_a_watcher_on_each_node() {
    let (_redis, nodes) = cluster("bb-race").await;
    let mut watchers = Vec::new();
    for node in &nodes {
        watchers.push(watcher_on(node, "__bb:*@race__:*").await);
    }
    let mut ws = nodes[2].ws().await;
    ws.send(json!(["PSUBSCRIBE", "__bb:set@race__:counter"])).await;
    ws.recv().await;

    // Every writer reads the revision and writes IFREV it: exactly one of a racing pair wins.
    const PER_WRITER: i64 = 10;
    let mut writers = Vec::new();
    for node in &nodes {
        for _ in 0..2 {
            let mut c = node.conn().await;
            writers.push(tokio::spawn(async move {
                let mut won = 0;
                while won < PER_WRITER {
                    let cur: Value = cmd(&mut c, &["BB.GET", "race", "counter"]).await.unwrap();
                    let rev = match cur {
                        Value::Nil => 0,
                        Value::Array(f) => match &f[3] {
                            Value::Int(r) => *r,
                            other => panic!("revision {other:?}"),
                        },
                        other => panic!("{other:?}"),
                    };
                    let set: redis::RedisResult<i64> =
                        cmd(&mut c, &["BB.SET", "race", "counter", &format!("v{}", rev + 1), "IFREV", &rev.to_string()]).await;
                    match set {
                        Ok(new) => {
                            assert_eq!(new, rev + 1);
                            won += 1;
                        }
                        Err(e) => assert_eq!(e.code(), Some("CONFLICT"), "{e}"),
                    }
                }
            }));
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    let total = PER_WRITER * 6;
    let mut c = nodes[0].conn().await;
    let last: Vec<Value> = cmd(&mut c, &["BB.GET", "race", "counter"]).await.unwrap();
    assert_eq!(last[3], Value::Int(total));
    assert_eq!(last[1], Value::BulkString(format!("v{total}").into_bytes()));

    for w in &mut watchers {
        let mut s = w.on_message();
        for rev in 1..=total {
            let e = next_event(&mut s).await;
            assert_eq!((e["event"].as_str(), e["revision"].as_i64(), e["seq"].as_i64()), (Some("set"), Some(rev), Some(rev)), "{e}");
            assert_eq!(e["value"], json!(format!("v{rev}")));
        }
    }
    for rev in 1..=total {
        let push = ws.recv().await;
        let e: serde_json::Value = serde_json::from_str(push["data"].as_str().unwrap()).unwrap();
        assert_eq!(e["revision"].as_i64(), Some(rev), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bb_wait_on_one_node_is_woken_by_a_write_on_another() {
    let (_redis, nodes) = cluster("bb-wait").await;
    let mut waiter = nodes[0].conn().await;
    let wait = tokio::spawn(async move { cmd::<Value>(&mut waiter, &["BB.WAIT", "wf", "approval", "TIMEOUT", "0"]).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut writer = nodes[1].conn().await;
    let rev: i64 = cmd(&mut writer, &["BB.SET", "wf", "approval", "yes"]).await.unwrap();
    assert_eq!(rev, 1);
    let got = tokio::time::timeout(Duration::from_secs(5), wait).await.expect("woken").unwrap();
    let Value::Array(fields) = got else { panic!("{got:?}") };
    assert_eq!(fields[1], Value::BulkString(b"yes".to_vec()));

    // AFTER waits past a revision; a timeout answers nil.
    let mut c = nodes[2].conn().await;
    let none: Value = cmd(&mut c, &["BB.WAIT", "wf", "approval", "AFTER", "1", "TIMEOUT", "50"]).await.unwrap();
    assert_eq!(none, Value::Nil);
    let mut waiter = nodes[2].conn().await;
    let wait =
        tokio::spawn(async move { cmd::<Value>(&mut waiter, &["BB.WAIT", "wf", "approval", "AFTER", "1", "TIMEOUT", "0"]).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _: i64 = cmd(&mut writer, &["BB.SET", "wf", "approval", "final"]).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), wait).await.expect("woken").unwrap();
    let Value::Array(fields) = got else { panic!("{got:?}") };
    assert_eq!(fields[1], Value::BulkString(b"final".to_vec()));
    assert_eq!(fields[3], Value::Int(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackboard_semantics_on_the_redis_engine_match_the_embedded_engine() {
    let (_redis, nodes) = cluster("bb-semantics").await;
    let embedded_server = common::start().await;
    let mut embedded = embedded_server.conn().await;
    let mut remote = nodes[0].conn().await;
    // The same script of commands, reply for reply (TTLs compared by presence, not value).
    let script: &[&[&str]] = &[
        &["BB.SET", "s", "k", "v1"],
        &["BB.SET", "s", "k", "v2", "IFREV", "1"],
        &["BB.SET", "s", "k", "v3", "IFREV", "1"],
        &["BB.SET", "s", "k", "x", "NX"],
        &["BB.SET", "s", "new", "x", "XX"],
        &["BB.SET", "s", "new", "x", "IFREV", "0"],
        &["BB.HAS", "s", "new"],
        &["BB.GET", "s", "missing"],
        &["BB.DEL", "s", "new", "missing"],
        &["BB.HAS", "s", "new"],
        &["BB.SET", "s", "new", "again"],
        &["BB.CHANGES", "s", "SINCE", "0"],
        &["BB.CHANGES", "s", "SINCE", "2", "COUNT", "1"],
        &["BB.SET", "s", "k", "v", "PX", "0"],
        &["BB.SET", "s", "k", "v", "FOO"],
        &["BB.STATS", "s"],
        &["BB.STATS", "never-written"],
    ];
    for parts in script {
        let a: redis::RedisResult<Value> = cmd(&mut embedded, parts).await;
        let b: redis::RedisResult<Value> = cmd(&mut remote, parts).await;
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{parts:?}");
    }
    // The global scope `""`: the same replies (a scope of its own on this engine, not plain keys).
    for parts in [
        &["BB.SET", "", "g", "v1"][..],
        &["BB.SET", "", "g", "v2", "IFREV", "1"],
        &["BB.GET", "", "g"],
        &["BB.HAS", "", "nothing"],
        &["BB.CHANGES", "", "SINCE", "0"],
        &["BB.STATS", ""],
    ] {
        let a: redis::RedisResult<Value> = cmd(&mut embedded, parts).await;
        let b: redis::RedisResult<Value> = cmd(&mut remote, parts).await;
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{parts:?}");
    }
    let plain: Value = cmd(&mut remote, &["GET", "g"]).await.unwrap();
    assert_eq!(plain, Value::Nil, "on this engine the global scope is not the plain keyspace");
    // Its watch events reach a watcher on another node, on the embedded engine's channel.
    let mut watcher = nodes[1].client().get_async_pubsub().await.unwrap();
    watcher.psubscribe("__bb:*@__:*").await.unwrap();
    let _: i64 = cmd(&mut remote, &["BB.SET", "", "g", "v3"]).await.unwrap();
    let mut events = watcher.on_message();
    let m = tokio::time::timeout(Duration::from_secs(5), events.next()).await.expect("a set event").unwrap();
    assert_eq!(m.get_channel_name(), "__bb:set@__:g");
    let e: serde_json::Value = serde_json::from_slice(&m.get_payload::<Vec<u8>>().unwrap()).unwrap();
    assert_eq!((e["scope"].as_str(), e["revision"].as_i64(), e["value"].as_str()), (Some(""), Some(3), Some("v3")));
    // Listings: the same keys and entries in some order, and the same log position.
    for parts in [&["BB.KEYS", "s"][..], &["BB.KEYS", "s", "n*"], &["BB.GETALL", "s"], &["BB.GETALL", "s", "k"]] {
        let a: Value = cmd(&mut embedded, parts).await.unwrap();
        let b: Value = cmd(&mut remote, parts).await.unwrap();
        assert_eq!(listing(a), listing(b), "{parts:?}");
    }
    // BB.STATS after the listings and an expiry: the same counters.
    for c in [&mut embedded, &mut remote] {
        let _: i64 = cmd(c, &["BB.SET", "s", "short", "x", "PX", "20"]).await.unwrap();
    }
    let mut a = Value::Nil;
    for _ in 0..500 {
        a = cmd(&mut embedded, &["BB.STATS", "s"]).await.unwrap();
        if common::int(&common::field(&a, "expired")) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let b: Value = cmd(&mut remote, &["BB.STATS", "s"]).await.unwrap();
    assert_eq!(a, b);
    embedded_server.stop().await;
}

/// A BB.KEYS or BB.GETALL reply with its lists sorted (their order is the engine's own).
fn listing(v: Value) -> String {
    fn sorted(v: Value) -> Value {
        match v {
            Value::Array(items) => {
                let mut items: Vec<Value> = items.into_iter().map(sorted).collect();
                if items.iter().all(|i| matches!(i, Value::Array(_) | Value::BulkString(_))) && !items.is_empty() {
                    items.sort_by_key(|i| format!("{i:?}"));
                }
                Value::Array(items)
            }
            other => other,
        }
    }
    format!("{:?}", sorted(v))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_events_fire_on_time_on_every_node_with_the_expired_value() {
    let (_redis, nodes) = cluster("bb-expire").await;
    let mut watcher = watcher_on(&nodes[2], "__bb:expire@cache__:*").await;
    let mut c = nodes[0].conn().await;
    let _: i64 = cmd(&mut c, &["BB.SET", "cache", "token", "abc123", "PX", "100"]).await.unwrap();
    let ttl: Vec<Value> = cmd(&mut c, &["BB.GET", "cache", "token"]).await.unwrap();
    assert!(matches!(ttl[5], Value::Int(ms) if ms > 0 && ms <= 100), "{ttl:?}");
    let mut s = watcher.on_message();
    // Nobody reads or writes the scope: the sweep fires the event.
    let e = next_event(&mut s).await;
    assert_eq!((e["event"].as_str(), e["key"].as_str(), e["value"].as_str()), (Some("expire"), Some("token"), Some("abc123")), "{e}");
    let gone: Value = cmd(&mut c, &["BB.GET", "cache", "token"]).await.unwrap();
    assert_eq!(gone, Value::Nil);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_misses_no_revision_when_its_nodes_pubsub_connection_is_killed() {
    let (redis, nodes) = cluster("bb-gap").await;
    let mut watcher = watcher_on(&nodes[0], "__bb:*@gap__:*").await;
    // A node whose notice queue holds one: most notices find it full and are caught up from the log.
    let mut config = herald_broker::Config::for_tests();
    config.engine.notice_backlog = 1;
    let narrow = redis.node_with(config).await;
    let mut narrow_watcher = watcher_on(&narrow, "__bb:*@gap__:*").await;
    let mut writer = nodes[1].conn().await;
    let mut direct = redis.conn().await;
    let _: i64 = cmd(&mut writer, &["BB.SET", "gap", "k", "1"]).await.unwrap();
    // Kill every node's pub-sub connection, and write while they reconnect.
    let _: i64 = cmd(&mut direct, &["CLIENT", "KILL", "TYPE", "pubsub"]).await.unwrap();
    for v in 2..=20 {
        let _: i64 = cmd(&mut writer, &["BB.SET", "gap", "k", &v.to_string()]).await.unwrap();
    }
    for w in [&mut watcher, &mut narrow_watcher] {
        let mut s = w.on_message();
        for rev in 1..=20 {
            let e = next_event(&mut s).await;
            assert_eq!(e["revision"].as_i64(), Some(rev), "{e}");
            assert_eq!(e["value"], json!(rev.to_string()));
        }
    }
}
