//! The Redis engine under Sentinel (`redis+sentinel://`, docs/scale-out.md): a node follows the primary
//! Sentinel names, and after the primary is killed and Sentinel promotes its replica, the node serves
//! from the new primary: what was replicated (WAIT) is there, writes succeed again, pub-sub comes back.
//! Real redis-server processes: a primary, a replica and one sentinel (quorum 1); and the same with TLS
//! only (`rediss+sentinel://`): the sentinel, the primary and the replica serve only TLS, replicate and
//! monitor over TLS, and require client certificates.

mod common;

use std::time::Duration;

use common::redis_server::{Processes, TlsFiles, direct_with, free_port, until};
use common::{TestServer, cmd, start_with};
use futures_util::StreamExt;
use herald_broker::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_follows_a_sentinel_failover() {
    follows_a_failover("sentinel", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_follows_a_sentinel_failover_over_tls() {
    follows_a_failover("sentinel-tls", Some(TlsFiles::new("sentinel-tls"))).await;
}

/// A primary, its replica and a sentinel on `port`s, each TLS only with `tls`.
async fn follows_a_failover(name: &str, tls: Option<TlsFiles>) {
    let mut procs = Processes::new(name);
    let dir = procs.dir.clone();
    let (primary_port, replica_port, sentinel_port) = (free_port(), free_port(), free_port());
    // The listening options of a server on `port`: plain, or TLS only (replication over TLS too).
    let listen = |port: u16| -> Vec<String> {
        match &tls {
            Some(tls) => {
                [["--port", "0", "--tls-port", &port.to_string(), "--tls-replication", "yes"].map(String::from).to_vec(), tls.server_args()]
                    .concat()
            }
            None => vec!["--port".into(), port.to_string()],
        }
    };
    let spawn = |procs: &mut Processes, args: Vec<String>| procs.spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let primary = spawn(&mut procs, [listen(primary_port), vec!["--dbfilename".into(), "primary.rdb".into()]].concat());
    let replica_of = ["--dbfilename", "replica.rdb", "--replicaof", "127.0.0.1", &primary_port.to_string()].map(String::from).to_vec();
    spawn(&mut procs, [listen(replica_port), replica_of].concat());
    let conf = dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "sentinel monitor mymaster 127.0.0.1 {primary_port} 1\n\
             sentinel down-after-milliseconds mymaster 500\nsentinel failover-timeout mymaster 3000\n"
        ),
    )
    .unwrap();
    // Sentinel takes the same options as redis-server; with `tls-replication yes` it reaches the
    // servers it monitors over TLS.
    spawn(&mut procs, [vec![conf.display().to_string(), "--sentinel".into()], listen(sentinel_port)].concat());
    let mut p = direct_with(tls.as_ref(), primary_port).await;
    let replica = direct_with(tls.as_ref(), replica_port).await;
    let sentinel = direct_with(tls.as_ref(), sentinel_port).await;
    until(20, "the replica in sync", || {
        let mut r = replica.clone();
        async move { cmd::<String>(&mut r, &["INFO", "replication"]).await.unwrap().contains("master_link_status:up") }
    })
    .await;
    until(20, "the sentinel seeing the replica", || {
        let mut s = sentinel.clone();
        async move { !cmd::<Vec<redis::Value>>(&mut s, &["SENTINEL", "REPLICAS", "mymaster"]).await.unwrap().is_empty() }
    })
    .await;

    let mut config = Config::for_tests();
    config.engine.url = format!("redis+sentinel://127.0.0.1:{sentinel_port}/mymaster");
    if let Some(tls) = &tls {
        // The sentinel serves only TLS: the plain form cannot ask it.
        let err = herald_broker::remote::Remote::new(&config).err().expect("a plain-TCP sentinel query refused");
        assert!(err.contains(&format!("sentinel 127.0.0.1:{sentinel_port}")), "{err}");
        config.engine.url = format!("rediss+sentinel://127.0.0.1:{sentinel_port}/mymaster");
        tls.engine(&mut config, "herald");
    }
    config.engine.sentinel_poll_ms = 100;
    config.engine.response_timeout_ms = 1000;
    let node: TestServer = start_with(config).await;
    let mut c = node.conn().await;
    let _: () = cmd(&mut c, &["SET", "before", "kept"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["BB.SET", "team", "k", "v1"]).await.unwrap();
    // Replicated before the primary dies: WAIT through the node counts the replica that has them.
    assert_eq!(cmd::<i64>(&mut c, &["WAIT", "1", "5000"]).await.unwrap(), 1);
    let info: String = cmd(&mut p, &["INFO", "replication"]).await.unwrap();
    assert!(info.contains("connected_slaves:1"), "{info}");
    let mut sub = node.client().get_async_pubsub().await.unwrap();
    sub.subscribe("news").await.unwrap();

    procs.kill(primary);

    // Sentinel promotes the replica; the node follows it and writes succeed again.
    until(30, "a write through the node after the failover", || {
        let mut c = c.clone();
        async move { cmd::<()>(&mut c, &["SET", "after", "written"]).await.is_ok() }
    })
    .await;
    // (Sentinel closed the promoted replica's client connections, ours included: a fresh one.)
    let mut promoted = direct_with(tls.as_ref(), replica_port).await;
    assert_eq!(cmd::<String>(&mut promoted, &["GET", "after"]).await.unwrap(), "written", "on the promoted replica");
    assert_eq!(cmd::<String>(&mut c, &["GET", "before"]).await.unwrap(), "kept");
    let got: redis::Value = cmd(&mut c, &["BB.GET", "team", "k"]).await.unwrap();
    assert!(format!("{got:?}").contains("v1"), "{got:?}");
    let _: i64 = cmd(&mut c, &["BB.SET", "team", "k", "v2"]).await.unwrap();

    // The bridge reconnected to the new primary: a publication reaches the node's subscriber (published
    // until one arrives, since one sent while the bridge was still reconnecting is not delivered).
    let mut messages = sub.on_message();
    let mut received = None;
    for _ in 0..100 {
        let _: i64 = cmd(&mut c, &["PUBLISH", "news", "after failover"]).await.unwrap();
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(100), messages.next()).await {
            received = Some(m.get_payload::<String>().unwrap());
            break;
        }
    }
    assert_eq!(received.as_deref(), Some("after failover"));
}

