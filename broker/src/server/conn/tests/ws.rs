//! The core through the WebSocket adapter, with tokio-tungstenite as the client.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::{Harness, Pipe, drop_oldest, duplex, small_outbox};
use crate::clients::Transport;
use crate::config::Config;
use crate::server::conn::Credentials;
use crate::server::ws::WsWire;

/// The client's end of a WebSocket connection.
struct Ws {
    stream: WebSocketStream<DuplexStream>,
    next_id: u64,
}

impl Harness {
    async fn ws(&self) -> Pipe<Ws> {
        self.ws_with(64 * 1024, None).await
    }

    /// A WebSocket connection (handshake already done) whose pipe holds `capacity` bytes each way.
    async fn ws_with(&self, capacity: usize, credentials: Option<Credentials>) -> Pipe<Ws> {
        let (client, server) = duplex(capacity);
        let wire = WsWire::accept(server, Vec::new(), &self.broker).await;
        let task = self.serve(wire, credentials);
        let stream = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        Pipe { client: Ws { stream, next_id: 1 }, task }
    }
}

impl Ws {
    async fn send(&mut self, cmd: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.stream.send(Message::Text(json!({"id": id, "cmd": cmd}).to_string().into())).await.expect("send");
        id
    }

    async fn next(&mut self) -> Option<Message> {
        tokio::time::timeout(Duration::from_secs(5), self.stream.next()).await.expect("timed out").map(|m| m.expect("read"))
    }

    /// The next JSON message, skipping pings.
    async fn recv(&mut self) -> Value {
        loop {
            match self.next().await {
                Some(Message::Text(t)) => return serde_json::from_str(&t).expect("JSON"),
                Some(Message::Ping(_) | Message::Pong(_)) => continue,
                other => panic!("expected a JSON message, got {other:?}"),
            }
        }
    }

    async fn result(&mut self, cmd: Value) -> Value {
        let id = self.send(cmd).await;
        let reply = self.recv().await;
        assert_eq!(reply["id"], json!(id), "{reply}");
        reply["result"].clone()
    }

    /// The server's close frame: code and reason.
    async fn closed(&mut self) -> (u16, String) {
        loop {
            match self.next().await {
                Some(Message::Close(Some(frame))) => return (u16::from(frame.code), frame.reason.to_string()),
                Some(Message::Close(None)) | None => return (1005, String::new()),
                Some(_) => continue,
            }
        }
    }
}

#[tokio::test]
async fn requests_in_flight_are_answered_in_order() {
    let h = Harness::new();
    let mut ws = h.ws().await.client;
    let mut ids = Vec::new();
    for _ in 0..100 {
        ids.push(ws.send(json!(["INCR", "n"])).await);
    }
    for (i, id) in ids.into_iter().enumerate() {
        let reply = ws.recv().await;
        assert_eq!((reply["id"].clone(), reply["result"].clone()), (json!(id), json!(i + 1)));
    }
}

#[tokio::test]
async fn a_blocked_command_holds_later_replies_but_not_pushes() {
    let h = Harness::new();
    let mut ws = h.ws().await.client;
    ws.result(json!(["SUBSCRIBE", "side"])).await;
    let blpop = ws.send(json!(["BLPOP", "q", 0])).await;
    let ping = ws.send(json!(["PING"])).await;
    h.until("BLPOP blocks", |b| b.lock().blocking.len() == 1).await;
    h.broker.hub.publish(b"side", b"while-blocked");
    assert_eq!(ws.recv().await["data"], json!("while-blocked"));
    let mut other = h.ws().await.client;
    other.result(json!(["RPUSH", "q", "job"])).await;
    let first = ws.recv().await;
    assert_eq!((first["id"].clone(), first["result"].clone()), (json!(blpop), json!(["q", "job"])));
    let second = ws.recv().await;
    assert_eq!((second["id"].clone(), second["result"].clone()), (json!(ping), json!("PONG")));
}

