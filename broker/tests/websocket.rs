//! The WebSocket channel end to end: the JSON envelope over the same dispatch as RESP, pushes, auth,
//! connection life, bad input and resume, with tokio-tungstenite as the client and the `redis` crate on
//! the other side.

mod common;

use std::time::Duration;

use futures_util::SinkExt;
use herald_broker::Config;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use common::{cmd, eventually, start, start_with};

#[tokio::test]
async fn commands_replies_and_errors() {
    let server = start().await;
    let mut ws = server.ws().await;
    assert_eq!(ws.result(json!(["SET", "k", "v"])).await, json!("OK"));
    assert_eq!(ws.result(json!(["GET", "k"])).await, json!("v"));
    assert_eq!(ws.result(json!(["GET", "missing"])).await, Value::Null);
    assert_eq!(ws.result(json!(["INCRBY", "n", 5])).await, json!(5));
    assert_eq!(ws.result(json!(["RPUSH", "l", "a", "b"])).await, json!(2));
    assert_eq!(ws.result(json!(["LRANGE", "l", 0, -1])).await, json!(["a", "b"]));
    let wrong = ws.call(json!(["GET", "l"])).await;
    assert_eq!(wrong["error"], json!({"code": "WRONGTYPE", "message": "Operation against a key holding the wrong kind of value"}));
    let unknown = ws.call(json!(["NOPE"])).await;
    assert_eq!(unknown["error"]["code"], json!("ERR"));
    assert!(unknown["error"]["message"].as_str().unwrap().starts_with("unknown command 'NOPE'"));
    // Maps become objects.
    ws.result(json!(["BB.SET", "s", "k", "v"])).await;
    let got = ws.result(json!(["BB.GET", "s", "k"])).await;
    assert_eq!((got["value"].clone(), got["revision"].clone(), got["ttl"].clone()), (json!("v"), json!(1), json!(-1)));
    // The same keyspace as RESP.
    let mut con = server.conn().await;
    assert_eq!(cmd::<String>(&mut con, &["GET", "k"]).await.unwrap(), "v");
}

#[tokio::test]
async fn binary_values_round_trip_as_base64() {
    let server = start().await;
    let mut ws = server.ws().await;
    ws.result(json!(["SET", "bin", {"base64": "/wAB"}])).await;
    assert_eq!(ws.result(json!(["GET", "bin"])).await, json!({"base64": "/wAB"}));
    let mut con = server.conn().await;
    let raw: Vec<u8> = cmd(&mut con, &["GET", "bin"]).await.unwrap();
    assert_eq!(raw, vec![0xff, 0x00, 0x01]);
    assert_eq!(ws.result(json!(["STRLEN", "bin"])).await, json!(3));
}

#[tokio::test]
async fn in_flight_requests_are_answered_in_order() {
    let server = start().await;
    let mut ws = server.ws().await;
    let mut sent = Vec::new();
    for i in 0..200 {
        sent.push(ws.send(json!(["INCR", "counter"])).await);
        if i % 50 == 0 {
            sent.push(ws.send(json!(["GET", "counter"])).await);
        }
    }
    let mut last = 0;
    for id in sent {
        let reply = ws.recv().await;
        assert_eq!(reply["id"], json!(id));
        if let Some(n) = reply["result"].as_i64() {
            assert!(n > last);
            last = n;
        }
    }
    assert_eq!(last, 200);
}

