//! Lists through a real client, above all the blocking commands: woken by another connection, FIFO,
//! each element to exactly one waiter, timeouts, disconnects.

mod common;

use std::time::Duration;

use common::{cmd, eventually, start};
use redis::Value;

#[tokio::test]
async fn blpop_is_woken_by_a_push_from_another_connection() {
    let server = start().await;
    let mut waiter = server.conn().await;
    let mut pusher = server.conn().await;
    let blocked = tokio::spawn(async move { cmd::<(String, String)>(&mut waiter, &["BLPOP", "empty", "jobs", "0"]).await });
    eventually(|| server.broker.lock().blocking.len() == 1).await;
    assert_eq!(cmd::<i64>(&mut pusher, &["RPUSH", "jobs", "job-1"]).await.unwrap(), 1);
    assert_eq!(blocked.await.unwrap().unwrap(), ("jobs".to_owned(), "job-1".to_owned()));
    assert_eq!(cmd::<i64>(&mut pusher, &["LLEN", "jobs"]).await.unwrap(), 0, "the element went to the waiter");
}

#[tokio::test]
async fn blocked_clients_are_served_first_come_first_served_one_element_each() {
    let server = start().await;
    let mut waiters = Vec::new();
    for i in 0..3 {
        let mut c = server.conn().await;
        waiters.push(tokio::spawn(async move { cmd::<(String, String)>(&mut c, &["BRPOP", "q", "5"]).await.unwrap().1 }));
        eventually(|| server.broker.lock().blocking.len() == i + 1).await;
    }
    let mut pusher = server.conn().await;
    let _: () = cmd(&mut pusher, &["LPUSH", "q", "first", "second", "third"]).await.unwrap();
    let got: Vec<String> = futures_util::future::join_all(waiters).await.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(got, ["first", "second", "third"], "BRPOP pops from the right, in blocking order");
}

#[tokio::test]
async fn timeouts_answer_null_and_zero_waits_forever() {
    let server = start().await;
    let mut c = server.conn().await;
    let got: Value = cmd(&mut c, &["BLPOP", "nothing", "0.05"]).await.unwrap();
    assert_eq!(got, Value::Nil);
    let got: Value = cmd(&mut c, &["BLMOVE", "nothing", "dst", "LEFT", "RIGHT", "0.05"]).await.unwrap();
    assert_eq!(got, Value::Nil);
    assert_eq!(server.broker.lock().blocking.len(), 0, "timed-out waiters are withdrawn");
    let mut forever = server.conn().await;
    let blocked = tokio::spawn(async move { cmd::<(String, String)>(&mut forever, &["BLPOP", "later", "0"]).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!blocked.is_finished(), "timeout 0 keeps waiting");
    let _: () = cmd(&mut c, &["RPUSH", "later", "x"]).await.unwrap();
    assert_eq!(blocked.await.unwrap().unwrap().1, "x");
}

#[tokio::test]
async fn blmove_and_blmpop_wake_up() {
    let server = start().await;
    let mut a = server.conn().await;
    let mut b = server.conn().await;
    let mover = tokio::spawn(async move { cmd::<String>(&mut a, &["BLMOVE", "inbox", "processing", "LEFT", "RIGHT", "5"]).await });
    eventually(|| server.broker.lock().blocking.len() == 1).await;
    let _: () = cmd(&mut b, &["RPUSH", "inbox", "task"]).await.unwrap();
    assert_eq!(mover.await.unwrap().unwrap(), "task");
    assert_eq!(cmd::<Vec<String>>(&mut b, &["LRANGE", "processing", "0", "-1"]).await.unwrap(), ["task"]);
    let mut c = server.conn().await;
    let multi =
        tokio::spawn(async move { cmd::<(String, Vec<String>)>(&mut c, &["BLMPOP", "5", "2", "x", "y", "RIGHT", "COUNT", "2"]).await });
    eventually(|| server.broker.lock().blocking.len() == 1).await;
    let _: () = cmd(&mut b, &["RPUSH", "y", "1", "2", "3"]).await.unwrap();
    assert_eq!(multi.await.unwrap().unwrap(), ("y".to_owned(), vec!["3".to_owned(), "2".to_owned()]));
}

#[tokio::test]
async fn a_waiter_that_disconnects_does_not_swallow_an_element() {
    let server = start().await;
    {
        let mut gone = server.raw().await;
        gone.cmd(&["BLPOP", "q", "0"]).await;
        eventually(|| server.broker.lock().blocking.len() == 1).await;
    }
    eventually(|| server.broker.lock().blocking.is_empty()).await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["RPUSH", "q", "kept"]).await.unwrap();
    assert_eq!(cmd::<Vec<String>>(&mut c, &["LRANGE", "q", "0", "-1"]).await.unwrap(), ["kept"]);
}

