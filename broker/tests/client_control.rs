//! CLIENT UNBLOCK, PAUSE / UNPAUSE, REPLY and NO-TOUCH through the `redis` crate: what one client does to
//! another's commands, proven by what the broker reports (INFO blocked_clients) before it happens.

mod common;

use common::{cmd, start, until_blocked};
use redis::Value;

async fn client_id(c: &mut redis::aio::MultiplexedConnection) -> i64 {
    cmd(c, &["CLIENT", "ID"]).await.unwrap()
}

/// Two waits of one client, `first` ended by `CLIENT UNBLOCK id` (its timeout reply: nil) and `second` by
/// `CLIENT UNBLOCK id ERROR` (`-UNBLOCKED`), each once the broker reports the client blocked.
async fn unblocked_twice(server: &common::TestServer, first: &'static [&'static str], second: &'static [&'static str]) {
    let mut admin = server.conn().await;
    let mut waiter = server.conn().await;
    let id = client_id(&mut waiter).await.to_string();
    let waits = tokio::spawn(async move {
        let first: Value = cmd(&mut waiter, first).await.unwrap();
        let second: redis::RedisResult<Value> = cmd(&mut waiter, second).await;
        (first, second)
    });
    until_blocked(server, 1).await;
    assert_eq!(cmd::<i64>(&mut admin, &["CLIENT", "UNBLOCK", &id]).await.unwrap(), 1);
    until_blocked(server, 1).await;
    assert_eq!(cmd::<i64>(&mut admin, &["CLIENT", "UNBLOCK", &id, "ERROR"]).await.unwrap(), 1);
    let (first, second) = waits.await.unwrap();
    timed_out_then_unblocked(first, second);
    until_blocked(server, 0).await;
    assert_eq!(cmd::<i64>(&mut admin, &["CLIENT", "UNBLOCK", &id]).await.unwrap(), 0, "no longer blocked");
}

/// The replies of two waits ended by `CLIENT UNBLOCK id` then `CLIENT UNBLOCK id ERROR`.
fn timed_out_then_unblocked(first: Value, second: redis::RedisResult<Value>) {
    assert_eq!(first, Value::Nil, "TIMEOUT answers what the timeout would");
    let err = second.unwrap_err();
    assert_eq!(err.code(), Some("UNBLOCKED"), "{err:?}");
}

const DOMAIN_WAITS: [&[&str]; 2] = [&["JOB.CLAIM", "idle-queue", "BLOCK", "0"], &["MSG.RECV", "idle-box", "topic", "TIMEOUT", "0"]];

#[tokio::test]
async fn unblock_ends_a_wait_as_a_timeout_or_an_error() {
    let server = start().await;
    unblocked_twice(&server, &["BLPOP", "nothing", "0"], &["BZPOPMIN", "nothing-z", "0"]).await;
    unblocked_twice(&server, DOMAIN_WAITS[0], DOMAIN_WAITS[1]).await;
}

#[tokio::test]
async fn pause_write_holds_writes_until_unpause_and_lets_reads_through() {
    let server = start().await;
    let mut admin = server.conn().await;
    let mut writer = server.conn().await;
    let _: () = cmd(&mut admin, &["SET", "k", "before"]).await.unwrap();
    let _: () = cmd(&mut admin, &["CLIENT", "PAUSE", "100000", "WRITE"]).await.unwrap();
    let write = tokio::spawn(async move { cmd::<String>(&mut writer, &["SET", "k", "after"]).await.unwrap() });
    until_blocked(&server, 1).await;
    assert_eq!(cmd::<String>(&mut admin, &["GET", "k"]).await.unwrap(), "before", "reads go on; the write waits");
    let _: () = cmd(&mut admin, &["CLIENT", "UNPAUSE"]).await.unwrap();
    assert_eq!(write.await.unwrap(), "OK");
    assert_eq!(cmd::<String>(&mut admin, &["GET", "k"]).await.unwrap(), "after");
    until_blocked(&server, 0).await;
}

#[tokio::test]
async fn pause_all_holds_everything_until_it_ends() {
    let server = start().await;
    let mut admin = server.conn().await;
    let mut reader = server.conn().await;
    let _: () = cmd(&mut admin, &["CLIENT", "PAUSE", "300", "ALL"]).await.unwrap();
    // Even a read waits; it runs once the pause has run out.
    let read: Option<String> = cmd(&mut reader, &["GET", "k"]).await.unwrap();
    assert_eq!(read, None);
}

