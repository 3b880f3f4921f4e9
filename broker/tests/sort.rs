//! SORT and SORT_RO through a real client: orders, patterns, STORE (its notification, a blocked
//! popper it wakes, WATCH, a restart with persistence on).

mod common;

use std::time::Duration;

use common::{cmd, start};
use futures_util::StreamExt;
use redis::{AsyncCommands, Value};

#[tokio::test]
async fn orders_patterns_and_limits() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = c.rpush("l", &["3", "10", "2"]).await.unwrap();
    assert_eq!(cmd::<Vec<String>>(&mut c, &["SORT", "l"]).await.unwrap(), ["2", "3", "10"]);
    assert_eq!(cmd::<Vec<String>>(&mut c, &["SORT", "l", "ALPHA", "DESC"]).await.unwrap(), ["3", "2", "10"]);
    assert_eq!(cmd::<Vec<String>>(&mut c, &["SORT_RO", "l", "LIMIT", "1", "1"]).await.unwrap(), ["3"]);
    let _: () = cmd(&mut c, &["MSET", "w_3", "1", "w_10", "3", "w_2", "2"]).await.unwrap();
    let _: () = cmd(&mut c, &["HSET", "o_10", "name", "ten"]).await.unwrap();
    let got: Vec<Option<String>> = cmd(&mut c, &["SORT", "l", "BY", "w_*", "GET", "#", "GET", "o_*->name"]).await.unwrap();
    let expected = [Some("3"), None, Some("2"), None, Some("10"), Some("ten")].map(|v| v.map(str::to_owned));
    assert_eq!(got, expected);
    assert_eq!(cmd::<Vec<String>>(&mut c, &["SORT", "l", "BY", "nosort", "DESC"]).await.unwrap(), ["2", "10", "3"], "the list's own order");
    let _: () = c.sadd("s", &["b", "a"]).await.unwrap();
    let err = cmd::<Value>(&mut c, &["SORT", "s"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("One or more scores can't be converted into double"));
    let _: () = c.zadd_multiple("z", &[(2, "x"), (1, "y")]).await.unwrap();
    assert_eq!(cmd::<Vec<String>>(&mut c, &["SORT", "z", "BY", "nosort"]).await.unwrap(), ["y", "x"]);
    let _: () = c.set("str", "v").await.unwrap();
    assert_eq!(cmd::<Value>(&mut c, &["SORT", "str"]).await.unwrap_err().code(), Some("WRONGTYPE"));
    assert_eq!(cmd::<Value>(&mut c, &["SORT_RO", "l", "STORE", "d"]).await.unwrap_err().detail(), Some("syntax error"));
}

#[tokio::test]
async fn store_notifies_wakes_and_dirties() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]).await.unwrap();
    let mut sub = server.client().get_async_pubsub().await.unwrap();
    sub.psubscribe("__keyevent@0__:*").await.unwrap();
    let _: () = c.rpush("l", &["2", "1"]).await.unwrap();

    let mut popper = server.conn().await;
    let waiter = tokio::spawn(async move { cmd::<Vec<String>>(&mut popper, &["BLPOP", "dest", "0"]).await.unwrap() });
    common::until_blocked(&server, 1).await;
    let mut watcher = server.conn().await;
    let _: () = cmd(&mut watcher, &["WATCH", "dest"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["SORT", "l", "STORE", "dest"]).await.unwrap(), 2);
    assert_eq!(waiter.await.unwrap(), ["dest", "1"], "the stored list serves a blocked popper");
    let _: () = cmd(&mut watcher, &["MULTI"]).await.unwrap();
    let _: () = cmd(&mut watcher, &["LLEN", "dest"]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut watcher, &["EXEC"]).await.unwrap(), Value::Nil, "STORE dirties WATCH");
    assert_eq!(cmd::<i64>(&mut c, &["SORT", "nokey", "STORE", "dest"]).await.unwrap(), 0);
    assert!(!c.exists::<_, bool>("dest").await.unwrap(), "an empty result deletes the destination");

    let mut stream = sub.on_message();
    let mut got = Vec::new();
    while got.len() < 4 {
        let m = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("an event").expect("open");
        got.push(format!("{} {}", m.get_channel_name(), m.get_payload::<String>().unwrap()));
    }
    assert_eq!(got, ["__keyevent@0__:rpush l", "__keyevent@0__:sortstore dest", "__keyevent@0__:lpop dest", "__keyevent@0__:del dest"]);
}

#[tokio::test]
async fn stored_results_survive_a_restart() {
    let dir = common::data_dir("sort");
    let server = common::start_persistent(&dir).await;
    let mut c = server.conn().await;
    let _: () = c.sadd("s", &["b", "c", "a"]).await.unwrap();
    let _: () = cmd(&mut c, &["SET", "dest", "old", "EX", "100"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["SORT", "s", "BY", "nosort", "STORE", "dest"]).await.unwrap(), 3);
    server.stop().await;

    let server = common::start_persistent(&dir).await;
    let mut c = server.conn().await;
    assert_eq!(c.lrange::<_, Vec<String>>("dest", 0, -1).await.unwrap(), ["a", "b", "c"], "a stored set is sorted");
    assert_eq!(c.ttl::<_, i64>("dest").await.unwrap(), -1);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
