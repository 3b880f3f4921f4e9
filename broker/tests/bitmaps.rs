//! Bitmaps through a real client: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD; their keyspace
//! notifications, WATCH, OBJECT ENCODING, and a restart with persistence on.

mod common;

use std::time::Duration;

use common::{cmd, start};
use futures_util::StreamExt;
use redis::{AsyncCommands, Value};

#[tokio::test]
async fn bits_and_counts() {
    let server = start().await;
    let mut c = server.conn().await;
    assert_eq!(cmd::<i64>(&mut c, &["SETBIT", "b", "7", "1"]).await.unwrap(), 0);
    assert_eq!(cmd::<i64>(&mut c, &["SETBIT", "b", "7", "1"]).await.unwrap(), 1);
    assert_eq!(cmd::<i64>(&mut c, &["GETBIT", "b", "7"]).await.unwrap(), 1);
    assert_eq!(cmd::<i64>(&mut c, &["GETBIT", "b", "1000"]).await.unwrap(), 0);
    let raw: Vec<u8> = c.get("b").await.unwrap();
    assert_eq!(raw, [1]);
    let err = cmd::<i64>(&mut c, &["SETBIT", "b", "-1", "1"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("bit offset is not an integer or out of range"));
    let err = cmd::<i64>(&mut c, &["SETBIT", "b", "0", "2"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("bit is not an integer or out of range"));
    let err = cmd::<i64>(&mut c, &["SETBIT", "b", "4294967296", "1"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("bit offset is not an integer or out of range"), "past proto-max-bulk-len");

    let _: () = c.set("foo", "foobar").await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["BITCOUNT", "foo"]).await.unwrap(), 26);
    assert_eq!(cmd::<i64>(&mut c, &["BITCOUNT", "foo", "1", "1"]).await.unwrap(), 6);
    assert_eq!(cmd::<i64>(&mut c, &["BITCOUNT", "foo", "5", "30", "BIT"]).await.unwrap(), 17);
    assert_eq!(cmd::<i64>(&mut c, &["BITCOUNT", "nokey", "x", "y"]).await.unwrap(), 0, "a missing key is 0 before its range is read");
    assert_eq!(cmd::<i64>(&mut c, &["BITCOUNT", "foo", "x", "y"]).await.unwrap_err().code(), Some("ERR"));
    let _: () = c.set("p", b"\xff\xf0\x00".as_slice()).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["BITPOS", "p", "0"]).await.unwrap(), 12);
    assert_eq!(cmd::<i64>(&mut c, &["BITPOS", "p", "1", "2"]).await.unwrap(), -1);
    assert_eq!(cmd::<i64>(&mut c, &["BITPOS", "p", "0", "0", "11", "BIT"]).await.unwrap(), -1);
    assert_eq!(cmd::<i64>(&mut c, &["BITPOS", "nokey", "0"]).await.unwrap(), 0);

    let _: () = c.rpush("list", "x").await.unwrap();
    for args in
        [&["GETBIT", "list", "0"][..], &["SETBIT", "list", "0", "1"], &["BITCOUNT", "list"], &["BITFIELD", "list", "GET", "u8", "0"]]
    {
        assert_eq!(cmd::<Value>(&mut c, args).await.unwrap_err().code(), Some("WRONGTYPE"), "{args:?}");
    }
}

