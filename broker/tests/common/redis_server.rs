//! A real redis-server for the Redis engine's tests: started on a Unix socket in a fresh directory (no
//! port to collide with), killed when dropped. redis-server must be installed (the test command installs
//! it); a missing one fails the test rather than skipping it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use herald_broker::Config;

use super::{TestServer, cmd, start_with};

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

/// What a conformance test's node keeps its data in (dropped with the test: the processes stop).
pub enum Backing {
    Embedded,
    Redis(RedisServer),
    Cluster(RedisCluster),
}

/// The server a conformance test runs on: the embedded engine, a node on the Redis engine backed by
/// one redis-server, or one backed by a one-master Redis Cluster (which refuses keys of several slots
/// in a command or a script, so every domain script is checked to stay on its object's slot).
pub async fn on_engine(engine: &str, name: &str) -> (Backing, TestServer) {
    match engine {
        "redis" => {
            let server = RedisServer::start(name).await;
            let node = server.node().await;
            (Backing::Redis(server), node)
        }
        "cluster" => {
            let cluster = RedisCluster::single(name).await;
            let node = cluster.node_with(Config::for_tests()).await;
            (Backing::Cluster(cluster), node)
        }
        _ => (Backing::Embedded, super::start().await),
    }
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
                    let (_backing, server) = super::common::redis_server::on_engine("embedded", stringify!($name)).await;
                    super::$name(&server).await;
                }
            )*
        }
        mod redis_engine {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (_backing, server) = super::common::redis_server::on_engine("redis", stringify!($name)).await;
                    super::$name(&server).await;
                }
            )*
        }
        mod redis_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (_backing, server) = super::common::redis_server::on_engine("cluster", stringify!($name)).await;
                    super::$name(&server).await;
                }
            )*
        }
    };
}

/// A free TCP port (redis-server cannot be told port 0 and report it, and a cluster node needs TCP).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// redis-server processes (primaries, replicas, sentinels, cluster nodes) in one directory, all
/// killed and the directory removed when dropped.
pub struct Processes {
    pub children: Vec<Child>,
    pub dir: PathBuf,
}

