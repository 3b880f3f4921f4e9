//! The Redis engine over TLS (docs/scale-out.md): two nodes on a real redis-server that serves only TLS
//! and asks for client certificates (a test CA, `common/pki.rs`), through `rediss://` and through
//! `rediss+cluster://` on a TLS-only Redis Cluster. (`rediss+sentinel://`: scaleout_sentinel.rs.)

mod common;

use std::time::Duration;

use common::redis_server::{Processes, RedisCluster, TlsFiles, direct_with, free_port};
use common::{TestServer, cmd, start_with};
use futures_util::StreamExt;
use herald_broker::Config;
use herald_broker::remote::Remote;

/// redis-server with TLS only (`--port 0`), client certificates required; killed when dropped.
struct TlsRedis {
    _procs: Processes,
    port: u16,
    tls: TlsFiles,
}

impl TlsRedis {
    async fn start(name: &str) -> TlsRedis {
        let tls = TlsFiles::new(&format!("rediss-{name}"));
        let mut procs = Processes::new(&format!("rediss-{name}-data"));
        // redis-server cannot be told port 0 for TLS: take a free port from the kernel and hand it over.
        let port = free_port();
        let mut args = vec!["--port".to_owned(), "0".into(), "--bind".into(), "127.0.0.1".into(), "--tls-port".into(), port.to_string()];
        args.extend(tls.server_args());
        procs.spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());
        // Fails loudly (no skip) when redis-server was built without TLS.
        let _ = direct_with(Some(&tls), port).await;
        TlsRedis { _procs: procs, port, tls }
    }

    async fn node(&self, client: &str) -> TestServer {
        let mut config = Config::for_tests();
        config.engine.url = format!("rediss://127.0.0.1:{}", self.port);
        self.tls.engine(&mut config, client);
        start_with(config).await
    }
}

/// What two nodes on one TLS-only backing share: plain commands with Redis's replies, the
/// blackboard's scripts, and pub-sub bridged through each node's TLS pub-sub connection.
async fn share_over_tls(a: &TestServer, b: &TestServer) {
    let (mut ca, mut cb) = (a.conn().await, b.conn().await);

    let _: () = cmd(&mut ca, &["SET", "greeting", "hello"]).await.unwrap();
    assert_eq!(cmd::<String>(&mut cb, &["GET", "greeting"]).await.unwrap(), "hello");
    let err = cmd::<()>(&mut cb, &["INCR", "greeting"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("value is not an integer or out of range"));

    let _: redis::Value = cmd(&mut ca, &["BB.SET", "team", "k", "v1"]).await.unwrap();
    let got: redis::Value = cmd(&mut cb, &["BB.GET", "team", "k"]).await.unwrap();
    assert!(format!("{got:?}").contains("v1"), "{got:?}");

    let mut sub = b.client().get_async_pubsub().await.unwrap();
    sub.subscribe("news").await.unwrap();
    let _: i64 = cmd(&mut ca, &["PUBLISH", "news", "over tls"]).await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(5), sub.on_message().next()).await.expect("the message").unwrap();
    assert_eq!(msg.get_payload::<String>().unwrap(), "over tls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_data_pubsub_and_the_blackboard_over_tls() {
    let redis = TlsRedis::start("share").await;
    let (a, b) = (redis.node("node-a").await, redis.node("node-b").await);
    share_over_tls(&a, &b).await;
}

/// `rediss+cluster://`: three TLS-only masters (their cluster bus over TLS too), two nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_a_tls_only_redis_cluster() {
    let cluster = RedisCluster::start_tls("tls").await;
    assert!(cluster.url().starts_with("rediss+cluster://"));
    let (a, b) = (cluster.node_with(Config::for_tests()).await, cluster.node_with(Config::for_tests()).await);
    share_over_tls(&a, &b).await;
    // Keys on every master, reached over TLS through either node.
    let (mut ca, mut cb) = (a.conn().await, b.conn().await);
    for i in 0..20 {
        let _: () = cmd(&mut ca, &["SET", &format!("key:{i}"), &i.to_string()]).await.unwrap();
    }
    for i in 0..20 {
        assert_eq!(cmd::<String>(&mut cb, &["GET", &format!("key:{i}")]).await.unwrap(), i.to_string());
    }
    let mut total = 0;
    for port in cluster.masters(&[]).await {
        let n = cmd::<i64>(&mut cluster.direct(port).await, &["DBSIZE"]).await.unwrap();
        assert!(n > 0, "keys on the master on {port}");
        total += n;
    }
    assert_eq!(cmd::<i64>(&mut cb, &["DBSIZE"]).await.unwrap(), total, "DBSIZE summed over the masters");
}

#[tokio::test]
async fn tls_files_are_checked_at_start() {
    let mut config = Config::for_tests();
    config.engine.url = "redis://127.0.0.1:1".into();
    config.engine.tls_ca_file = "/nonexistent/ca.pem".into();
    let err = Remote::new(&config).err().expect("a CA file for a plain redis:// URL is refused");
    assert!(err.contains("rediss://"), "{err}");
    config.engine.url = "rediss://127.0.0.1:1".into();
    let err = Remote::new(&config).err().expect("a missing CA file is refused");
    assert!(err.contains("engine.tls_ca_file /nonexistent/ca.pem"), "{err}");
    // The TLS forms of Sentinel and Cluster read the same files, before asking any server.
    for url in ["rediss+sentinel://127.0.0.1:1/mymaster", "rediss+cluster://127.0.0.1:1"] {
        config.engine.url = url.into();
        let err = Remote::new(&config).err().expect("a missing CA file is refused");
        assert!(err.contains("engine.tls_ca_file /nonexistent/ca.pem"), "{url}: {err}");
    }
}
