//! Pub-sub through real clients: RESP2 subscribed mode, RESP3 pushes, patterns, ordering, keyspace
//! notifications, and slow subscribers under both overflow policies.

mod common;

use std::time::Duration;

use common::{cmd, start, start_with};
use futures_util::StreamExt;
use herald_broker::Config;
use redis::{AsyncConnectionConfig, PushKind, Value};

async fn next_msg(stream: &mut (impl futures_util::Stream<Item = redis::Msg> + Unpin)) -> redis::Msg {
    tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("a message within 5s").expect("stream open")
}

#[tokio::test]
async fn publish_reaches_channel_and_pattern_subscribers() {
    let server = start().await;
    let mut c = server.conn().await;
    let mut sub = server.client().get_async_pubsub().await.unwrap();
    sub.subscribe("news.art").await.unwrap();
    sub.psubscribe("news.*").await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["PUBLISH", "news.art", "hello"]).await.unwrap(), 2, "channel + pattern");
    assert_eq!(cmd::<i64>(&mut c, &["PUBLISH", "other", "x"]).await.unwrap(), 0);
    let mut stream = sub.on_message();
    let first = next_msg(&mut stream).await;
    let second = next_msg(&mut stream).await;
    let mut got =
        [(first.get_channel_name().to_owned(), first.from_pattern()), (second.get_channel_name().to_owned(), second.from_pattern())];
    got.sort();
    assert_eq!(got, [("news.art".to_owned(), false), ("news.art".to_owned(), true)]);
    drop(stream);
    let channels: Vec<String> = cmd(&mut c, &["PUBSUB", "CHANNELS"]).await.unwrap();
    assert_eq!(channels, ["news.art"]);
    let numsub: Vec<Value> = cmd(&mut c, &["PUBSUB", "NUMSUB", "news.art", "none"]).await.unwrap();
    assert_eq!(numsub, vec![Value::BulkString(b"news.art".to_vec()), Value::Int(1), Value::BulkString(b"none".to_vec()), Value::Int(0)]);
    assert_eq!(cmd::<i64>(&mut c, &["PUBSUB", "NUMPAT"]).await.unwrap(), 1);
    sub.unsubscribe("news.art").await.unwrap();
    sub.punsubscribe("news.*").await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["PUBSUB", "NUMPAT"]).await.unwrap(), 0, "empty patterns are removed");
    let channels: Vec<String> = cmd(&mut c, &["PUBSUB", "CHANNELS"]).await.unwrap();
    assert!(channels.is_empty(), "empty channels are removed");
}

#[tokio::test]
async fn glob_patterns_with_classes_ranges_and_escapes() {
    let server = start().await;
    let mut c = server.conn().await;
    let mut sub = server.client().get_async_pubsub().await.unwrap();
    for p in ["h[ae]llo", "r[0-9]", r"lit\*", "q?", "n[^x]"] {
        sub.psubscribe(p).await.unwrap();
    }
    let cases = [("hallo", 1), ("hillo", 0), ("r7", 1), ("ra", 0), ("lit*", 1), ("litx", 0), ("qz", 1), ("q", 0), ("ny", 1), ("nx", 0)];
    for (channel, expected) in cases {
        assert_eq!(cmd::<i64>(&mut c, &["PUBLISH", channel, channel]).await.unwrap(), expected, "{channel}");
    }
    let mut stream = sub.on_message();
    for (channel, expected) in cases {
        if expected == 1 {
            assert_eq!(next_msg(&mut stream).await.get_channel_name(), channel);
        }
    }
}

#[tokio::test]
async fn ten_thousand_messages_arrive_in_order() {
    let server = start().await;
    let mut c = server.conn().await;
    let mut sub = server.client().get_async_pubsub().await.unwrap();
    sub.subscribe("seq").await.unwrap();
    let publisher = tokio::spawn(async move {
        let mut pipe = redis::pipe();
        for i in 0..10_000 {
            pipe.cmd("PUBLISH").arg("seq").arg(i).ignore();
        }
        let _: () = pipe.query_async(&mut c).await.unwrap();
    });
    let mut stream = sub.on_message();
    for i in 0..10_000 {
        assert_eq!(next_msg(&mut stream).await.get_payload::<i64>().unwrap(), i);
    }
    publisher.await.unwrap();
}

#[tokio::test]
async fn resp3_pushes_arrive_beside_normal_replies() {
    let server = start().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let config = AsyncConnectionConfig::new().set_push_sender(tx);
    let mut con = server.client3().get_multiplexed_async_connection_with_config(&config).await.unwrap();
    con.subscribe("events").await.unwrap();
    let mut publisher = server.conn().await;
    assert_eq!(cmd::<i64>(&mut publisher, &["PUBLISH", "events", "one"]).await.unwrap(), 1);
    // While subscribed, a RESP3 connection may run any command.
    let _: () = redis::cmd("SET").arg("k").arg("v").query_async(&mut con).await.unwrap();
    let got: String = redis::cmd("GET").arg("k").query_async(&mut con).await.unwrap();
    assert_eq!(got, "v");
    loop {
        let push = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
        if push.kind == PushKind::Message {
            assert_eq!(push.data, vec![Value::BulkString(b"events".to_vec()), Value::BulkString(b"one".to_vec())]);
            break;
        }
    }
}

