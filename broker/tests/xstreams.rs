//! Redis Streams through a real client (the `redis` crate): blocking reads proven blocked (INFO
//! reports the client blocked) before they are woken, consumer-group workers sharing a stream with a
//! crashed worker's entries taken over by XAUTOCLAIM, keyspace notifications in the order Redis 7.0
//! sends them, RESP3 shapes, and the commands' table entries. Reply-for-reply equality with
//! redis-server is checked by tests/compat/xstreams.txt.

mod common;

use std::time::Duration;

use common::{TestServer, cmd, eventually, start};
use futures_util::StreamExt;
use redis::Value;
use redis::aio::MultiplexedConnection;

/// INFO's count of blocked clients, as any client reads it.
async fn blocked_clients(c: &mut MultiplexedConnection) -> usize {
    let info: String = cmd(c, &["INFO", "clients"]).await.unwrap();
    let line = info.lines().find(|l| l.starts_with("blocked_clients:")).expect("blocked_clients in INFO");
    line["blocked_clients:".len()..].trim().parse().unwrap()
}

/// Waits until INFO reports `n` blocked clients.
async fn until_blocked(server: &TestServer, n: usize) {
    let mut c = server.conn().await;
    for _ in 0..500 {
        if blocked_clients(&mut c).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("INFO never reported {n} blocked clients");
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

/// `[id, [field, value, ...]]`.
fn entry(id: &str, fields: &[&str]) -> Value {
    Value::Array(vec![bulk(id), Value::Array(fields.iter().map(|f| bulk(f)).collect())])
}

/// XREAD's RESP2 reply for one stream.
fn read_reply(key: &str, entries: Vec<Value>) -> Value {
    Value::Array(vec![Value::Array(vec![bulk(key), Value::Array(entries)])])
}

#[tokio::test]
async fn xread_blocks_until_an_entry_arrives() {
    let server = start().await;
    let mut writer = server.conn().await;
    let _: String = cmd(&mut writer, &["XADD", "events", "1-1", "kind", "old"]).await.unwrap();
    let mut reader = server.conn().await;
    let read =
        tokio::spawn(async move { cmd::<Value>(&mut reader, &["XREAD", "BLOCK", "0", "STREAMS", "other", "events", "$", "$"]).await });
    until_blocked(&server, 1).await;
    assert!(!read.is_finished());
    let _: String = cmd(&mut writer, &["XADD", "events", "2-1", "kind", "new"]).await.unwrap();
    assert_eq!(read.await.unwrap().unwrap(), read_reply("events", vec![entry("2-1", &["kind", "new"])]), "only what came after $");
    assert_eq!(blocked_clients(&mut writer).await, 0);

    // A stream that does not exist yet: $ is 0-0, and its creation serves the reader.
    let mut reader = server.conn().await;
    let read =
        tokio::spawn(async move { cmd::<Value>(&mut reader, &["XREAD", "COUNT", "1", "BLOCK", "5000", "STREAMS", "later", "$"]).await });
    until_blocked(&server, 1).await;
    let _: () = cmd(&mut writer, &["SET", "later", "not a stream"]).await.unwrap();
    let _: i64 = cmd(&mut writer, &["DEL", "later"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!read.is_finished(), "XREAD keeps waiting through a key of another type");
    let _: String = cmd(&mut writer, &["XADD", "later", "5-1", "a", "1"]).await.unwrap();
    let _: String = cmd(&mut writer, &["XADD", "later", "5-2", "a", "2"]).await.unwrap();
    assert_eq!(read.await.unwrap().unwrap(), read_reply("later", vec![entry("5-1", &["a", "1"])]));

    let timed_out: Value = cmd(&mut writer, &["XREAD", "BLOCK", "50", "STREAMS", "later", "$"]).await.unwrap();
    assert_eq!(timed_out, Value::Nil);
}

#[tokio::test]
async fn blocked_group_readers_are_served_in_order_or_told_their_group_is_gone() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["XGROUP", "CREATE", "jobs", "workers", "$", "MKSTREAM"]).await.unwrap();
    let mut readers = Vec::new();
    for (i, name) in ["w1", "w2"].into_iter().enumerate() {
        let mut r = server.conn().await;
        readers.push(tokio::spawn(async move {
            cmd::<Value>(&mut r, &["XREADGROUP", "GROUP", "workers", name, "COUNT", "10", "BLOCK", "0", "STREAMS", "jobs", ">"]).await
        }));
        until_blocked(&server, i + 1).await;
    }
    let _: String = cmd(&mut c, &["XADD", "jobs", "1-1", "task", "a"]).await.unwrap();
    let w2 = readers.pop().unwrap();
    let w1 = readers.pop().unwrap();
    assert_eq!(w1.await.unwrap().unwrap(), read_reply("jobs", vec![entry("1-1", &["task", "a"])]), "the first to block is served first");
    until_blocked(&server, 1).await;
    assert!(!w2.is_finished(), "one entry, one reader: the second keeps waiting");
    let _: String = cmd(&mut c, &["XADD", "jobs", "2-1", "task", "b"]).await.unwrap();
    assert_eq!(w2.await.unwrap().unwrap(), read_reply("jobs", vec![entry("2-1", &["task", "b"])]));
    let pending: Value = cmd(&mut c, &["XPENDING", "jobs", "workers"]).await.unwrap();
    assert_eq!(
        pending,
        Value::Array(vec![
            Value::Int(2),
            bulk("1-1"),
            bulk("2-1"),
            Value::Array(vec![Value::Array(vec![bulk("w1"), bulk("1")]), Value::Array(vec![bulk("w2"), bulk("1")])]),
        ])
    );

    // The group destroyed, then the key deleted, under blocked readers: Redis's errors.
    let mut r = server.conn().await;
    let gone =
        tokio::spawn(
            async move { cmd::<Value>(&mut r, &["XREADGROUP", "GROUP", "workers", "w3", "BLOCK", "0", "STREAMS", "jobs", ">"]).await },
        );
    until_blocked(&server, 1).await;
    let _: i64 = cmd(&mut c, &["XGROUP", "DESTROY", "jobs", "workers"]).await.unwrap();
    let err = gone.await.unwrap().unwrap_err();
    assert_eq!(err.code(), Some("NOGROUP"), "{err}");
    assert!(err.to_string().contains("the consumer group this client was blocked on no longer exists"), "{err}");

    let _: () = cmd(&mut c, &["XGROUP", "CREATE", "jobs", "workers", "$"]).await.unwrap();
    let mut r = server.conn().await;
    let deleted =
        tokio::spawn(
            async move { cmd::<Value>(&mut r, &["XREADGROUP", "GROUP", "workers", "w3", "BLOCK", "0", "STREAMS", "jobs", ">"]).await },
        );
    until_blocked(&server, 1).await;
    let _: i64 = cmd(&mut c, &["DEL", "jobs"]).await.unwrap();
    let err = deleted.await.unwrap().unwrap_err();
    assert_eq!(err.code(), Some("UNBLOCKED"), "{err}");
    assert_eq!(blocked_clients(&mut c).await, 0);
}

/// Two workers share a stream through a group; one acknowledges what it did, the other dies with
/// entries pending; after they have been idle long enough, the survivor takes them over with
/// XAUTOCLAIM and finishes the work.
#[tokio::test]
async fn a_crashed_workers_entries_are_taken_over() {
    let server = start().await;
    let mut producer = server.conn().await;
    let _: () = cmd(&mut producer, &["XGROUP", "CREATE", "orders", "billing", "0", "MKSTREAM"]).await.unwrap();
    for i in 1..=6 {
        let _: String = cmd(&mut producer, &["XADD", "orders", "*", "order", &i.to_string()]).await.unwrap();
    }
    let ids = |reply: &Value| -> Vec<String> {
        let Value::Array(streams) = reply else { panic!("{reply:?}") };
        let Value::Array(pair) = &streams[0] else { panic!("{reply:?}") };
        let Value::Array(entries) = &pair[1] else { panic!("{reply:?}") };
        entries
            .iter()
            .map(|e| match e {
                Value::Array(parts) => match &parts[0] {
                    Value::BulkString(id) => String::from_utf8(id.clone()).unwrap(),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let mut alice = server.conn().await;
    let mut bob = server.conn().await;
    let got_a: Value = cmd(&mut alice, &["XREADGROUP", "GROUP", "billing", "alice", "COUNT", "3", "STREAMS", "orders", ">"]).await.unwrap();
    let got_b: Value = cmd(&mut bob, &["XREADGROUP", "GROUP", "billing", "bob", "COUNT", "3", "STREAMS", "orders", ">"]).await.unwrap();
    let (a_ids, b_ids) = (ids(&got_a), ids(&got_b));
    assert!(a_ids.iter().all(|id| !b_ids.contains(id)), "each entry goes to one consumer");
    let mut ack = vec!["XACK", "orders", "billing"];
    ack.extend(a_ids.iter().map(String::as_str));
    assert_eq!(cmd::<i64>(&mut alice, &ack).await.unwrap(), 3);
    drop(bob); // bob crashes with three entries pending

    let nothing_yet: Value = cmd(&mut alice, &["XAUTOCLAIM", "orders", "billing", "alice", "60000", "0"]).await.unwrap();
    assert_eq!(nothing_yet, Value::Array(vec![bulk("0-0"), Value::Array(vec![]), Value::Array(vec![])]), "not idle long enough");
    tokio::time::sleep(Duration::from_millis(60)).await;
    let claimed: Value = cmd(&mut alice, &["XAUTOCLAIM", "orders", "billing", "alice", "50", "0", "COUNT", "10", "JUSTID"]).await.unwrap();
    let expected: Vec<Value> = b_ids.iter().map(|id| bulk(id)).collect();
    assert_eq!(claimed, Value::Array(vec![bulk("0-0"), Value::Array(expected), Value::Array(vec![])]));
    let detail: Value = cmd(&mut alice, &["XPENDING", "orders", "billing", "-", "+", "10", "alice"]).await.unwrap();
    let Value::Array(rows) = detail else { panic!("{detail:?}") };
    assert_eq!(rows.len(), 3);
    for row in &rows {
        let Value::Array(f) = row else { panic!("{row:?}") };
        assert_eq!((&f[1], &f[3]), (&bulk("alice"), &Value::Int(1)), "JUSTID leaves the delivery count as it was");
    }
    let mut ack = vec!["XACK", "orders", "billing"];
    ack.extend(b_ids.iter().map(String::as_str));
    assert_eq!(cmd::<i64>(&mut alice, &ack).await.unwrap(), 3);
    let summary: Value = cmd(&mut alice, &["XPENDING", "orders", "billing"]).await.unwrap();
    assert_eq!(summary, Value::Array(vec![Value::Int(0), Value::Nil, Value::Nil, Value::Nil]));
    let consumers: Value = cmd(&mut alice, &["XINFO", "CONSUMERS", "orders", "billing"]).await.unwrap();
    let Value::Array(consumers) = consumers else { panic!() };
    assert_eq!(consumers.len(), 2);
}

#[tokio::test]
async fn notifications_come_as_redis_sends_them() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEAn"]).await.unwrap();
    let mut sub = server.client().get_async_pubsub().await.unwrap();
    sub.psubscribe("__keyevent@0__:*").await.unwrap();
    for line in [
        &["XADD", "s", "MAXLEN", "0", "1-1", "a", "1"][..],
        &["XADD", "s", "2-1", "a", "1"],
        &["XDEL", "s", "2-1"],
        &["XDEL", "s", "2-1"],
        &["XTRIM", "s", "MAXLEN", "0"],
        &["XGROUP", "CREATE", "s", "g", "$"],
        &["XGROUP", "CREATE", "m", "g", "$", "MKSTREAM"],
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"],
        &["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", "0"],
        &["XADD", "s", "3-1", "a", "1"],
        &["XREADGROUP", "GROUP", "g", "c3", "STREAMS", "s", ">"],
        &["XCLAIM", "s", "g", "c4", "0", "3-1"],
        &["XAUTOCLAIM", "s", "g", "c5", "0", "0"],
        &["XACK", "s", "g", "3-1"],
        &["XGROUP", "CREATECONSUMER", "s", "g", "c6"],
        &["XGROUP", "DELCONSUMER", "s", "g", "c6"],
        &["XGROUP", "SETID", "s", "g", "0"],
        &["XGROUP", "DESTROY", "s", "g"],
        &["XSETID", "s", "9-9"],
        &["DEL", "s"],
    ] {
        let _: Value = cmd(&mut c, line).await.unwrap();
    }
    // What redis-server 7.0.15 publishes for the same commands (read from it while writing this).
    let expected = [
        "new",
        "xadd",
        "xtrim",
        "xadd",
        "xdel",
        "xgroup-create",
        "new",
        "xgroup-create",
        "xgroup-createconsumer",
        "xadd",
        "xgroup-createconsumer",
        "xgroup-createconsumer",
        "xgroup-createconsumer",
        "xgroup-createconsumer",
        "xgroup-delconsumer",
        "xgroup-setid",
        "xgroup-destroy",
        "xsetid",
        "del",
    ];
    let mut events = sub.on_message();
    for want in expected {
        let msg = tokio::time::timeout(Duration::from_secs(5), events.next()).await.expect("an event").unwrap();
        assert_eq!(msg.get_channel_name(), format!("__keyevent@0__:{want}"));
    }
}

#[tokio::test]
async fn resp3_reads_are_maps_and_exec_never_blocks() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: String = cmd(&mut c, &["XADD", "a", "1-1", "f", "v"]).await.unwrap();
    let _: String = cmd(&mut c, &["XADD", "b", "1-1", "g", "w"]).await.unwrap();
    let mut r3 = server.client3().get_multiplexed_async_connection().await.unwrap();
    let read: Value = cmd(&mut r3, &["XREAD", "STREAMS", "a", "b", "0", "0"]).await.unwrap();
    assert_eq!(
        read,
        Value::Map(vec![
            (bulk("a"), Value::Array(vec![entry("1-1", &["f", "v"])])),
            (bulk("b"), Value::Array(vec![entry("1-1", &["g", "w"])]))
        ])
    );
    let info: Value = cmd(&mut r3, &["XINFO", "STREAM", "a"]).await.unwrap();
    assert!(matches!(&info, Value::Map(fields) if fields.len() == 10), "{info:?}");

    let _: () = cmd(&mut c, &["XGROUP", "CREATE", "a", "g", "$"]).await.unwrap();
    let mut tx = redis::pipe();
    tx.atomic()
        .cmd("XREAD")
        .arg(&["BLOCK", "0", "STREAMS", "a", "$"])
        .cmd("XREADGROUP")
        .arg(&["GROUP", "g", "c", "BLOCK", "0", "STREAMS", "a", ">"]);
    let (read, group): (Value, Value) = tx.query_async(&mut c).await.unwrap();
    assert_eq!((read, group), (Value::Nil, Value::Nil), "inside EXEC a read that would block answers at once");
}

#[tokio::test]
async fn the_commands_are_in_the_table() {
    let server = start().await;
    let mut c = server.conn().await;
    let info: Value = cmd(&mut c, &["COMMAND", "INFO", "xadd", "xreadgroup", "xgroup"]).await.unwrap();
    let Value::Array(entries) = info else { panic!() };
    let arity: Vec<Value> = entries
        .iter()
        .map(|e| match e {
            Value::Array(f) => f[1].clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(arity, [Value::Int(-5), Value::Int(-7), Value::Int(-2)]);
    let docs: Value = cmd(&mut c, &["COMMAND", "DOCS", "xautoclaim"]).await.unwrap();
    assert!(format!("{docs:?}").contains("6.2.0"), "{docs:?}");
    let count: i64 = cmd(&mut c, &["COMMAND", "COUNT"]).await.unwrap();
    let names: Vec<String> = cmd(&mut c, &["COMMAND", "LIST"]).await.unwrap();
    assert_eq!(names.len() as i64, count);
    for name in [
        "xadd",
        "xrange",
        "xrevrange",
        "xlen",
        "xdel",
        "xtrim",
        "xread",
        "xreadgroup",
        "xack",
        "xpending",
        "xclaim",
        "xautoclaim",
        "xinfo",
        "xgroup",
        "xsetid",
    ] {
        assert!(names.iter().any(|n| n == name), "{name}");
    }
    let _: String = cmd(&mut c, &["XADD", "s", "*", "f", "v"]).await.unwrap();
    let kind: String = cmd(&mut c, &["TYPE", "s"]).await.unwrap();
    assert_eq!(kind, "stream");
    eventually(|| server.broker.lock().blocking.is_empty()).await;
}
