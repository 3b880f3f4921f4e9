//! Server commands: CLIENT, INFO, CONFIG, COMMAND, SELECT, flushes, shutdown.

mod common;

use common::{cmd, start};

#[tokio::test]
async fn client_list_name_and_kill() {
    let server = start().await;
    let mut a = server.conn().await;
    let mut b = server.conn().await;
    let _: () = cmd(&mut a, &["CLIENT", "SETNAME", "worker-a"]).await.unwrap();
    let _: () = cmd(&mut a, &["CLIENT", "SETINFO", "LIB-NAME", "herald-tests"]).await.unwrap();
    assert_eq!(cmd::<String>(&mut a, &["CLIENT", "GETNAME"]).await.unwrap(), "worker-a");
    let list: String = cmd(&mut b, &["CLIENT", "LIST"]).await.unwrap();
    let line = list.lines().find(|l| l.contains("name=worker-a")).expect("named client listed");
    assert!(line.contains("lib-name=herald-tests") && line.contains("cmd=client|getname"), "{line}");
    let id: i64 = cmd(&mut a, &["CLIENT", "ID"]).await.unwrap();
    let killed: i64 = cmd(&mut b, &["CLIENT", "KILL", "ID", &id.to_string()]).await.unwrap();
    assert_eq!(killed, 1);
    common::eventually(|| server.broker.clients.len() == 1).await;
    assert_eq!(server.broker.clients.len(), 1);
    let err = cmd::<()>(&mut b, &["CLIENT", "SETNAME", "has space"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("Client names cannot contain spaces, newlines or special characters."));
}

#[tokio::test]
async fn info_sections() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["SET", "k", "v", "EX", "100"]).await.unwrap();
    let info: String = cmd(&mut c, &["INFO"]).await.unwrap();
    for field in ["redis_version:", "connected_clients:1", "used_memory:", "total_commands_processed:", "db0:keys=1,expires=1"] {
        assert!(info.contains(field), "INFO lacks {field}: {info}");
    }
    let only: String = cmd(&mut c, &["INFO", "keyspace"]).await.unwrap();
    assert!(only.starts_with("# Keyspace\r\n") && !only.contains("# Server"), "{only}");
}

#[tokio::test]
async fn config_get_set_is_all_or_nothing() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["CONFIG", "SET", "maxclients", "50", "timeout", "30"]).await.unwrap();
    let got: Vec<String> = cmd(&mut c, &["CONFIG", "GET", "max*"]).await.unwrap();
    assert!(got.windows(2).any(|w| w == ["maxclients", "50"]), "{got:?}");
    let err = cmd::<()>(&mut c, &["CONFIG", "SET", "timeout", "10", "maxclients", "lots"]).await.unwrap_err();
    assert!(err.detail().unwrap().contains("maxclients"));
    let got: Vec<String> = cmd(&mut c, &["CONFIG", "GET", "timeout"]).await.unwrap();
    assert_eq!(got, ["timeout", "30"], "the failed CONFIG SET changed nothing");
    let err = cmd::<()>(&mut c, &["CONFIG", "SET", "nosuch", "1"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("Unknown option or number of arguments for CONFIG SET - 'nosuch'"));
}

#[tokio::test]
async fn command_introspection() {
    let server = start().await;
    let mut c = server.conn().await;
    let count: i64 = cmd(&mut c, &["COMMAND", "COUNT"]).await.unwrap();
    assert!(count > 60);
    let docs: redis::Value = cmd(&mut c, &["COMMAND", "DOCS", "get"]).await.unwrap();
    assert!(format!("{docs:?}").contains("Returns the string value of a key."));
    let keys: Vec<String> = cmd(&mut c, &["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"]).await.unwrap();
    assert_eq!(keys, ["a", "b"]);
}

#[tokio::test]
async fn databases_are_separate() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["SET", "k", "zero"]).await.unwrap();
    let _: () = cmd(&mut c, &["SELECT", "5"]).await.unwrap();
    assert_eq!(cmd::<Option<String>>(&mut c, &["GET", "k"]).await.unwrap(), None);
    let _: () = cmd(&mut c, &["SET", "k", "five"]).await.unwrap();
    let _: () = cmd(&mut c, &["SWAPDB", "0", "5"]).await.unwrap();
    assert_eq!(cmd::<String>(&mut c, &["GET", "k"]).await.unwrap(), "zero");
    let _: () = cmd(&mut c, &["FLUSHDB"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["DBSIZE"]).await.unwrap(), 0);
    let _: () = cmd(&mut c, &["SELECT", "0"]).await.unwrap();
    assert_eq!(cmd::<String>(&mut c, &["GET", "k"]).await.unwrap(), "five");
    let err = cmd::<()>(&mut c, &["SELECT", "16"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("DB index is out of range"));
}

#[tokio::test]
async fn graceful_shutdown_closes_clients() {
    let server = start().await;
    let mut raw = server.raw().await;
    raw.cmd(&["PING"]).await;
    raw.expect("+PONG\r\n").await;
    server.stop().await;
    assert!(raw.closed().await);
}

/// `/readyz` (and `Broker::readiness` behind it): not ready while bound but not yet serving (persistence
/// loads before that), ready once the listeners accept, not ready again from the moment shutdown begins.
#[tokio::test]
async fn readiness_follows_the_lifecycle() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = herald_broker::Server::bind(herald_broker::Config::for_tests()).await.unwrap();
    let (broker, http, resp) = (server.broker(), server.http_addr(), server.resp_addr());
    assert_eq!(broker.readiness(), Err("starting"));
    let task = tokio::spawn(server.run(std::future::pending()));
    let mut s = tokio::net::TcpStream::connect(http).await.unwrap();
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("\r\n\r\nready\n"), "{answer}");
    assert_eq!(broker.readiness(), Ok(()));
    let mut con = redis::Client::open(format!("redis://{resp}/")).unwrap().get_multiplexed_async_connection().await.unwrap();
    let _ = cmd::<()>(&mut con, &["SHUTDOWN", "NOSAVE"]).await;
    assert_eq!(broker.readiness(), Err("shutting down"));
    task.await.unwrap().unwrap();
}

/// `herald --healthcheck`: the probe asks the port its configuration names and succeeds only on a 200.
#[tokio::test]
async fn healthcheck_probe() {
    use herald_broker::probe::check;
    let server = start().await;
    let config = herald_broker::Config { http_port: server.http.port(), ..herald_broker::Config::for_tests() };
    // The probe is a blocking client (it runs in its own process); keep it off the broker's runtime.
    let probe = |config: herald_broker::Config, path: &'static str| tokio::task::spawn_blocking(move || check(&config, path));
    let healthy = probe(config.clone(), "/healthz").await.unwrap();
    assert!(healthy.as_ref().is_ok_and(|s| s.ends_with("/healthz: HTTP/1.1 200 OK")), "{healthy:?}");
    assert!(probe(config.clone(), "/readyz").await.unwrap().is_ok());
    let missing = probe(config.clone(), "/nope").await.unwrap().unwrap_err();
    assert!(missing.contains("404 Not Found: "), "{missing}");
    server.stop().await;
    let refused = probe(config, "/healthz").await.unwrap().unwrap_err();
    assert!(refused.contains("refused"), "{refused}");
}
