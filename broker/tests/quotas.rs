//! Per-tenant quotas (`[[quotas]]`, docs/security.md) through a real client: a tenant at its bound of
//! keys, items, jobs or streams cannot create one more (`-QUOTA`), from a plain command, a transaction or
//! a script, while updates, reads and deletes go on, other tenants are untouched, and freeing room lets
//! creation go on.

mod common;

use common::{cmd, start_with};
use herald_broker::Config;
use herald_broker::config::QuotaSettings;

fn is_quota(e: &redis::RedisError) -> bool {
    e.code() == Some("QUOTA")
}

#[tokio::test]
async fn tenants_are_held_to_their_quotas() {
    let mut config = Config::for_tests();
    config.quotas = vec![QuotaSettings { pattern: "tenant-a:*".into(), keys: 3, items: 2, jobs: 2, streams: 1 }];
    let server = start_with(config).await;
    let mut c = server.conn().await;

    // Keys: Redis keys and the keys of the tenant's blackboard scopes count together.
    let _: () = cmd(&mut c, &["SET", "tenant-a:1", "v"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["RPUSH", "tenant-a:list", "x"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["BB.SET", "tenant-a:scope", "k", "v"]).await.unwrap();
    let err = cmd::<()>(&mut c, &["SET", "tenant-a:4", "v"]).await.unwrap_err();
    assert!(is_quota(&err), "{err}");
    assert!(err.to_string().contains("keys quota of 'tenant-a:*' is reached (3)"), "{err}");
    assert!(is_quota(&cmd::<i64>(&mut c, &["BB.SET", "tenant-a:scope", "k2", "v"]).await.unwrap_err()));
    // What exists can still be updated, read and deleted; other tenants are not held.
    let _: () = cmd(&mut c, &["SET", "tenant-a:1", "v2"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["RPUSH", "tenant-a:list", "y"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["BB.SET", "tenant-a:scope", "k", "v2"]).await.unwrap();
    assert_eq!(cmd::<String>(&mut c, &["GET", "tenant-a:1"]).await.unwrap(), "v2");
    let _: () = cmd(&mut c, &["SET", "tenant-b:1", "v"]).await.unwrap();
    // Inside MULTI the refusal comes at queue time and EXEC aborts; from a script it is the call's error.
    let _: () = cmd(&mut c, &["MULTI"]).await.unwrap();
    assert!(is_quota(&cmd::<()>(&mut c, &["SET", "tenant-a:5", "v"]).await.unwrap_err()));
    let exec = cmd::<()>(&mut c, &["EXEC"]).await.unwrap_err();
    assert_eq!(exec.code(), Some("EXECABORT"));
    let script = cmd::<()>(&mut c, &["EVAL", "return redis.call('SET', KEYS[1], 'v')", "1", "tenant-a:6"]).await.unwrap_err();
    assert!(script.to_string().contains("keys quota"), "{script}");
    // Deleting frees room.
    assert_eq!(cmd::<i64>(&mut c, &["DEL", "tenant-a:1"]).await.unwrap(), 1);
    let _: () = cmd(&mut c, &["SET", "tenant-a:4", "v"]).await.unwrap();

    // Jobs, bulletin items and streams.
    for _ in 0..2 {
        let _: String = cmd(&mut c, &["JOB.SUBMIT", "tenant-a:q", "p"]).await.unwrap();
        let _: String = cmd(&mut c, &["BL.PUBLISH", "tenant-a:board", "{}"]).await.unwrap();
    }
    assert!(is_quota(&cmd::<String>(&mut c, &["JOB.SUBMIT", "tenant-a:q", "p"]).await.unwrap_err()));
    assert!(is_quota(&cmd::<String>(&mut c, &["BL.PUBLISH", "tenant-a:board", "{}"]).await.unwrap_err()));
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "tenant-b:q", "p"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["STREAM.WRITE", "tenant-a:log", "x"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["STREAM.WRITE", "tenant-a:log", "y"]).await.unwrap();
    assert!(is_quota(&cmd::<i64>(&mut c, &["STREAM.WRITE", "tenant-a:log2", "x"]).await.unwrap_err()));

    // FLUSHALL empties the tenant's keys: room again.
    let _: () = cmd(&mut c, &["FLUSHALL"]).await.unwrap();
    for i in 0..2 {
        let _: () = cmd(&mut c, &["SET", &format!("tenant-a:{i}"), "v"]).await.unwrap();
    }
}