#[tokio::test]
async fn resp2_subscribed_mode_allows_only_subscription_commands() {
    let server = start().await;
    let mut raw = server.raw().await;
    raw.cmd(&["SUBSCRIBE", "a"]).await;
    raw.expect("*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n").await;
    raw.cmd(&["GET", "x"]).await;
    raw.expect("-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n")
        .await;
    raw.cmd(&["PING"]).await;
    raw.expect("*2\r\n$4\r\npong\r\n$0\r\n\r\n").await;
    raw.cmd(&["PSUBSCRIBE", "p*"]).await;
    raw.expect("*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:2\r\n").await;
    raw.cmd(&["SSUBSCRIBE", "s"]).await;
    raw.expect("*3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n").await;
    raw.cmd(&["UNSUBSCRIBE"]).await;
    raw.expect("*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n").await;
    raw.cmd(&["PUNSUBSCRIBE"]).await;
    raw.expect("*3\r\n$12\r\npunsubscribe\r\n$2\r\np*\r\n:0\r\n").await;
    raw.cmd(&["SUNSUBSCRIBE"]).await;
    raw.expect("*3\r\n$12\r\nsunsubscribe\r\n$1\r\ns\r\n:0\r\n").await;
    raw.cmd(&["UNSUBSCRIBE"]).await;
    raw.expect("*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n").await;
    raw.cmd(&["GET", "x"]).await;
    raw.expect("$-1\r\n").await;
}

#[tokio::test]
async fn shard_channels_are_their_own_namespace() {
    let server = start().await;
    let mut c = server.conn().await;
    let mut raw = server.raw().await;
    raw.cmd(&["SSUBSCRIBE", "orders"]).await;
    raw.expect("*3\r\n$10\r\nssubscribe\r\n$6\r\norders\r\n:1\r\n").await;
    assert_eq!(cmd::<i64>(&mut c, &["PUBLISH", "orders", "x"]).await.unwrap(), 0);
    assert_eq!(cmd::<i64>(&mut c, &["SPUBLISH", "orders", "y"]).await.unwrap(), 1);
    raw.expect("*3\r\n$8\r\nsmessage\r\n$6\r\norders\r\n$1\r\ny\r\n").await;
    let shard: Vec<String> = cmd(&mut c, &["PUBSUB", "SHARDCHANNELS"]).await.unwrap();
    assert_eq!(shard, ["orders"]);
}

#[tokio::test]
async fn keyspace_notifications_follow_the_flags() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]).await.unwrap();
    let mut sub = server.client().get_async_pubsub().await.unwrap();
    sub.psubscribe("__keyspace@0__:*").await.unwrap();
    sub.psubscribe("__keyevent@0__:rename_*").await.unwrap();
    let _: () = cmd(&mut c, &["SET", "k", "1"]).await.unwrap();
    let _: () = cmd(&mut c, &["INCRBY", "k", "2"]).await.unwrap();
    let _: () = cmd(&mut c, &["EXPIRE", "k", "100"]).await.unwrap();
    let _: () = cmd(&mut c, &["RENAME", "k", "k2"]).await.unwrap();
    let _: () = cmd(&mut c, &["DEL", "k2"]).await.unwrap();
    let mut stream = sub.on_message();
    let mut events = Vec::new();
    while events.len() < 8 {
        let m = next_msg(&mut stream).await;
        events.push((m.get_channel_name().to_owned(), m.get_payload::<String>().unwrap()));
    }
    let expected = [
        ("__keyspace@0__:k", "set"),
        ("__keyspace@0__:k", "incrby"),
        ("__keyspace@0__:k", "expire"),
        ("__keyspace@0__:k", "rename_from"),
        ("__keyevent@0__:rename_from", "k"),
        ("__keyspace@0__:k2", "rename_to"),
        ("__keyevent@0__:rename_to", "k2"),
        ("__keyspace@0__:k2", "del"),
    ];
    let got: Vec<(&str, &str)> = events.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(got, expected);
}

