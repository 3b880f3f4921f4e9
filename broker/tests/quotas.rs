//! Per-tenant quotas (`[[quotas]]`, docs/security.md) through a real client: a tenant at its bound of
//! keys, items, jobs or streams cannot create one more (`-QUOTA`), from a plain command, a transaction or
//! a script, while updates, reads and deletes go on, other tenants are untouched, and freeing room lets
//! creation go on. The same on the Redis engine (one node, and two sharing one redis-server).

mod common;

use common::redis_server::RedisServer;
use common::{cmd, start_with};
use herald_broker::Config;
use herald_broker::config::QuotaSettings;

fn is_quota(e: &redis::RedisError) -> bool {
    e.code() == Some("QUOTA")
}

/// On one node a script's own calls are checked (the Redis engine checks the keys a script declares:
/// see `held_to_quotas_on_the_redis_engine`), and FLUSHALL empties the tenant's tallies.
#[tokio::test]
async fn a_scripts_calls_are_held_and_flushall_makes_room_on_one_node() {
    let server = start_with(with_quotas(1000)).await;
    let mut c = server.conn().await;
    for key in ["tenant-a:1", "tenant-a:2", "tenant-a:3"] {
        let _: () = cmd(&mut c, &["SET", key, "v"]).await.unwrap();
    }
    let script = cmd::<()>(&mut c, &["EVAL", "return redis.call('SET', KEYS[1], 'v')", "1", "tenant-a:6"]).await.unwrap_err();
    assert!(script.to_string().contains("keys quota"), "{script}");
    let _: () = cmd(&mut c, &["FLUSHALL"]).await.unwrap();
    for i in 4..7 {
        let _: () = cmd(&mut c, &["SET", &format!("tenant-a:{i}"), "v"]).await.unwrap();
    }
    server.stop().await;
}

/// The quotas the conformance test below runs with; on the Redis engine the nodes count every
/// `refresh_ms` (`engine.quota_refresh_ms`).
fn with_quotas(refresh_ms: u64) -> Config {
    let mut config = Config::for_tests();
    config.quotas = vec![QuotaSettings { pattern: "tenant-a:*".into(), keys: 3, items: 2, jobs: 2, streams: 1 }];
    config.engine.quota_refresh_ms = refresh_ms;
    config
}

/// A tenant at a bound is refused with the same text on both engines, whatever the counting.
fn refused_as(e: &redis::RedisError, kind: &str, limit: u64) {
    assert!(is_quota(e), "{e}");
    assert_eq!(e.detail(), Some(format!("the {kind} quota of 'tenant-a:*' is reached ({limit}): delete some first").as_str()));
}

