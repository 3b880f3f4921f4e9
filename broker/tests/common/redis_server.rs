//! A real redis-server for the Redis engine's tests: started on a Unix socket in a fresh directory (no
//! port to collide with), killed when dropped. redis-server must be installed (the test command installs
//! it); a missing one fails the test rather than skipping it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use herald_broker::Config;

use super::pki::Pki;
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
        let child = Self::spawn(&dir, &socket);
        let server = RedisServer { child, dir, socket };
        server.until_up().await;
        server
    }

    fn spawn(dir: &std::path::Path, socket: &std::path::Path) -> Child {
        Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(socket)
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)")
    }

    async fn until_up(&self) {
        for _ in 0..500 {
            if let Ok(mut c) = self.client().get_multiplexed_async_connection().await
                && redis::cmd("PING").query_async::<String>(&mut c).await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("redis-server did not start");
    }

    /// Kills the server (its data goes with it); [`RedisServer::restart`] starts it again on its socket.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }

    pub async fn restart(&mut self) {
        self.child = Self::spawn(&self.dir, &self.socket);
        self.until_up().await;
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

/// TLS for redis-server processes under test (`rediss://` and its Sentinel and Cluster forms): a test
/// CA, the servers' certificate, and client certificates, since the servers require them.
pub struct TlsFiles {
    /// Boxed: a CA's key and certificate are large, and a cluster is kept in enums beside small values.
    pki: Box<Pki>,
    cert: String,
    key: String,
}

impl TlsFiles {
    pub fn new(name: &str) -> TlsFiles {
        let pki = Box::new(Pki::new(&format!("pki-{name}")));
        let (cert, key) = pki.issue("redis", &["localhost", "127.0.0.1"]);
        TlsFiles { cert: cert.display().to_string(), key: key.display().to_string(), pki }
    }

    fn ca(&self) -> String {
        self.pki.ca_file().display().to_string()
    }

    /// redis-server's (and redis-sentinel's) options: its certificate, the CA, client certificates
    /// required. The server presents the same certificate when it is the client (replication, the
    /// cluster bus, a sentinel asking its servers).
    pub fn server_args(&self) -> Vec<String> {
        let ca = self.ca();
        ["--tls-cert-file", &self.cert, "--tls-key-file", &self.key, "--tls-ca-cert-file", &ca, "--tls-auth-clients", "yes"]
            .map(String::from)
            .to_vec()
    }

    /// redis-cli's options to reach these servers.
    pub fn cli_args(&self) -> Vec<String> {
        let (cert, key) = self.pki.issue("redis-cli", &["redis-cli"]);
        ["--tls", "--cacert", &self.ca(), "--cert", &cert.display().to_string(), "--key", &key.display().to_string()]
            .map(String::from)
            .to_vec()
    }

    /// A node's `engine.tls_*`: the CA, and a certificate of its own for `client`.
    pub fn engine(&self, config: &mut Config, client: &str) {
        config.engine.tls_ca_file = self.ca();
        let (cert, key) = self.pki.issue(client, &[client]);
        (config.engine.tls_cert_file, config.engine.tls_key_file) = (cert.display().to_string(), key.display().to_string());
    }

    /// A client straight to the TLS server on `port`.
    pub fn client(&self, port: u16) -> redis::Client {
        let (cert, key) = self.pki.issue("direct", &["direct"]);
        let certs = redis::TlsCertificates {
            client_tls: Some(redis::ClientTlsConfig { client_cert: std::fs::read(cert).unwrap(), client_key: std::fs::read(key).unwrap() }),
            root_cert: Some(std::fs::read(self.pki.ca_file()).unwrap()),
        };
        redis::Client::build_with_tls(format!("rediss://127.0.0.1:{port}"), certs).unwrap()
    }
}

/// A connection straight to the redis-server on `port`, once it answers.
pub async fn direct(port: u16) -> redis::aio::MultiplexedConnection {
    direct_with(None, port).await
}

/// [`direct`], over TLS with `tls`'s certificates when given.
pub async fn direct_with(tls: Option<&TlsFiles>, port: u16) -> redis::aio::MultiplexedConnection {
    let client = match tls {
        Some(tls) => tls.client(port),
        None => redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap(),
    };
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
/// killed master's replica is promoted within seconds. Or ([`RedisCluster::start_tls`]) three masters
/// that serve only TLS, their cluster bus too. redis-server and redis-cli must be installed (with
/// TLS): a missing one fails the test.
pub struct RedisCluster {
    pub procs: Processes,
    pub ports: Vec<u16>,
    /// The process of each port now (a restarted node is a new one).
    children: Vec<usize>,
    pub tls: Option<TlsFiles>,
}

fn spawn_cluster_node(procs: &mut Processes, port: u16, tls: Option<&TlsFiles>) -> usize {
    let (port, conf) = (port.to_string(), format!("nodes-{port}.conf"));
    let mut args: Vec<String> = match tls {
        Some(tls) => [
            ["--port", "0", "--tls-port", &port, "--tls-cluster", "yes", "--tls-replication", "yes"].map(String::from).to_vec(),
            tls.server_args(),
        ]
        .concat(),
        None => vec!["--port".into(), port],
    };
    args.extend(
        ["--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-config-file", &conf, "--cluster-node-timeout", "1000"]
            .map(String::from),
    );
    procs.spawn(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// A free port whose cluster bus port (port + 10000) is free too.
fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55535 && std::net::TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

impl RedisCluster {
    pub async fn start(name: &str) -> RedisCluster {
        Self::create(name, 1, None).await
    }

    /// Three masters without replicas, TLS only (`--port 0`, `--tls-cluster yes`), client
    /// certificates required.
    pub async fn start_tls(name: &str) -> RedisCluster {
        Self::create(name, 0, Some(TlsFiles::new(&format!("cluster-{name}")))).await
    }

    /// Three masters with a replica each, TLS only (replication and the cluster bus over TLS too).
    pub async fn start_tls_with_replicas(name: &str) -> RedisCluster {
        Self::create(name, 1, Some(TlsFiles::new(&format!("cluster-{name}")))).await
    }

    /// Three masters with `replicas` replicas each (`redis-cli --cluster create`).
    async fn create(name: &str, replicas: usize, tls: Option<TlsFiles>) -> RedisCluster {
        let mut procs = Processes::new(&format!("cluster-{name}"));
        let mut ports = Vec::new();
        while ports.len() < 3 * (1 + replicas) {
            let port = free_cluster_port();
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        for port in &ports {
            spawn_cluster_node(&mut procs, *port, tls.as_ref());
        }
        for port in &ports {
            let _ = direct_with(tls.as_ref(), *port).await;
        }
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = Command::new("redis-cli")
            .args(tls.as_ref().map(TlsFiles::cli_args).unwrap_or_default())
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli must be installed (scripts/install-test-deps.sh)");
        assert!(created.success(), "redis-cli --cluster create failed");
        let children = (0..ports.len()).collect();
        let cluster = RedisCluster { procs, ports, children, tls };
        cluster.until_ok(&[]).await;
        cluster
    }

    /// A connection straight to the node on `port` (over TLS for a TLS cluster).
    pub async fn direct(&self, port: u16) -> redis::aio::MultiplexedConnection {
        direct_with(self.tls.as_ref(), port).await
    }

    /// A cluster of one master holding every slot: quick to start, and as strict as a bigger one about
    /// keys of several slots (in commands and inside scripts), so the domains' conformance suite runs on it.
    pub async fn single(name: &str) -> RedisCluster {
        let mut procs = Processes::new(&format!("cluster1-{name}"));
        let port = free_cluster_port();
        spawn_cluster_node(&mut procs, port, None);
        let mut c = direct(port).await;
        let _: () = cmd(&mut c, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).await.unwrap();
        let cluster = RedisCluster { procs, ports: vec![port], children: vec![0], tls: None };
        cluster.until_ok(&[]).await;
        cluster
    }

    /// Waits until every live node reports `cluster_state:ok` and every replica's link is up.
    pub async fn until_ok(&self, dead: &[u16]) {
        for port in self.ports.iter().filter(|p| !dead.contains(p)) {
            let c = self.direct(*port).await;
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
            let info = cmd::<String>(&mut self.direct(*port).await, &["INFO", "replication"]).await.unwrap_or_default();
            if info.contains("role:master") {
                masters.push(*port);
            }
        }
        masters
    }

    /// `redis+cluster://` (`rediss+cluster://` for a TLS cluster) with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let scheme = if self.tls.is_some() { "rediss" } else { "redis" };
        format!("{scheme}+cluster://{}", seeds.join(","))
    }

    /// A Herald node on this cluster, with `config`'s other settings (and a client certificate of its
    /// own for a TLS cluster).
    pub async fn node_with(&self, mut config: Config) -> TestServer {
        config.engine.url = self.url();
        if let Some(tls) = &self.tls {
            tls.engine(&mut config, "herald");
        }
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
        let info = cmd::<String>(&mut self.direct(port).await, &["INFO", "replication"]).await.unwrap();
        let line = info.lines().find(|l| l.starts_with("slave0:")).expect("a replica");
        let port = line.split(',').find_map(|f| f.strip_prefix("port=")).expect("its port");
        port.parse().unwrap()
    }

    /// Starts the node on `port` again after [`RedisCluster::kill`] (its nodes file kept): a master
    /// whose replica took over its slots rejoins as that one's replica.
    pub fn restart(&mut self, port: u16) {
        let i = self.ports.iter().position(|p| *p == port).expect("a node of this cluster");
        self.children[i] = spawn_cluster_node(&mut self.procs, port, self.tls.as_ref());
    }
}
