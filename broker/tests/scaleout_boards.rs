//! Bulletin boards, mailboxes and Herald streams across several Herald nodes on the Redis engine, sharing one real
//! redis-server (docs/scale-out.md): leases taken over on another node, deadlines fired by the nodes'
//! sweep with nobody touching the board, messages received exactly once by receivers on every node,
//! requests answered from another node, streams resumed by offset on another node. (The same with a node `kill -9`ed: tests/e2e/scaleout_boards.sh.)

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::redis_server::RedisServer;
use common::{TestServer, cmd, fields, text, until_blocked};
use futures_util::StreamExt;
use redis::Value;

async fn nodes(name: &str, n: usize) -> (RedisServer, Vec<TestServer>) {
    let redis = RedisServer::start(name).await;
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(redis.node().await);
    }
    (redis, nodes)
}

/// The next event on a board's channel, as JSON.
async fn next_event(stream: &mut (impl futures_util::Stream<Item = redis::Msg> + Unpin)) -> serde_json::Value {
    let msg = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("an event within 5 s").expect("open");
    serde_json::from_slice(&msg.get_payload::<Vec<u8>>().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_whose_holder_node_is_gone_is_taken_over_on_another_node_and_the_old_token_is_refused() {
    let (_redis, mut nodes) = nodes("bl-takeover", 3).await;
    let mut watcher = nodes[2].client().get_async_pubsub().await.unwrap();
    watcher.subscribe("__bl@__:q").await.unwrap();
    let mut events = watcher.on_message();
    let mut a = nodes[0].conn().await;
    let id: String = cmd(&mut a, &["BL.PUBLISH", "q", r#"{"task": 1}"#]).await.unwrap();
    let held = fields(cmd(&mut a, &["BL.RETRIEVE", "q", "LOCK", "300"]).await.unwrap());
    assert_eq!(text(&held["id"]), id);
    let stale = common::int(&held["token"]).to_string();
    // The holder's node goes away with the lease; the lease is Redis's, and runs out there.
    drop(a);
    nodes.remove(0).stop().await;
    let mut b = nodes[0].conn().await;
    assert_eq!(cmd::<Value>(&mut b, &["BL.RETRIEVE", "q", "LOCK", "10000"]).await.unwrap(), Value::Nil, "still leased");
    // With nobody touching the board, a node's sweep returns the item when the lease ends.
    for expected in ["publish", "lock", "lease-expired"] {
        assert_eq!(next_event(&mut events).await["event"], expected);
    }
    let taken = fields(cmd(&mut b, &["BL.RETRIEVE", "q", "LOCK", "10000", "BLOCK", "5000"]).await.unwrap());
    assert_eq!((text(&taken["id"]), common::int(&taken["failed_leases"])), (id.clone(), 1));
    let token = common::int(&taken["token"]).to_string();
    for stale_use in [&["BL.REMOVE", "q", &id, &stale][..], &["BL.EXTEND", "q", &id, &stale, "1000"], &["BL.RELEASE", "q", &id, &stale]] {
        let err = cmd::<Value>(&mut b, stale_use).await.unwrap_err();
        assert_eq!(err.code(), Some("LEASE"), "{stale_use:?}");
    }
    assert_eq!(cmd::<i64>(&mut b, &["BL.REMOVE", "q", &id, &token]).await.unwrap(), 1);
    assert_eq!(next_event(&mut events).await["event"], "lock");
    assert_eq!(next_event(&mut events).await["event"], "remove");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_ttls_fire_from_the_sweep_and_a_retriever_blocked_on_one_node_is_woken_by_a_publish_on_another() {
    let (_redis, nodes) = nodes("bl-wake", 2).await;
    let mut watcher = nodes[1].client().get_async_pubsub().await.unwrap();
    watcher.subscribe("__bl@team__:notes").await.unwrap();
    let mut events = watcher.on_message();
    let mut a = nodes[0].conn().await;
    let _: String = cmd(&mut a, &["BL.PUBLISH", "notes", r#"{"n": 1}"#, "SCOPE", "team", "TTL", "100"]).await.unwrap();
    assert_eq!(next_event(&mut events).await["event"], "publish");
    let expired = next_event(&mut events).await;
    assert_eq!(
        (expired["event"].as_str(), expired["item"]["n"].as_i64(), expired["scope"].as_str()),
        (Some("expire"), Some(1), Some("team"))
    );
    assert_eq!(cmd::<i64>(&mut a, &["BL.LEN", "notes", "SCOPE", "team"]).await.unwrap(), 0);

    let mut waiter = nodes[1].conn().await;
    let blocked = tokio::spawn(async move {
        cmd::<Value>(&mut waiter, &["BL.RETRIEVE", "notes", "SCOPE", "team", "WHERE", "n", ">", "1", "LOCK", "1000", "BLOCK", "0"])
            .await
            .unwrap()
    });
    until_blocked(&nodes[1], 1).await;
    let _: String = cmd(&mut a, &["BL.PUBLISH", "notes", r#"{"n": 1}"#, "SCOPE", "team"]).await.unwrap();
    let id: String = cmd(&mut a, &["BL.PUBLISH", "notes", r#"{"n": 2}"#, "SCOPE", "team"]).await.unwrap();
    let got = fields(blocked.await.unwrap());
    assert_eq!(text(&got["id"]), id, "the matching item, not the first one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_blocked_on_every_node_get_each_message_exactly_once() {
    let (_redis, nodes) = nodes("msg-once", 3).await;
    let mut receivers = Vec::new();
    for node in &nodes {
        for _ in 0..2 {
            let mut c = node.conn().await;
            receivers.push(tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(m) = cmd::<Option<String>>(&mut c, &["MSG.RECV", "work", "t", "TIMEOUT", "500"]).await.unwrap() {
                    got.push(m);
                }
                got
            }));
        }
    }
    for node in &nodes {
        until_blocked(node, 2).await;
    }
    let mut s = nodes[0].conn().await;
    for i in 0..300 {
        let _: i64 = cmd(&mut s, &["MSG.SEND", "work", "t", &format!("m{i:03}")]).await.unwrap();
    }
    let mut all = Vec::new();
    for r in receivers {
        let got = r.await.unwrap();
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(got, sorted, "each receiver sees its messages in send order");
        all.extend(got);
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!((all.len(), unique.len()), (300, 300), "every message received exactly once, across nodes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_on_one_node_is_answered_by_a_replier_on_another() {
    let (_redis, nodes) = nodes("msg-request", 2).await;
    let mut service = nodes[1].conn().await;
    let replier = tokio::spawn(async move {
        for _ in 0..3 {
            let request: Value = cmd(&mut service, &["MSG.RECV", "calc", "square", "TIMEOUT", "5000"]).await.unwrap();
            let request = fields(request);
            let n: i64 = text(&request["payload"]).parse().unwrap();
            let answered: i64 = cmd(&mut service, &["MSG.REPLY", &text(&request["reply_to"]), &(n * n).to_string()]).await.unwrap();
            assert_eq!(answered, 1);
        }
    });
    let mut client = nodes[0].conn().await;
    for n in 1..=3 {
        let answer: String = cmd(&mut client, &["MSG.REQUEST", "calc", "square", &n.to_string(), "TIMEOUT", "5000"]).await.unwrap();
        assert_eq!(answer, (n * n).to_string());
    }
    replier.await.unwrap();
    // No replier: the requester's deadline answers nil, and a late reply is refused on any node.
    let nobody: Value = cmd(&mut client, &["MSG.REQUEST", "calc", "cube", "3", "TIMEOUT", "50"]).await.unwrap();
    assert_eq!(nobody, Value::Nil);
    let mut late = nodes[1].conn().await;
    assert_eq!(cmd::<Value>(&mut late, &["MSG.RECV", "calc", "cube"]).await.unwrap(), Value::Nil, "expired: dropped unread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_and_publishers_waiting_for_room_on_one_node_are_let_in_by_a_receiver_on_another() {
    let (_redis, nodes) = nodes("room", 2).await;
    let mut a = nodes[0].conn().await;
    let _: () = cmd(&mut a, &["MSG.CONFIG", "inbox", "MAXLEN", "1"]).await.unwrap();
    let _: i64 = cmd(&mut a, &["MSG.SEND", "inbox", "", "first"]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut a, &["MSG.SEND", "inbox", "", "x"]).await.unwrap_err().code(), Some("FULL"));
    let _: () = cmd(&mut a, &["BL.CONFIG", "b", "MAXLEN", "1"]).await.unwrap();
    let id: String = cmd(&mut a, &["BL.PUBLISH", "b", "1"]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut a, &["BL.PUBLISH", "b", "2"]).await.unwrap_err().code(), Some("FULL"));
    let mut waiting = nodes[0].conn().await;
    let sender = tokio::spawn(async move {
        let sent: i64 = cmd(&mut waiting, &["MSG.SEND", "inbox", "", "second", "BLOCK", "0"]).await.unwrap();
        let published: String = cmd(&mut waiting, &["BL.PUBLISH", "b", "2", "BLOCK", "5000"]).await.unwrap();
        (sent, published)
    });
    until_blocked(&nodes[0], 1).await;
    let mut b = nodes[1].conn().await;
    assert_eq!(cmd::<String>(&mut b, &["MSG.RECV", "inbox", ""]).await.unwrap(), "first");
    until_blocked(&nodes[0], 1).await;
    assert_eq!(cmd::<i64>(&mut b, &["BL.REMOVE", "b", &id]).await.unwrap(), 1);
    let (_, published) = sender.await.unwrap();
    assert_ne!(published, id);
    assert_eq!(cmd::<String>(&mut b, &["MSG.RECV", "inbox", ""]).await.unwrap(), "second");
    // Nil when the wait runs out, nothing published.
    let timed_out: Value = cmd(&mut a, &["BL.PUBLISH", "b", "3", "BLOCK", "50"]).await.unwrap();
    assert_eq!(timed_out, Value::Nil);
    assert_eq!(cmd::<i64>(&mut b, &["BL.LEN", "b"]).await.unwrap(), 1);
}

/// Commands of every board, mailbox and stream kind, compared between the engines with the parts that
/// are the engine's own (ids, times, tokens) blanked.
const SCRIPT: &[&[&str]] = &[
    &["BL.PUBLISH", "b", r#"{"k": "v", "n": 2, "tags": ["x", "y"], "o": {"a": null}}"#],
    &["BL.PUBLISH", "b", "{not json"],
    &["BL.RETRIEVE", "b", "WHERE", "n", "=", "2.0", "tags.1", "=", "y", "k", ">=", "u"],
    &["BL.RETRIEVE", "b", "WHERE", "o.a", "=", "null"],
    &["BL.RETRIEVE", "b", "WHERE", "o", "=", r#"{"a": null}"#],
    &["BL.RETRIEVE", "b", "WHERE", "missing", "!=", "1", "k", "<", "w"],
    &["BL.RETRIEVE", "b", "WHERE", "missing", "<", "1"],
    &["BL.RETRIEVE", "b", "WHERE", "k", ">", "3"],
    &["BL.RETRIEVE", "b", "WHERE", "tags.2", "=", "z"],
    &["BL.ALL", "b", "LIMIT", "0"],
    &["BL.LEN", "b"],
    &["BL.GET", "b", "nope"],
    &["BL.EXTEND", "b", "nope", "1", "100"],
    &["BL.RELEASE", "b", "nope", "1"],
    &["BL.REMOVE", "b", "nope"],
    &["BL.REDRIVE", "b", "nope"],
    &["BL.DEAD", "b"],
    &["MSG.SEND", "d", "t", "p", "IDEMPOTENCY", "k"],
    &["MSG.SEND", "d", "t", "p", "IDEMPOTENCY", "k"],
    &["MSG.LEN", "d"],
    &["MSG.LEN", "d", "other"],
    &["MSG.RECV", "d", "t"],
    &["MSG.RECV", "d", "t"],
    &["MSG.CONFIG", "d", "MAXLEN", "100001"],
    &["MSG.REPLY", "12345", "x"],
    &["STREAM.WRITE", "s", "a"],
    &["STREAM.WRITE", "s", "b"],
    &["STREAM.READ", "s", "FROM", "0", "COUNT", "1"],
    &["STREAM.READ", "s", "FROM", "5"],
    &["STREAM.INFO", "s"],
    &["STREAM.CLOSE", "s"],
    &["STREAM.CLOSE", "s"],
    &["STREAM.WRITE", "s", "late"],
    &["STREAM.READ", "s", "FROM", "1"],
    &["STREAM.READ", "s", "FROM", "2"],
    &["STREAM.INFO", "missing"],
    &["STREAM.READ", "missing", "EPOCH", "3"],
    &["STREAM.CONFIG", "c", "MAXLEN", "2"],
    &["STREAM.WRITE", "c", "1"],
    &["STREAM.WRITE", "c", "2"],
    &["STREAM.WRITE", "c", "3"],
    &["STREAM.READ", "c", "FROM", "0"],
    &["STREAM.READ", "c", "FROM", "1"],
    &["STREAM.DEL", "s", "missing", "c"],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn board_mailbox_and_stream_replies_match_the_embedded_engine() {
    let (_redis, nodes) = nodes("bl-same", 1).await;
    let embedded_server = common::start().await;
    let mut embedded = embedded_server.conn().await;
    let mut remote = nodes[0].conn().await;
    let script = SCRIPT;
    for parts in script {
        let a: redis::RedisResult<Value> = cmd(&mut embedded, parts).await;
        let b: redis::RedisResult<Value> = cmd(&mut remote, parts).await;
        // A publish's reply is the new id: its shape is compared.
        let id = |r: redis::RedisResult<Value>| match r {
            Ok(Value::BulkString(id)) if parts[0] == "BL.PUBLISH" && id.contains(&b'-') => Ok(Value::Okay),
            other => other,
        };
        assert_eq!(blank(id(a)), blank(id(b)), "{parts:?}");
    }
    // The listings of what the script left (entries sorted: each engine's cursor order is its own).
    for listing in [&["BL.BOARDS", "0", "COUNT", "100"][..], &["MSG.DESTS", "0", "COUNT", "100"]] {
        let sorted = |(cursor, mut entries): (String, Vec<Value>)| {
            entries.sort_by_key(|e| format!("{e:?}"));
            (cursor, entries)
        };
        let a: (String, Vec<Value>) = cmd(&mut embedded, listing).await.unwrap();
        let b: (String, Vec<Value>) = cmd(&mut remote, listing).await.unwrap();
        assert_eq!(sorted(a), sorted(b), "{listing:?}");
    }
    embedded_server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_written_on_one_node_is_followed_on_another_and_resumed_by_offset_on_a_third() {
    let (_redis, mut nodes) = nodes("stream-resume", 3).await;
    let mut writer = nodes[0].conn().await;
    let mut reader = nodes[1].conn().await;
    let follower = tokio::spawn(async move {
        cmd::<Value>(&mut reader, &["STREAM.READ", "progress", "FROM", "0", "COUNT", "2", "BLOCK", "5000"]).await.unwrap()
    });
    until_blocked(&nodes[1], 1).await;
    for i in 0..5 {
        assert_eq!(cmd::<i64>(&mut writer, &["STREAM.WRITE", "progress", &format!("step {i}")]).await.unwrap(), i);
    }
    let first = fields(follower.await.unwrap());
    let seen = common::int(&first["next"]);
    assert!((1..=2).contains(&seen), "woken by the first write: {first:?}");
    // The reader's node goes away; it resumes on another node from the offset it saw last.
    nodes.remove(1).stop().await;
    let mut resumed = nodes[1].conn().await;
    let _: i64 = cmd(&mut writer, &["STREAM.CLOSE", "progress"]).await.unwrap();
    let rest = fields(cmd(&mut resumed, &["STREAM.READ", "progress", "FROM", &seen.to_string()]).await.unwrap());
    let Value::Array(entries) = &rest["entries"] else { panic!("{rest:?}") };
    let offsets: Vec<i64> = entries.iter().map(|e| if let Value::Array(p) = e { common::int(&p[0]) } else { -1 }).collect();
    assert_eq!(offsets, (seen..5).collect::<Vec<_>>(), "from where it left off, nothing missed");
    assert_eq!((common::int(&rest["next"]), &rest["closed"]), (5, &Value::Int(1)), "everything, then the end");
}

/// A reply with ids, times and tokens blanked (they are each engine's own), errors as their text.
/// The same commands as one pipeline, sent as the first requests of a fresh node (its connection to Redis
/// not made, the scripts not loaded), answer as the embedded engine's, in order: the mailbox and stream
/// operations go on to Redis pipelined with the boards' (which wait their turn).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_commands_pipelined_answer_as_on_the_embedded_engine() {
    let (_redis, nodes) = nodes("bl-same-pipelined", 1).await;
    let embedded_server = common::start().await;
    let pipeline = |mut conn: redis::aio::MultiplexedConnection| async move { common::pipeline(&mut conn, SCRIPT).await };
    let a = pipeline(embedded_server.conn().await).await;
    let b = pipeline(nodes[0].conn().await).await;
    assert_eq!(a.len(), SCRIPT.len());
    for ((a, b), parts) in a.into_iter().zip(b).zip(SCRIPT) {
        let id = |v: Value| match v {
            Value::BulkString(id) if parts[0] == "BL.PUBLISH" && id.contains(&b'-') => Value::Okay,
            other => other,
        };
        assert_eq!(blank(Ok(id(a))), blank(Ok(id(b))), "{parts:?}");
    }
    embedded_server.stop().await;
}

fn blank(r: redis::RedisResult<Value>) -> String {
    fn walk(v: Value) -> Value {
        match v {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut own = false;
                for item in items {
                    out.push(if own { Value::Okay } else { walk(item.clone()) });
                    own = matches!(&item, Value::BulkString(k) if [&b"id"[..], b"published", b"token", b"lease_expires", b"epoch"].contains(&&k[..]));
                }
                Value::Array(out)
            }
            other => other,
        }
    }
    match r {
        Ok(v) => format!("{:?}", walk(v)),
        Err(e) => format!("error {e}"),
    }
}

/// Two nodes whose fallback poll for blocking commands is `poll_ms` (`engine.wait_poll_ms`).
async fn polling_every(name: &str, poll_ms: u64) -> (RedisServer, Vec<TestServer>) {
    let redis = RedisServer::start(name).await;
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let mut config = herald_broker::Config::for_tests();
        config.engine.wait_poll_ms = poll_ms;
        nodes.push(redis.node_with(config).await);
    }
    (redis, nodes)
}

/// A blocked command on node A (each in turn) and the operation on node B that lets it in.
type Wake<'a> = (&'a [&'a str], Vec<String>);

async fn holder_token(b: &mut redis::aio::MultiplexedConnection) -> String {
    cmd::<i64>(b, &["SEM.ACQUIRE", "m", "1"]).await.unwrap().to_string()
}

fn wakes(token: &str) -> Vec<Wake<'static>> {
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        (&["BL.RETRIEVE", "b", "LOCK", "60000", "BLOCK", "0"], own(&["BL.PUBLISH", "b", "1"])),
        (&["MSG.RECV", "d", "t", "TIMEOUT", "0"], own(&["MSG.SEND", "d", "t", "hi"])),
        (&["STREAM.READ", "s", "FROM", "0", "BLOCK", "0"], own(&["STREAM.WRITE", "s", "x"])),
        (&["SEM.ACQUIRE", "m", "1", "BLOCK", "0"], own(&["SEM.RELEASE", "m", token])),
    ]
}

/// Runs each wait on node A and its operation on node B; `between` runs while A's client is blocked.
async fn woken_across_nodes<F: std::future::Future<Output = ()>>(nodes: &[TestServer], mut between: impl FnMut(&'static str) -> F) {
    let mut b = nodes[1].conn().await;
    let token = holder_token(&mut b).await;
    for (wait, op) in wakes(&token) {
        let mut a = nodes[0].conn().await;
        let waiter = tokio::spawn(async move { cmd::<Value>(&mut a, wait).await.unwrap() });
        until_blocked(&nodes[0], 1).await;
        between(wait[0]).await;
        let op: Vec<&str> = op.iter().map(|s| s.as_str()).collect();
        let _: Value = cmd(&mut b, &op).await.unwrap();
        // Generous: a wait served by nothing would block for the whole poll, far longer.
        let got = tokio::time::timeout(Duration::from_secs(60), waiter).await.expect("woken").unwrap();
        assert_ne!(got, Value::Nil, "{} was served", wait[0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_on_one_node_are_woken_by_the_notice_of_an_operation_on_another() {
    // A ten-minute fallback poll: only the wake-up notice, published because each blocked command
    // marked its object as waited on, can end these waits.
    let (_redis, nodes) = polling_every("wake-marked", 600_000).await;
    woken_across_nodes(&nodes, |_| async {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_whose_marker_is_gone_is_served_by_the_fallback_poll() {
    // The marker each blocked command set is deleted before the operation (as if it had expired), so
    // the operation publishes nothing; the waiter's poll re-checks and finds what was let in.
    let (redis, nodes) = polling_every("wake-lost", 300).await;
    let backing = redis.conn().await;
    woken_across_nodes(&nodes, |what| {
        let mut backing = backing.clone();
        async move {
            let marker = match what {
                "BL.RETRIEVE" => "herald:bl:{0::b}:waiting",
                "MSG.RECV" => "herald:msg:{d}:waiting",
                "STREAM.READ" => "herald:stream:{s}:waiting",
                _ => "herald:sem:{m}:waiting",
            };
            let gone: i64 = redis::cmd("DEL").arg(marker).query_async(&mut backing).await.unwrap();
            assert_eq!(gone, 1, "{what} marked {marker} while it waited");
        }
    })
    .await;
}
