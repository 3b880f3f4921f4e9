//! Semaphores and locks with fencing through a real client, on both engines: permits under leases,
//! tokens that only grow, a lapsed lease freeing its permit on time and its token refused afterwards;
//! on the embedded engine waiters are served in order and everything survives restarts; on the Redis
//! engine two nodes share the semaphores.

mod common;

use std::time::Duration;

use common::redis_server::RedisServer;
use common::{TestServer, cmd, data_dir, fields, int, rewrite, start, start_persistent, until_blocked};
use herald_broker::Config;
use redis::Value;

async fn a_one_permit_semaphore_is_a_lock_with_growing_fencing_tokens(server: &TestServer) {
    let mut a = server.conn().await;
    let mut b = server.conn().await;
    let first: i64 = cmd(&mut a, &["SEM.ACQUIRE", "lock", "1", "LEASE", "60000"]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut b, &["SEM.ACQUIRE", "lock", "1"]).await.unwrap(), Value::Nil, "held: nil at once");
    let info = fields(cmd(&mut b, &["SEM.INFO", "lock"]).await.unwrap());
    assert_eq!((int(&info["permits"]), int(&info["held"]), int(&info["fence"])), (1, 1, first));
    // A waiter blocks until the holder releases, then gets a larger token.
    let waiter = tokio::spawn(async move { cmd::<i64>(&mut b, &["SEM.ACQUIRE", "lock", "1", "BLOCK", "0"]).await.unwrap() });
    until_blocked(server, 1).await;
    let expires: i64 = cmd(&mut a, &["SEM.EXTEND", "lock", &first.to_string(), "120000"]).await.unwrap();
    assert!(expires > 0);
    let info = fields(cmd(&mut a, &["SEM.INFO", "lock"]).await.unwrap());
    let Value::Array(holders) = &info["holders"] else { panic!("holders: {info:?}") };
    assert_eq!(int(&common::field(&holders[0], "lease_expires")), expires, "the new lease end");
    until_blocked(server, 1).await;
    let _: () = cmd(&mut a, &["SEM.RELEASE", "lock", &first.to_string()]).await.unwrap();
    let second = waiter.await.unwrap();
    assert!(second > first, "{second} > {first}");
    // The old token is refused everywhere.
    for args in [&["SEM.RELEASE", "lock", &first.to_string()][..], &["SEM.EXTEND", "lock", &first.to_string(), "10"][..]] {
        let err = cmd::<Value>(&mut a, args).await.unwrap_err();
        assert_eq!(err.code(), Some("LEASE"), "{args:?}: {err}");
    }
}

/// A holder that goes silent loses its permit at its lease's end, which serves the next waiter; its
/// token is refused from then on.
async fn a_lapsed_lease_frees_the_permit_on_time(server: &TestServer) {
    let mut a = server.conn().await;
    let mut b = server.conn().await;
    let gone: i64 = cmd(&mut a, &["SEM.ACQUIRE", "lock", "1", "LEASE", "50"]).await.unwrap();
    let next: i64 = cmd(&mut b, &["SEM.ACQUIRE", "lock", "1", "BLOCK", "5000"]).await.unwrap();
    assert!(next > gone);
    let err = cmd::<Value>(&mut a, &["SEM.EXTEND", "lock", &gone.to_string(), "1000"]).await.unwrap_err();
    assert_eq!(err.code(), Some("LEASE"));
    let holders = fields(cmd(&mut a, &["SEM.INFO", "lock"]).await.unwrap());
    assert_eq!(int(&holders["held"]), 1);
}

