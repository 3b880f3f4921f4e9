//! The core through the RESP adapter: raw bytes in, raw bytes out.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::{Harness, Pipe, drop_oldest, duplex, small_outbox};
use crate::clients::Transport;
use crate::config::Config;
use crate::server::resp::{RespWire, decode_limits};

/// The client's end of a RESP connection.
struct Resp {
    stream: DuplexStream,
    buf: Vec<u8>,
}

impl Harness {
    fn resp(&self) -> Pipe<Resp> {
        self.resp_with(64 * 1024)
    }

    /// A RESP connection whose pipe holds `capacity` bytes each way.
    fn resp_with(&self, capacity: usize) -> Pipe<Resp> {
        let (client, server) = duplex(capacity);
        let wire = RespWire::new(server, decode_limits(&self.broker), self.broker.config.limits.reply_flush_bytes);
        Pipe { client: Resp { stream: client, buf: Vec::new() }, task: self.serve(wire, None) }
    }
}

/// A request as redis-cli sends it.
fn command(parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        out.extend_from_slice(format!("${}\r\n{part}\r\n", part.len()).as_bytes());
    }
    out
}

fn message(channel: &str, data: &str) -> Vec<u8> {
    format!("*3\r\n$7\r\nmessage\r\n${}\r\n{channel}\r\n${}\r\n{data}\r\n", channel.len(), data.len()).into_bytes()
}