#[tokio::test]
async fn pushes_come_before_the_replies_that_follow_them() {
    let h = Harness::new();
    let mut ws = h.ws().await.client;
    assert_eq!(ws.result(json!(["SUBSCRIBE", "news", "sport"])).await, json!([["subscribe", "news", 1], ["subscribe", "sport", 2]]));
    for i in 0..3 {
        h.broker.hub.publish(b"news", format!("m{i}").as_bytes());
    }
    let ping = ws.send(json!(["PING"])).await;
    for i in 0..3 {
        assert_eq!(ws.recv().await, json!({"push": "message", "channel": "news", "data": format!("m{i}")}));
    }
    assert_eq!(ws.recv().await, json!({"id": ping, "result": "PONG"}));
}

#[tokio::test]
async fn a_push_made_by_the_batch_itself_comes_before_the_reply_after_it() {
    let h = Harness::new();
    let mut ws = h.ws().await.client;
    ws.result(json!(["SUBSCRIBE", "x"])).await;
    let publish = ws.send(json!(["PUBLISH", "x", "m"])).await;
    let ping = ws.send(json!(["PING"])).await;
    assert_eq!(ws.recv().await, json!({"push": "message", "channel": "x", "data": "m"}));
    assert_eq!(ws.recv().await, json!({"id": publish, "result": 1}));
    assert_eq!(ws.recv().await, json!({"id": ping, "result": "PONG"}));
}

#[tokio::test]
async fn drop_oldest_sends_the_lagged_notice_first() {
    let h = Harness::with(drop_oldest());
    let mut ws = h.ws().await.client;
    ws.result(json!(["SUBSCRIBE", "c"])).await;
    for i in 0..200 {
        h.broker.hub.publish(b"c", format!("{i:0>100}").as_bytes());
    }
    let first = ws.recv().await;
    assert_eq!(first["push"], json!("lagged"), "{first}");
    let lost = first["count"].as_u64().expect("count");
    assert!(lost > 0 && lost < 200);
    for i in lost..200 {
        assert_eq!(ws.recv().await["data"], json!(format!("{i:0>100}")));
    }
}

#[tokio::test]
async fn kill_overflow_and_shutdown_close_with_their_codes() {
    let h = Harness::with(small_outbox());
    let Pipe { client: mut killed, task } = h.ws().await;
    killed.result(json!(["PING"])).await;
    h.kill(Transport::WebSocket);
    assert_eq!(killed.closed().await, (4004, "killed by CLIENT KILL".to_owned()));
    task.await.expect("task");

    let Pipe { client: mut slow, task } = h.ws_with(1024, None).await;
    slow.result(json!(["SUBSCRIBE", "firehose"])).await;
    h.flood_until_closed(b"firehose", task).await;

    let Pipe { client: mut open, task } = h.ws().await;
    open.result(json!(["SUBSCRIBE", "x"])).await;
    h.shut_down();
    assert_eq!(open.closed().await, (1001, "server shutting down".to_owned()));
    task.await.expect("task");
    assert_eq!(h.broker.clients.len(), 0);
}

#[tokio::test]
async fn a_peer_that_vanishes_mid_frame_leaves_nothing_behind() {
    let h = Harness::new();
    let (mut raw, server) = duplex(1024);
    let wire = WsWire::accept(server, Vec::new(), &h.broker).await;
    let task = h.serve(wire, None);
    // A masked text frame announcing 5 bytes, cut off after its mask.
    raw.write_all(&[0x81, 0x85, 1, 2, 3, 4]).await.expect("write");
    h.until("registered", |b| b.clients.len() == 1).await;
    drop(raw);
    task.await.expect("task");
    assert_eq!(h.broker.clients.len(), 0);
}

