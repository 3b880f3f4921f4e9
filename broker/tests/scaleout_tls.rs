//! The Redis engine over TLS (`rediss://`, docs/scale-out.md): two nodes on a real redis-server that
//! serves only TLS and asks for client certificates (a test CA, `common/pki.rs`).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::pki::Pki;
use common::{TestServer, cmd, start_with};
use futures_util::StreamExt;
use herald_broker::Config;
use herald_broker::remote::Remote;

/// redis-server with TLS only (`--port 0`), client certificates required; killed when dropped.
struct TlsRedis {
    child: Child,
    dir: PathBuf,
    port: u16,
    pki: Pki,
}

impl TlsRedis {
    async fn start(name: &str) -> TlsRedis {
        let pki = Pki::new(&format!("rediss-{name}"));
        let dir = common::data_dir(&format!("rediss-{name}-data"));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = pki.issue("redis", &["localhost", "127.0.0.1"]);
        let path = |p: PathBuf| p.display().to_string();
        let (cert, key, ca) = (path(cert), path(key), path(pki.ca_file()));
        // redis-server cannot be told port 0 for TLS: take a free port from the kernel and hand it over.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--bind", "127.0.0.1", "--tls-port", &port.to_string()])
            .args(["--tls-cert-file", &cert, "--tls-key-file", &key, "--tls-ca-cert-file", &ca])
            .args(["--tls-auth-clients", "yes", "--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        let redis = TlsRedis { child, dir, port, pki };
        for _ in 0..500 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return redis;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("redis-server with TLS did not start (is it built with TLS?)");
    }

    /// A node's configuration for this server: `rediss://`, the CA, and a client certificate.
    fn config(&self, client: &str) -> Config {
        let mut config = Config::for_tests();
        config.engine.url = format!("rediss://127.0.0.1:{}", self.port);
        config.engine.tls_ca_file = self.pki.ca_file().display().to_string();
        let (cert, key) = self.pki.issue(client, &[client]);
        (config.engine.tls_cert_file, config.engine.tls_key_file) = (cert.display().to_string(), key.display().to_string());
        config
    }

    async fn node(&self, client: &str) -> TestServer {
        start_with(self.config(client)).await
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_data_pubsub_and_the_blackboard_over_tls() {
    let redis = TlsRedis::start("share").await;
    let (a, b) = (redis.node("node-a").await, redis.node("node-b").await);
    let (mut ca, mut cb) = (a.conn().await, b.conn().await);

    // Plain commands forwarded over TLS, with Redis's replies.
    let _: () = cmd(&mut ca, &["SET", "greeting", "hello"]).await.unwrap();
    assert_eq!(cmd::<String>(&mut cb, &["GET", "greeting"]).await.unwrap(), "hello");
    let err = cmd::<()>(&mut cb, &["INCR", "greeting"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("value is not an integer or out of range"));

    // The blackboard's scripts over TLS.
    let _: redis::Value = cmd(&mut ca, &["BB.SET", "team", "k", "v1"]).await.unwrap();
    let got: redis::Value = cmd(&mut cb, &["BB.GET", "team", "k"]).await.unwrap();
    assert!(format!("{got:?}").contains("v1"), "{got:?}");

    // Pub-sub bridged through each node's TLS pub-sub connection.
    let mut sub = b.client().get_async_pubsub().await.unwrap();
    sub.subscribe("news").await.unwrap();
    let _: i64 = cmd(&mut ca, &["PUBLISH", "news", "over tls"]).await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(5), sub.on_message().next()).await.expect("the message").unwrap();
    assert_eq!(msg.get_payload::<String>().unwrap(), "over tls");
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
}
