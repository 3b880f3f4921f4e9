//! Bulletin boards through a real client: the seeds' work-queue pattern, leases that come back when a
//! worker dies, filters on nested fields, overflow, stale tokens, blocking retrieve and events; each on
//! the embedded engine and on the Redis engine (a node backed by a real redis-server).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{TestServer, cmd, fields, text, until_blocked};
use futures_util::StreamExt;
use redis::Value;

/// (id, item JSON, token) of a locked retrieve, or None.
async fn take(c: &mut redis::aio::MultiplexedConnection, args: &[&str]) -> Option<(String, serde_json::Value, String)> {
    let mut parts = vec!["BL.RETRIEVE"];
    parts.extend_from_slice(args);
    let v: Value = cmd(c, &parts).await.unwrap();
    if v == Value::Nil {
        return None;
    }
    let f = fields(v);
    let token = match &f["token"] {
        Value::Int(t) => t.to_string(),
        other => panic!("{other:?}"),
    };
    Some((text(&f["id"]), serde_json::from_str(&text(&f["item"])).unwrap(), token))
}

async fn work_queue_three_workers_process_every_item_exactly_once(server: &TestServer) {
    let mut producer = server.conn().await;
    for i in 0..1000 {
        let item = format!(r#"{{"task_id": "task_{i:04}", "action": "process_data", "status": "pending"}}"#);
        let _: String = cmd(&mut producer, &["BL.PUBLISH", "requests", &item]).await.unwrap();
    }
    let mut workers = Vec::new();
    for w in 0..3 {
        let mut c = server.conn().await;
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            while let Some((id, item, token)) = take(&mut c, &["requests", "WHERE", "status", "=", "pending", "LOCK", "60000"]).await {
                let result = format!(r#"{{"task_id": {}, "status": "completed", "processed_by": "worker_{w}"}}"#, item["task_id"]);
                let _: String = cmd(&mut c, &["BL.PUBLISH", "results", &result]).await.unwrap();
                assert_eq!(cmd::<i64>(&mut c, &["BL.REMOVE", "requests", &id, &token]).await.unwrap(), 1);
                done.push(item["task_id"].as_str().unwrap().to_owned());
            }
            done
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!((all.len(), unique.len()), (1000, 1000));
    assert_eq!(cmd::<i64>(&mut producer, &["BL.LEN", "results"]).await.unwrap(), 1000);
    assert_eq!(cmd::<i64>(&mut producer, &["BL.LEN", "requests"]).await.unwrap(), 0);
}

async fn a_worker_that_dies_holding_a_lease_loses_the_item_to_another(server: &TestServer) {
    let mut producer = server.conn().await;
    for i in 0..20 {
        let _: String = cmd(&mut producer, &["BL.PUBLISH", "q", &format!(r#"{{"n": {i}}}"#)]).await.unwrap();
    }
    let mut doomed = server.conn().await;
    let (lost_id, _, stale_token) = take(&mut doomed, &["q", "LOCK", "150"]).await.unwrap();
    drop(doomed);
    let mut survivors = Vec::new();
    for _ in 0..2 {
        let mut c = server.conn().await;
        survivors.push(tokio::spawn(async move {
            let mut done = Vec::new();
            while let Some((id, _, token)) = take(&mut c, &["q", "LOCK", "10000", "BLOCK", "600"]).await {
                let _: i64 = cmd(&mut c, &["BL.REMOVE", "q", &id, &token]).await.unwrap();
                done.push(id);
            }
            done
        }));
    }
    let mut done = Vec::new();
    for s in survivors {
        done.extend(s.await.unwrap());
    }
    let unique: HashSet<_> = done.iter().collect();
    assert_eq!((done.len(), unique.len()), (20, 20), "every item processed once, the lost one after its lease ran out");
    assert!(done.contains(&lost_id));
    let mut late = server.conn().await;
    let err = cmd::<i64>(&mut late, &["BL.REMOVE", "q", &lost_id, &stale_token]).await;
    assert_eq!(err.unwrap(), 0, "already removed by the survivor");
}

async fn filters_on_nested_fields_and_comparisons(server: &TestServer) {
    let mut c = server.conn().await;
    for (file, size) in [("a.csv", 10), ("data.csv", 500), ("b.json", 50)] {
        let item = format!(r#"{{"action": "process_data", "params": {{"file": "{file}", "size": {size}}}}}"#);
        let _: String = cmd(&mut c, &["BL.PUBLISH", "jobs", &item]).await.unwrap();
    }
    let first = fields(cmd(&mut c, &["BL.RETRIEVE", "jobs", "WHERE", "params.file", "=", "data.csv"]).await.unwrap());
    assert!(text(&first["item"]).contains("data.csv"));
    let big: Vec<Value> =
        cmd(&mut c, &["BL.ALL", "jobs", "WHERE", "params.size", ">=", "50", "action", "=", "process_data"]).await.unwrap();
    assert_eq!(big.len(), 2);
    let small: Vec<Value> = cmd(&mut c, &["BL.ALL", "jobs", "WHERE", "params.size", "<", "50"]).await.unwrap();
    assert_eq!(small.len(), 1);
    let none: Vec<Value> = cmd(&mut c, &["BL.ALL", "jobs", "WHERE", "params.file", "!=", "a.csv", "LIMIT", "1"]).await.unwrap();
    assert_eq!(none.len(), 1);
    let err = cmd::<Value>(&mut c, &["BL.ALL", "jobs", "WHERE", "x", "~", "1"]).await.unwrap_err();
    assert!(err.detail().unwrap().contains("unknown comparison"));
    let err = cmd::<String>(&mut c, &["BL.PUBLISH", "jobs", "{not json"]).await.unwrap_err();
    assert!(err.detail().unwrap().contains("not valid JSON"));
}

async fn overflow_both_ways_scopes_and_stale_tokens(server: &TestServer) {
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["BL.CONFIG", "bounded", "MAXLEN", "2", "OVERFLOW", "reject-new"]).await.unwrap();
    let _: String = cmd(&mut c, &["BL.PUBLISH", "bounded", "1"]).await.unwrap();
    let _: String = cmd(&mut c, &["BL.PUBLISH", "bounded", "2"]).await.unwrap();
    let err = cmd::<String>(&mut c, &["BL.PUBLISH", "bounded", "3"]).await.unwrap_err();
    assert_eq!(err.code(), Some("FULL"));
    let _: () = cmd(&mut c, &["BL.CONFIG", "bounded", "OVERFLOW", "drop-oldest"]).await.unwrap();
    let _: String = cmd(&mut c, &["BL.PUBLISH", "bounded", "3"]).await.unwrap();
    let items: Vec<Value> = cmd(&mut c, &["BL.ALL", "bounded"]).await.unwrap();
    let kept: Vec<String> = items.into_iter().map(|v| text(&fields(v)["item"])).collect();
    assert_eq!(kept, ["2", "3"]);
    let _: String = cmd(&mut c, &["BL.PUBLISH", "board", r#"{"s": 1}"#, "SCOPE", "team-a"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["BL.LEN", "board", "SCOPE", "team-a"]).await.unwrap(), 1);
    assert_eq!(cmd::<i64>(&mut c, &["BL.LEN", "board"]).await.unwrap(), 0, "scopes isolate boards");
    let (id, _, token) = take(&mut c, &["board", "SCOPE", "team-a", "LOCK", "5000"]).await.unwrap();
    let err = cmd::<()>(&mut c, &["BL.RELEASE", "board", &id, "999999", "SCOPE", "team-a"]).await.unwrap_err();
    assert_eq!(err.code(), Some("LEASE"));
    let err = cmd::<i64>(&mut c, &["BL.REMOVE", "board", &id, "SCOPE", "team-a"]).await.unwrap_err();
    assert_eq!(err.code(), Some("LEASE"), "a locked item is not removed without its token");
    let _: i64 = cmd(&mut c, &["BL.EXTEND", "board", &id, &token, "10000", "SCOPE", "team-a"]).await.unwrap();
    let _: () = cmd(&mut c, &["BL.RELEASE", "board", &id, &token, "SCOPE", "team-a"]).await.unwrap();
    let item = fields(cmd(&mut c, &["BL.GET", "board", &id, "SCOPE", "team-a"]).await.unwrap());
    assert_eq!(item["failed_leases"], Value::Int(1));
    assert!(!item.contains_key("token"), "released");
}

async fn blocking_retrieve_wakes_on_publish_and_on_lease_expiry(server: &TestServer) {
    let mut waiter = server.conn().await;
    let blocked =
        tokio::spawn(async move { take(&mut waiter, &["inbox", "WHERE", "kind", "=", "urgent", "LOCK", "100", "BLOCK", "5000"]).await });
    until_blocked(server, 1).await;
    let mut producer = server.conn().await;
    let _: String = cmd(&mut producer, &["BL.PUBLISH", "inbox", r#"{"kind": "routine"}"#]).await.unwrap();
    let _: String = cmd(&mut producer, &["BL.PUBLISH", "inbox", r#"{"kind": "urgent"}"#]).await.unwrap();
    let (id, item, _) = blocked.await.unwrap().unwrap();
    assert_eq!(item["kind"], "urgent", "the non-matching publish did not wake it");
    // A second retriever waits for the first lease (100 ms) to run out.
    let mut second = server.conn().await;
    let again = take(&mut second, &["inbox", "WHERE", "kind", "=", "urgent", "LOCK", "1000", "BLOCK", "5000"]).await.unwrap();
    assert_eq!(again.0, id);
}

async fn dead_letters_after_max_leases_and_redrive(server: &TestServer) {
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["BL.CONFIG", "flaky", "MAXLEASES", "2"]).await.unwrap();
    let id: String = cmd(&mut c, &["BL.PUBLISH", "flaky", r#"{"x": 1}"#]).await.unwrap();
    for _ in 0..2 {
        let (_, _, token) = take(&mut c, &["flaky", "LOCK", "1000"]).await.unwrap();
        let _: () = cmd(&mut c, &["BL.RELEASE", "flaky", &id, &token]).await.unwrap();
    }
    assert_eq!(cmd::<i64>(&mut c, &["BL.LEN", "flaky"]).await.unwrap(), 0);
    let dead: Vec<Value> = cmd(&mut c, &["BL.DEAD", "flaky"]).await.unwrap();
    assert_eq!(dead.len(), 1);
    let _: () = cmd(&mut c, &["BL.REDRIVE", "flaky", &id]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["BL.LEN", "flaky"]).await.unwrap(), 1);
}

async fn events_for_publish_lock_release_and_remove(server: &TestServer) {
    let mut sub = server.client().get_async_pubsub().await.unwrap();
    sub.subscribe("__bl@__:requests").await.unwrap();
    let mut events = sub.on_message();
    let mut c = server.conn().await;
    let id: String = cmd(&mut c, &["BL.PUBLISH", "requests", r#"{"task_id": "task_002", "action": "backup"}"#]).await.unwrap();
    let (_, _, token) = take(&mut c, &["requests", "LOCK", "1000"]).await.unwrap();
    let _: () = cmd(&mut c, &["BL.RELEASE", "requests", &id, &token]).await.unwrap();
    let (_, _, token) = take(&mut c, &["requests", "LOCK", "1000"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["BL.REMOVE", "requests", &id, &token]).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let msg = tokio::time::timeout(Duration::from_secs(5), events.next()).await.unwrap().unwrap();
        let e: serde_json::Value = serde_json::from_slice(&msg.get_payload::<Vec<u8>>().unwrap()).unwrap();
        assert_eq!(e["item"]["task_id"], "task_002");
        seen.push(e["event"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen, ["publish", "lock", "release", "lock", "remove"]);
}

/// An item's TTL that runs out while it is leased does not take it from its holder, but the item does
/// not come back either: releasing it (or the lease running out) expires it. One released before its
/// TTL comes back and still expires on time.
async fn an_item_whose_ttl_ran_out_under_a_lease_expires_when_the_lease_ends(server: &TestServer) {
    let mut c = server.conn().await;
    let id: String = cmd(&mut c, &["BL.PUBLISH", "ttl", r#"{"x": 1}"#, "TTL", "150"]).await.unwrap();
    let (_, _, token) = take(&mut c, &["ttl", "LOCK", "10000"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_ne!(cmd::<Value>(&mut c, &["BL.GET", "ttl", &id]).await.unwrap(), Value::Nil, "still held");
    let _: () = cmd(&mut c, &["BL.RELEASE", "ttl", &id, &token]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut c, &["BL.GET", "ttl", &id]).await.unwrap(), Value::Nil, "expired at its release");
    assert_eq!(cmd::<i64>(&mut c, &["BL.LEN", "ttl"]).await.unwrap(), 0);
    assert!(take(&mut c, &["ttl", "LOCK", "1000"]).await.is_none());

    let id: String = cmd(&mut c, &["BL.PUBLISH", "ttl", r#"{"x": 2}"#, "TTL", "600"]).await.unwrap();
    let (_, _, token) = take(&mut c, &["ttl", "LOCK", "10000"]).await.unwrap();
    let _: () = cmd(&mut c, &["BL.RELEASE", "ttl", &id, &token]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["BL.LEN", "ttl"]).await.unwrap(), 1, "released before its TTL: back");
    for _ in 0..500 {
        if cmd::<i64>(&mut c, &["BL.LEN", "ttl"]).await.unwrap() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the released item did not expire at its TTL");
}

on_both_engines!(
    an_item_whose_ttl_ran_out_under_a_lease_expires_when_the_lease_ends,
    work_queue_three_workers_process_every_item_exactly_once,
    a_worker_that_dies_holding_a_lease_loses_the_item_to_another,
    filters_on_nested_fields_and_comparisons,
    overflow_both_ways_scopes_and_stale_tokens,
    blocking_retrieve_wakes_on_publish_and_on_lease_expiry,
    dead_letters_after_max_leases_and_redrive,
    events_for_publish_lock_release_and_remove,
);