#[tokio::test]
async fn commands_pipelined_behind_a_blocked_one_wait_for_it() {
    let server = start().await;
    let mut raw = server.raw().await;
    raw.send(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n*1\r\n$4\r\nPING\r\n").await;
    eventually(|| server.broker.lock().blocking.len() == 1).await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["RPUSH", "q", "v"]).await.unwrap();
    raw.expect("*2\r\n$1\r\nq\r\n$1\r\nv\r\n+PONG\r\n").await;
    let info: String = cmd(&mut c, &["INFO", "clients"]).await.unwrap();
    assert!(info.contains("blocked_clients:0"), "{info}");
}

#[tokio::test]
async fn list_notifications_and_watch() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Kl"]).await.unwrap();
    let mut sub = server.client().get_async_pubsub().await.unwrap();
    sub.psubscribe("__keyspace@0__:l").await.unwrap();
    let _: () = cmd(&mut c, &["RPUSH", "l", "a"]).await.unwrap();
    let _: () = cmd(&mut c, &["LPOP", "l"]).await.unwrap();
    let mut stream = sub.on_message();
    let first: String = futures_util::StreamExt::next(&mut stream).await.unwrap().get_payload().unwrap();
    let second: String = futures_util::StreamExt::next(&mut stream).await.unwrap().get_payload().unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("rpush", "lpop"));
}

/// Redis 7.0 rounds `seconds × 1000` up in `long double`: a tiny positive timeout still times out,
/// and a tiny negative one, -0.001 included, is 0 (wait forever), not "negative".
#[tokio::test]
async fn timeouts_round_up_to_whole_milliseconds_as_redis_does() {
    let server = start().await;
    let mut c = server.conn().await;
    let got: Value = cmd(&mut c, &["BLPOP", "nothing", "0.0001"]).await.unwrap();
    assert_eq!(got, Value::Nil, "0.1 ms is one millisecond, not forever");
    for forever in ["-0.0001", "-0.001"] {
        let mut waiter = server.conn().await;
        let blocked = tokio::spawn(async move { cmd::<(String, String)>(&mut waiter, &["BLPOP", "later", forever]).await });
        eventually(|| server.broker.lock().blocking.len() == 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!blocked.is_finished(), "{forever} waits forever");
        let _: () = cmd(&mut c, &["RPUSH", "later", forever]).await.unwrap();
        assert_eq!(blocked.await.unwrap().unwrap().1, forever);
    }
    for negative in ["-0.002", "inf", "1e1000", "1e16"] {
        let err = cmd::<Value>(&mut c, &["BLPOP", "nothing", negative]).await.unwrap_err();
        assert_eq!(err.detail(), Some("timeout is negative"), "{negative}");
    }
}

/// Inside EXEC nothing blocks: BLPOP and BLMPOP answer a null array as on a timeout, but BLMOVE and
/// BRPOPLPUSH a null bulk, as LMOVE would.
#[tokio::test]
async fn blocking_commands_inside_exec_answer_like_redis() {
    let server = start().await;
    let mut raw = server.raw().await;
    for parts in [
        &["MULTI"][..],
        &["BLPOP", "none", "0"],
        &["BLMOVE", "none", "d", "LEFT", "LEFT", "0"],
        &["BRPOPLPUSH", "none", "d", "0"],
        &["BLMPOP", "0", "1", "none", "LEFT"],
        &["EXEC"],
    ] {
        raw.cmd(parts).await;
    }
    raw.expect("+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*4\r\n*-1\r\n$-1\r\n$-1\r\n*-1\r\n").await;
}