#[tokio::test]
async fn publications_from_resp_reach_websocket_subscribers() {
    let server = start().await;
    let mut ws = server.ws().await;
    let confirm = ws.result(json!(["SUBSCRIBE", "news", "sport"])).await;
    assert_eq!(confirm, json!([["subscribe", "news", 1], ["subscribe", "sport", 2]]));
    assert_eq!(ws.result(json!(["PSUBSCRIBE", "n*"])).await, json!([["psubscribe", "n*", 3]]));
    // A subscribed WebSocket session still runs ordinary commands.
    assert_eq!(ws.result(json!(["SET", "x", "1"])).await, json!("OK"));
    let mut con = server.conn().await;
    assert_eq!(cmd::<i64>(&mut con, &["PUBLISH", "news", "hello"]).await.unwrap(), 2);
    let first = ws.recv().await;
    let second = ws.recv().await;
    assert_eq!(first, json!({"push": "message", "channel": "news", "data": "hello"}));
    assert_eq!(second, json!({"push": "pmessage", "pattern": "n*", "channel": "news", "data": "hello"}));
    // And the other way: a WebSocket publication reaches a RESP subscriber.
    let mut sub = server.client().get_async_pubsub().await.unwrap();
    sub.subscribe("from-ws").await.unwrap();
    assert_eq!(ws.result(json!(["PUBLISH", "from-ws", "hi"])).await, json!(1));
    let msg = futures_util::StreamExt::next(&mut sub.on_message()).await.unwrap();
    assert_eq!(msg.get_payload::<String>().unwrap(), "hi");
    let un = ws.result(json!(["UNSUBSCRIBE"])).await;
    assert_eq!(un.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn blackboard_watch_and_job_events_arrive_as_pushes() {
    let server = start().await;
    let mut ws = server.ws().await;
    ws.result(json!(["PSUBSCRIBE", "__bb:*@room__:*"])).await;
    let mut con = server.conn().await;
    cmd::<i64>(&mut con, &["BB.SET", "room", "topic", "rust"]).await.unwrap();
    let push = ws.recv().await;
    assert_eq!(push["push"], json!("pmessage"));
    assert_eq!(push["channel"], json!("__bb:set@room__:topic"));
    let event: Value = serde_json::from_str(push["data"].as_str().unwrap()).unwrap();
    assert_eq!((event["key"].clone(), event["value"].clone(), event["revision"].clone()), (json!("topic"), json!("rust"), json!(1)));
}

#[tokio::test]
async fn a_blocking_command_holds_later_replies_but_not_pushes() {
    let server = start().await;
    let mut ws = server.ws().await;
    ws.result(json!(["SUBSCRIBE", "side"])).await;
    let blpop = ws.send(json!(["BLPOP", "queue", 0])).await;
    let ping = ws.send(json!(["PING"])).await;
    let mut con = server.conn().await;
    eventually(|| server.broker.lock().blocking.len() == 1).await;
    cmd::<i64>(&mut con, &["PUBLISH", "side", "while-blocked"]).await.unwrap();
    assert_eq!(ws.recv().await["data"], json!("while-blocked"));
    cmd::<i64>(&mut con, &["RPUSH", "queue", "job"]).await.unwrap();
    let first = ws.recv().await;
    assert_eq!((first["id"].clone(), first["result"].clone()), (json!(blpop), json!(["queue", "job"])));
    let second = ws.recv().await;
    assert_eq!((second["id"].clone(), second["result"].clone()), (json!(ping), json!("PONG")));
}

#[tokio::test]
async fn bad_input_gets_an_error_and_the_connection_carries_on() {
    let server = start().await;
    let mut ws = server.ws().await;
    for bad in [
        "{",
        "[1,2]",
        r#"{"id": 1}"#,
        r#"{"id": 2, "cmd": "GET k"}"#,
        r#"{"id": 3, "cmd": ["GET", true]}"#,
        r#"{"id": 4, "cmd": ["PING"], "extra": 1}"#,
        r#"{"id": {}, "cmd": ["PING"]}"#,
    ] {
        ws.send_text(bad).await;
        let reply = ws.recv().await;
        assert_eq!(reply["error"]["code"], json!("ERR"), "{bad} -> {reply}");
    }
    ws.send_text("{").await;
    assert_eq!(ws.recv().await["id"], Value::Null);
    ws.send_text(r#"{"id": 9, "cmd": []}"#).await;
    assert_eq!(ws.recv().await["id"], json!(9));
    // Arity and syntax errors are the command's own.
    let arity = ws.call(json!(["GET"])).await;
    assert_eq!(arity["error"]["message"], json!("wrong number of arguments for 'get' command"));
    assert_eq!(ws.result(json!(["PING", "still here"])).await, json!("still here"));
}

#[tokio::test]
async fn binary_frames_close_with_1003_and_others_keep_working() {
    let server = start().await;
    let mut bystander = server.ws().await;
    let mut ws = server.ws().await;
    ws.stream.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    assert_eq!(ws.closed().await.0, 1003);
    assert_eq!(bystander.result(json!(["PING"])).await, json!("PONG"));
}

#[tokio::test]
async fn oversized_messages_close_with_1009() {
    let mut config = Config::for_tests();
    config.websocket.max_message_bytes = 1024;
    config.websocket.max_frame_bytes = 1024;
    let server = start_with(config).await;
    let mut ws = server.ws().await;
    let big = "x".repeat(4096);
    ws.send_text(json!({"id": 1, "cmd": ["SET", "k", big]}).to_string()).await;
    assert_eq!(ws.closed().await.0, 1009);
    let mut other = server.ws().await;
    assert_eq!(other.result(json!(["EXISTS", "k"])).await, json!(0));
}

#[tokio::test]
async fn auth_by_command_and_by_query() {
    let mut config = Config::for_tests();
    config.requirepass = "s3cret".into();
    let server = start_with(config).await;
    let mut ws = server.ws().await;
    assert_eq!(ws.call(json!(["GET", "k"])).await["error"]["code"], json!("NOAUTH"));
    assert_eq!(ws.call(json!(["AUTH", "nope"])).await["error"]["code"], json!("WRONGPASS"));
    assert_eq!(ws.result(json!(["AUTH", "s3cret"])).await, json!("OK"));
    assert_eq!(ws.result(json!(["GET", "k"])).await, Value::Null);
    let mut by_query = server.ws_with("?password=s3cret").await;
    assert_eq!(by_query.result(json!(["PING"])).await, json!("PONG"));
    let mut by_user = server.ws_with("?user=default&password=s3cret").await;
    assert_eq!(by_user.result(json!(["PING"])).await, json!("PONG"));
    let mut wrong = server.ws_with("?password=wrong").await;
    let (code, reason) = wrong.closed().await;
    assert_eq!(code, 4001);
    assert!(reason.contains("invalid username-password pair"), "{reason}");
}

#[tokio::test]
async fn unauthenticated_connections_are_closed_after_the_auth_timeout() {
    let mut config = Config::for_tests();
    config.requirepass = "pw".into();
    config.websocket.auth_timeout_ms = 100;
    let server = start_with(config).await;
    let mut ws = server.ws().await;
    assert_eq!(ws.closed().await, (4001, "authentication timeout".to_owned()));
}

#[tokio::test]
async fn heartbeats_and_idle_timeout() {
    let mut config = Config::for_tests();
    config.websocket.heartbeat_ms = 20;
    let server = start_with(config).await;
    let mut ws = server.ws().await;
    let ping = tokio::time::timeout(Duration::from_secs(5), futures_util::StreamExt::next(&mut ws.stream)).await.unwrap();
    assert!(matches!(ping, Some(Ok(Message::Ping(_)))), "{ping:?}");

    let mut config = Config::for_tests();
    config.websocket.heartbeat_ms = 0;
    config.websocket.idle_timeout_ms = 100;
    let server = start_with(config).await;
    let mut ws = server.ws().await;
    assert_eq!(ws.closed().await, (4003, "idle timeout".to_owned()));
}

#[tokio::test]
async fn client_kill_and_client_list() {
    let server = start().await;
    let mut ws = server.ws().await;
    ws.result(json!(["CLIENT", "SETNAME", "browser"])).await;
    let id = ws.result(json!(["CLIENT", "ID"])).await;
    let mut con = server.conn().await;
    let list: String = cmd(&mut con, &["CLIENT", "LIST"]).await.unwrap();
    let line = list.lines().find(|l| l.contains("name=browser")).unwrap();
    assert!(line.contains("transport=websocket"), "{line}");
    let killed: i64 = cmd(&mut con, &["CLIENT", "KILL", "ID", &id.to_string()]).await.unwrap();
    assert_eq!(killed, 1);
    assert_eq!(ws.closed().await.0, 4004);
}

#[tokio::test]
async fn quit_closes_normally_and_shutdown_says_going_away() {
    let server = start().await;
    let mut ws = server.ws().await;
    assert_eq!(ws.result(json!(["QUIT"])).await, json!("OK"));
    assert_eq!(ws.closed().await.0, 1000);
    let mut ws = server.ws().await;
    ws.result(json!(["SUBSCRIBE", "x"])).await;
    let closing = tokio::spawn(async move { ws.closed().await });
    server.stop().await;
    assert_eq!(closing.await.unwrap(), (1001, "server shutting down".to_owned()));
}

#[tokio::test]
async fn slow_websocket_consumers_are_closed_by_the_outbox_limit() {
    let mut config = Config::for_tests();
    config.pubsub.hard_limit = 64 * 1024;
    config.pubsub.soft_limit = 0;
    let server = start_with(config).await;
    let mut slow = server.ws().await;
    slow.result(json!(["SUBSCRIBE", "firehose"])).await;
    let mut fast = server.ws().await;
    fast.result(json!(["SUBSCRIBE", "firehose"])).await;
    let mut con = server.conn().await;
    let payload = "p".repeat(16 * 1024);
    // The slow client never reads; the fast one does. Publish until the slow one is gone.
    let broker = server.broker.clone();
    let mut published = 0;
    while broker.stats.output_limit_disconnects.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        cmd::<i64>(&mut con, &["PUBLISH", "firehose", &payload]).await.unwrap();
        published += 1;
        assert_eq!(fast.recv().await["push"], json!("message"));
        assert!(published < 100_000, "the slow consumer was never closed");
    }
    // The fast subscriber is unaffected.
    cmd::<i64>(&mut con, &["PUBLISH", "firehose", "last"]).await.unwrap();
    assert_eq!(fast.recv().await["data"], json!("last"));
}

#[tokio::test]
async fn drop_oldest_tells_websocket_clients_how_many_they_lost() {
    let mut config = Config::for_tests();
    config.pubsub.hard_limit = 4096;
    config.pubsub.soft_limit = 0;
    config.pubsub.overflow = "drop-oldest".into();
    let server = start_with(config).await;
    let mut ws = server.ws().await;
    ws.result(json!(["SUBSCRIBE", "c"])).await;
    // Fill the outbox while the connection's task cannot drain it: the broker is busy with one EXEC.
    let mut con = server.conn().await;
    let mut pipe = redis::pipe();
    pipe.atomic();
    for i in 0..200 {
        pipe.cmd("PUBLISH").arg("c").arg(format!("{i:0>100}"));
    }
    let _: Vec<i64> = pipe.query_async(&mut con).await.unwrap();
    let first = ws.recv().await;
    assert_eq!(first["push"], json!("lagged"), "{first}");
    let lost = first["count"].as_u64().unwrap();
    assert!(lost > 0 && lost < 200);
    let mut received = 0;
    while received + lost < 200 {
        assert_eq!(ws.recv().await["push"], json!("message"));
        received += 1;
    }
}

#[tokio::test]
async fn streams_resume_from_the_last_offset_after_a_reconnect() {
    let server = start().await;
    let mut writer = server.conn().await;
    for i in 0..5 {
        cmd::<i64>(&mut writer, &["STREAM.WRITE", "log", &format!("e{i}")]).await.unwrap();
    }
    let mut ws = server.ws().await;
    let read = ws.result(json!(["STREAM.READ", "log", "FROM", 0, "COUNT", 3])).await;
    assert_eq!(read["entries"], json!([[0, "e0"], [1, "e1"], [2, "e2"]]));
    let next = read["next"].clone();
    let epoch = read["epoch"].clone();
    drop(ws);
    for i in 5..7 {
        cmd::<i64>(&mut writer, &["STREAM.WRITE", "log", &format!("e{i}")]).await.unwrap();
    }
    let mut again = server.ws().await;
    let read = again.result(json!(["STREAM.READ", "log", "FROM", next, "EPOCH", epoch])).await;
    assert_eq!(read["entries"], json!([[3, "e3"], [4, "e4"], [5, "e5"], [6, "e6"]]));
    assert_eq!(read["next"], json!(7));
}

#[tokio::test]
async fn http_routes() {
    let server = start().await;
    let get = |path: &'static str, extra: &'static str| {
        let addr = server.http;
        async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").as_bytes()).await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        }
    };
    assert!(get("/healthz", "").await.starts_with("HTTP/1.1 200 OK"));
    assert!(get("/readyz", "").await.starts_with("HTTP/1.1 200 OK"));
    assert!(get("/nope", "").await.starts_with("HTTP/1.1 404"));
    assert!(get("/ws", "").await.starts_with("HTTP/1.1 426"));
    let js = get("/herald.js", "").await;
    assert!(js.starts_with("HTTP/1.1 200 OK") && js.contains("Content-Type: text/javascript"), "{js:.200}");
    assert!(js.contains("export class Herald"));
    let page = get("/example?channel=news", "").await;
    assert!(page.starts_with("HTTP/1.1 200 OK") && page.contains("Content-Type: text/html"), "{page:.200}");
    assert!(page.contains(r#"from "/herald.js""#));

    let mut config = Config::for_tests();
    config.websocket.allowed_origins = vec!["https://app.example".into()];
    let guarded = start_with(config).await;
    let attempt = |origin: &'static str| {
        let addr = guarded.http;
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let request = tokio_tungstenite::tungstenite::http::Request::builder()
                .uri(format!("ws://{addr}/ws"))
                .header("Host", addr.to_string())
                .header("Origin", origin)
                .header("Connection", "Upgrade")
                .header("Upgrade", "websocket")
                .header("Sec-WebSocket-Version", "13")
                .header("Sec-WebSocket-Key", tokio_tungstenite::tungstenite::handshake::client::generate_key())
                .body(())
                .unwrap();
            tokio_tungstenite::client_async(request, tcp).await.is_ok()
        }
    };
    assert!(attempt("https://app.example").await);
    assert!(!attempt("https://evil.example").await);
}

#[tokio::test]
async fn abrupt_disconnects_mid_frame_and_mid_command_leave_nothing_behind() {
    let server = start().await;
    let mut watcher = server.ws().await;
    // Half a frame after a raw handshake, then the socket goes away.
    let mut raw = tokio::net::TcpStream::connect(server.http).await.unwrap();
    raw.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").await.unwrap();
    let mut head = [0u8; 256];
    let n = raw.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 101"));
    raw.write_all(&[0x81, 0x85, 1, 2, 3]).await.unwrap();
    drop(raw);
    // A subscriber and a blocked BLPOP that disappear without closing.
    let mut sub = server.ws().await;
    sub.result(json!(["SUBSCRIBE", "gone"])).await;
    let mut blocked = server.ws().await;
    blocked.send(json!(["BLPOP", "never", 0])).await;
    eventually(|| server.broker.lock().blocking.len() == 1).await;
    drop(sub);
    drop(blocked);
    eventually(|| server.broker.clients.len() == 1).await;
    eventually(|| server.broker.lock().blocking.is_empty()).await;
    assert_eq!(watcher.result(json!(["PUBSUB", "NUMSUB", "gone"])).await, json!(["gone", 0]));
}
