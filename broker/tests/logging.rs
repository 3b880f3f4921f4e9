//! Structured logs (docs/operations.md, "Logs"): the `herald` binary run with `log.format = json`,
//! every stderr line parsed as JSON, and one line found for each connection event worth knowing:
//! an authentication failure, a protocol error, a connection refused past `maxclients`, a client
//! killed by CLIENT KILL (naming who killed it), a slow consumer dropped, and the shutdown.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

fn resp(parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for p in parts {
        out.extend_from_slice(format!("${}\r\n{p}\r\n", p.len()).as_bytes());
    }
    out
}

/// Sends a command and reads one reply line (enough for the status, error and integer replies used).
fn ask(s: &mut TcpStream, parts: &[&str]) -> String {
    s.write_all(&resp(parts)).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if s.read(&mut byte).unwrap() == 0 {
            break;
        }
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line).trim_end().to_owned()
}

/// The log lines seen so far, parsed; waits (bounded) for one that `wanted` accepts.
struct Log {
    lines: mpsc::Receiver<String>,
    seen: Vec<Value>,
}

impl Log {
    fn wait_for(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(v) = self.seen.iter().find(|v| wanted(v)) {
            return v.clone();
        }
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("no log line for {what}; seen {:#?}", self.seen));
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
            for field in ["timestamp", "level", "message", "target"] {
                assert!(v[field].is_string(), "{field} in {line}");
            }
            self.seen.push(v.clone());
            if wanted(&v) {
                return v;
            }
        }
    }
}

fn message(v: &Value) -> &str {
    v["message"].as_str().unwrap_or("")
}

#[test]
fn json_logs_parse_and_name_each_connection_event() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["--port", "0", "--http-port", "0", "--requirepass", "secret"])
        .env("HERALD_LOG__FORMAT", "json")
        .env("HERALD_LOG__LEVEL", "info")
        .env("HERALD_LIMITS__MAXCLIENTS", "4")
        .env("HERALD_PUBSUB__HARD_LIMIT", "65536")
        .env("HERALD_PUBSUB__SOFT_LIMIT", "32768")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the herald binary starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Log { lines: rx, seen: Vec::new() };
    let listening = log.wait_for("listening", |v| message(v).starts_with("listening for RESP"));
    let addr: SocketAddr = listening["addr"].as_str().unwrap().parse().unwrap();
    let connect = || {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };

    let mut admin = connect();
    assert_eq!(ask(&mut admin, &["AUTH", "wrong"]), "-WRONGPASS invalid username-password pair or user is disabled.");
    let auth = log.wait_for("the failed AUTH", |v| message(v) == "authentication failed");
    assert_eq!(
        (auth["target"].as_str(), auth["level"].as_str(), auth["user"].as_str()),
        (Some("herald::auth"), Some("WARN"), Some("default"))
    );
    assert_eq!(ask(&mut admin, &["AUTH", "secret"]), "+OK");

    let mut broken = connect();
    broken.write_all(b"*1\r\n$-5\r\n").unwrap();
    let protocol = log.wait_for("the protocol error", |v| message(v).starts_with("protocol error"));
    assert_eq!((protocol["reason"].as_str(), protocol["transport"].as_str()), (Some("protocol-error"), Some("resp")));
    drop(broken);

    let mut victim = connect();
    assert_eq!(ask(&mut victim, &["AUTH", "secret"]), "+OK");
    let victim_id = ask(&mut victim, &["CLIENT", "ID"]);
    let victim_id = victim_id.trim_start_matches(':');
    assert_eq!(ask(&mut admin, &["CLIENT", "KILL", "ID", victim_id]), ":1");
    let admin_id = ask(&mut admin, &["CLIENT", "ID"]);
    let killed = log.wait_for("CLIENT KILL", |v| message(v) == "client killed by CLIENT KILL");
    assert_eq!(killed["id"].to_string(), victim_id);
    assert_eq!(killed["by"].to_string(), admin_id.trim_start_matches(':'));

    // A subscriber that never reads, and messages far past its 64 KiB output limit.
    let mut subscriber = connect();
    assert_eq!(ask(&mut subscriber, &["AUTH", "secret"]), "+OK");
    subscriber.write_all(&resp(&["SUBSCRIBE", "firehose"])).unwrap();
    let payload = "x".repeat(64 * 1024);
    let mut pipeline = Vec::new();
    for _ in 0..200 {
        pipeline.extend_from_slice(&resp(&["PUBLISH", "firehose", &payload]));
    }
    admin.write_all(&pipeline).unwrap();
    let dropped = log.wait_for("the slow consumer", |v| message(v).starts_with("slow consumer dropped"));
    assert_eq!((dropped["reason"].as_str(), dropped["level"].as_str()), (Some("slow-consumer"), Some("WARN")));

    // maxclients is 4: connections that answered (so are registered) fill it, then one is refused.
    let mut held = Vec::new();
    loop {
        let mut s = connect();
        let reply = ask(&mut s, &["PING"]);
        if reply == "-ERR max number of clients reached" {
            break;
        }
        assert_eq!(reply, "-NOAUTH Authentication required.");
        held.push(s);
        assert!(held.len() <= 4, "refused by the fifth connection at the latest");
    }
    let refused = log.wait_for("a refused connection", |v| message(v).contains("max number of clients reached"));
    assert_eq!((refused["wire"].as_str(), refused["maxclients"].as_u64()), (Some("resp"), Some(4)));
    held.clear();

    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    log.wait_for("the shutdown", |v| message(v) == "shutdown complete");
    assert!(child.wait().unwrap().success());
    // Whatever else was written parses too.
    while let Ok(line) = log.lines.recv_timeout(Duration::from_millis(200)) {
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
        assert!(v["message"].is_string(), "{line}");
    }
}