#[tokio::test]
async fn bitop_and_bitfield() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = c.set("a", b"\x0f\xf0".as_slice()).await.unwrap();
    let _: () = c.set("b", b"\xff".as_slice()).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["BITOP", "AND", "d", "a", "b"]).await.unwrap(), 2);
    assert_eq!(c.get::<_, Vec<u8>>("d").await.unwrap(), [0x0f, 0x00]);
    assert_eq!(cmd::<i64>(&mut c, &["BITOP", "NOT", "d", "b"]).await.unwrap(), 1);
    assert_eq!(c.get::<_, Vec<u8>>("d").await.unwrap(), [0x00]);
    assert_eq!(cmd::<i64>(&mut c, &["BITOP", "OR", "d", "none"]).await.unwrap(), 0);
    assert!(!c.exists::<_, bool>("d").await.unwrap(), "an empty result deletes the destination");
    let err = cmd::<i64>(&mut c, &["BITOP", "NOT", "d", "a", "b"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("BITOP NOT must be called with a single source key."));

    let r: Vec<Option<i64>> =
        cmd(&mut c, &["BITFIELD", "f", "SET", "u8", "0", "255", "GET", "u8", "0", "INCRBY", "u8", "0", "10"]).await.unwrap();
    assert_eq!(r, [Some(0), Some(255), Some(9)]);
    let r: Vec<Option<i64>> =
        cmd(&mut c, &["BITFIELD", "f", "OVERFLOW", "SAT", "INCRBY", "i8", "#1", "-300", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "300"])
            .await
            .unwrap();
    assert_eq!(r, [Some(-128), None]);
    let r: Vec<i64> = cmd(&mut c, &["BITFIELD_RO", "f", "GET", "i8", "8", "GET", "u4", "0"]).await.unwrap();
    assert_eq!(r, [-128, 0]);
    let err = cmd::<Value>(&mut c, &["BITFIELD_RO", "f", "SET", "u8", "0", "1"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("BITFIELD_RO only supports the GET subcommand"));
    let err = cmd::<Value>(&mut c, &["BITFIELD", "f", "GET", "u64", "0"]).await.unwrap_err();
    assert!(err.detail().unwrap().starts_with("Invalid bitfield type"));
    assert_eq!(cmd::<String>(&mut c, &["OBJECT", "ENCODING", "f"]).await.unwrap(), "raw", "changed in place, as Redis keeps it");
}

#[tokio::test]
async fn notifications_and_watch() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]).await.unwrap();
    let mut sub = server.client().get_async_pubsub().await.unwrap();
    sub.psubscribe("__keyevent@0__:*").await.unwrap();
    for args in [
        &["SETBIT", "k", "0", "0"][..],
        &["SETBIT", "k", "0", "0"], // no change: no event
        &["SETBIT", "k", "1", "1"],
        &["BITFIELD", "k", "SET", "u8", "0", "64"], // the same bits: no event
        &["BITFIELD", "k", "INCRBY", "u8", "0", "1"],
        &["BITOP", "NOT", "d", "k"],
        &["BITOP", "AND", "d", "none"],
    ] {
        let _: Value = cmd(&mut c, args).await.unwrap();
    }
    let mut stream = sub.on_message();
    let mut got = Vec::new();
    while got.len() < 5 {
        let m = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("an event").expect("open");
        got.push(format!("{} {}", m.get_channel_name(), m.get_payload::<String>().unwrap()));
    }
    assert_eq!(
        got,
        ["__keyevent@0__:setbit k", "__keyevent@0__:setbit k", "__keyevent@0__:setbit k", "__keyevent@0__:set d", "__keyevent@0__:del d"]
    );

    // WATCH sees SETBIT from another client.
    let mut other = server.conn().await;
    let _: () = cmd(&mut c, &["WATCH", "k"]).await.unwrap();
    let _: i64 = cmd(&mut other, &["SETBIT", "k", "20", "1"]).await.unwrap();
    let _: () = cmd(&mut c, &["MULTI"]).await.unwrap();
    let _: () = cmd(&mut c, &["GETBIT", "k", "20"]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut c, &["EXEC"]).await.unwrap(), Value::Nil);
}

#[tokio::test]
async fn bitmaps_survive_a_restart() {
    let dir = common::data_dir("bitmaps");
    let server = common::start_persistent(&dir).await;
    let mut c = server.conn().await;
    for args in [
        &["SETBIT", "s", "100", "1"][..],
        &["SETBIT", "s", "3", "1"],
        &["BITFIELD", "f", "SET", "i16", "#2", "-1234", "INCRBY", "u4", "0", "3"],
        &["BITFIELD", "grown", "SET", "u8", "24", "0"], // grows the string, changes no value
        &["SET", "a", "abc"],
        &["BITOP", "XOR", "x", "a", "s"],
    ] {
        let _: Value = cmd(&mut c, args).await.unwrap();
    }
    let before: Vec<Vec<u8>> = redis::cmd("MGET").arg(&["s", "f", "grown", "x"]).query_async(&mut c).await.unwrap();
    server.stop().await;

    let server = common::start_persistent(&dir).await;
    let mut c = server.conn().await;
    let after: Vec<Vec<u8>> = redis::cmd("MGET").arg(&["s", "f", "grown", "x"]).query_async(&mut c).await.unwrap();
    assert_eq!(after, before);
    assert_eq!(after[2], [0, 0, 0, 0], "the grown string is persisted too");
    let r: Vec<i64> = cmd(&mut c, &["BITFIELD_RO", "f", "GET", "i16", "#2", "GET", "u4", "0"]).await.unwrap();
    assert_eq!(r, [-1234, 3]);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn lcs_in_both_protocols() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["MSET", "key1", "ohmytext", "key2", "mynewtext"]).await.unwrap();
    assert_eq!(cmd::<String>(&mut c, &["LCS", "key1", "key2"]).await.unwrap(), "mytext");
    assert_eq!(cmd::<i64>(&mut c, &["LCS", "key1", "key2", "LEN"]).await.unwrap(), 6);
    let idx: Value = cmd(&mut c, &["LCS", "key1", "key2", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"]).await.unwrap();
    let resp2 = common::fields(idx);
    assert_eq!(common::int(&resp2["len"]), 6);
    type Run = ((i64, i64), (i64, i64), i64);
    let matches: Vec<Run> = redis::from_redis_value(resp2["matches"].clone()).unwrap();
    assert_eq!(matches, [((4, 7), (5, 8), 4)]);
    let _: () = c.rpush("list", "x").await.unwrap();
    let err = cmd::<Value>(&mut c, &["LCS", "key1", "list", "BOGUS"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("The specified keys must contain string values"), "the type is checked before the options");
    let err = cmd::<Value>(&mut c, &["LCS", "key1", "key2", "LEN", "IDX"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("If you want both the length and indexes, please just use IDX."));

    let mut c3 = server.client3().get_multiplexed_async_connection().await.unwrap();
    let idx: Value = cmd(&mut c3, &["LCS", "key1", "key2", "IDX"]).await.unwrap();
    let Value::Map(pairs) = idx else { panic!("a RESP3 map: {idx:?}") };
    let keys: Vec<String> = pairs.iter().map(|(k, _)| common::text(k)).collect();
    assert_eq!(keys, ["matches", "len"]);
}