/// n permits: n holders at once, the next waits; each freed permit serves one waiter; the errors.
async fn counting_permits_and_bounds(server: &TestServer) {
    let mut c = server.conn().await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(cmd::<i64>(&mut c, &["SEM.ACQUIRE", "pool", "3"]).await.unwrap());
    }
    assert_eq!(cmd::<Value>(&mut c, &["SEM.ACQUIRE", "pool", "3"]).await.unwrap(), Value::Nil);
    let mut waiters = Vec::new();
    for i in 0..2 {
        let mut w = server.conn().await;
        waiters.push(tokio::spawn(async move { cmd::<i64>(&mut w, &["SEM.ACQUIRE", "pool", "3", "BLOCK", "5000"]).await.unwrap() }));
        until_blocked(server, i + 1).await;
    }
    let _: () = cmd(&mut c, &["SEM.RELEASE", "pool", &held[0].to_string()]).await.unwrap();
    until_blocked(server, 1).await;
    let info = fields(cmd(&mut c, &["SEM.INFO", "pool"]).await.unwrap());
    assert_eq!((int(&info["permits"]), int(&info["held"])), (3, 3), "one permit, one waiter");
    let _: () = cmd(&mut c, &["SEM.RELEASE", "pool", &held[1].to_string()]).await.unwrap();
    let mut got = vec![waiters.remove(0).await.unwrap(), waiters.remove(0).await.unwrap()];
    got.sort_unstable();
    assert!(got[0] > held[2] && got[1] > got[0], "tokens growing: {held:?} then {got:?}");
    assert_eq!(cmd::<Value>(&mut c, &["SEM.ACQUIRE", "pool", "3", "BLOCK", "20"]).await.unwrap(), Value::Nil, "timeout: nil");
    until_blocked(server, 0).await;
    let info = fields(cmd(&mut c, &["SEM.INFO", "pool"]).await.unwrap());
    let tokens: Vec<i64> = match &info["holders"] {
        Value::Array(h) => h.iter().map(|f| int(&common::field(f, "token"))).collect(),
        other => panic!("holders: {other:?}"),
    };
    assert_eq!(tokens, vec![held[2], got[0], got[1]], "oldest token first");
    for t in [held[2], got[0], got[1]] {
        let _: () = cmd(&mut c, &["SEM.RELEASE", "pool", &t.to_string()]).await.unwrap();
    }
    let empty = fields(cmd(&mut c, &["SEM.INFO", "pool"]).await.unwrap());
    assert_eq!((int(&empty["permits"]), int(&empty["held"]), int(&empty["fence"])), (0, 0, got[1]), "forgotten but the fence");
    let empty = fields(cmd(&mut c, &["SEM.INFO", "nothing"]).await.unwrap());
    assert_eq!((int(&empty["permits"]), int(&empty["held"])), (0, 0));
    for (args, expected) in [
        (&["SEM.ACQUIRE", "s"][..], "wrong number of arguments"),
        (&["SEM.ACQUIRE", "s", "0"][..], "permits must be a positive integer"),
        (&["SEM.ACQUIRE", "s", "many"][..], "permits must be a positive integer"),
        (&["SEM.ACQUIRE", "s", "99999999999"][..], "permits must be a positive integer"),
        (&["SEM.ACQUIRE", "s", "2000000"][..], "permits must be between 1 and 1000000"),
        (&["SEM.ACQUIRE", "s", "1", "LEASE", "0"][..], "LEASE must be a positive"),
        (&["SEM.ACQUIRE", "s", "1", "BLOCK", "-1"][..], "must be positive"),
        (&["SEM.ACQUIRE", "s", "1", "BLOCK", "1", "BLOCK", "1"][..], "syntax error"),
        (&["SEM.ACQUIRE", "s", "1", "FOREVER"][..], "syntax error"),
        (&["SEM.RELEASE", "s", "x"][..], "invalid fencing token"),
        (&["SEM.RELEASE", "s", "1"][..], "the permit is not held"),
        (&["SEM.EXTEND", "s", "1", "10"][..], "the permit is not held"),
        (&["SEM.EXTEND", "s", "1", "0"][..], "positive number of milliseconds"),
        (&["SEM.INFO"][..], "wrong number of arguments"),
    ] {
        let err = cmd::<Value>(&mut c, args).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{args:?}: {err}");
    }
}

on_both_engines!(
    a_one_permit_semaphore_is_a_lock_with_growing_fencing_tokens,
    a_lapsed_lease_frees_the_permit_on_time,
    counting_permits_and_bounds
);

/// One node: waiters are served in the order they blocked (on the Redis engine, by whoever's re-check
/// wins: docs/scale-out.md).
#[tokio::test]
async fn waiters_are_served_in_blocking_order() {
    let server = start().await;
    let mut c = server.conn().await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(cmd::<i64>(&mut c, &["SEM.ACQUIRE", "pool", "2"]).await.unwrap());
    }
    let mut waiters = Vec::new();
    for i in 0..2 {
        let mut w = server.conn().await;
        waiters.push(tokio::spawn(async move { cmd::<i64>(&mut w, &["SEM.ACQUIRE", "pool", "2", "BLOCK", "5000"]).await.unwrap() }));
        until_blocked(&server, i + 1).await;
    }
    let _: () = cmd(&mut c, &["SEM.RELEASE", "pool", &held[0].to_string()]).await.unwrap();
    let first = waiters.remove(0).await.unwrap();
    assert_eq!(server.broker.lock().blocking.len(), 1, "one permit, one waiter: the first to block");
    let _: () = cmd(&mut c, &["SEM.RELEASE", "pool", &held[1].to_string()]).await.unwrap();
    let second = waiters.remove(0).await.unwrap();
    assert!(second > first, "served in blocking order, tokens growing");
}

