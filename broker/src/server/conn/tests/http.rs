//! The core through the HTTP adapter: the deadlines (a request that trickles in, a quiet keep-alive
//! connection, an event stream's heartbeats), in paused test time.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::{Harness, Pipe, duplex};
use crate::config::Config;
use crate::server::http::HttpWire;

impl Harness {
    fn http(&self) -> Pipe<DuplexStream> {
        let (client, server) = duplex(64 * 1024);
        let task = self.serve(HttpWire::new(server, Vec::new(), &self.broker), None);
        Pipe { client, task }
    }
}

/// Reads until `needle` has arrived (or the stream ends); everything read.
async fn read_until(client: &mut DuplexStream, needle: &str) -> String {
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains(needle) {
        let n = client.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    text
}

async fn rest(client: &mut DuplexStream) -> String {
    let mut text = String::new();
    client.read_to_string(&mut text).await.expect("read");
    text
}

#[tokio::test(start_paused = true)]
async fn a_request_that_trickles_in_is_answered_408() {
    let mut config = Config::for_tests();
    config.http.request_timeout_ms = 200;
    config.http.keepalive_timeout_ms = 0;
    let h = Harness::with(config);
    let Pipe { mut client, task } = h.http();
    client.write_all(b"POST /v1/cmd HTTP/1.1\r\nContent-Le").await.expect("write");
    let answer = rest(&mut client).await;
    assert!(answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{answer}");
    assert!(answer.contains("\"code\":\"TIMEOUT\""), "{answer}");
    task.await.expect("task");
}

#[tokio::test(start_paused = true)]
async fn a_quiet_keep_alive_connection_is_closed_after_its_timeout() {
    let mut config = Config::for_tests();
    config.http.keepalive_timeout_ms = 1000;
    let h = Harness::with(config);
    let Pipe { mut client, task } = h.http();
    let body = r#"{"cmd": ["PING"]}"#;
    client.write_all(format!("POST /v1/cmd HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes()).await.expect("write");
    let answer = read_until(&mut client, "PONG\"}").await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    let heard = tokio::time::Instant::now();
    assert_eq!(rest(&mut client).await, "");
    assert!(heard.elapsed() >= Duration::from_millis(1000));
    task.await.expect("task");
    assert_eq!(h.stat(&h.broker.stats.idle_disconnects), 1);
}

#[tokio::test(start_paused = true)]
async fn event_streams_send_heartbeats_and_outlive_the_keep_alive_timeout() {
    let mut config = Config::for_tests();
    config.http.keepalive_timeout_ms = 100;
    config.http.heartbeat_ms = 1000;
    let h = Harness::with(config);
    // Pub-sub: the core's heartbeat timer.
    let Pipe { mut client, .. } = h.http();
    client.write_all(b"GET /v1/subscribe?channel=c HTTP/1.1\r\n\r\n").await.expect("write");
    read_until(&mut client, "retry: 1000\n\n").await;
    assert_eq!(read_until(&mut client, "\n\n").await, ": heartbeat\n\n");
    assert_eq!(read_until(&mut client, "\n\n").await, ": heartbeat\n\n");
    h.broker.hub.publish(b"c", b"still here");
    assert!(read_until(&mut client, "\n\n").await.contains("still here"));
    // A stream follower: a blocked read that times out is the heartbeat.
    let Pipe { mut client, .. } = h.http();
    client.write_all(b"GET /v1/streams/s HTTP/1.1\r\n\r\n").await.expect("write");
    read_until(&mut client, "retry: 1000\n\n").await;
    assert_eq!(read_until(&mut client, "\n\n").await, ": heartbeat\n\n");
    assert_eq!(read_until(&mut client, "\n\n").await, ": heartbeat\n\n");
}