/// WAIT on the Redis engine without replicas: Redis's answer, 0 (after the timeout when some are asked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_without_replicas_answers_zero() {
    let redis = common::redis_server::RedisServer::start("wait").await;
    let node = redis.node().await;
    let mut c = node.conn().await;
    let _: () = cmd(&mut c, &["SET", "k", "v"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["WAIT", "0", "0"]).await.unwrap(), 0);
    assert_eq!(cmd::<i64>(&mut c, &["WAIT", "1", "50"]).await.unwrap(), 0);
    let err = cmd::<i64>(&mut c, &["WAIT", "1", "-1"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("timeout is negative"));
}

/// Sentinels that ask for a password (`requirepass` in sentinel.conf) are asked with
/// `engine.sentinel_username` / `engine.sentinel_password`; the URL's credentials stay the primary's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinels_that_ask_for_a_password_are_asked_with_the_sentinel_credentials() {
    let mut procs = Processes::new("sentinel-auth");
    let (primary_port, sentinel_port) = (free_port(), free_port());
    procs.spawn(&["--port", &primary_port.to_string(), "--requirepass", "primary-pw", "--dbfilename", "primary.rdb"]);
    let conf = procs.dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "sentinel monitor mymaster 127.0.0.1 {primary_port} 1\nsentinel auth-pass mymaster primary-pw\n\
             requirepass sentinel-pw\n"
        ),
    )
    .unwrap();
    procs.spawn(&[&conf.display().to_string(), "--sentinel", "--port", &sentinel_port.to_string()]);
    let asked = redis::Client::open(format!("redis://:sentinel-pw@127.0.0.1:{sentinel_port}")).unwrap();
    until(20, "the sentinel serving", || {
        let asked = asked.clone();
        async move { asked.get_multiplexed_async_connection().await.is_ok() }
    })
    .await;

    let mut config = Config::for_tests();
    config.engine.url = format!("redis+sentinel://:primary-pw@127.0.0.1:{sentinel_port}/mymaster");
    let err = herald_broker::remote::Remote::new(&config).err().expect("the sentinel refuses a query without its password");
    assert!(err.contains(&format!("sentinel 127.0.0.1:{sentinel_port}")) && err.contains("uthentication"), "{err}");
    config.engine.sentinel_password = "wrong".into();
    let err = herald_broker::remote::Remote::new(&config).err().expect("a wrong sentinel password refused");
    assert!(err.contains(&format!("sentinel 127.0.0.1:{sentinel_port}")), "{err}");

    config.engine.sentinel_username = "default".into();
    config.engine.sentinel_password = "sentinel-pw".into();
    let node: TestServer = start_with(config).await;
    let mut c = node.conn().await;
    let _: () = cmd(&mut c, &["SET", "k", "through the primary"]).await.unwrap();
    let mut primary = redis::Client::open(format!("redis://:primary-pw@127.0.0.1:{primary_port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    assert_eq!(cmd::<String>(&mut primary, &["GET", "k"]).await.unwrap(), "through the primary");
}
