//! A real redis-server for the Redis engine's tests: started on a Unix socket in a fresh directory (no
//! port to collide with), killed when dropped. redis-server must be installed (the test command installs
//! it); a missing one fails the test rather than skipping it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use herald_broker::Config;

use super::{TestServer, start_with};

pub struct RedisServer {
    child: Child,
    dir: PathBuf,
    pub socket: PathBuf,
}

impl RedisServer {
    pub async fn start(name: &str) -> RedisServer {
        let dir = std::env::temp_dir().join(format!("herald-redis-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("redis dir");
        let socket = dir.join("redis.sock");
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        let server = RedisServer { child, dir, socket };
        for _ in 0..500 {
            if let Ok(mut c) = server.client().get_multiplexed_async_connection().await
                && redis::cmd("PING").query_async::<String>(&mut c).await.is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("redis-server did not start");
    }

    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    /// A client straight to redis-server (not through Herald).
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("redis client")
    }

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        self.client().get_multiplexed_async_connection_with_config(&config).await.expect("connect to redis-server")
    }

    /// A Herald node on the Redis engine, backed by this server.
    pub async fn node(&self) -> TestServer {
        self.node_with(Config::for_tests()).await
    }

    /// A node with `config`, on the Redis engine backed by this server.
    pub async fn node_with(&self, mut config: Config) -> TestServer {
        config.engine.url = self.url();
        start_with(config).await
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The server a conformance test runs on: the embedded engine, or a node on the Redis engine (the
/// redis-server comes along; it stops when dropped).
pub async fn on_engine(redis: bool, name: &str) -> (Option<RedisServer>, TestServer) {
    if !redis {
        return (None, super::start().await);
    }
    let server = RedisServer::start(name).await;
    let node = server.node().await;
    (Some(server), node)
}

/// Turns each `async fn name(server: &TestServer)` into two tests, `embedded::name` and
/// `redis_engine::name`: one conformance suite, both engines.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (_redis, server) = super::common::redis_server::on_engine(false, stringify!($name)).await;
                    super::$name(&server).await;
                }
            )*
        }
        mod redis_engine {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (_redis, server) = super::common::redis_server::on_engine(true, stringify!($name)).await;
                    super::$name(&server).await;
                }
            )*
        }
    };
}