/// A subscriber that stops reading is disconnected under the default policy, while another subscriber
/// receives every message and the stalled one's backlog stays bounded.
#[tokio::test]
async fn slow_subscriber_is_disconnected_and_others_get_everything() {
    let mut config = Config::for_tests();
    config.pubsub.hard_limit = 256 * 1024;
    config.pubsub.soft_limit = 0;
    let server = start_with(config).await;
    let mut stalled = server.raw().await;
    stalled.cmd(&["SUBSCRIBE", "firehose"]).await;
    stalled.expect("*3\r\n$9\r\nsubscribe\r\n$8\r\nfirehose\r\n:1\r\n").await;
    let mut healthy = server.client().get_async_pubsub().await.unwrap();
    healthy.subscribe("firehose").await.unwrap();
    let mut publisher = server.conn().await;
    let payload = "x".repeat(1024);
    let total = 20_000;
    let reader = tokio::spawn(async move {
        let mut stream = healthy.on_message();
        for _ in 0..total {
            next_msg(&mut stream).await;
        }
    });
    let mut max_backlog = 0;
    for _ in 0..total / 50 {
        let mut pipe = redis::pipe();
        for _ in 0..50 {
            pipe.cmd("PUBLISH").arg("firehose").arg(&payload).ignore();
        }
        let _: () = pipe.query_async(&mut publisher).await.unwrap();
        for c in server.broker.clients.all() {
            max_backlog = max_backlog.max(c.outbox.pending_bytes());
        }
    }
    reader.await.unwrap();
    assert!(stalled.closed().await, "the stalled subscriber was disconnected");
    assert!(max_backlog <= 256 * 1024, "backlog stayed under the hard limit: {max_backlog}");
    let info: String = cmd(&mut publisher, &["INFO", "stats"]).await.unwrap();
    assert!(info.contains("herald_output_limit_disconnects:1"), "{info}");
}

/// Under drop-oldest the stalled subscriber keeps its connection and is told how much it lost.
#[tokio::test]
async fn drop_oldest_keeps_the_connection_and_reports_the_loss() {
    let mut config = Config::for_tests();
    config.pubsub.hard_limit = 64 * 1024;
    config.pubsub.overflow = "drop-oldest".into();
    let server = start_with(config).await;
    let mut stalled = server.raw().await;
    stalled.cmd(&["HELLO", "3"]).await;
    stalled.read_until("modules\r\n*0\r\n").await;
    let mut publisher = server.conn().await;
    stalled.cmd(&["SUBSCRIBE", "firehose"]).await;
    let payload = "y".repeat(1000);
    let mut pipe = redis::pipe();
    for i in 0..10_000 {
        pipe.cmd("PUBLISH").arg("firehose").arg(format!("{i:05}{payload}")).ignore();
    }
    // Let the subscription land before publishing.
    for _ in 0..100 {
        if cmd::<Vec<Value>>(&mut publisher, &["PUBSUB", "NUMSUB", "firehose"]).await.unwrap()[1] == Value::Int(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _: () = pipe.query_async(&mut publisher).await.unwrap();
    let info: String = cmd(&mut publisher, &["INFO", "stats"]).await.unwrap();
    let dropped: u64 = info.lines().find_map(|l| l.strip_prefix("herald_pubsub_dropped:")).unwrap().trim().parse().unwrap();
    assert!(dropped > 0, "{info}");
    // Read everything that is there: a lagged notice with the count, then the newest messages, last one included.
    let text = stalled.read_until(&format!("09999{payload}\r\n")).await;
    assert!(text.contains(">3\r\n$7\r\nmessage\r\n$17\r\n__herald__:lagged\r\n$"), "a lagged notice arrived");
    assert!(!text.contains(&format!("00000{payload}")), "the oldest messages were dropped");
    stalled.cmd(&["PING"]).await;
    stalled.expect("+PONG\r\n").await;
}

/// The lagged notice is a message every Redis client reads: here the `redis` crate's pub-sub reader (RESP2)
/// gets it as a message on `__herald__:lagged` whose payload is the count, then the newest messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_crate_reads_the_lagged_notice_as_a_message() {
    let mut config = Config::for_tests();
    config.pubsub.hard_limit = 64 * 1024;
    config.pubsub.overflow = "drop-oldest".into();
    let server = start_with(config).await;
    let client = server.client();
    let lost = tokio::task::spawn_blocking(move || {
        let mut sync = client.get_connection().unwrap();
        let mut publisher = client.get_connection().unwrap();
        let mut pubsub = sync.as_pubsub();
        pubsub.subscribe("firehose").unwrap();
        // Published while the subscriber reads nothing.
        let payload = "y".repeat(1000);
        let mut pipe = redis::pipe();
        for i in 0..10_000 {
            pipe.cmd("PUBLISH").arg("firehose").arg(format!("{i:05}{payload}")).ignore();
        }
        let _: () = pipe.query(&mut publisher).unwrap();
        let last = format!("09999{payload}");
        let mut lost = 0u64;
        loop {
            let msg = pubsub.get_message().unwrap();
            let body: String = msg.get_payload().unwrap();
            if msg.get_channel_name() == "__herald__:lagged" {
                lost += body.parse::<u64>().expect("the payload is the count");
            } else if body == last {
                return lost;
            }
        }
    })
    .await
    .unwrap();
    assert!(lost > 0, "a lagged notice arrived with the count");
}