impl Resp {
    async fn send(&mut self, parts: &[&str]) {
        self.send_raw(&command(parts)).await;
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Reads until `want` has arrived and checks it is exactly what came.
    async fn expect(&mut self, want: &[u8]) {
        while self.buf.len() < want.len() {
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("timed out; got {:?}", String::from_utf8_lossy(&self.buf)))
                .expect("read");
            assert!(n > 0, "closed; got {:?}", String::from_utf8_lossy(&self.buf));
            self.buf.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(String::from_utf8_lossy(&self.buf[..want.len()]), String::from_utf8_lossy(want));
        self.buf.drain(..want.len());
    }

    /// Nothing arrives for a while.
    async fn silent(&mut self) {
        let mut chunk = [0u8; 64];
        if let Ok(read) = tokio::time::timeout(Duration::from_millis(50), self.stream.read(&mut chunk)).await {
            panic!("expected nothing, got {read:?}: {:?}", String::from_utf8_lossy(&chunk));
        }
    }

    /// Reads whatever comes next and drops it (a reply whose bytes do not matter here).
    async fn skip_reply(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk)).await.expect("timed out").expect("read");
        assert!(n > 0);
    }

    /// Reads to the end of the stream; whatever came before it stays in `buf`.
    async fn closed(&mut self) {
        loop {
            let mut chunk = [0u8; 4096];
            let read = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk)).await;
            match read.expect("the server did not close") {
                Ok(0) | Err(_) => return,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

#[tokio::test]
async fn a_pipeline_is_answered_in_order() {
    let h = Harness::new();
    let mut c = h.resp().client;
    let mut batch = Vec::new();
    let mut want = Vec::new();
    for i in 1..=100 {
        batch.extend(command(&["INCR", "n"]));
        want.extend(format!(":{i}\r\n").bytes());
    }
    batch.extend_from_slice(b"PING\r\n");
    want.extend_from_slice(b"+PONG\r\n");
    c.send_raw(&batch).await;
    c.expect(&want).await;
    assert_eq!(h.stat(&h.broker.stats.net_input_bytes), batch.len() as u64);
}

#[tokio::test]
async fn requests_behind_a_blocked_command_are_kept_and_answered_after_it() {
    let h = Harness::new();
    let mut c = h.resp().client;
    let mut other = h.resp().client;
    c.send_raw(&[command(&["BLPOP", "q", "0"]), command(&["PING"]), command(&["ECHO", "after"])].concat()).await;
    h.until("BLPOP blocks", |b| b.lock().blocking.len() == 1).await;
    c.silent().await;
    c.send(&["ECHO", "later"]).await;
    c.silent().await;
    other.send(&["RPUSH", "q", "job"]).await;
    other.expect(b":1\r\n").await;
    c.expect(b"*2\r\n$1\r\nq\r\n$3\r\njob\r\n+PONG\r\n$5\r\nafter\r\n$5\r\nlater\r\n").await;
}

#[tokio::test]
async fn pushes_come_before_the_replies_that_follow_them() {
    let h = Harness::new();
    let mut c = h.resp().client;
    c.send(&["SUBSCRIBE", "news"]).await;
    c.expect(b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n").await;
    for i in 0..3 {
        assert_eq!(h.broker.hub.publish(b"news", format!("m{i}").as_bytes()), 1);
    }
    c.send(&["PING"]).await;
    let want = [message("news", "m0"), message("news", "m1"), message("news", "m2"), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n".to_vec()];
    c.expect(&want.concat()).await;
}

#[tokio::test]
async fn a_push_made_by_the_batch_itself_comes_before_the_reply_after_it() {
    let h = Harness::new();
    let mut c = h.resp().client;
    c.send(&["HELLO", "3"]).await;
    c.skip_reply().await;
    c.send(&["SUBSCRIBE", "x"]).await;
    c.expect(b">3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:1\r\n").await;
    c.send_raw(&[command(&["PUBLISH", "x", "m"]), command(&["PING"])].concat()).await;
    c.expect(b">3\r\n$7\r\nmessage\r\n$1\r\nx\r\n$1\r\nm\r\n:1\r\n+PONG\r\n").await;
}

#[tokio::test]
async fn drop_oldest_sends_the_lagged_notice_before_the_survivors() {
    let h = Harness::with(drop_oldest());
    let mut c = h.resp().client;
    c.send(&["SUBSCRIBE", "c"]).await;
    c.expect(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n").await;
    // Published while the connection's task cannot run, so they pile up in its outbox.
    for i in 0..200 {
        h.broker.hub.publish(b"c", format!("{i:0>100}").as_bytes());
    }
    let kept = 4096 / message("c", &format!("{:0>100}", 0)).len();
    let lost = 200 - kept;
    let n = lost.to_string();
    c.expect(format!("*3\r\n$7\r\nmessage\r\n$17\r\n__herald__:lagged\r\n${}\r\n{n}\r\n", n.len()).as_bytes()).await;
    let survivors: Vec<u8> = (lost..200).flat_map(|i| message("c", &format!("{i:0>100}"))).collect();
    c.expect(&survivors).await;
}

#[tokio::test]
async fn a_kill_closes_the_connection_and_leaves_nothing_behind() {
    let h = Harness::new();
    let Pipe { client: mut c, task } = h.resp();
    c.send(&["SUBSCRIBE", "x"]).await;
    c.expect(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:1\r\n").await;
    h.kill(Transport::Resp);
    c.closed().await;
    task.await.expect("connection task");
    assert_eq!(h.broker.clients.len(), 0);
    assert_eq!(h.broker.hub.publish(b"x", b"gone"), 0);
}

#[tokio::test]
async fn a_kill_interrupts_a_write_to_a_reader_that_stopped_reading() {
    let h = Harness::new();
    let Pipe { client: mut c, task } = h.resp_with(1024);
    let big = "x".repeat(64 * 1024);
    c.send(&["SET", "big", &big]).await;
    c.expect(b"+OK\r\n").await;
    c.send(&["GET", "big"]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!task.is_finished(), "the write is stuck on the full pipe");
    h.kill(Transport::Resp);
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("the kill interrupted the write").expect("task");
    assert_eq!(h.broker.clients.len(), 0);
}

#[tokio::test]
async fn a_slow_subscriber_is_closed_by_its_outbox_limit() {
    let h = Harness::with(small_outbox());
    let Pipe { client: mut c, task } = h.resp_with(1024);
    c.send(&["SUBSCRIBE", "firehose"]).await;
    c.expect(b"*3\r\n$9\r\nsubscribe\r\n$8\r\nfirehose\r\n:1\r\n").await;
    h.flood_until_closed(b"firehose", task).await;
    assert_eq!(h.broker.clients.len(), 0);
}

#[tokio::test]
async fn shutdown_closes_idle_and_blocked_connections() {
    let h = Harness::new();
    let Pipe { client: mut idle, task: idle_task } = h.resp();
    let Pipe { client: mut blocked, task: blocked_task } = h.resp();
    blocked.send(&["BLPOP", "never", "0"]).await;
    h.until("BLPOP blocks", |b| b.lock().blocking.len() == 1).await;
    h.shut_down();
    idle.closed().await;
    blocked.closed().await;
    assert!(idle.buf.is_empty() && blocked.buf.is_empty());
    idle_task.await.expect("task");
    blocked_task.await.expect("task");
    assert!(h.broker.lock().blocking.is_empty());
}

#[tokio::test]
async fn a_peer_that_vanishes_mid_request_or_mid_wait_leaves_nothing_behind() {
    let h = Harness::new();
    let Pipe { client: mut half, task: half_task } = h.resp();
    half.send_raw(b"*2\r\n$3\r\nGET\r\n$1").await;
    let Pipe { client: mut blocked, task: blocked_task } = h.resp();
    blocked.send(&["BLPOP", "never", "0"]).await;
    h.until("BLPOP blocks", |b| b.lock().blocking.len() == 1).await;
    drop(half);
    drop(blocked);
    half_task.await.expect("task");
    blocked_task.await.expect("task");
    assert_eq!(h.broker.clients.len(), 0);
    assert!(h.broker.lock().blocking.is_empty());
}

#[tokio::test]
async fn a_broken_stream_gets_redis_error_then_the_close() {
    let h = Harness::new();
    let mut c = h.resp().client;
    c.send_raw(&[command(&["PING"]), b"*abc\r\n".to_vec(), command(&["PING"])].concat()).await;
    c.closed().await;
    assert_eq!(String::from_utf8_lossy(&c.buf), "+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n");
    assert_eq!(h.stat(&h.broker.stats.protocol_errors), 1);
}

#[tokio::test]
async fn input_piling_up_behind_a_blocked_command_is_bounded() {
    let mut config = Config::for_tests();
    config.limits.client_query_buffer_limit = 1024;
    let h = Harness::with(config);
    let Pipe { client: mut c, task } = h.resp();
    c.send(&["BLPOP", "q", "0"]).await;
    h.until("BLPOP blocks", |b| b.lock().blocking.len() == 1).await;
    c.send(&["ECHO", &"x".repeat(2048)]).await;
    c.closed().await;
    assert!(c.buf.is_empty(), "closed without a reply, as Redis does");
    task.await.expect("task");
    assert!(h.broker.lock().blocking.is_empty());
}

#[tokio::test(start_paused = true)]
async fn redis_timeout_closes_idle_clients_but_not_subscribers() {
    let mut config = Config::for_tests();
    config.limits.timeout = 2;
    let h = Harness::with(config);
    let Pipe { client: mut idle, task } = h.resp();
    let mut subscriber = h.resp().client;
    subscriber.send(&["SUBSCRIBE", "x"]).await;
    subscriber.expect(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:1\r\n").await;
    idle.send(&["PING"]).await;
    idle.expect(b"+PONG\r\n").await;
    let started = tokio::time::Instant::now();
    idle.closed().await;
    task.await.expect("task");
    assert!(started.elapsed() >= Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(h.stat(&h.broker.stats.idle_disconnects), 1);
    tokio::time::sleep(Duration::from_secs(10)).await;
    subscriber.send(&["PING"]).await;
    subscriber.expect(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n").await;
}
