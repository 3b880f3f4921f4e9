//! The HTTP API (docs/http.md): `POST /v1/cmd`, `POST /v1/pipeline` and the server-sent event streams,
//! driven over a plain socket by a small HTTP/1.1 client (keep-alive, Content-Length bodies, event
//! streams read as they come), side by side with the `redis` crate on the same broker.

mod common;

use common::{cmd, data_dir, start, start_persistent, start_with, until_blocked};
use herald_broker::Config;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Http {
    stream: TcpStream,
    buf: Vec<u8>,
}

#[derive(Debug)]
struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

impl Http {
    async fn connect(addr: std::net::SocketAddr) -> Http {
        Http { stream: TcpStream::connect(addr).await.unwrap(), buf: Vec::new() }
    }

    async fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: herald.test\r\nContent-Length: {}\r\n", body.len());
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes()).await.unwrap();
        self.stream.write_all(body).await.unwrap();
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await.unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    async fn response(&mut self) -> Response {
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(self.fill().await, "connection closed before a response: {:?}", String::from_utf8_lossy(&self.buf));
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec()).unwrap();
        let status = head[9..12].parse().unwrap();
        let mut response = Response { status, head, body: Vec::new() };
        let len: usize = response.header("content-length").map_or(0, |l| l.parse().unwrap());
        while self.buf.len() < head_end + len {
            assert!(self.fill().await, "connection closed in a body");
        }
        response.body = self.buf[head_end..head_end + len].to_vec();
        self.buf.drain(..head_end + len);
        response
    }

    async fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        self.send(method, path, headers, body).await;
        self.response().await
    }

    async fn cmd(&mut self, command: Value) -> Response {
        self.request("POST", "/v1/cmd", &[], json!({ "cmd": command }).to_string().as_bytes()).await
    }

    /// Reads an event stream until `needle` has arrived; what came, from where the last call stopped.
    async fn events_until(&mut self, needle: &str) -> String {
        loop {
            let text = String::from_utf8_lossy(&self.buf).into_owned();
            if let Some(i) = text.find(needle) {
                let end = i + needle.len();
                self.buf.drain(..end);
                return text[..end].to_owned();
            }
            assert!(self.fill().await, "stream closed before {needle:?}; got {text:?}");
        }
    }

    async fn closed(&mut self) -> bool {
        while self.fill().await {}
        true
    }

    async fn rest(&mut self) -> String {
        self.closed().await;
        String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned()
    }
}

async fn post(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    Http::connect(addr).await.request("POST", path, headers, body.as_bytes()).await
}

