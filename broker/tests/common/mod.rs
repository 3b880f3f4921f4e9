//! Shared test harness: a real broker on port 0, driven through the `redis` crate (a real client) or a
//! raw socket for byte-level cases.
#![allow(dead_code)]

pub mod pki;
pub mod redis_server;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use herald_broker::broker::Broker;
use herald_broker::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestServer {
    pub addr: SocketAddr,
    /// The HTTP/WebSocket port.
    pub http: SocketAddr,
    /// RESP over TLS and HTTPS/WSS, when the configuration enables TLS.
    pub tls: Option<(SocketAddr, SocketAddr)>,
    pub broker: Arc<Broker>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Starts a broker with the test defaults (free port, connections on the test's runtime).
pub async fn start() -> TestServer {
    start_with(Config::for_tests()).await
}

pub async fn start_with(config: Config) -> TestServer {
    let server = Server::bind(config).await.expect("bind");
    let addr = server.resp_addr();
    let http = server.http_addr();
    let tls = server.tls_addrs();
    let broker = server.broker();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    TestServer { addr, http, tls, broker, stop: Some(stop), task: Some(task) }
}

impl TestServer {
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("client")
    }

    /// A RESP2 connection through the `redis` crate, without the crate's default 500 ms response
    /// timeout (blocking commands wait longer than that on purpose).
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        self.client().get_multiplexed_async_connection_with_config(&config).await.expect("connect")
    }

    /// A RESP3 client (HELLO 3 on connect).
    pub fn client3(&self) -> redis::Client {
        redis::Client::open(format!("redis://{}/?protocol=resp3", self.addr)).expect("client")
    }

    pub async fn raw(&self) -> Raw {
        Raw { stream: TcpStream::connect(self.addr).await.expect("connect"), buf: Vec::new() }
    }

    /// Graceful shutdown, as SIGTERM would do.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A raw socket for byte-exact protocol tests.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Sends one command as a RESP array.
    pub async fn cmd(&mut self, parts: &[&str]) {
        let mut out = format!("*{}\r\n", parts.len()).into_bytes();
        for p in parts {
            out.extend_from_slice(format!("${}\r\n{p}\r\n", p.len()).as_bytes());
        }
        self.send(&out).await;
    }

    /// Reads until `expected` bytes arrived (or times out), and returns them.
    pub async fn read_exact_text(&mut self, len: usize) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.buf.len() < len {
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .expect("timed out waiting for a reply")
                .expect("read");
            assert!(n > 0, "connection closed after {:?}", String::from_utf8_lossy(&self.buf));
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let rest = self.buf.split_off(len);
        String::from_utf8_lossy(&std::mem::replace(&mut self.buf, rest)).into_owned()
    }

    /// Reads until `needle` has arrived and returns everything up to and including it.
    pub async fn read_until(&mut self, needle: &str) -> String {
        let needle = needle.as_bytes();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut searched = 0;
        loop {
            if let Some(pos) = self.buf[searched..].windows(needle.len()).position(|w| w == needle) {
                let end = searched + pos + needle.len();
                let rest = self.buf.split_off(end);
                return String::from_utf8_lossy(&std::mem::replace(&mut self.buf, rest)).into_owned();
            }
            searched = self.buf.len().saturating_sub(needle.len());
            let mut chunk = [0u8; 65536];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .expect("timed out waiting for the expected text")
                .expect("read");
            assert!(n > 0, "connection closed before the expected text arrived");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Asserts the next bytes are exactly `expected`.
    pub async fn expect(&mut self, expected: &str) {
        let got = self.read_exact_text(expected.len()).await;
        assert_eq!(got, expected);
    }

    /// True if the server closed the connection (after any remaining bytes).
    pub async fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// Runs one command on a connection.
pub async fn cmd<T: redis::FromRedisValue>(con: &mut redis::aio::MultiplexedConnection, parts: &[&str]) -> redis::RedisResult<T> {
    let mut c = redis::cmd(parts[0]);
    for p in &parts[1..] {
        c.arg(*p);
    }
    c.query_async(con).await
}

/// `commands` as one pipeline, each reply in its place, errors kept as values.
pub async fn pipeline(con: &mut redis::aio::MultiplexedConnection, commands: &[&[&str]]) -> Vec<redis::Value> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for parts in commands {
        let mut c = redis::cmd(parts[0]);
        for p in &parts[1..] {
            c.arg(*p);
        }
        pipe.add_command(c);
    }
    pipe.query_async(con).await.expect("pipeline")
}

/// Waits (up to 5 s) until `condition` holds; for effects that happen on another task, such as a
/// connection's cleanup after its socket closed.
pub async fn eventually(mut condition: impl FnMut() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 5 s");
}

/// INFO's count of blocked clients, as any client (and `redis-cli`) reads it: how tests prove a
/// blocking command blocked before they wake it.
pub async fn blocked_clients(c: &mut redis::aio::MultiplexedConnection) -> usize {
    let info: String = cmd(c, &["INFO", "clients"]).await.unwrap();
    let line = info.lines().find(|l| l.starts_with("blocked_clients:")).expect("blocked_clients in INFO");
    line["blocked_clients:".len()..].trim().parse().unwrap()
}

/// Waits (up to 5 s) until INFO reports `n` blocked clients.
pub async fn until_blocked(server: &TestServer, n: usize) {
    let mut c = server.conn().await;
    for _ in 0..500 {
        if blocked_clients(&mut c).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("INFO never reported {n} blocked clients");
}

/// A fresh, empty data directory for a persistent broker (removed first if a previous run left it).
pub fn data_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("herald-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A broker with persistence on in `dir` (what it holds is loaded first).
pub async fn start_persistent(dir: &std::path::Path) -> TestServer {
    let mut config = Config::for_tests();
    config.persistence.data_dir = dir.to_string_lossy().into_owned();
    start_with(config).await
}

/// Rewrites the log into a snapshot (BGREWRITEAOF) and waits until it is done, so what a restart
/// loads comes from the snapshot.
pub async fn rewrite(con: &mut redis::aio::MultiplexedConnection) {
    async fn rewrites(con: &mut redis::aio::MultiplexedConnection) -> String {
        let info: String = cmd(con, &["INFO", "persistence"]).await.unwrap();
        let line = info.lines().find(|l| l.starts_with("aof_rewrites:")).expect("aof_rewrites").to_owned();
        assert!(info.contains("aof_last_bgrewrite_status:ok"), "{info}");
        line
    }
    let before = rewrites(con).await;
    let _: redis::Value = cmd(con, &["BGREWRITEAOF"]).await.unwrap();
    for _ in 0..500 {
        if rewrites(con).await != before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the rewrite did not finish");
}

/// A map reply (a flat array in RESP2) as field -> value.
pub fn fields(v: redis::Value) -> std::collections::HashMap<String, redis::Value> {
    let redis::Value::Array(items) = v else { panic!("not a map: {v:?}") };
    items
        .chunks(2)
        .map(|kv| match &kv[0] {
            redis::Value::BulkString(k) => (String::from_utf8(k.clone()).unwrap(), kv[1].clone()),
            other => panic!("{other:?}"),
        })
        .collect()
}

/// One field of a map reply.
pub fn field(v: &redis::Value, name: &str) -> redis::Value {
    fields(v.clone()).remove(name).unwrap_or_else(|| panic!("no {name} in {v:?}"))
}

/// A bulk or simple string reply as text.
pub fn text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8(b.clone()).unwrap(),
        redis::Value::SimpleString(s) => s.clone(),
        other => panic!("{other:?}"),
    }
}

pub fn int(v: &redis::Value) -> i64 {
    match v {
        redis::Value::Int(n) => *n,
        other => panic!("{other:?}"),
    }
}