/// Two nodes on one redis-server, waits woken only by wake-ups (the fallback poll is a minute): an
/// acquire blocked on node A is served by a release on node B, then by the lease of a holder on A
/// running out (the sweep frees it: nobody touches the semaphore); the lapsed token is refused on
/// both nodes; tokens grow across nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_semaphores() {
    let redis = RedisServer::start("two_nodes_share_semaphores").await;
    let mut config = Config::for_tests();
    config.engine.wait_poll_ms = 60_000;
    let (node_a, node_b) = (redis.node_with(config.clone()).await, redis.node_with(config).await);
    let (mut a, mut b) = (node_a.conn().await, node_b.conn().await);

    let t1: i64 = cmd(&mut b, &["SEM.ACQUIRE", "lock", "1", "LEASE", "60000"]).await.unwrap();
    let mut wa = node_a.conn().await;
    let waiter = tokio::spawn(async move { cmd::<i64>(&mut wa, &["SEM.ACQUIRE", "lock", "1", "LEASE", "300", "BLOCK", "10000"]).await });
    until_blocked(&node_a, 1).await;
    let _: () = cmd(&mut b, &["SEM.RELEASE", "lock", &t1.to_string()]).await.unwrap();
    let t2 = tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("woken by B's release").unwrap().unwrap();
    assert!(t2 > t1);

    // A's holder (lease 300 ms) goes silent; B's waiter gets the permit when the lease ends.
    let t3: i64 = tokio::time::timeout(Duration::from_secs(5), cmd(&mut b, &["SEM.ACQUIRE", "lock", "1", "BLOCK", "10000"]))
        .await
        .expect("woken at the lease's end")
        .unwrap();
    assert!(t3 > t2);
    for c in [&mut a, &mut b] {
        let err = cmd::<Value>(c, &["SEM.EXTEND", "lock", &t2.to_string(), "1000"]).await.unwrap_err();
        assert_eq!(err.code(), Some("LEASE"), "the lapsed token is refused: {err}");
        let info = fields(cmd(c, &["SEM.INFO", "lock"]).await.unwrap());
        assert_eq!((int(&info["held"]), int(&info["fence"])), (1, t3));
    }
    let _: () = cmd(&mut a, &["SEM.RELEASE", "lock", &t3.to_string()]).await.unwrap();
    let t4: i64 = cmd(&mut a, &["SEM.ACQUIRE", "lock", "1"]).await.unwrap();
    assert!(t4 > t3);
}

/// Holders, leases and the token counter survive a restart, from the log and from a snapshot: a
/// token handed out after the restart is larger than every one before it.
#[tokio::test]
async fn holders_and_fencing_tokens_survive_restarts() {
    let dir = data_dir("semaphores");
    let server = start_persistent(&dir).await;
    let mut c = server.conn().await;
    let kept: i64 = cmd(&mut c, &["SEM.ACQUIRE", "lock", "1", "LEASE", "600000"]).await.unwrap();
    let released: i64 = cmd(&mut c, &["SEM.ACQUIRE", "other", "1"]).await.unwrap();
    let _: () = cmd(&mut c, &["SEM.RELEASE", "other", &released.to_string()]).await.unwrap();
    server.stop().await;

    let server = start_persistent(&dir).await;
    let mut c = server.conn().await;
    let info = fields(cmd(&mut c, &["SEM.INFO", "lock"]).await.unwrap());
    assert_eq!((int(&info["held"]), int(&info["fence"])), (1, released));
    assert_eq!(cmd::<Value>(&mut c, &["SEM.ACQUIRE", "lock", "1"]).await.unwrap(), Value::Nil, "still held");
    let after: i64 = cmd(&mut c, &["SEM.ACQUIRE", "other", "1"]).await.unwrap();
    assert!(after > released, "tokens never go backwards: {after} > {released}");
    let _: () = cmd(&mut c, &["SEM.RELEASE", "other", &after.to_string()]).await.unwrap();
    rewrite(&mut c).await;
    server.stop().await;

    let server = start_persistent(&dir).await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["SEM.RELEASE", "lock", &kept.to_string()]).await.unwrap();
    let last: i64 = cmd(&mut c, &["SEM.ACQUIRE", "other", "1"]).await.unwrap();
    assert!(last > after, "from the snapshot too: {last} > {after}");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
