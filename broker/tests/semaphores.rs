//! Semaphores and locks with fencing through a real client: permits under leases, tokens that only
//! grow (across restarts too), waiters served in order, a lapsed lease freeing its permit on time and
//! its token refused afterwards.

mod common;

use common::{cmd, data_dir, eventually, fields, int, rewrite, start, start_persistent};
use redis::Value;

#[tokio::test]
async fn a_one_permit_semaphore_is_a_lock_with_growing_fencing_tokens() {
    let server = start().await;
    let mut a = server.conn().await;
    let mut b = server.conn().await;
    let first: i64 = cmd(&mut a, &["SEM.ACQUIRE", "lock", "1", "LEASE", "60000"]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut b, &["SEM.ACQUIRE", "lock", "1"]).await.unwrap(), Value::Nil, "held: nil at once");
    let info = fields(cmd(&mut b, &["SEM.INFO", "lock"]).await.unwrap());
    assert_eq!((int(&info["permits"]), int(&info["held"]), int(&info["fence"])), (1, 1, first));
    // A waiter blocks until the holder releases, then gets a larger token.
    let waiter = tokio::spawn(async move { cmd::<i64>(&mut b, &["SEM.ACQUIRE", "lock", "1", "BLOCK", "0"]).await.unwrap() });
    eventually(|| server.broker.lock().blocking.len() == 1).await;
    let expires: i64 = cmd(&mut a, &["SEM.EXTEND", "lock", &first.to_string(), "120000"]).await.unwrap();
    assert!(expires > 0);
    assert_eq!(server.broker.lock().blocking.len(), 1, "extending frees nothing");
    let _: () = cmd(&mut a, &["SEM.RELEASE", "lock", &first.to_string()]).await.unwrap();
    let second = waiter.await.unwrap();
    assert!(second > first, "{second} > {first}");
    // The old token is refused everywhere.
    for args in [&["SEM.RELEASE", "lock", &first.to_string()][..], &["SEM.EXTEND", "lock", &first.to_string(), "10"][..]] {
        let err = cmd::<Value>(&mut a, args).await.unwrap_err();
        assert_eq!(err.code(), Some("LEASE"), "{args:?}: {err}");
    }
}

/// A holder that goes silent loses its permit at its lease's end, from the timer, which serves the
/// next waiter; its token is refused from then on.
#[tokio::test]
async fn a_lapsed_lease_frees_the_permit_on_time() {
    let server = start().await;
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

/// n permits: n holders at once, the next waits; waiters are served in the order they blocked.
#[tokio::test]
async fn counting_permits_and_waiters_in_order() {
    let server = start().await;
    let mut c = server.conn().await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(cmd::<i64>(&mut c, &["SEM.ACQUIRE", "pool", "3"]).await.unwrap());
    }
    let mut waiters = Vec::new();
    for i in 0..2 {
        let mut w = server.conn().await;
        waiters.push(tokio::spawn(async move { cmd::<i64>(&mut w, &["SEM.ACQUIRE", "pool", "3", "BLOCK", "5000"]).await.unwrap() }));
        eventually(|| server.broker.lock().blocking.len() == i + 1).await;
    }
    let _: () = cmd(&mut c, &["SEM.RELEASE", "pool", &held[0].to_string()]).await.unwrap();
    let first = waiters.remove(0).await.unwrap();
    assert_eq!(server.broker.lock().blocking.len(), 1, "one permit, one waiter");
    let _: () = cmd(&mut c, &["SEM.RELEASE", "pool", &held[1].to_string()]).await.unwrap();
    let second = waiters.remove(0).await.unwrap();
    assert!(second > first, "served in blocking order, tokens growing");
    assert_eq!(cmd::<Value>(&mut c, &["SEM.ACQUIRE", "pool", "3", "BLOCK", "20"]).await.unwrap(), Value::Nil, "timeout: nil");
    assert_eq!(server.broker.lock().blocking.len(), 0);
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
        (&["SEM.EXTEND", "s", "1", "0"][..], "positive number of milliseconds"),
        (&["SEM.INFO"][..], "wrong number of arguments"),
    ] {
        let err = cmd::<Value>(&mut c, args).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{args:?}: {err}");
    }
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