#[tokio::test]
async fn commands_answer_as_the_websocket_does_on_one_keep_alive_connection() {
    let server = start().await;
    let mut http = Http::connect(server.http).await;
    let set = http.cmd(json!(["SET", "k", "v"])).await;
    assert_eq!((set.status, set.json()), (200, json!({"result": "OK"})));
    assert_eq!(set.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(http.cmd(json!(["GET", "k"])).await.json(), json!({"result": "v"}));
    assert_eq!(http.cmd(json!(["SET", "bin", {"base64": "/w=="}])).await.status, 200);
    assert_eq!(http.cmd(json!(["GET", "bin"])).await.json(), json!({"result": {"base64": "/w=="}}));
    assert_eq!(http.cmd(json!(["HSET", "h", "f", 1])).await.json(), json!({"result": 1}));
    assert_eq!(http.cmd(json!(["HGETALL", "h"])).await.json(), json!({"result": {"f": "1"}}));
    // The same keyspace as RESP.
    let mut con = server.conn().await;
    assert_eq!(cmd::<String>(&mut con, &["GET", "k"]).await.unwrap(), "v");
    let piped =
        http.request("POST", "/v1/pipeline", &[], br#"{"cmds": [["INCR", "n"], ["INCR", "n"], ["LPUSH", "k", "x"], ["GET", "n"]]}"#).await;
    assert_eq!(piped.status, 200);
    assert_eq!(
        piped.json(),
        json!([{"result": 1}, {"result": 2}, {"error": {"code": "WRONGTYPE", "message": "Operation against a key holding the wrong kind of value"}}, {"result": "2"}])
    );
    // A transaction inside one pipeline.
    let tx = http.request("POST", "/v1/pipeline", &[], br#"{"cmds": [["MULTI"], ["SET", "a", "1"], ["INCR", "a"], ["EXEC"]]}"#).await;
    assert_eq!(tx.json(), json!([{"result": "OK"}, {"result": "QUEUED"}, {"result": "QUEUED"}, {"result": ["OK", 2]}]));
}

#[tokio::test]
async fn bad_requests_get_clear_statuses_and_the_broker_serves_on() {
    let mut config = Config::for_tests();
    config.http.max_body_bytes = 1024;
    config.http.max_pipeline = 3;
    let server = start_with(config).await;
    let addr = server.http;
    let bad_json = post(addr, "/v1/cmd", &[], "{nope").await;
    assert_eq!(bad_json.status, 400);
    assert!(bad_json.json()["error"]["message"].as_str().unwrap().starts_with("invalid JSON"));
    let unknown = post(addr, "/v1/cmd", &[], r#"{"cmd": ["NOSUCH", "x"]}"#).await;
    assert_eq!((unknown.status, unknown.json()["error"]["code"].clone()), (400, json!("ERR")));
    assert!(unknown.json()["error"]["message"].as_str().unwrap().contains("unknown command"));
    let arity = post(addr, "/v1/cmd", &[], r#"{"cmd": ["GET"]}"#).await;
    assert_eq!(arity.status, 400);
    let shape = post(addr, "/v1/cmd", &[], r#"{"cmd": "GET k"}"#).await;
    assert_eq!(shape.status, 400);
    let _ = post(addr, "/v1/cmd", &[], r#"{"cmd": ["SET", "s", "x"]}"#).await;
    assert_eq!(post(addr, "/v1/cmd", &[], r#"{"cmd": ["LPUSH", "s", "x"]}"#).await.status, 409);
    let subscribe = post(addr, "/v1/cmd", &[], r#"{"cmd": ["SUBSCRIBE", "x"]}"#).await;
    assert_eq!(subscribe.status, 400);
    assert!(subscribe.json()["error"]["message"].as_str().unwrap().contains("/v1/subscribe"));
    let too_many = post(addr, "/v1/pipeline", &[], r#"{"cmds": [["PING"], ["PING"], ["PING"], ["PING"]]}"#).await;
    assert_eq!(too_many.status, 413);
    let half = post(addr, "/v1/pipeline", &[], r#"{"cmds": [["SET", "half", "1"], [true]]}"#).await;
    assert_eq!(half.status, 400);
    assert!(half.json()["error"]["message"].as_str().unwrap().starts_with("cmds[1]"));
    assert_eq!(post(addr, "/v1/cmd", &[], r#"{"cmd": ["EXISTS", "half"]}"#).await.json(), json!({"result": 0}));
    let big = format!(r#"{{"cmd": ["SET", "k", "{}"]}}"#, "x".repeat(2000));
    let oversize = post(addr, "/v1/cmd", &[], &big).await;
    assert_eq!((oversize.status, oversize.header("connection").as_deref()), (413, Some("close")));
    let mut http = Http::connect(addr).await;
    let not_found = http.request("GET", "/v1/nothing", &[], b"").await;
    assert_eq!(not_found.status, 404);
    assert!(http.closed().await);
    let wrong_method = Http::connect(addr).await.request("GET", "/v1/cmd", &[], b"").await;
    assert_eq!((wrong_method.status, wrong_method.header("allow").as_deref()), (405, Some("POST, OPTIONS")));
    let mut raw = Http::connect(addr).await;
    raw.stream.write_all(b"POST /v1/cmd HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").await.unwrap();
    assert_eq!(raw.response().await.status, 411);
    let mut garbage = Http::connect(addr).await;
    garbage.stream.write_all(b"\x00\x01 what\r\n\r\n").await.unwrap();
    assert_eq!(garbage.response().await.status, 400);
    // Everyone else is still served, and static routes answer as they did.
    assert_eq!(post(addr, "/v1/cmd", &[], r#"{"cmd": ["PING"]}"#).await.json(), json!({"result": "PONG"}));
    let health = Http::connect(addr).await.request("GET", "/healthz", &[], b"").await;
    assert_eq!((health.status, health.body), (200, b"ok\n".to_vec()));
}

#[tokio::test]
async fn a_body_sent_after_100_continue_and_pipelined_requests_are_answered() {
    let server = start().await;
    let mut http = Http::connect(server.http).await;
    let body = json!({"cmd": ["SET", "big", "y".repeat(3000)]}).to_string();
    http.stream
        .write_all(format!("POST /v1/cmd HTTP/1.1\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n", body.len()).as_bytes())
        .await
        .unwrap();
    assert_eq!(http.events_until("\r\n\r\n").await, "HTTP/1.1 100 Continue\r\n\r\n");
    http.stream.write_all(body.as_bytes()).await.unwrap();
    assert_eq!(http.response().await.json(), json!({"result": "OK"}));
    // Two requests in one write: two responses, in order.
    let one = r#"{"cmd": ["STRLEN", "big"]}"#;
    let two = r#"{"cmd": ["ECHO", "second"]}"#;
    let both = format!(
        "POST /v1/cmd HTTP/1.1\r\nContent-Length: {}\r\n\r\n{one}POST /v1/cmd HTTP/1.1\r\nContent-Length: {}\r\n\r\n{two}",
        one.len(),
        two.len()
    );
    http.stream.write_all(both.as_bytes()).await.unwrap();
    assert_eq!(http.response().await.json(), json!({"result": 3000}));
    assert_eq!(http.response().await.json(), json!({"result": "second"}));
}

#[tokio::test]
async fn credentials_go_through_auth_and_every_request_starts_from_a_fresh_session() {
    let mut config = Config::for_tests();
    config.requirepass = "s3cret".into();
    let server = start_with(config).await;
    let mut http = Http::connect(server.http).await;
    let anonymous = http.cmd(json!(["PING"])).await;
    assert_eq!((anonymous.status, anonymous.json()["error"]["code"].clone()), (401, json!("NOAUTH")));
    assert!(anonymous.header("www-authenticate").unwrap().starts_with("Basic"));
    // default:s3cret
    let good = [("Authorization", "Basic ZGVmYXVsdDpzM2NyZXQ=")];
    let ping = http.request("POST", "/v1/cmd", &good, br#"{"cmd": ["PING"]}"#).await;
    assert_eq!((ping.status, ping.json()), (200, json!({"result": "PONG"})));
    // Credentials are per request: the next one without them is anonymous again.
    assert_eq!(http.cmd(json!(["PING"])).await.status, 401);
    // default:wrong
    let wrong = http.request("POST", "/v1/cmd", &[("Authorization", "Basic ZGVmYXVsdDp3cm9uZw==")], br#"{"cmd": ["PING"]}"#).await;
    assert_eq!((wrong.status, wrong.json()["error"]["code"].clone()), (401, json!("WRONGPASS")));
    let bearer = http.request("POST", "/v1/cmd", &[("Authorization", "Bearer abc.def")], br#"{"cmd": ["PING"]}"#).await;
    assert_eq!(bearer.status, 401);
    assert!(bearer.json()["error"]["message"].as_str().unwrap().contains("tokens are not enabled on this broker"));
    // SELECT does not leak into the next request.
    let selected = http.request("POST", "/v1/pipeline", &good, br#"{"cmds": [["SELECT", "1"], ["SET", "where", "db1"]]}"#).await;
    assert_eq!(selected.json(), json!([{"result": "OK"}, {"result": "OK"}]));
    let again = http.request("POST", "/v1/cmd", &good, br#"{"cmd": ["GET", "where"]}"#).await;
    assert_eq!(again.json(), json!({"result": null}));
    let streams = Http::connect(server.http).await.request("GET", "/v1/subscribe?channel=x", &[], b"").await;
    assert_eq!(streams.status, 401);
}

#[tokio::test]
async fn blocking_commands_wait_over_http_with_their_timeouts() {
    let server = start().await;
    let timed_out = post(server.http, "/v1/cmd", &[], r#"{"cmd": ["BLPOP", "q", "0.05"]}"#).await;
    assert_eq!((timed_out.status, timed_out.json()), (200, json!({"result": null})));
    let mut waiter = Http::connect(server.http).await;
    waiter.send("POST", "/v1/cmd", &[], br#"{"cmd": ["BLPOP", "q", "0"]}"#).await;
    until_blocked(&server, 1).await;
    let mut con = server.conn().await;
    let _: i64 = cmd(&mut con, &["RPUSH", "q", "job"]).await.unwrap();
    assert_eq!(waiter.response().await.json(), json!({"result": ["q", "job"]}));
    let claim = post(server.http, "/v1/cmd", &[], r#"{"cmd": ["JOB.CLAIM", "work", "BLOCK", "20"]}"#).await;
    assert_eq!(claim.json(), json!({"result": null}));
}

#[tokio::test]
async fn an_acknowledged_write_survives_a_restart() {
    let dir = data_dir("http-durable");
    let server = start_persistent(&dir).await;
    let set = post(server.http, "/v1/pipeline", &[], r#"{"cmds": [["SET", "kept", "yes"], ["BB.SET", "s", "k", "v"]]}"#).await;
    assert_eq!(set.status, 200);
    server.stop().await;
    let again = start_persistent(&dir).await;
    let got = post(again.http, "/v1/pipeline", &[], r#"{"cmds": [["GET", "kept"], ["BB.GET", "s", "k"]]}"#).await;
    assert_eq!(got.json()[0], json!({"result": "yes"}));
    assert_eq!(got.json()[1]["result"]["value"], json!("v"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn cors_follows_the_allow_list_and_refused_origins_run_nothing() {
    let mut config = Config::for_tests();
    config.http.allowed_origins = vec!["https://app.example".into()];
    let server = start_with(config).await;
    let addr = server.http;
    let preflight = Http::connect(addr)
        .await
        .request("OPTIONS", "/v1/cmd", &[("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST")], b"")
        .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin").as_deref(), Some("https://app.example"));
    assert!(preflight.header("access-control-allow-headers").unwrap().contains("Authorization"));
    let refused = Http::connect(addr).await.request("OPTIONS", "/v1/cmd", &[("Origin", "https://evil.example")], b"").await;
    assert_eq!(refused.status, 403);
    let allowed = post(addr, "/v1/cmd", &[("Origin", "https://app.example")], r#"{"cmd": ["SET", "a", "1"]}"#).await;
    assert_eq!((allowed.status, allowed.header("access-control-allow-origin").as_deref()), (200, Some("https://app.example")));
    let evil = post(addr, "/v1/cmd", &[("Origin", "https://evil.example")], r#"{"cmd": ["SET", "a", "2"]}"#).await;
    assert_eq!(evil.status, 403);
    let same = post(addr, "/v1/cmd", &[("Origin", "http://herald.test")], r#"{"cmd": ["GET", "a"]}"#).await;
    assert_eq!((same.status, same.json()), (200, json!({"result": "1"})));
    assert_eq!(same.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn subscribe_streams_pushes_as_events() {
    let server = start().await;
    let mut sse = Http::connect(server.http).await;
    sse.send("GET", "/v1/subscribe?channel=news&pattern=al*", &[], b"").await;
    let head = sse.events_until("retry: 1000\n\n").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream"), "{head}");
    let mut con = server.conn().await;
    assert_eq!(cmd::<i64>(&mut con, &["PUBLISH", "news", "hello"]).await.unwrap(), 1);
    assert_eq!(cmd::<i64>(&mut con, &["PUBLISH", "alerts", "fire"]).await.unwrap(), 1);
    let first: Value = serde_json::from_str(sse.events_until("\n\n").await.trim().strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(first, json!({"push": "message", "channel": "news", "data": "hello"}));
    let second: Value = serde_json::from_str(sse.events_until("\n\n").await.trim().strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(second, json!({"push": "pmessage", "pattern": "al*", "channel": "alerts", "data": "fire"}));
    let numsub: Vec<redis::Value> = cmd(&mut con, &["PUBSUB", "NUMSUB", "news"]).await.unwrap();
    assert_eq!(numsub[1], redis::Value::Int(1));
    drop(sse);
    common::eventually(|| server.broker.clients.len() <= 1).await;
}

#[tokio::test]
async fn a_slow_event_stream_reader_meets_the_outbox_policy() {
    let mut config = Config::for_tests();
    config.pubsub.hard_limit = 64 * 1024;
    let server = start_with(config).await;
    let mut sse = Http::connect(server.http).await;
    sse.send("GET", "/v1/subscribe?channel=flood", &[], b"").await;
    sse.events_until("retry: 1000\n\n").await;
    let mut con = server.conn().await;
    let payload = "x".repeat(64 * 1024);
    for _ in 0..200 {
        let _: i64 = cmd(&mut con, &["PUBLISH", "flood", &payload]).await.unwrap();
    }
    // The reader never read: its outbox overflowed and the stream was closed, counted.
    let info: String = cmd(&mut con, &["INFO", "stats"]).await.unwrap();
    assert!(!info.contains("herald_output_limit_disconnects:0\r"), "{info}");
    assert!(sse.closed().await);
}

#[tokio::test]
async fn a_stream_follower_resumes_from_last_event_id_without_loss_or_duplicates() {
    let server = start().await;
    let mut con = server.conn().await;
    for entry in ["a", "b", "c"] {
        let _: i64 = cmd(&mut con, &["STREAM.WRITE", "log", entry]).await.unwrap();
    }
    let mut sse = Http::connect(server.http).await;
    sse.send("GET", "/v1/streams/log?from=1", &[], b"").await;
    let backlog = sse.events_until("id: 2\ndata: \"c\"\n\n").await;
    assert!(backlog.contains("id: 1\ndata: \"b\"\n\n") && !backlog.contains("\"a\""), "{backlog}");
    let _: i64 = cmd(&mut con, &["STREAM.WRITE", "log", "d"]).await.unwrap();
    sse.events_until("id: 3\ndata: \"d\"\n\n").await;
    drop(sse);
    // Reconnect as an EventSource does, after the last id it saw.
    let _: i64 = cmd(&mut con, &["STREAM.WRITE", "log", "e"]).await.unwrap();
    let _: i64 = cmd(&mut con, &["STREAM.CLOSE", "log"]).await.unwrap();
    let mut again = Http::connect(server.http).await;
    again.send("GET", "/v1/streams/log", &[("Last-Event-ID", "3")], b"").await;
    let rest = again.rest().await;
    assert!(rest.contains("id: 4\ndata: \"e\"\n\nevent: end\ndata: {\"next\":5}\n\n"), "{rest}");
    assert!(!rest.contains("id: 3"), "{rest}");
    let done = Http::connect(server.http).await.request("GET", "/v1/streams/log", &[("Last-Event-ID", "4")], b"").await;
    assert_eq!(done.status, 204);
    let bad = Http::connect(server.http).await.request("GET", "/v1/streams/log?from=x", &[], b"").await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn a_job_follower_sees_progress_chunks_and_the_result_then_the_end() {
    let server = start().await;
    let mut con = server.conn().await;
    let _: String = cmd(&mut con, &["JOB.SUBMIT", "q", "work", "ID", "j1"]).await.unwrap();
    let mut sse = Http::connect(server.http).await;
    sse.send("GET", "/v1/jobs/j1/events", &[], b"").await;
    let status = sse.events_until("\n\n").await;
    let status = sse.events_until("\n\n").await + &status;
    assert!(status.contains("event: status\ndata: {"), "{status}");
    let claim = common::fields(cmd(&mut con, &["JOB.CLAIM", "q"]).await.unwrap());
    let token = common::int(&claim["token"]).to_string();
    let _: String = cmd(&mut con, &["JOB.PROGRESS", "j1", &token, "half"]).await.unwrap();
    let _: i64 = cmd(&mut con, &["JOB.CHUNK", "j1", &token, "one"]).await.unwrap();
    let _: i64 = cmd(&mut con, &["JOB.CHUNK", "j1", &token, "two"]).await.unwrap();
    let _: String = cmd(&mut con, &["JOB.COMPLETE", "j1", &token, "answer"]).await.unwrap();
    let rest = sse.rest().await;
    assert!(rest.contains("event: progress\ndata: {\"event\":\"progress\",\"id\":\"j1\",\"value\":\"half\"}"), "{rest}");
    assert!(rest.contains("id: 0\nevent: chunk\ndata: \"one\"\n\nid: 1\nevent: chunk\ndata: \"two\"\n\n"), "{rest}");
    assert!(rest.ends_with("id: 2\nevent: result\ndata: \"answer\"\n\nevent: end\ndata: {}\n\n"), "{rest}");
    // Resuming after the first chunk replays only what came after it.
    let mut again = Http::connect(server.http).await;
    again.send("GET", "/v1/jobs/j1/events", &[("Last-Event-ID", "0")], b"").await;
    let resumed = again.rest().await;
    assert!(!resumed.contains("\"one\"") && resumed.contains("id: 1\nevent: chunk\ndata: \"two\""), "{resumed}");
    let seen_all = Http::connect(server.http).await.request("GET", "/v1/jobs/j1/events", &[("Last-Event-ID", "2")], b"").await;
    assert_eq!(seen_all.status, 204);
    let missing = Http::connect(server.http).await.request("GET", "/v1/jobs/nope/events", &[], b"").await;
    assert_eq!((missing.status, missing.json()["error"]["code"].clone()), (404, json!("NOJOB")));
}

#[tokio::test]
async fn a_failed_job_ends_its_stream_with_the_error() {
    let server = start().await;
    let mut con = server.conn().await;
    let _: String = cmd(&mut con, &["JOB.SUBMIT", "q", "work", "ID", "bad"]).await.unwrap();
    let claim = common::fields(cmd(&mut con, &["JOB.CLAIM", "q"]).await.unwrap());
    let _: String = cmd(&mut con, &["JOB.FAIL", "bad", &common::int(&claim["token"]).to_string(), "boom", "NORETRY"]).await.unwrap();
    let mut sse = Http::connect(server.http).await;
    sse.send("GET", "/v1/jobs/bad/events", &[], b"").await;
    let rest = sse.rest().await;
    assert!(rest.contains("id: 0\nevent: error\ndata: {\"code\":\"JOBFAILED\""), "{rest}");
}

#[tokio::test]
async fn a_blackboard_follower_gets_the_journal_with_seq_ids_and_410_when_it_is_gone() {
    let mut config = Config::for_tests();
    config.blackboard.journal_max_entries = 4;
    let server = start_with(config).await;
    let mut con = server.conn().await;
    let _: redis::Value = cmd(&mut con, &["BB.SET", "team", "a", "1"]).await.unwrap();
    let mut sse = Http::connect(server.http).await;
    sse.send("GET", "/v1/bb/team/changes", &[], b"").await;
    sse.events_until("retry: 1000\n\n").await;
    let _: redis::Value = cmd(&mut con, &["BB.SET", "team", "b", "2"]).await.unwrap();
    let _: i64 = cmd(&mut con, &["BB.DEL", "team", "a"]).await.unwrap();
    let two = sse.events_until("id: 3\n").await;
    assert!(two.starts_with("id: 2\ndata: {\"event\":\"set\",\"key\":\"b\""), "{two}");
    let del = sse.events_until("\n\n").await;
    assert!(del.contains("\"event\":\"del\"") && del.contains("\"value\":\"1\""), "{del}");
    drop(sse);
    let mut again = Http::connect(server.http).await;
    again.send("GET", "/v1/bb/team/changes", &[("Last-Event-ID", "2")], b"").await;
    let resumed = again.events_until("id: 3\n").await;
    assert!(!resumed.contains("id: 2\n"), "{resumed}");
    for i in 0..10 {
        let _: redis::Value = cmd(&mut con, &["BB.SET", "team", "k", &i.to_string()]).await.unwrap();
    }
    let gone = Http::connect(server.http).await.request("GET", "/v1/bb/team/changes?from=1", &[], b"").await;
    assert_eq!((gone.status, gone.json()["error"]["code"].clone()), (410, json!("LOST")));
}