impl Processes {
    pub fn new(name: &str) -> Processes {
        let dir = super::data_dir(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Processes { children: Vec::new(), dir }
    }

    /// Starts `redis-server <args>` in the directory, without persistence; its index.
    pub fn spawn(&mut self, args: &[&str]) -> usize {
        let child = Command::new("redis-server")
            .args(args)
            .args(["--dir", &self.dir.display().to_string(), "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/install-test-deps.sh)");
        self.children.push(child);
        self.children.len() - 1
    }

    /// `kill -9` of process `i` (its slot stays, dead).
    pub fn kill(&mut self, i: usize) {
        let _ = self.children[i].kill();
        let _ = self.children[i].wait();
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A connection straight to the redis-server on `port`, once it answers.
pub async fn direct(port: u16) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    for _ in 0..500 {
        if let Ok(c) = client.get_multiplexed_async_connection_with_config(&config).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("redis-server on {port} did not start");
}

/// Polls `check` every 100 ms until it holds, for up to `secs` seconds.
pub async fn until<F: std::future::Future<Output = bool>>(secs: u64, what: &str, mut check: impl FnMut() -> F) {
    for _ in 0..secs * 10 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}

/// A Redis Cluster of six redis-server processes on free ports: three masters with one replica each
/// (`redis-cli --cluster create ... --cluster-replicas 1`), a small `cluster-node-timeout` so a
/// killed master's replica is promoted within seconds. redis-server and redis-cli must be installed:
/// a missing one fails the test.
pub struct RedisCluster {
    pub procs: Processes,
    pub ports: Vec<u16>,
    /// The process of each port now (a restarted node is a new one).
    children: Vec<usize>,
}

fn spawn_cluster_node(procs: &mut Processes, port: u16) -> usize {
    let (port, conf) = (port.to_string(), format!("nodes-{port}.conf"));
    procs.spawn(&[
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        &conf,
        "--cluster-node-timeout",
        "1000",
    ])
}

impl RedisCluster {
    pub async fn start(name: &str) -> RedisCluster {
        let mut procs = Processes::new(&format!("cluster-{name}"));
        let mut ports = Vec::new();
        while ports.len() < 6 {
            let port = free_port();
            // The cluster bus listens on port + 10000: it must be free too.
            if port < 55535 && !ports.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
                ports.push(port);
            }
        }
        for port in &ports {
            spawn_cluster_node(&mut procs, *port);
        }
        for port in &ports {
            let _ = direct(*port).await;
        }
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli must be installed (scripts/install-test-deps.sh)");
        assert!(created.success(), "redis-cli --cluster create failed");
        let children = (0..ports.len()).collect();
        let cluster = RedisCluster { procs, ports, children };
        cluster.until_ok(&[]).await;
        cluster
    }

    /// A cluster of one master holding every slot: quick to start, and as strict as a bigger one about
    /// keys of several slots (in commands and inside scripts), so the domains' conformance suite runs on it.
    pub async fn single(name: &str) -> RedisCluster {
        let mut procs = Processes::new(&format!("cluster1-{name}"));
        let port = loop {
            let port = free_port();
            if port < 55535 && std::net::TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
                break port;
            }
        };
        spawn_cluster_node(&mut procs, port);
        let mut c = direct(port).await;
        let _: () = cmd(&mut c, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).await.unwrap();
        let cluster = RedisCluster { procs, ports: vec![port], children: vec![0] };
        cluster.until_ok(&[]).await;
        cluster
    }

    /// Waits until every live node reports `cluster_state:ok` and every replica's link is up.
    pub async fn until_ok(&self, dead: &[u16]) {
        for port in self.ports.iter().filter(|p| !dead.contains(p)) {
            let c = direct(*port).await;
            until(30, &format!("cluster_state:ok on {port}"), || {
                let mut c = c.clone();
                async move { cmd::<String>(&mut c, &["CLUSTER", "INFO"]).await.is_ok_and(|i| i.contains("cluster_state:ok")) }
            })
            .await;
            until(30, &format!("{port} in sync"), || {
                let mut c = c.clone();
                async move {
                    let info = cmd::<String>(&mut c, &["INFO", "replication"]).await.unwrap_or_default();
                    info.contains("role:master") || info.contains("master_link_status:up")
                }
            })
            .await;
        }
    }

    /// The ports of the masters now.
    pub async fn masters(&self, dead: &[u16]) -> Vec<u16> {
        let mut masters = Vec::new();
        for port in self.ports.iter().filter(|p| !dead.contains(p)) {
            let info = cmd::<String>(&mut direct(*port).await, &["INFO", "replication"]).await.unwrap_or_default();
            if info.contains("role:master") {
                masters.push(*port);
            }
        }
        masters
    }

    /// `redis+cluster://` with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// A Herald node on this cluster, with `config`'s other settings.
    pub async fn node_with(&self, mut config: Config) -> TestServer {
        config.engine.url = self.url();
        start_with(config).await
    }

    /// `kill -9` of the node on `port`.
    pub fn kill(&mut self, port: u16) {
        let i = self.ports.iter().position(|p| *p == port).expect("a node of this cluster");
        self.procs.kill(self.children[i]);
    }

    /// Sends `signal` (`STOP`, `CONT`) to the node on `port`.
    pub fn signal(&self, port: u16, signal: &str) {
        let i = self.ports.iter().position(|p| *p == port).expect("a node of this cluster");
        let pid = self.procs.children[self.children[i]].id().to_string();
        assert!(Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap().success());
    }

    /// The port of the replica of the master on `port`.
    pub async fn replica_of(&self, port: u16) -> u16 {
        let info = cmd::<String>(&mut direct(port).await, &["INFO", "replication"]).await.unwrap();
        let line = info.lines().find(|l| l.starts_with("slave0:")).expect("a replica");
        let port = line.split(',').find_map(|f| f.strip_prefix("port=")).expect("its port");
        port.parse().unwrap()
    }

    /// Starts the node on `port` again after [`RedisCluster::kill`] (its nodes file kept): a master
    /// whose replica took over its slots rejoins as that one's replica.
    pub fn restart(&mut self, port: u16) {
        let i = self.ports.iter().position(|p| *p == port).expect("a node of this cluster");
        self.children[i] = spawn_cluster_node(&mut self.procs, port);
    }
}
