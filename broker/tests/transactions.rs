//! MULTI / EXEC / DISCARD / WATCH through a real client, including redis-style atomic pipelines.

mod common;

use std::time::Duration;

use common::{cmd, start};
use redis::Value;

#[tokio::test]
async fn queued_commands_run_atomically() {
    let server = start().await;
    let mut c = server.conn().await;
    let (a, b): (i64, i64) = redis::pipe().atomic().cmd("INCR").arg("n").cmd("INCRBY").arg("n").arg(10).query_async(&mut c).await.unwrap();
    assert_eq!((a, b), (1, 11));
}

#[tokio::test]
async fn errors_at_queue_time_abort_errors_at_exec_time_do_not() {
    let server = start().await;
    let mut raw = server.raw().await;
    raw.cmd(&["MULTI"]).await;
    raw.cmd(&["SET", "k", "v", "BOGUS"]).await;
    raw.cmd(&["SET", "k", "v"]).await;
    raw.cmd(&["INCR", "k"]).await;
    raw.cmd(&["EXEC"]).await;
    raw.expect(
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n-ERR syntax error\r\n+OK\r\n-ERR value is not an integer or out of range\r\n",
    )
    .await;
    raw.cmd(&["MULTI"]).await;
    raw.cmd(&["NOSUCH"]).await;
    raw.cmd(&["GET"]).await;
    raw.cmd(&["EXEC"]).await;
    raw.expect("+OK\r\n-ERR unknown command 'NOSUCH', with args beginning with: \r\n-ERR wrong number of arguments for 'get' command\r\n-EXECABORT Transaction discarded because of previous errors.\r\n").await;
    raw.cmd(&["EXEC"]).await;
    raw.expect("-ERR EXEC without MULTI\r\n").await;
    raw.cmd(&["MULTI"]).await;
    raw.cmd(&["MULTI"]).await;
    raw.cmd(&["WATCH", "x"]).await;
    raw.cmd(&["DISCARD"]).await;
    raw.cmd(&["DISCARD"]).await;
    raw.expect(
        "+OK\r\n-ERR MULTI calls can not be nested\r\n-ERR WATCH inside MULTI is not allowed\r\n+OK\r\n-ERR DISCARD without MULTI\r\n",
    )
    .await;
}

#[tokio::test]
async fn watch_detects_a_change_by_another_client() {
    let server = start().await;
    let mut a = server.conn().await;
    let mut b = server.conn().await;
    let _: () = cmd(&mut a, &["SET", "balance", "100"]).await.unwrap();
    let _: () = cmd(&mut a, &["WATCH", "balance"]).await.unwrap();
    let _: () = cmd(&mut b, &["SET", "balance", "100"]).await.unwrap();
    let _: () = cmd(&mut a, &["MULTI"]).await.unwrap();
    let _: () = cmd(&mut a, &["DECRBY", "balance", "30"]).await.unwrap();
    let result: Value = cmd(&mut a, &["EXEC"]).await.unwrap();
    assert_eq!(result, Value::Nil, "even a write of the same value invalidates the WATCH");
    // Without interference it goes through, and EXEC forgets the watch.
    let _: () = cmd(&mut a, &["WATCH", "balance"]).await.unwrap();
    let _: () = cmd(&mut a, &["MULTI"]).await.unwrap();
    let _: () = cmd(&mut a, &["DECRBY", "balance", "30"]).await.unwrap();
    let result: Vec<i64> = cmd(&mut a, &["EXEC"]).await.unwrap();
    assert_eq!(result, vec![70]);
    // FLUSHALL dirties watchers of keys that existed.
    let _: () = cmd(&mut a, &["WATCH", "balance"]).await.unwrap();
    let _: () = cmd(&mut b, &["FLUSHALL"]).await.unwrap();
    let _: () = cmd(&mut a, &["MULTI"]).await.unwrap();
    let _: () = cmd(&mut a, &["SET", "balance", "1"]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut a, &["EXEC"]).await.unwrap(), Value::Nil);
}

/// The seeds' outbox pattern: write state and publish the event in one atomic step.
#[tokio::test]
async fn state_and_event_in_one_transaction() {
    let server = start().await;
    let mut c = server.conn().await;
    let mut sub = server.client().get_async_pubsub().await.unwrap();
    sub.subscribe("orders").await.unwrap();
    let (_, receivers): ((), i64) = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("order:1")
        .arg("paid")
        .cmd("PUBLISH")
        .arg("orders")
        .arg("order:1 paid")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(receivers, 1);
    let msg = futures_util::StreamExt::next(&mut sub.on_message()).await.unwrap();
    assert_eq!(msg.get_payload::<String>().unwrap(), "order:1 paid");
}

