//! Listings and scope-wide commands on the Redis engine (docs/scale-out.md): `BB.SCOPES` (both forms),
//! `BB.CLEAR`, `JOB.QUEUES`, `STREAM.LIST`, `BL.BOARDS` and `MSG.DESTS`, across nodes, with the same replies as the embedded engine for the same
//! data.

mod common;

use std::time::Duration;

use common::redis_server::RedisServer;
use common::{TestServer, cmd, start};
use futures_util::StreamExt;
use redis::Value;

/// The same writes on any node (or an embedded broker).
async fn fill(c: &mut redis::aio::MultiplexedConnection) {
    for (scope, key, value) in [("team:x", "k1", "v1"), ("team:x", "k2", "v2"), ("team:y", "k", "v"), ("other", "k", "v")] {
        let _: i64 = cmd(c, &["BB.SET", scope, key, value]).await.unwrap();
    }
    let _: i64 = cmd(c, &["BB.SET", "team:x", "k2", "v3", "PX", "100000"]).await.unwrap();
}

/// `BB.SCOPES 0 MATCH team:* COUNT 100`'s entries, sorted by scope (the cursor is each engine's own).
async fn team_page(node: &TestServer) -> Vec<Value> {
    let mut c = node.conn().await;
    let page: (String, Vec<Value>) = cmd(&mut c, &["BB.SCOPES", "0", "MATCH", "team:*", "COUNT", "100"]).await.unwrap();
    assert_eq!(page.0, "0", "one page holds them all");
    let mut entries = page.1;
    entries.sort_by_key(|e| format!("{e:?}"));
    entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_and_clear_across_nodes_answer_as_the_embedded_engine() {
    let redis = RedisServer::start("scopes").await;
    let (a, b) = (redis.node().await, redis.node().await);
    let embedded = start().await;
    let (mut ca, mut cb) = (a.conn().await, b.conn().await);
    fill(&mut ca).await;
    fill(&mut embedded.conn().await).await;

    // Every scope, from the other node.
    // Every scope, from the other node: the global scope `""` first, as on one node.
    let all: Vec<String> = cmd(&mut cb, &["BB.SCOPES"]).await.unwrap();
    let mut embedded_all: Vec<String> = cmd(&mut embedded.conn().await, &["BB.SCOPES"]).await.unwrap();
    assert_eq!(all[0], "");
    let mut sorted = all.clone();
    sorted.sort();
    embedded_all.sort();
    assert_eq!(sorted, ["", "other", "team:x", "team:y"]);
    assert_eq!(sorted, embedded_all);
    // A page by pattern: the same entries (keys, seq, journal) as the embedded engine's.
    let page = team_page(&b).await;
    assert_eq!(page.len(), 2, "{page:?}");
    assert_eq!(page, team_page(&embedded).await);
    // A small COUNT pages through every scope, each at least once.
    let (mut cursor, mut seen) = ("0".to_owned(), Vec::new());
    loop {
        let (next, entries): (String, Vec<Value>) = cmd(&mut cb, &["BB.SCOPES", &cursor, "COUNT", "1"]).await.unwrap();
        seen.extend(entries.iter().map(|e| common::text(&common::field(e, "scope"))));
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ["", "other", "team:x", "team:y"]);

    // BB.CLEAR on one node: a `del` event per key for a watcher on the other, the keys gone everywhere.
    let mut watcher = b.client().get_async_pubsub().await.unwrap();
    watcher.psubscribe("__bb:*@team:x__:*").await.unwrap();
    assert_eq!(cmd::<i64>(&mut ca, &["BB.CLEAR", "team:x"]).await.unwrap(), 2);
    let mut events = watcher.on_message();
    let mut channels = Vec::new();
    for _ in 0..2 {
        let m = tokio::time::timeout(Duration::from_secs(5), events.next()).await.expect("a del event").unwrap();
        channels.push(m.get_channel_name().to_owned());
    }
    channels.sort();
    assert_eq!(channels, ["__bb:del@team:x__:k1", "__bb:del@team:x__:k2"]);
    drop(events);
    assert_eq!(cmd::<Value>(&mut cb, &["BB.GET", "team:x", "k1"]).await.unwrap(), Value::Nil);
    assert_eq!(cmd::<i64>(&mut cb, &["BB.CLEAR", "team:x"]).await.unwrap(), 0);
    assert_eq!(cmd::<i64>(&mut embedded.conn().await, &["BB.CLEAR", "team:x"]).await.unwrap(), 2);
    assert_eq!(team_page(&a).await, team_page(&embedded).await, "after the clear too");

    assert_eq!(cmd::<i64>(&mut ca, &["BB.CLEAR", ""]).await.unwrap(), 0, "the global scope is empty");
}

/// The same queue traffic on any node (or an embedded broker): two queues, a job running, one dead.
async fn queue_traffic(c: &mut redis::aio::MultiplexedConnection) {
    for q in ["mail:send", "mail:send", "mail:bounce", "render"] {
        let _: String = cmd(c, &["JOB.SUBMIT", q, "{}"]).await.unwrap();
    }
    let _: Value = cmd(c, &["JOB.CLAIM", "mail:send"]).await.unwrap();
    let _: () = cmd(c, &["JOB.QUEUE", "render", "CONCURRENCY", "3"]).await.unwrap_or(());
    let claimed: Value = cmd(c, &["JOB.CLAIM", "mail:bounce"]).await.unwrap();
    let word = |v: Value| if let Value::Int(n) = v { n.to_string() } else { common::text(&v) };
    let (id, token) = (word(common::field(&claimed, "id")), word(common::field(&claimed, "token")));
    let _: Value = cmd(c, &["JOB.FAIL", &id, &token, "boom", "NORETRY"]).await.unwrap();
}

/// `JOB.QUEUES 0 MATCH mail:* COUNT 100`'s entries, sorted.
async fn mail_queues(node: &TestServer) -> Vec<Value> {
    page(node, &["JOB.QUEUES", "0", "MATCH", "mail:*", "COUNT", "100"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_queues_across_nodes_answer_as_the_embedded_engine() {
    let redis = RedisServer::start("queues").await;
    let (a, b) = (redis.node().await, redis.node().await);
    let embedded = start().await;
    queue_traffic(&mut a.conn().await).await;
    queue_traffic(&mut embedded.conn().await).await;
    let page = mail_queues(&b).await;
    assert_eq!(page.len(), 2, "{page:?}");
    assert_eq!(page, mail_queues(&embedded).await);
    // Every queue, paging with a small COUNT.
    let mut cb = b.conn().await;
    let (mut cursor, mut seen) = ("0".to_owned(), Vec::new());
    loop {
        let (next, entries): (String, Vec<Value>) = cmd(&mut cb, &["JOB.QUEUES", &cursor, "COUNT", "1"]).await.unwrap();
        seen.extend(entries.iter().map(|e| common::text(&common::field(e, "queue"))));
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ["mail:bounce", "mail:send", "render"]);
}

/// `STREAM.LIST 0 MATCH wf:* COUNT 100`'s entries without their epochs (each engine numbers epochs its
/// own way), sorted.
async fn wf_streams(node: &TestServer) -> Vec<Vec<Value>> {
    let mut c = node.conn().await;
    let page: (String, Vec<Value>) = cmd(&mut c, &["STREAM.LIST", "0", "MATCH", "wf:*", "COUNT", "100"]).await.unwrap();
    assert_eq!(page.0, "0");
    let mut entries: Vec<Vec<Value>> = page
        .1
        .into_iter()
        .map(|e| {
            let Value::Array(fields) = e else { panic!("an entry is a flat map in RESP2: {e:?}") };
            fields.chunks(2).filter(|kv| kv[0] != Value::BulkString(b"epoch".to_vec())).flat_map(|kv| kv.to_vec()).collect()
        })
        .collect();
    entries.sort_by_key(|e| format!("{e:?}"));
    entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_list_across_nodes_answers_as_the_embedded_engine() {
    let redis = RedisServer::start("streamlist").await;
    let (a, b) = (redis.node().await, redis.node().await);
    let embedded = start().await;
    for node in [&a, &embedded] {
        let mut c = node.conn().await;
        for (key, data) in [("wf:render", "a"), ("wf:render", "b"), ("wf:mail", "x"), ("other", "y")] {
            let _: i64 = cmd(&mut c, &["STREAM.WRITE", key, data]).await.unwrap();
        }
        let _: i64 = cmd(&mut c, &["STREAM.CLOSE", "wf:mail"]).await.unwrap();
    }
    let page = wf_streams(&b).await;
    assert_eq!(page.len(), 2, "{page:?}");
    assert_eq!(page, wf_streams(&embedded).await);
}

/// The same board and mailbox traffic on any node (or an embedded broker): boards in two scopes, one
/// item leased, one board configured empty; mailboxes with messages on two topics, one emptied, one
/// with only a bound of its own.
async fn board_and_mail_traffic(c: &mut redis::aio::MultiplexedConnection) {
    for args in [&["tasks", "{}"][..], &["tasks", "{}"], &["tasks", "{}", "SCOPE", "team:x"], &["tally", "{}"]] {
        let _: String = cmd(c, &[&["BL.PUBLISH"][..], args].concat()).await.unwrap();
    }
    let _: Value = cmd(c, &["BL.RETRIEVE", "tasks", "LOCK", "600000"]).await.unwrap();
    let _: () = cmd(c, &["BL.CONFIG", "quiet", "MAXLEN", "5", "SCOPE", "team:x"]).await.unwrap();
    for (dest, topic) in [("wf:1", "a"), ("wf:1", "b"), ("wf:1", "b"), ("wf:1", ""), ("wf:2", "a")] {
        let _: Value = cmd(c, &["MSG.SEND", dest, topic, "m"]).await.unwrap();
    }
    let _: Value = cmd(c, &["MSG.RECV", "wf:2", "a"]).await.unwrap();
    let _: () = cmd(c, &["MSG.CONFIG", "wf:3", "MAXLEN", "7"]).await.unwrap();
}

/// A listing's page (one page holds it all), entries sorted (the cursor is each engine's own).
async fn page(node: &TestServer, args: &[&str]) -> Vec<Value> {
    let mut c = node.conn().await;
    let page: (String, Vec<Value>) = cmd(&mut c, args).await.unwrap();
    assert_eq!(page.0, "0", "{args:?}");
    let mut entries = page.1;
    entries.sort_by_key(|e| format!("{e:?}"));
    entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boards_and_destinations_across_nodes_answer_as_the_embedded_engine() {
    let redis = RedisServer::start("boards_dests").await;
    let (a, b) = (redis.node().await, redis.node().await);
    let embedded = start().await;
    board_and_mail_traffic(&mut a.conn().await).await;
    board_and_mail_traffic(&mut embedded.conn().await).await;
    for (args, expected) in [
        (&["BL.BOARDS", "0", "COUNT", "100"][..], 4),
        (&["BL.BOARDS", "0", "SCOPE", "team:x", "COUNT", "100"], 2),
        (&["BL.BOARDS", "0", "MATCH", "ta*", "COUNT", "100"], 3),
        (&["BL.BOARDS", "0", "SCOPE", "", "MATCH", "ta*", "COUNT", "100"], 2),
        (&["MSG.DESTS", "0", "COUNT", "100"], 2),
        (&["MSG.DESTS", "0", "MATCH", "wf:[12]", "COUNT", "100"], 1),
    ] {
        let listed = page(&b, args).await;
        assert_eq!(listed.len(), expected, "{args:?}: {listed:?}");
        assert_eq!(listed, page(&embedded, args).await, "{args:?}");
    }
}