#[tokio::test]
async fn bad_envelopes_get_errors_binary_frames_close_with_1003() {
    let h = Harness::new();
    let Pipe { client: mut ws, task } = h.ws().await;
    ws.stream.send(Message::Text("{".into())).await.expect("send");
    let reply = ws.recv().await;
    assert_eq!((reply["id"].clone(), reply["error"]["code"].clone()), (Value::Null, json!("ERR")));
    assert_eq!(ws.result(json!(["PING", "still here"])).await, json!("still here"));
    assert_eq!(h.stat(&h.broker.stats.protocol_errors), 1);
    ws.stream.send(Message::Binary(vec![1, 2, 3].into())).await.expect("send");
    assert_eq!(ws.closed().await.0, 1003);
    task.await.expect("task");
}

#[tokio::test(start_paused = true)]
async fn heartbeats_idle_and_auth_deadlines() {
    let mut config = Config::for_tests();
    config.websocket.heartbeat_ms = 20;
    config.websocket.idle_timeout_ms = 0;
    let h = Harness::with(config);
    let mut ws = h.ws().await.client;
    assert!(matches!(ws.next().await, Some(Message::Ping(_))));
    assert!(matches!(ws.next().await, Some(Message::Ping(_))));

    let mut config = Config::for_tests();
    config.websocket.heartbeat_ms = 0;
    config.websocket.idle_timeout_ms = 100;
    let h = Harness::with(config);
    let mut ws = h.ws().await.client;
    assert_eq!(ws.result(json!(["PING"])).await, json!("PONG"));
    let heard = tokio::time::Instant::now();
    assert_eq!(ws.closed().await, (4003, "idle timeout".to_owned()));
    assert!(heard.elapsed() >= Duration::from_millis(100));
    assert_eq!(h.stat(&h.broker.stats.idle_disconnects), 1);

    let mut config = Config::for_tests();
    config.requirepass = "pw".into();
    config.websocket.auth_timeout_ms = 100;
    let h = Harness::with(config);
    let mut ws = h.ws().await.client;
    assert_eq!(ws.closed().await, (4001, "authentication timeout".to_owned()));
    let mut ws = h.ws().await.client;
    assert_eq!(ws.result(json!(["AUTH", "pw"])).await, json!("OK"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ws.result(json!(["PING"])).await, json!("PONG"));
}

#[tokio::test]
async fn credentials_at_open_go_through_auth() {
    let mut config = Config::for_tests();
    config.requirepass = "pw".into();
    let h = Harness::with(config);
    let good = Credentials::Password { user: Some("default".into()), password: "pw".into() };
    let mut ws = h.ws_with(1024, Some(good)).await.client;
    assert_eq!(ws.result(json!(["PING"])).await, json!("PONG"));
    let bad = Credentials::Password { user: None, password: "nope".into() };
    let Pipe { client: mut ws, task } = h.ws_with(1024, Some(bad)).await;
    let (code, reason) = ws.closed().await;
    assert_eq!(code, 4001);
    assert!(reason.contains("invalid username-password pair"), "{reason}");
    task.await.expect("task");
}

#[test]
fn every_end_has_the_close_code_docs_websocket_md_gives_it() {
    use crate::server::conn::{End, Malformed};
    use crate::server::ws::close_code;
    let text = || "x".to_owned();
    let ends = [
        (End::PeerClosed, None),
        (End::Io(text()), None),
        (End::Quit, Some(1000)),
        (End::Shutdown, Some(1001)),
        (End::Malformed(Malformed::Broken(text())), Some(1002)),
        (End::Malformed(Malformed::Unsupported(text())), Some(1003)),
        (End::Malformed(Malformed::NotUtf8(text())), Some(1007)),
        (End::Backlog, Some(1008)),
        (End::Malformed(Malformed::TooBig(text())), Some(1009)),
        (End::Persist(text()), Some(1011)),
        (End::AuthTimeout, Some(4001)),
        (End::AuthFailed(herald_protocol::CommandError::fixed("WRONGPASS no")), Some(4001)),
        (End::Overflow("slow"), Some(4002)),
        (End::Idle, Some(4003)),
        (End::Killed, Some(4004)),
    ];
    for (end, code) in ends {
        assert_eq!(close_code(&end), code, "{end:?}");
    }
}