/// `BB.WATCH` covers keys of named scopes (plain WATCH covers the numbered databases only): the
/// outbox pattern "write if the revision still matches, and enqueue the event" as one WATCH / MULTI /
/// EXEC, aborted when another client wrote the key in between, expired it, or flushed it.
#[tokio::test]
async fn bb_watch_covers_keys_of_every_scope() {
    let server = start().await;
    let mut a = server.conn().await;
    let mut b = server.conn().await;
    let _: i64 = cmd(&mut a, &["BB.SET", "orders", "o1", "pending"]).await.unwrap();
    // A plain WATCH on the same name watches database 0, not the scope.
    let _: () = cmd(&mut a, &["WATCH", "o1"]).await.unwrap();
    let _: i64 = cmd(&mut b, &["BB.SET", "orders", "o1", "paid"]).await.unwrap();
    let _: () = cmd(&mut a, &["MULTI"]).await.unwrap();
    let _: Value = cmd(&mut a, &["BB.SET", "orders", "o1", "shipped", "IFREV", "2"]).await.unwrap();
    let done: Vec<Value> = cmd(&mut a, &["EXEC"]).await.unwrap();
    assert_eq!(done, vec![Value::Int(3)]);
    // BB.WATCH: another client's write aborts EXEC; nothing is written and no event goes out.
    let _: () = cmd(&mut a, &["BB.WATCH", "orders", "o1", "o2"]).await.unwrap();
    let _: i64 = cmd(&mut b, &["BB.SET", "orders", "o2", "new"]).await.unwrap();
    let _: () = cmd(&mut a, &["MULTI"]).await.unwrap();
    let _: Value = cmd(&mut a, &["BB.SET", "orders", "o1", "delivered"]).await.unwrap();
    let _: Value = cmd(&mut a, &["BL.PUBLISH", "outbox", r#"{"order": "o1", "event": "delivered"}"#]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut a, &["EXEC"]).await.unwrap(), Value::Nil);
    assert_eq!(cmd::<i64>(&mut a, &["BL.LEN", "outbox"]).await.unwrap(), 0);
    // Untouched, it goes through as one step; EXEC forgets the watch.
    let _: () = cmd(&mut a, &["BB.WATCH", "orders", "o1"]).await.unwrap();
    let _: () = cmd(&mut a, &["MULTI"]).await.unwrap();
    let _: Value = cmd(&mut a, &["BB.SET", "orders", "o1", "delivered", "IFREV", "3"]).await.unwrap();
    let _: Value = cmd(&mut a, &["BL.PUBLISH", "outbox", r#"{"order": "o1", "event": "delivered"}"#]).await.unwrap();
    let done: Vec<Value> = cmd(&mut a, &["EXEC"]).await.unwrap();
    assert_eq!(done[0], Value::Int(4));
    assert_eq!(cmd::<i64>(&mut a, &["BL.LEN", "outbox"]).await.unwrap(), 1);
    // A scope that does not exist yet, a deletion, an expiry, FLUSHALL: each aborts.
    for interfere in [&["BB.SET", "fresh", "k", "v"][..], &["BB.DEL", "orders", "o1"][..], &["FLUSHALL"][..]] {
        let _: i64 = cmd(&mut b, &["BB.SET", "orders", "o1", "back"]).await.unwrap();
        let _: () = cmd(&mut a, &["BB.WATCH", "orders", "o1"]).await.unwrap();
        let _: () = cmd(&mut a, &["BB.WATCH", "fresh", "k"]).await.unwrap();
        let _: Value = cmd(&mut b, interfere).await.unwrap();
        let _: () = cmd(&mut a, &["MULTI"]).await.unwrap();
        let _: Value = cmd(&mut a, &["BB.GET", "orders", "o1"]).await.unwrap();
        assert_eq!(cmd::<Value>(&mut a, &["EXEC"]).await.unwrap(), Value::Nil, "{interfere:?}");
    }
    let _: i64 = cmd(&mut b, &["BB.SET", "orders", "o1", "short", "PX", "30"]).await.unwrap();
    let _: () = cmd(&mut a, &["BB.WATCH", "orders", "o1"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let _: () = cmd(&mut a, &["MULTI"]).await.unwrap();
    let _: Value = cmd(&mut a, &["BB.GET", "orders", "o1"]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut a, &["EXEC"]).await.unwrap(), Value::Nil, "expired while watched");
    // UNWATCH forgets scope watches too; bad input.
    let _: () = cmd(&mut a, &["BB.WATCH", "orders", "o1"]).await.unwrap();
    let _: () = cmd(&mut a, &["UNWATCH"]).await.unwrap();
    let _: i64 = cmd(&mut b, &["BB.SET", "orders", "o1", "again"]).await.unwrap();
    let _: () = cmd(&mut a, &["MULTI"]).await.unwrap();
    let err = cmd::<Value>(&mut a, &["BB.WATCH", "orders", "o1"]).await.unwrap_err();
    assert!(err.to_string().contains("WATCH inside MULTI is not allowed"), "{err}");
    let _: Value = cmd(&mut a, &["BB.GET", "orders", "o1"]).await.unwrap();
    assert_ne!(cmd::<Value>(&mut a, &["EXEC"]).await.unwrap(), Value::Nil);
    let err = cmd::<Value>(&mut a, &["BB.WATCH", "orders"]).await.unwrap_err();
    assert!(err.to_string().contains("wrong number of arguments"), "{err}");
}