/// One conformance body for both engines: keys (Redis keys and blackboard scopes together), items, jobs
/// and streams held to their bounds, the refusal text identical, updates going on, room freed by deletes
/// taken at once (on the Redis engine the node counts again when room may have been freed through it; its
/// periodic count is an hour away here, so nothing below waits for it).
async fn held_to_quotas(server: &common::TestServer) {
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["SET", "tenant-a:1", "v"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["RPUSH", "tenant-a:list", "x"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["BB.SET", "tenant-a:scope", "k", "v"]).await.unwrap();
    refused_as(&cmd::<()>(&mut c, &["SET", "tenant-a:4", "v"]).await.unwrap_err(), "keys", 3);
    refused_as(&cmd::<i64>(&mut c, &["BB.SET", "tenant-a:scope", "k2", "v"]).await.unwrap_err(), "keys", 3);
    refused_as(&cmd::<i64>(&mut c, &["HSET", "tenant-a:h", "f", "v"]).await.unwrap_err(), "keys", 3);
    // Updates, reads and other tenants go on.
    let _: () = cmd(&mut c, &["SET", "tenant-a:1", "v2"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["RPUSH", "tenant-a:list", "y"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["BB.SET", "tenant-a:scope", "k", "v2"]).await.unwrap();
    assert_eq!(cmd::<String>(&mut c, &["GET", "tenant-a:1"]).await.unwrap(), "v2");
    let _: () = cmd(&mut c, &["SET", "tenant-b:1", "v"]).await.unwrap();
    // A new key inside MULTI: refused at queue time, EXEC aborts.
    let _: () = cmd(&mut c, &["MULTI"]).await.unwrap();
    refused_as(&cmd::<()>(&mut c, &["SET", "tenant-a:5", "v"]).await.unwrap_err(), "keys", 3);
    assert_eq!(cmd::<()>(&mut c, &["EXEC"]).await.unwrap_err().code(), Some("EXECABORT"));
    // Deleting frees room, at once; so does emptying a scope.
    assert_eq!(cmd::<i64>(&mut c, &["DEL", "tenant-a:1"]).await.unwrap(), 1);
    let _: () = cmd(&mut c, &["SET", "tenant-a:4", "v"]).await.unwrap();
    refused_as(&cmd::<()>(&mut c, &["SET", "tenant-a:6", "v"]).await.unwrap_err(), "keys", 3);
    assert_eq!(cmd::<i64>(&mut c, &["BB.DEL", "tenant-a:scope", "k"]).await.unwrap(), 1);
    let _: i64 = cmd(&mut c, &["BB.SET", "tenant-a:scope", "k2", "v"]).await.unwrap();

    // Jobs: unfinished ones count; a cancelled one frees its room.
    let first: String = cmd(&mut c, &["JOB.SUBMIT", "tenant-a:q", "p"]).await.unwrap();
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "tenant-a:q", "p"]).await.unwrap();
    refused_as(&cmd::<String>(&mut c, &["JOB.SUBMIT", "tenant-a:q", "p"]).await.unwrap_err(), "jobs", 2);
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "tenant-b:q", "p"]).await.unwrap();
    let _: redis::Value = cmd(&mut c, &["JOB.CANCEL", &first]).await.unwrap();
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "tenant-a:q", "p"]).await.unwrap();
    refused_as(&cmd::<String>(&mut c, &["JOB.SUBMIT", "tenant-a:q", "p"]).await.unwrap_err(), "jobs", 2);

    // Bulletin items (by the board's name here); a removed one frees its room.
    for _ in 0..2 {
        let _: String = cmd(&mut c, &["BL.PUBLISH", "tenant-a:board", "{}"]).await.unwrap();
    }
    refused_as(&cmd::<String>(&mut c, &["BL.PUBLISH", "tenant-a:board", "{}"]).await.unwrap_err(), "items", 2);
    let got: redis::Value = cmd(&mut c, &["BL.RETRIEVE", "tenant-a:board", "LOCK", "10000"]).await.unwrap();
    let (id, token) = (common::text(&common::field(&got, "id")), common::int(&common::field(&got, "token")));
    assert_eq!(cmd::<i64>(&mut c, &["BL.REMOVE", "tenant-a:board", &id, &token.to_string()]).await.unwrap(), 1);
    let _: String = cmd(&mut c, &["BL.PUBLISH", "tenant-a:board", "{}"]).await.unwrap();
    refused_as(&cmd::<String>(&mut c, &["BL.PUBLISH", "tenant-a:board", "{}"]).await.unwrap_err(), "items", 2);

    // Streams: writing to one that exists goes on; a new one is refused until one is deleted.
    let _: i64 = cmd(&mut c, &["STREAM.WRITE", "tenant-a:log", "x"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["STREAM.WRITE", "tenant-a:log", "y"]).await.unwrap();
    refused_as(&cmd::<i64>(&mut c, &["STREAM.WRITE", "tenant-a:log2", "x"]).await.unwrap_err(), "streams", 1);
    let _: i64 = cmd(&mut c, &["STREAM.DEL", "tenant-a:log"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["STREAM.WRITE", "tenant-a:log2", "x"]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_to_quotas_on_the_embedded_engine() {
    let server = start_with(with_quotas(3_600_000)).await;
    held_to_quotas(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_to_quotas_on_the_redis_engine() {
    let redis = RedisServer::start("quotas").await;
    let server = redis.node_with(with_quotas(3_600_000)).await;
    held_to_quotas(&server).await;
    let mut c = server.conn().await;
    // A script runs in Redis: at the bound it is checked by the keys it declares (one not there yet is refused).
    let script = "return redis.call('SET', KEYS[1], 'v')";
    refused_as(&cmd::<()>(&mut c, &["EVAL", script, "1", "tenant-a:7"]).await.unwrap_err(), "keys", 3);
    let _: () = cmd(&mut c, &["EVAL", script, "1", "tenant-a:4"]).await.unwrap();
    // Inside MULTI nothing waits for Redis: at the bound even an update is refused at queue time.
    let _: () = cmd(&mut c, &["MULTI"]).await.unwrap();
    refused_as(&cmd::<()>(&mut c, &["SET", "tenant-a:4", "v"]).await.unwrap_err(), "keys", 3);
    assert_eq!(cmd::<()>(&mut c, &["EXEC"]).await.unwrap_err().code(), Some("EXECABORT"));
    // What the node counted is what Redis holds: three keys of the tenant, Herald's own keys left out.
    let mut direct = redis.conn().await;
    let keys: Vec<String> = cmd(&mut direct, &["KEYS", "tenant-a:*"]).await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}: tenant-a:list and tenant-a:4, the third is a blackboard key");
    server.stop().await;
}

/// On Redis Cluster the node counts every master's keys (a cluster SCAN walks each in turn).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_to_quotas_on_redis_cluster() {
    let cluster = common::redis_server::RedisCluster::single("quotas").await;
    let server = cluster.node_with(with_quotas(3_600_000)).await;
    held_to_quotas(&server).await;
    server.stop().await;
}

/// Tries `create` on `c` until it is refused (then answers the refusal), undoing each creation that got
/// through with `undo`; a bounded number of times.
async fn until_refused(
    c: &mut redis::aio::MultiplexedConnection,
    create: &[&str],
    undo: impl Fn(redis::Value) -> Vec<String>,
) -> redis::RedisError {
    for _ in 0..500 {
        match cmd::<redis::Value>(c, create).await {
            Err(e) => return e,
            Ok(v) => {
                let undo = undo(v);
                let undo: Vec<&str> = undo.iter().map(String::as_str).collect();
                let _: redis::Value = cmd(c, &undo).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
    panic!("{create:?} was never refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_sharing_one_redis_see_each_others_holdings_within_a_refresh() {
    let redis = RedisServer::start("quotas-two").await;
    let a = redis.node_with(with_quotas(50)).await;
    let b = redis.node_with(with_quotas(50)).await;
    let (mut ca, mut cb) = (a.conn().await, b.conn().await);
    // Node A fills the tenant's keys and jobs.
    for i in 0..3 {
        let _: () = cmd(&mut ca, &["SET", &format!("tenant-a:{i}"), "v"]).await.unwrap();
    }
    for _ in 0..2 {
        let _: String = cmd(&mut ca, &["JOB.SUBMIT", "tenant-a:q", "p"]).await.unwrap();
    }
    // Node B refuses too once its count has seen them (each try that got through is undone at once).
    let e = until_refused(&mut cb, &["SET", "tenant-a:b", "v"], |_| vec!["DEL".into(), "tenant-a:b".into()]).await;
    refused_as(&e, "keys", 3);
    let e = until_refused(&mut cb, &["JOB.SUBMIT", "tenant-a:q", "p"], |id| vec!["JOB.CANCEL".into(), common::text(&id)]).await;
    refused_as(&e, "jobs", 2);
    // An update through B goes on; a delete through A makes room for B within a refresh.
    let _: () = cmd(&mut cb, &["SET", "tenant-a:0", "w"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut ca, &["DEL", "tenant-a:0"]).await.unwrap(), 1);
    let mut made = false;
    for _ in 0..500 {
        if cmd::<()>(&mut cb, &["SET", "tenant-a:b", "v"]).await.is_ok() {
            made = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(made, "B never saw the room A made");
    // And A, in turn, B's new key.
    let e = until_refused(&mut ca, &["SET", "tenant-a:c", "v"], |_| vec!["DEL".into(), "tenant-a:c".into()]).await;
    refused_as(&e, "keys", 3);
    a.stop().await;
    b.stop().await;
}
