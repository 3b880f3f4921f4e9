//! Safe defaults: no unauthenticated listener on a network address, Redis's pre-AUTH bounds and an
//! authentication timeout on both wires.

mod common;

use common::start_with;
use herald_broker::{Config, Server};
use serde_json::json;

#[tokio::test]
async fn a_network_address_needs_a_password_or_insecure() {
    let exposed = Config { bind: "0.0.0.0".into(), ..Config::for_tests() };
    let err = Server::bind(exposed.clone()).await.err().expect("refused");
    assert!(err.to_string().contains("refusing to listen on 0.0.0.0 without authentication"), "{err}");
    assert!(err.to_string().contains("--insecure"), "{err}");
    for ok in [
        Config { requirepass: "pw".into(), ..exposed.clone() },
        Config { insecure: true, ..exposed.clone() },
        Config { acl: herald_broker::config::Config::defaults().acl, ..Config::for_tests() },
    ] {
        let server = start_with(ok).await;
        server.stop().await;
    }
    // Users alone are not enough while the default user is open to everyone; turning it off is.
    let mut users = exposed.clone();
    users.acl.users = vec!["alice on >pw +@all ~*".into()];
    assert!(Server::bind(users.clone()).await.is_err());
    users.acl.users.push("default off".into());
    start_with(users).await.stop().await;
}

#[tokio::test]
async fn unauthenticated_clients_are_bounded_and_timed_out() {
    let mut c = Config::for_tests();
    c.requirepass = "pw".into();
    c.limits.auth_timeout_ms = 200;
    c.websocket.auth_timeout_ms = 200;
    let server = start_with(c).await;
    // RESP: Redis's pre-AUTH limits close the connection.
    let mut raw = server.raw().await;
    raw.send(b"*11\r\n").await;
    raw.read_until("-ERR Protocol error: unauthenticated multibulk length").await;
    assert!(raw.closed().await);
    // RESP: a connection that never authenticates is closed, with a last word.
    let mut idle = server.raw().await;
    idle.read_until("-ERR authentication timeout").await;
    assert!(idle.closed().await);
    // An authenticated one is not.
    let mut good = server.raw().await;
    good.cmd(&["AUTH", "pw"]).await;
    good.expect("+OK\r\n").await;
    // WebSocket: more than 10 arguments before AUTH is refused; a big message closes with 1009.
    let mut ws = server.ws().await;
    let reply = ws.call(json!(["ECHO", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"])).await;
    assert!(reply["error"].is_object(), "{reply}");
    ws.send(json!(["AUTH", "x".repeat(20_000)])).await;
    assert_eq!(ws.closed().await.0, 1009);
    let mut slow = server.ws().await;
    assert_eq!(slow.closed().await.0, 4001);
    good.cmd(&["PING"]).await;
    good.expect("+PONG\r\n").await;
    server.stop().await;
}
