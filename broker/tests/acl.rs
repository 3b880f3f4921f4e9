//! Users and permissions through real clients: a user confined to one tenant over RESP and WebSocket,
//! AUTH / HELLO AUTH, ACL SAVE / LOAD, DELUSER ending connections, and password guessing slowed per
//! address without slowing anyone else.

mod common;

use common::{TestServer, cmd, start_with};
use herald_broker::Config;
use serde_json::json;

const TENANT_A: &str = "tenant-a on >pw-a ~tenant-a:* &tenant-a:* &__bb:*@tenant-a:* +@all -@dangerous";

fn config(users: &[&str]) -> Config {
    let mut c = Config::for_tests();
    c.acl.users = users.iter().map(|u| u.to_string()).collect();
    c
}

async fn as_user(server: &TestServer, user: &str, pass: &str) -> redis::aio::MultiplexedConnection {
    let url = format!("redis://{user}:{pass}@{}/", server.addr);
    let client = redis::Client::open(url).unwrap();
    client.get_multiplexed_async_connection().await.expect("authenticated connection")
}

/// Every way of touching tenant-b: read, write, watch, subscribe, claim, follow, by scope, by job.
fn tenant_b_commands(job_b: &str) -> Vec<Vec<String>> {
    let lines = [
        "GET tenant-b:k",
        "SET tenant-b:k v",
        "MGET tenant-a:k tenant-b:k",
        "WATCH tenant-b:k",
        "SUBSCRIBE tenant-b:news",
        "PSUBSCRIBE tenant-b:*",
        "PUBLISH tenant-b:news hi",
        "JOB.CLAIM tenant-b:q",
        "JOB.SUBMIT tenant-b:q payload",
        "BB.SET tenant-b k v",
        "BB.GET tenant-b k",
        "BB.WATCH tenant-b k",
        "BB.CHANGES tenant-b SINCE 0",
        "BL.PUBLISH board {} SCOPE tenant-b",
        "BL.RETRIEVE tenant-b:board",
        "STREAM.READ tenant-b:s",
        "STREAM.WRITE tenant-b:s data",
        "MSG.RECV tenant-b:inbox topic",
        "SEM.ACQUIRE tenant-b:lock 1",
        "XREAD STREAMS tenant-b:x 0",
    ];
    let mut out: Vec<Vec<String>> = lines.iter().map(|l| l.split(' ').map(str::to_owned).collect()).collect();
    out.push(vec!["JOB.STATUS".into(), job_b.into()]);
    out.push(vec!["JOB.CANCEL".into(), job_b.into()]);
    out
}

#[tokio::test]
async fn a_tenant_cannot_touch_another_over_resp_and_websocket() {
    let server = start_with(config(&[TENANT_A])).await;
    let mut admin = server.conn().await;
    let job_b: String = cmd(&mut admin, &["JOB.SUBMIT", "tenant-b:q", "work"]).await.unwrap();
    let mut a = as_user(&server, "tenant-a", "pw-a").await;
    let mut ws = server.ws_with("?user=tenant-a&password=pw-a").await;
    for parts in tenant_b_commands(&job_b) {
        let args: Vec<&str> = parts.iter().map(String::as_str).collect();
        let resp = cmd::<redis::Value>(&mut a, &args).await.expect_err(&parts.join(" "));
        assert_eq!(resp.code(), Some("NOPERM"), "{parts:?}: {resp}");
        let reply = ws.call(json!(args)).await;
        assert_eq!(reply["error"]["code"], "NOPERM", "{parts:?}: {reply}");
        // The same words on both wires.
        assert!(resp.to_string().contains(reply["error"]["message"].as_str().unwrap()), "{resp} vs {reply}");
    }
    // Its own tenant works, in every domain.
    let _: () = cmd(&mut a, &["SET", "tenant-a:k", "v"]).await.unwrap();
    let v: String = cmd(&mut a, &["GET", "tenant-a:k"]).await.unwrap();
    assert_eq!(v, "v");
    let job: String = cmd(&mut a, &["JOB.SUBMIT", "tenant-a:q", "p"]).await.unwrap();
    let status: redis::Value = cmd(&mut a, &["JOB.STATUS", &job]).await.unwrap();
    assert_ne!(status, redis::Value::Nil);
    let _: i64 = cmd(&mut a, &["BB.SET", "tenant-a:scope", "k", "v"]).await.unwrap();
    let _: String = cmd(&mut a, &["BL.PUBLISH", "board", "{}", "SCOPE", "tenant-a:s"]).await.unwrap();
    let _: i64 = cmd(&mut a, &["STREAM.WRITE", "tenant-a:s", "x"]).await.unwrap();
    assert_eq!(ws.result(json!(["GET", "tenant-a:k"])).await, json!("v"));
    // Dangerous commands are not in its categories.
    let err = cmd::<()>(&mut a, &["FLUSHALL"]).await.unwrap_err();
    assert!(err.to_string().ends_with("this user has no permissions to run the 'flushall' command"), "{err}");
    // Refusals are in ACL LOG, with their reason and object.
    let log: Vec<redis::Value> = cmd(&mut admin, &["ACL", "LOG"]).await.unwrap();
    let first = common::fields(log[0].clone());
    assert_eq!(common::text(&first["reason"]), "command");
    assert_eq!(common::text(&first["object"]), "flushall");
    assert_eq!(common::text(&first["username"]), "tenant-a");
    server.stop().await;
}

