//! The node's own pub-sub connection to Redis (`remote/link.rs`, frames cut by `remote/push.rs`):
//! publications of every size reach the node's subscribers through it, and when it is killed mid-stream
//! the subscribers keep receiving, in order, what is published after it is back.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::cmd;
use common::redis_server::RedisServer;
use futures_util::{Stream, StreamExt};
use redis::Value;

/// Publication `i`: its number, then filler of a size that varies, every 50th past the bridge's 64 KB
/// read buffer, so frames arrive split over many reads.
fn payload(i: u64) -> String {
    let filler = if i.is_multiple_of(50) { 100_000 } else { (i % 50) as usize * 37 };
    format!("{i}:{}", "x".repeat(filler))
}

/// Reads publications until one numbered `until` or later came: each one whole, numbers rising (none
/// twice, none out of order; those published while the bridge was away may be missing, as Redis pub-sub
/// keeps nothing). Returns the last number read.
async fn read_until(stream: &mut (impl Stream<Item = redis::Msg> + Unpin), mut last: Option<u64>, until: u64) -> u64 {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("a publication in time").expect("subscribed");
        let text: String = msg.get_payload().unwrap();
        let n: u64 = text.split(':').next().unwrap().parse().unwrap();
        assert!(text == payload(n), "publication {n} arrived whole");
        assert!(last.is_none_or(|last| n > last), "publication {n} after {last:?}: in order, once");
        last = Some(n);
        if n >= until {
            return n;
        }
    }
}

async fn count(direct: &mut redis::aio::MultiplexedConnection, parts: &[&str]) -> i64 {
    match cmd::<Value>(direct, parts).await.unwrap() {
        Value::Int(n) => n,
        Value::Array(counts) => match counts.get(1) {
            Some(Value::Int(n)) => *n,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_keep_receiving_after_the_nodes_pubsub_connection_is_killed_mid_stream() {
    let redis = RedisServer::start("bridge-kill").await;
    let (a, b) = (redis.node().await, redis.node().await);
    let mut on_channel = a.client().get_async_pubsub().await.unwrap();
    on_channel.subscribe("ticks").await.unwrap();
    let mut on_pattern = a.client().get_async_pubsub().await.unwrap();
    on_pattern.psubscribe("tick*").await.unwrap();

    // A publisher on node B, numbering what it published.
    let published = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = tokio::spawn({
        let (published, stop, mut conn) = (published.clone(), stop.clone(), b.conn().await);
        async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let _: i64 = cmd(&mut conn, &["PUBLISH", "ticks", &payload(i)]).await.unwrap();
                i += 1;
                published.store(i, Ordering::Release);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    let (mut by_channel, mut by_pattern) = (on_channel.on_message(), on_pattern.on_message());
    let seen = read_until(&mut by_channel, None, 60).await;
    let seen_by_pattern = read_until(&mut by_pattern, None, 60).await;

    // Mid-stream: both nodes' bridges are killed (the publisher's connection is not a pub-sub one).
    let mut direct = redis.conn().await;
    let patterns = count(&mut direct, &["PUBSUB", "NUMPAT"]).await;
    assert_eq!(count(&mut direct, &["CLIENT", "KILL", "TYPE", "pubsub"]).await, 2);
    // Node A follows its channel and its pattern again (NUMPAT counts the distinct patterns followed: the
    // nodes' own notice patterns and `tick*`).
    let mut back = false;
    for _ in 0..1000 {
        if count(&mut direct, &["PUBSUB", "NUMSUB", "ticks"]).await == 1 && count(&mut direct, &["PUBSUB", "NUMPAT"]).await == patterns {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(back, "node A subscribed again");
    // What is published from now on reaches both subscribers.
    let after = published.load(Ordering::Acquire) + 1;
    read_until(&mut by_channel, Some(seen), after + 60).await;
    read_until(&mut by_pattern, Some(seen_by_pattern), after + 60).await;
    stop.store(true, Ordering::Relaxed);
    publisher.await.unwrap();
}