#[tokio::test]
async fn a_key_that_becomes_another_type_leaves_the_popper_blocked() {
    let server = start().await;
    let mut waiter = server.conn().await;
    let mut writer = server.conn().await;
    let blocked = tokio::spawn(async move { cmd::<(String, String)>(&mut waiter, &["BLPOP", "k", "0"]).await });
    eventually(|| server.broker.lock().blocking.len() == 1).await;
    let _: () = cmd(&mut writer, &["SET", "k", "a string"]).await.unwrap();
    let _: () = cmd(&mut writer, &["DEL", "k"]).await.unwrap();
    assert_eq!(server.broker.lock().blocking.len(), 1, "a string at the key does not serve a list popper (as Redis)");
    let _: i64 = cmd(&mut writer, &["RPUSH", "k", "v"]).await.unwrap();
    assert_eq!(blocked.await.unwrap().unwrap(), ("k".to_owned(), "v".to_owned()));
}

/// Blocked clients are served after the whole transaction, from what it left: a list pushed and then
/// replaced by a string inside one EXEC serves nobody, and the popper stays blocked (as Redis).
#[tokio::test]
async fn a_transaction_is_served_after_it_ran_not_in_the_middle() {
    let server = start().await;
    let mut waiter = server.conn().await;
    let mut writer = server.conn().await;
    let blocked = tokio::spawn(async move { cmd::<(String, String)>(&mut waiter, &["BLPOP", "k", "0"]).await });
    common::until_blocked(&server, 1).await;
    let _: Value = redis::pipe()
        .atomic()
        .cmd("LPUSH")
        .arg("k")
        .arg("a")
        .cmd("DEL")
        .arg("k")
        .cmd("SET")
        .arg("k")
        .arg("x")
        .query_async(&mut writer)
        .await
        .unwrap();
    assert_eq!(common::blocked_clients(&mut writer).await, 1, "still blocked after EXEC");
    let _: i64 = cmd(&mut writer, &["DEL", "k"]).await.unwrap();
    let _: i64 = cmd(&mut writer, &["RPUSH", "k", "v"]).await.unwrap();
    assert_eq!(blocked.await.unwrap().unwrap(), ("k".to_owned(), "v".to_owned()));
}

/// A list moved into place by RENAME or LMOVE wakes BLMPOP / BLPOP clients in the order they blocked,
/// each popping from the list as the previous one left it.
#[tokio::test]
async fn lists_moved_into_place_serve_poppers_in_order() {
    let server = start().await;
    let mut writer = server.conn().await;
    let mut first = server.conn().await;
    let mut second = server.conn().await;
    let a = tokio::spawn(async move { cmd::<Value>(&mut first, &["BLMPOP", "0", "1", "dst", "LEFT", "COUNT", "2"]).await.unwrap() });
    common::until_blocked(&server, 1).await;
    let b = tokio::spawn(async move { cmd::<(String, String)>(&mut second, &["BLPOP", "dst", "0"]).await.unwrap() });
    common::until_blocked(&server, 2).await;
    let _: i64 = cmd(&mut writer, &["RPUSH", "src", "1", "2", "3"]).await.unwrap();
    let _: () = cmd(&mut writer, &["RENAME", "src", "dst"]).await.unwrap();
    let popped = a.await.unwrap();
    assert_eq!(
        popped,
        Value::Array(vec![
            Value::BulkString(b"dst".to_vec()),
            Value::Array(vec![Value::BulkString(b"1".to_vec()), Value::BulkString(b"2".to_vec())])
        ])
    );
    assert_eq!(b.await.unwrap(), ("dst".to_owned(), "3".to_owned()));
    let mut third = server.conn().await;
    let c = tokio::spawn(async move { cmd::<(String, String)>(&mut third, &["BLPOP", "moved", "0"]).await.unwrap() });
    common::until_blocked(&server, 1).await;
    let _: i64 = cmd(&mut writer, &["RPUSH", "from", "x", "y"]).await.unwrap();
    let _: String = cmd(&mut writer, &["LMOVE", "from", "moved", "RIGHT", "LEFT"]).await.unwrap();
    assert_eq!(c.await.unwrap(), ("moved".to_owned(), "y".to_owned()));
}