#[tokio::test]
async fn subscriptions_only_deliver_what_the_patterns_allow() {
    let server = start_with(config(&[TENANT_A])).await;
    let mut admin = server.conn().await;
    let _: () = cmd(&mut admin, &["CONFIG", "SET", "notify-keyspace-events", "KA"]).await.unwrap();
    let mut raw = server.raw().await;
    raw.cmd(&["AUTH", "tenant-a", "pw-a"]).await;
    raw.expect("+OK\r\n").await;
    raw.cmd(&["PSUBSCRIBE", "__keyspace@0__:*"]).await;
    raw.read_until("NOPERM").await;
    raw.cmd(&["PSUBSCRIBE", "__bb:*@tenant-a:*"]).await;
    raw.read_until("__bb:*@tenant-a:*\r\n:1\r\n").await;
    let _: i64 = cmd(&mut admin, &["BB.SET", "tenant-b:s", "k", "other"]).await.unwrap();
    let _: i64 = cmd(&mut admin, &["BB.SET", "tenant-a:s", "k", "mine"]).await.unwrap();
    // The first event this subscriber sees is its own tenant's.
    let seen = raw.read_until("mine").await;
    assert!(!seen.contains("tenant-b"), "{seen}");
    server.stop().await;
}

#[tokio::test]
async fn auth_hello_and_the_default_user() {
    let mut c = config(&["alice on >pw ~* &* +@all", "off-user off >pw +@all"]);
    c.requirepass = "s3cret".into();
    let server = start_with(c).await;
    let mut raw = server.raw().await;
    raw.cmd(&["GET", "x"]).await;
    raw.expect("-NOAUTH Authentication required.\r\n").await;
    for (user, pass) in [("alice", "nope"), ("off-user", "pw"), ("nobody", "pw"), ("default", "nope")] {
        raw.cmd(&["AUTH", user, pass]).await;
        raw.expect("-WRONGPASS invalid username-password pair or user is disabled.\r\n").await;
    }
    raw.cmd(&["HELLO", "3", "AUTH", "alice", "pw"]).await;
    raw.read_until("standalone").await;
    raw.cmd(&["ACL", "WHOAMI"]).await;
    raw.read_until("alice").await;
    raw.cmd(&["CLIENT", "INFO"]).await;
    raw.read_until("user=alice").await;
    raw.cmd(&["AUTH", "s3cret"]).await;
    raw.read_until("+OK").await;
    raw.cmd(&["ACL", "WHOAMI"]).await;
    raw.read_until("default").await;
    let log = {
        let mut d = as_user(&server, "default", "s3cret").await;
        cmd::<Vec<redis::Value>>(&mut d, &["ACL", "LOG"]).await.unwrap()
    };
    let names: Vec<String> = log.into_iter().map(|e| common::text(&common::fields(e)["username"])).collect();
    for who in ["alice", "off-user", "nobody", "default"] {
        assert!(names.contains(&who.to_string()), "{names:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn deleting_a_user_ends_its_connections_and_acl_files_round_trip() {
    let dir = common::data_dir("acl-file");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("users.acl");
    let mut c = config(&[]);
    c.acl.aclfile = file.to_string_lossy().into_owned();
    let server = start_with(c.clone()).await;
    let mut admin = server.conn().await;
    let _: () = cmd(&mut admin, &["ACL", "SETUSER", "bob", "on", ">pw", "~bob:*", "+get"]).await.unwrap();
    let mut raw = server.raw().await;
    raw.cmd(&["AUTH", "bob", "pw"]).await;
    raw.expect("+OK\r\n").await;
    let _: () = cmd(&mut admin, &["ACL", "SAVE"]).await.unwrap();
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains("user bob on #") && saved.contains("~bob:* resetchannels -@all +get"), "{saved}");
    let n: i64 = cmd(&mut admin, &["ACL", "DELUSER", "bob"]).await.unwrap();
    assert_eq!(n, 1);
    assert!(raw.closed().await, "bob's connection ends with bob");
    let _: () = cmd(&mut admin, &["ACL", "LOAD"]).await.unwrap();
    let users: Vec<String> = cmd(&mut admin, &["ACL", "USERS"]).await.unwrap();
    assert_eq!(users, ["bob", "default"]);
    server.stop().await;
    // A restart reads the file.
    let server = start_with(c).await;
    let mut bob = as_user(&server, "bob", "pw").await;
    let err = cmd::<()>(&mut bob, &["SET", "bob:1", "v"]).await.unwrap_err();
    assert_eq!(err.code(), Some("NOPERM"));
    server.stop().await;
}

/// A flood of wrong passwords from one address is answered ever more slowly, while a client that is
/// already authenticated goes on at full speed: it finishes its work while the flood is still held.
#[tokio::test]
async fn a_flood_of_failed_auths_does_not_slow_others() {
    let mut c = config(&["alice on >pw ~* &* +@all"]);
    c.acl.auth_free_failures = 3;
    c.acl.auth_delay_ms = 60_000;
    let server = start_with(c).await;
    let mut good = as_user(&server, "alice", "pw").await;
    let mut flood = server.raw().await;
    let mut pipeline = Vec::new();
    for _ in 0..10 {
        pipeline.extend_from_slice(b"AUTH alice wrong\r\n");
    }
    flood.send(&pipeline).await;
    // The free failures are answered; the next one waits for its slot (a minute away).
    for _ in 0..3 {
        flood.expect("-WRONGPASS invalid username-password pair or user is disabled.\r\n").await;
    }
    for i in 0..200 {
        let _: () = cmd(&mut good, &["SET", "k", &i.to_string()]).await.unwrap();
    }
    let last: i64 = cmd(&mut good, &["GET", "k"]).await.unwrap();
    assert_eq!(last, 199);
    let mut stats = server.conn().await;
    let blocked: String = cmd(&mut stats, &["CLIENT", "LIST"]).await.unwrap();
    assert!(blocked.contains("cmd=auth"), "{blocked}");
    let log: Vec<redis::Value> = cmd(&mut stats, &["ACL", "LOG", "1"]).await.unwrap();
    assert!(common::int(&common::fields(log[0].clone())["count"]) >= 4);
    server.stop().await;
}

/// A script acts as its caller: `redis.call` reaches only what the caller's user may, with the same
/// NOPERM, for Redis keys and Herald's resources alike.
#[tokio::test]
async fn a_script_reaches_only_what_its_caller_may() {
    let server = start_with(config(&[TENANT_A])).await;
    let mut a = as_user(&server, "tenant-a", "pw-a").await;
    let own: String =
        cmd(&mut a, &["EVAL", "redis.call('SET', KEYS[1], 'v') return redis.call('GET', KEYS[1])", "1", "tenant-a:k"]).await.unwrap();
    assert_eq!(own, "v");
    for script in ["return redis.call('GET', 'tenant-b:k')", "return redis.call('BB.GET', 'tenant-b', 'k')"] {
        let err = cmd::<String>(&mut a, &["EVAL", script, "0"]).await.unwrap_err();
        assert_eq!(err.code(), Some("NOPERM"), "{script}: {err}");
    }
}

/// Redis 7.0 checks a transaction's commands again at EXEC when the ACL changed after they were
/// queued: a command no longer allowed answers NOPERM in its slot (with the reason), the others run,
/// and ACL LOG records it in the `multi` context (replies checked against redis-server 7.0.15).
#[tokio::test]
async fn exec_checks_queued_commands_again_after_an_acl_change() {
    let server = start_with(config(&["u on >pw ~k ~other &* +@all"])).await;
    let mut admin = server.conn().await;
    let mut raw = server.raw().await;
    raw.cmd(&["AUTH", "u", "pw"]).await;
    raw.expect("+OK\r\n").await;
    for parts in [&["MULTI"][..], &["SET", "k", "v"], &["SET", "other", "v"], &["PUBLISH", "ch", "m"]] {
        raw.cmd(parts).await;
    }
    raw.expect("+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n").await;
    let _: () = cmd(&mut admin, &["ACL", "SETUSER", "u", "resetkeys", "~other", "resetchannels"]).await.unwrap();
    raw.cmd(&["EXEC"]).await;
    let changed = "-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: ";
    raw.expect(&format!(
        "*3\r\n{changed}no permission to touch the specified keys\r\n+OK\r\n{changed}no permission to access one of the channels used as arguments\r\n"
    ))
    .await;
    let k: Option<String> = cmd(&mut admin, &["GET", "k"]).await.unwrap();
    assert_eq!(k, None, "the refused SET did not run");
    let log: Vec<redis::Value> = cmd(&mut admin, &["ACL", "LOG"]).await.unwrap();
    let newest = common::fields(log[0].clone());
    assert_eq!(
        [&newest["reason"], &newest["context"], &newest["object"]].map(common::text),
        ["channel".to_owned(), "multi".to_owned(), "ch".to_owned()]
    );
    // A command taken away: refused in its slot.
    raw.cmd(&["MULTI"]).await;
    raw.cmd(&["SET", "other", "w"]).await;
    raw.cmd(&["GET", "other"]).await;
    raw.expect("+OK\r\n+QUEUED\r\n+QUEUED\r\n").await;
    let _: () = cmd(&mut admin, &["ACL", "SETUSER", "u", "-set"]).await.unwrap();
    raw.cmd(&["EXEC"]).await;
    raw.expect(&format!("*2\r\n{changed}no permission to execute the command or subcommand\r\n$1\r\nv\r\n")).await;
    // Without an ACL change nothing is checked again and the transaction runs as queued.
    raw.cmd(&["MULTI"]).await;
    raw.cmd(&["GET", "other"]).await;
    raw.cmd(&["EXEC"]).await;
    raw.expect("+OK\r\n+QUEUED\r\n*1\r\n$1\r\nv\r\n").await;
    server.stop().await;
}
