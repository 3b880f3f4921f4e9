//! Bounded blocking put through a real client: a producer waits for room on a full board
//! (`BL.PUBLISH ... BLOCK`) or mailbox (`MSG.CONFIG dest MAXLEN n`, `MSG.SEND ... BLOCK`), and blocked
//! producers are let in first come, first served as room appears (the seeds' `Queue(maxsize)`).

mod common;

use common::{cmd, data_dir, eventually, field, start, start_persistent, text};
use redis::Value;

#[tokio::test]
async fn blocked_publishers_get_room_in_order_as_items_leave() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["BL.CONFIG", "q", "MAXLEN", "2"]).await.unwrap();
    for i in 0..2 {
        let _: String = cmd(&mut c, &["BL.PUBLISH", "q", &format!(r#"{{"n": {i}}}"#)]).await.unwrap();
    }
    let err = cmd::<Value>(&mut c, &["BL.PUBLISH", "q", r#"{"n": 9}"#]).await.unwrap_err();
    assert_eq!(err.code(), Some("FULL"), "without BLOCK a full board refuses");
    assert_eq!(cmd::<Value>(&mut c, &["BL.PUBLISH", "q", r#"{"n": 9}"#, "BLOCK", "20"]).await.unwrap(), Value::Nil, "timeout: nil");
    let mut producers = Vec::new();
    for i in 2..4 {
        let mut p = server.conn().await;
        producers.push(tokio::spawn(async move {
            cmd::<String>(&mut p, &["BL.PUBLISH", "q", &format!(r#"{{"n": {i}}}"#), "BLOCK", "0"]).await.unwrap()
        }));
        eventually(|| server.broker.lock().blocking.len() == i - 1).await;
    }
    // A consumer takes one item (retrieve-and-lock, then remove: the ack): one producer gets in.
    let got: Value = cmd(&mut c, &["BL.RETRIEVE", "q", "LOCK", "10000"]).await.unwrap();
    let (id, token) = (text(&field(&got, "id")), field(&got, "token"));
    let Value::Int(token) = token else { panic!() };
    assert_eq!(server.broker.lock().blocking.len(), 2, "a locked item still takes room");
    let _: i64 = cmd(&mut c, &["BL.REMOVE", "q", &id, &token.to_string()]).await.unwrap();
    producers.remove(0).await.unwrap();
    assert_eq!(server.broker.lock().blocking.len(), 1, "one removal, one producer");
    let items: Vec<Value> = cmd(&mut c, &["BL.ALL", "q"]).await.unwrap();
    assert_eq!(
        items.iter().map(|i| text(&field(i, "item"))).collect::<Vec<_>>(),
        [r#"{"n": 1}"#, r#"{"n": 2}"#],
        "the first blocked went first"
    );
    // Raising the bound lets the other in.
    let _: () = cmd(&mut c, &["BL.CONFIG", "q", "MAXLEN", "3"]).await.unwrap();
    producers.remove(0).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["BL.LEN", "q"]).await.unwrap(), 3);
    // drop-oldest never blocks.
    let _: () = cmd(&mut c, &["BL.CONFIG", "q", "OVERFLOW", "drop-oldest"]).await.unwrap();
    let _: String = cmd(&mut c, &["BL.PUBLISH", "q", "{}", "BLOCK", "0"]).await.unwrap();
    for (args, expected) in [
        (&["BL.PUBLISH", "q", "{}", "BLOCK"][..], "syntax error"),
        (&["BL.PUBLISH", "q", "{}", "BLOCK", "x"][..], "not an integer"),
        (&["BL.PUBLISH", "q", "{}", "BLOCK", "-5"][..], "must be positive"),
    ] {
        let err = cmd::<Value>(&mut c, args).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn a_bounded_mailbox_makes_senders_wait_for_receivers() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["MSG.CONFIG", "inbox", "MAXLEN", "1"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["MSG.SEND", "inbox", "t", "first"]).await.unwrap();
    let err = cmd::<Value>(&mut c, &["MSG.SEND", "inbox", "other-topic", "x"]).await.unwrap_err();
    assert_eq!(err.code(), Some("FULL"), "the bound covers every topic");
    assert_eq!(cmd::<Value>(&mut c, &["MSG.SEND", "inbox", "t", "x", "BLOCK", "20"]).await.unwrap(), Value::Nil);
    let mut senders = Vec::new();
    for (i, payload) in ["second", "third"].into_iter().enumerate() {
        let mut p = server.conn().await;
        senders.push(tokio::spawn(async move { cmd::<i64>(&mut p, &["MSG.SEND", "inbox", "t", payload, "BLOCK", "5000"]).await.unwrap() }));
        eventually(|| server.broker.lock().blocking.len() == i + 1).await;
    }
    assert_eq!(cmd::<String>(&mut c, &["MSG.RECV", "inbox", "t"]).await.unwrap(), "first");
    senders.remove(0).await.unwrap();
    assert_eq!(server.broker.lock().blocking.len(), 1);
    assert_eq!(cmd::<String>(&mut c, &["MSG.RECV", "inbox", "t"]).await.unwrap(), "second");
    senders.remove(0).await.unwrap();
    assert_eq!(cmd::<String>(&mut c, &["MSG.RECV", "inbox", "t", "TIMEOUT", "1000"]).await.unwrap(), "third");
    // A remembered idempotency key answers at once, even on a full mailbox.
    let id: i64 = cmd(&mut c, &["MSG.SEND", "inbox", "t", "once", "IDEMPOTENCY", "k"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["MSG.SEND", "inbox", "t", "once", "IDEMPOTENCY", "k", "BLOCK", "0"]).await.unwrap(), id);
    // MAXLEN 0 goes back to the default bound.
    let _: () = cmd(&mut c, &["MSG.CONFIG", "inbox", "MAXLEN", "0"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["MSG.SEND", "inbox", "t", "room again"]).await.unwrap();
    for (args, expected) in [
        (&["MSG.CONFIG", "inbox", "MAXLEN"][..], "wrong number of arguments"),
        (&["MSG.CONFIG", "inbox", "SIZE", "3"][..], "syntax error"),
        (&["MSG.CONFIG", "inbox", "MAXLEN", "-1"][..], "must be positive"),
        (&["MSG.CONFIG", "inbox", "MAXLEN", "100001"][..], "at most mailboxes.max_messages"),
        (&["MSG.SEND", "inbox", "t", "x", "BLOCK"][..], "syntax error"),
        (&["MSG.SEND", "inbox", "t", "x", "BLOCK", "1", "BLOCK", "1"][..], "syntax error"),
        (&["MSG.SEND", "inbox", "t", "x", "WAIT", "1"][..], "syntax error"),
    ] {
        let err = cmd::<Value>(&mut c, args).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{args:?}: {err}");
    }
}

/// A mailbox's MAXLEN survives a restart, from the log and from a snapshot.
#[tokio::test]
async fn a_mailbox_bound_survives_restarts() {
    let dir = data_dir("mailbox-maxlen");
    for step in 0..3 {
        let server = start_persistent(&dir).await;
        let mut c = server.conn().await;
        if step == 0 {
            let _: () = cmd(&mut c, &["MSG.CONFIG", "inbox", "MAXLEN", "1"]).await.unwrap();
            let _: () = cmd(&mut c, &["MSG.CONFIG", "empty", "MAXLEN", "2"]).await.unwrap();
            let _: i64 = cmd(&mut c, &["MSG.SEND", "inbox", "", "kept"]).await.unwrap();
        } else {
            let err = cmd::<Value>(&mut c, &["MSG.SEND", "inbox", "", "more"]).await.unwrap_err();
            assert_eq!(err.code(), Some("FULL"), "step {step}");
            for _ in 0..2 {
                let _: i64 = cmd(&mut c, &["MSG.SEND", "empty", "", "x"]).await.unwrap();
            }
            assert_eq!(cmd::<Value>(&mut c, &["MSG.SEND", "empty", "", "x"]).await.unwrap_err().code(), Some("FULL"));
            for _ in 0..2 {
                let _: String = cmd(&mut c, &["MSG.RECV", "empty", ""]).await.unwrap();
            }
            common::rewrite(&mut c).await;
        }
        server.stop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