#[tokio::test]
async fn reply_off_sends_nothing_until_on_but_pushes_still_arrive() {
    let server = start().await;
    let mut raw = server.raw().await;
    raw.cmd(&["CLIENT", "REPLY", "OFF"]).await;
    raw.cmd(&["SET", "k", "v"]).await;
    raw.cmd(&["SUBSCRIBE", "ch"]).await;
    raw.expect("*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n").await;
    let mut other = server.conn().await;
    assert_eq!(cmd::<i64>(&mut other, &["PUBLISH", "ch", "hi"]).await.unwrap(), 1);
    raw.expect("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n").await;
    assert_eq!(cmd::<String>(&mut other, &["GET", "k"]).await.unwrap(), "v", "the muted SET ran");
}

#[tokio::test]
async fn no_touch_reads_leave_idle_time_alone() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["SET", "k", "v"]).await.unwrap();
    let _: () = cmd(&mut c, &["CLIENT", "NO-TOUCH", "ON"]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let _: String = cmd(&mut c, &["GET", "k"]).await.unwrap();
    let idle: i64 = cmd(&mut c, &["OBJECT", "IDLETIME", "k"]).await.unwrap();
    assert!(idle >= 1, "a NO-TOUCH read did not refresh the access time: {idle}");
    let _: () = cmd(&mut c, &["CLIENT", "NO-TOUCH", "OFF"]).await.unwrap();
    let _: String = cmd(&mut c, &["GET", "k"]).await.unwrap();
    let idle: i64 = cmd(&mut c, &["OBJECT", "IDLETIME", "k"]).await.unwrap();
    assert_eq!(idle, 0);
}

/// On the Redis engine a blocking Redis command waits inside Redis on a dedicated connection: CLIENT
/// UNBLOCK is passed on to Redis (naming that connection), and Redis answers the command as for its own
/// client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unblock_reaches_a_command_blocked_in_redis() {
    let (_backing, server) = common::redis_server::on_engine("redis", "unblock-forwarded").await;
    let mut admin = server.conn().await;
    let mut waiter = server.conn().await;
    let id = client_id(&mut waiter).await.to_string();
    let pop = tokio::spawn(async move {
        let first: Value = cmd(&mut waiter, &["BLPOP", "nothing", "0"]).await.unwrap();
        let second: redis::RedisResult<Value> = cmd(&mut waiter, &["BZPOPMIN", "nothing-z", "0"]).await;
        let third: Value = cmd(&mut waiter, &["XREAD", "BLOCK", "0", "STREAMS", "nothing-x", "$"]).await.unwrap();
        (first, second, third)
    });
    // 1 once the node knows where the command waits; Redis may still be about to get it, which the
    // node's retries cover.
    for mode in ["TIMEOUT", "ERROR", "TIMEOUT"] {
        until_unblocked(&mut admin, &id, mode).await;
    }
    let (first, second, third) = pop.await.unwrap();
    timed_out_then_unblocked(first, second);
    assert_eq!(third, Value::Nil);
    assert_eq!(cmd::<i64>(&mut admin, &["CLIENT", "UNBLOCK", &id]).await.unwrap(), 0, "no longer blocked");
    // The connection still serves, and a later blocking command is not unblocked by the earlier requests.
    let mut waiter = server.conn().await;
    let later = tokio::spawn(async move { cmd::<Value>(&mut waiter, &["BLPOP", "later", "5"]).await.unwrap() });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let _: i64 = cmd(&mut admin, &["RPUSH", "later", "v"]).await.unwrap();
    assert_eq!(later.await.unwrap(), Value::Array(vec![Value::BulkString(b"later".to_vec()), Value::BulkString(b"v".to_vec())]));
}

/// On the Redis engine a domain command's wait is the node's own (`remote/waiting.rs`): CLIENT UNBLOCK
/// ends it between its checks, as the embedded engine's registry does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unblock_ends_a_domain_wait_on_the_redis_engine() {
    let (_backing, server) = common::redis_server::on_engine("redis", "unblock-domain").await;
    unblocked_twice(&server, DOMAIN_WAITS[0], DOMAIN_WAITS[1]).await;
}

/// Asks CLIENT UNBLOCK until it answers 1 (the waiter's command has reached its wait).
async fn until_unblocked(admin: &mut redis::aio::MultiplexedConnection, id: &str, mode: &str) {
    for _ in 0..500 {
        if cmd::<i64>(admin, &["CLIENT", "UNBLOCK", id, mode]).await.unwrap() == 1 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("client {id} never blocked");
}
