//! The wire: pipelining, inline commands, malformed and oversized input, limits, disconnects.

mod common;

use std::time::Duration;

use common::{cmd, start, start_with};
use herald_broker::Config;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn ten_thousand_pipelined_commands_answer_in_order() {
    let server = start().await;
    let mut raw = server.raw().await;
    let mut batch = Vec::new();
    for i in 0..10_000 {
        batch.extend_from_slice(
            format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n{i}\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", i.to_string().len()).as_bytes(),
        );
    }
    raw.send(&batch).await;
    for i in 0..10_000 {
        raw.expect("+OK\r\n").await;
        let v = i.to_string();
        raw.expect(&format!("${}\r\n{v}\r\n", v.len())).await;
    }
}

#[tokio::test]
async fn inline_commands_as_typed_into_a_terminal() {
    let server = start().await;
    let mut raw = server.raw().await;
    raw.send(b"PING\r\nSET greeting \"hello world\"\nGET greeting\r\n\r\nECHO 'it\\'s'\r\n").await;
    raw.expect("+PONG\r\n+OK\r\n$11\r\nhello world\r\n$4\r\nit's\r\n").await;
    raw.send(b"SET k \"unbalanced\r\n").await;
    raw.expect("-ERR Protocol error: unbalanced quotes in request\r\n").await;
    assert!(raw.closed().await);
}

#[tokio::test]
async fn malformed_input_closes_only_that_connection() {
    let server = start().await;
    let mut good = server.conn().await;
    for (bad, error) in [
        (&b"*1\r\n:1\r\n"[..], "-ERR Protocol error: expected '$', got ':'\r\n"),
        (b"*x\r\n", "-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
        (b"*1\r\n$abc\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
    ] {
        let mut raw = server.raw().await;
        raw.send(bad).await;
        raw.expect(error).await;
        assert!(raw.closed().await, "closed after {error}");
        assert_eq!(cmd::<String>(&mut good, &["PING"]).await.unwrap(), "PONG");
    }
    let info: String = cmd(&mut good, &["INFO", "stats"]).await.unwrap();
    assert!(info.contains("herald_protocol_errors:4"), "{info}");
}

#[tokio::test]
async fn command_errors_keep_the_connection() {
    let server = start().await;
    let mut raw = server.raw().await;
    raw.cmd(&["NOSUCH", "a", "b"]).await;
    raw.expect("-ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' \r\n").await;
    raw.cmd(&["GET"]).await;
    raw.expect("-ERR wrong number of arguments for 'get' command\r\n").await;
    raw.cmd(&["SET", "k", "v"]).await;
    raw.expect("+OK\r\n").await;
    raw.cmd(&["INCR", "k"]).await;
    raw.expect("-ERR value is not an integer or out of range\r\n").await;
    raw.cmd(&["CLIENT", "NOPE"]).await;
    raw.expect("-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.\r\n").await;
    raw.cmd(&["PING"]).await;
    raw.expect("+PONG\r\n").await;
}

#[tokio::test]
async fn oversized_arguments_are_refused_before_they_arrive() {
    let mut config = Config::for_tests();
    config.limits.proto_max_bulk_len = 1024;
    config.limits.max_multibulk_len = 8;
    let server = start_with(config).await;
    let mut raw = server.raw().await;
    // Only the header is sent: the refusal cannot depend on the payload arriving.
    raw.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000\r\n").await;
    raw.expect("-ERR Protocol error: invalid bulk length\r\n").await;
    assert!(raw.closed().await);
    let mut raw = server.raw().await;
    raw.send(b"*9\r\n").await;
    raw.expect("-ERR Protocol error: invalid multibulk length\r\n").await;
    assert!(raw.closed().await);
    let mut raw = server.raw().await;
    raw.send(&vec![b'A'; 70_000]).await;
    raw.expect("-ERR Protocol error: too big inline request\r\n").await;
    assert!(raw.closed().await);
}

#[tokio::test]
async fn query_buffer_limit_closes_the_connection() {
    let mut config = Config::for_tests();
    config.limits.client_query_buffer_limit = 64 * 1024;
    let server = start_with(config).await;
    let mut raw = server.raw().await;
    raw.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$200000\r\n").await;
    let _ = raw.stream.write_all(&vec![b'x'; 100_000]).await;
    assert!(raw.closed().await, "closed without a reply, as Redis does");
    let mut c = server.conn().await;
    assert_eq!(cmd::<String>(&mut c, &["PING"]).await.unwrap(), "PONG");
}

#[tokio::test]
async fn a_disconnect_mid_command_leaves_nothing_behind() {
    let server = start().await;
    {
        let mut raw = server.raw().await;
        raw.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhel").await;
    }
    let mut c = server.conn().await;
    assert_eq!(cmd::<Option<String>>(&mut c, &["GET", "k"]).await.unwrap(), None);
    common::eventually(|| server.broker.clients.len() == 1).await;
    let list: String = cmd(&mut c, &["CLIENT", "LIST"]).await.unwrap();
    assert_eq!(list.lines().count(), 1, "only this client remains: {list}");
}

#[tokio::test]
async fn unauthenticated_clients_get_small_bounds() {
    let mut config = Config::for_tests();
    config.requirepass = "secret".into();
    let server = start_with(config).await;
    let mut raw = server.raw().await;
    raw.cmd(&["GET", "k"]).await;
    raw.expect("-NOAUTH Authentication required.\r\n").await;
    raw.send(b"*11\r\n").await;
    raw.expect("-ERR Protocol error: unauthenticated multibulk length\r\n").await;
    assert!(raw.closed().await);
    let mut raw = server.raw().await;
    raw.cmd(&["AUTH", "secret"]).await;
    raw.expect("+OK\r\n").await;
    raw.cmd(&["SET", "k", &"v".repeat(20_000)]).await;
    raw.expect("+OK\r\n").await;
}

#[tokio::test]
async fn maxclients_refuses_with_redis_error() {
    let mut config = Config::for_tests();
    config.limits.maxclients = 2;
    let server = start_with(config).await;
    let mut a = server.raw().await;
    let mut b = server.raw().await;
    a.cmd(&["PING"]).await;
    a.expect("+PONG\r\n").await;
    b.cmd(&["PING"]).await;
    b.expect("+PONG\r\n").await;
    let mut c = server.raw().await;
    c.expect("-ERR max number of clients reached\r\n").await;
    assert!(c.closed().await);
}

#[tokio::test]
async fn idle_clients_are_closed_after_timeout() {
    let mut config = Config::for_tests();
    config.limits.timeout = 1;
    let server = start_with(config).await;
    let mut raw = server.raw().await;
    raw.cmd(&["PING"]).await;
    raw.expect("+PONG\r\n").await;
    assert!(raw.closed().await, "closed after a second idle");
}

#[tokio::test]
async fn a_client_that_never_reads_does_not_hold_up_others() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["SET", "big", &"x".repeat(64 * 1024)]).await.unwrap();
    let mut flooder = server.raw().await;
    let request = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(1000);
    // Keep writing GETs without reading: the server stops reading them once its replies back up.
    let writer = tokio::spawn(async move {
        for _ in 0..200 {
            if tokio::time::timeout(Duration::from_millis(200), flooder.stream.write_all(&request)).await.is_err() {
                break;
            }
        }
        flooder
    });
    for _ in 0..50 {
        assert_eq!(cmd::<String>(&mut c, &["PING"]).await.unwrap(), "PONG");
    }
    let _flooder = writer.await.unwrap();
}
