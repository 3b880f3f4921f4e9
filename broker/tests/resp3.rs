//! RESP3 after HELLO 3: the reply shapes change, the data does not.

mod common;

use common::start;
use redis::Value;

#[tokio::test]
async fn hello_switches_the_reply_shapes() {
    let server = start().await;
    let mut raw = server.raw().await;
    raw.cmd(&["GET", "missing"]).await;
    raw.expect("$-1\r\n").await;
    raw.cmd(&["HELLO", "3"]).await;
    let id = server.broker.clients.all()[0].id;
    raw.expect(&format!(
        "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
    ))
    .await;
    raw.cmd(&["GET", "missing"]).await;
    raw.expect("_\r\n").await;
    raw.cmd(&["CONFIG", "GET", "maxclients"]).await;
    raw.expect("%1\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n").await;
    raw.cmd(&["SUBSCRIBE", "ch"]).await;
    raw.expect(">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n").await;
    raw.cmd(&["SET", "k", "v"]).await;
    raw.expect("+OK\r\n").await;
    raw.cmd(&["HELLO", "2"]).await;
    // RESP2: the same fields as a flat array of 14, as redis-server 7.0.15 answers `HELLO 2`.
    raw.expect(&format!(
        "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
    ))
    .await;
}

#[tokio::test]
async fn redis_crate_over_resp3() {
    let server = start().await;
    let mut c = server.client3().get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query_async(&mut c).await.unwrap();
    let v: Value = redis::cmd("GET").arg("missing").query_async(&mut c).await.unwrap();
    assert_eq!(v, Value::Nil);
    let info: Value = redis::cmd("INFO").arg("server").query_async(&mut c).await.unwrap();
    assert!(matches!(info, Value::VerbatimString { .. }), "{info:?}");
    let cfg: Value = redis::cmd("CONFIG").arg("GET").arg("timeout").query_async(&mut c).await.unwrap();
    assert!(matches!(cfg, Value::Map(_)), "{cfg:?}");
}

#[tokio::test]
async fn hello_errors() {
    let server = start().await;
    let mut raw = server.raw().await;
    raw.cmd(&["HELLO", "4"]).await;
    raw.expect("-NOPROTO unsupported protocol version\r\n").await;
    raw.cmd(&["HELLO", "x"]).await;
    raw.expect("-ERR Protocol version is not an integer or out of range\r\n").await;
    raw.cmd(&["HELLO", "3", "AUTH", "default"]).await;
    raw.expect("-ERR Syntax error in HELLO option 'AUTH'\r\n").await;
    raw.cmd(&["HELLO", "2", "SETNAME", "myname"]).await;
    let _ = raw.read_exact_text(3).await;
    assert_eq!(server.broker.clients.all()[0].activity().name.as_deref(), Some(&b"myname"[..]));
}
