//! A client's pipeline on the Redis engine (docs/scale-out.md): plain commands go on to Redis as they
//! arrive, several in flight, and are answered strictly in request order, interleaved correctly with what
//! the node answers itself (SELECT, PING, transactions, Herald's domain commands) and with pushes.

mod common;

use std::time::Duration;

use common::redis_server::RedisServer;
use common::{TestServer, cmd, text};
use herald_broker::config::Config;
use redis::Value;

/// Requests that exercise every boundary of a pipeline: plain commands (joining the ones in flight), errors
/// from Redis, commands the node answers (PING, ECHO, SELECT, which changes where the next ones go), a
/// transaction and a blocking command that does not block.
fn mixed(n: usize) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let s = |parts: &[&str]| parts.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    for i in 0..n {
        let (k, prev) = (format!("k{i}"), format!("k{}", i.saturating_sub(1)));
        out.push(s(&["INCR", "n"]));
        out.push(s(&["SET", &k, &format!("v{i}")]));
        out.push(s(&["GET", &prev]));
        out.push(s(&["RPUSH", "l", &i.to_string()]));
        match i % 10 {
            0 => out.push(s(&["INCR", &k])),
            1 => out.push(s(&["PING"])),
            2 => {
                out.push(s(&["SELECT", "2"]));
                out.push(s(&["INCR", "n"]));
                out.push(s(&["SELECT", "0"]));
            }
            3 => out.push(s(&["LRANGE", "l", "0", "2"])),
            4 => {
                out.push(s(&["MULTI"]));
                out.push(s(&["INCR", "n"]));
                out.push(s(&["GET", &k]));
                out.push(s(&["EXEC"]));
            }
            5 => out.push(s(&["BLPOP", "l", "1"])),
            6 => out.push(s(&["ECHO", &k])),
            7 => out.push(s(&["HSET", "h", &k, "1"])),
            8 => out.push(s(&["DBSIZE"])),
            _ => out.push(s(&["LPOP", "missing", "2"])),
        }
    }
    out
}

async fn run_pipeline(conn: &mut redis::aio::MultiplexedConnection, commands: &[Vec<String>]) -> Vec<Value> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for parts in commands {
        let mut c = redis::cmd(&parts[0]);
        for p in &parts[1..] {
            c.arg(p);
        }
        pipe.add_command(c);
    }
    pipe.query_async(conn).await.expect("pipeline")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_of_mixed_commands_is_answered_in_order_exactly_as_redis_answers_it() {
    let redis = RedisServer::start("pipeline-mixed").await;
    let node = redis.node().await;
    let commands = mixed(60);
    let mut through = node.conn().await;
    let through = run_pipeline(&mut through, &commands).await;

    let mut direct = redis.conn().await;
    let _: () = cmd(&mut direct, &["FLUSHALL"]).await.unwrap();
    let straight = run_pipeline(&mut direct, &commands).await;
    assert_eq!(through.len(), commands.len());
    for (i, (a, b)) in through.iter().zip(&straight).enumerate() {
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "reply {i} to {:?}", commands[i]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herald_domain_commands_in_a_pipeline_see_the_plain_commands_before_them() {
    let redis = RedisServer::start("pipeline-domain").await;
    let node = redis.node().await;
    let mut conn = node.conn().await;
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for i in 1..=20 {
        pipe.cmd("INCR").arg("a");
        pipe.cmd("BB.SET").arg("scope").arg("k").arg(i);
        pipe.cmd("GET").arg("a");
        pipe.cmd("BB.GET").arg("scope").arg("k");
    }
    let replies: Vec<Value> = pipe.query_async(&mut conn).await.unwrap();
    for (i, four) in replies.chunks(4).enumerate() {
        let i = i as i64 + 1;
        assert_eq!(four[0], Value::Int(i));
        assert_eq!(four[1], Value::Int(i), "BB.SET's revision");
        assert_eq!(four[2], Value::BulkString(i.to_string().into_bytes()));
        let Value::Array(got) = &four[3] else { panic!("BB.GET: {:?}", four[3]) };
        assert_eq!(
            got[..4],
            [
                Value::BulkString(b"value".to_vec()),
                Value::BulkString(i.to_string().into_bytes()),
                Value::BulkString(b"revision".to_vec()),
                Value::Int(i)
            ]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_deeper_than_the_window_waits_for_room_and_keeps_its_order() {
    let redis = RedisServer::start("pipeline-window").await;
    let mut config = Config::for_tests();
    config.engine.max_in_flight = 3;
    let node = redis.node_with(config).await;
    let mut conn = node.conn().await;
    let mut pipe = redis::pipe();
    for _ in 0..500 {
        pipe.cmd("INCR").arg("c");
    }
    let replies: Vec<i64> = pipe.query_async(&mut conn).await.unwrap();
    assert_eq!(replies, (1..=500).collect::<Vec<_>>());
}

/// Parses the RESP3 frames the test below expects: integers (replies) and `message` pushes.
fn frames(text: &str) -> Vec<Result<i64, String>> {
    let mut lines = text.split("\r\n");
    let mut out = Vec::new();
    while let Some(line) = lines.next() {
        if let Some(n) = line.strip_prefix(':') {
            out.push(Ok(n.parse().unwrap()));
        } else if line == ">3" {
            let parts: Vec<&str> = (0..6).map(|_| lines.next().unwrap()).collect();
            assert_eq!(parts[1], "message");
            out.push(Err(parts[5].to_string()));
        } else {
            assert!(line.is_empty(), "unexpected frame line {line:?}");
        }
    }
    out
}

/// The first requests on a database's connection find it not connected yet: a pipeline sent then must
/// still run in order (requests waiting for a connection to be made are woken in no set order, so the
/// node sends one at a time until the connection has answered). Every database is a fresh connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_on_a_connection_not_made_yet_runs_in_order() {
    let redis = RedisServer::start("pipeline-fresh").await;
    let node = redis.node().await;
    for db in 0..8 {
        let mut raw = node.raw().await;
        let mut batch = format!("*2\r\n$6\r\nSELECT\r\n$1\r\n{db}\r\n").into_bytes();
        for _ in 0..100 {
            batch.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$1\r\nf\r\n");
        }
        raw.send(&batch).await;
        let text = raw.read_until(":100\r\n").await;
        let replies: Vec<i64> = frames(text.trim_start_matches("+OK\r\n")).into_iter().map(|f| f.unwrap()).collect();
        assert_eq!(replies, (1..=100).collect::<Vec<_>>(), "database {db}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_and_pipelined_replies_interleave_whole_and_in_order_on_resp3() {
    let redis = RedisServer::start("pipeline-pushes").await;
    let node = redis.node().await;
    let other = redis.node().await;
    let mut raw = node.raw().await;
    raw.cmd(&["HELLO", "3"]).await;
    raw.read_until("proto").await;
    raw.read_until("modules\r\n*0\r\n").await;
    raw.cmd(&["SUBSCRIBE", "ch"]).await;
    raw.read_until(":1\r\n").await;

    let publisher = tokio::spawn(async move {
        let mut p = other.conn().await;
        for i in 0..200 {
            let _: i64 = cmd(&mut p, &["PUBLISH", "ch", &format!("m{i:03}")]).await.unwrap();
        }
        other
    });
    let mut sent = 0;
    let mut text = String::new();
    for _ in 0..20 {
        let mut batch = Vec::new();
        for _ in 0..50 {
            batch.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$1\r\nc\r\n");
        }
        raw.send(&batch).await;
        sent += 50;
        text.push_str(&raw.read_until(&format!(":{sent}\r\n")).await);
    }
    let _other = publisher.await.unwrap();
    if !text.contains("m199\r\n") {
        text.push_str(&raw.read_until("m199\r\n").await);
    }
    let got = frames(&text);
    let replies: Vec<i64> = got.iter().filter_map(|f| f.clone().ok()).collect();
    assert_eq!(replies, (1..=sent).collect::<Vec<_>>(), "replies whole and in order");
    let messages: Vec<String> = got.into_iter().filter_map(|f| f.err()).collect();
    assert_eq!(messages, (0..200).map(|i| format!("m{i:03}")).collect::<Vec<_>>(), "every message once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_mid_pipeline_leaves_the_node_serving() {
    let redis = RedisServer::start("pipeline-leave").await;
    let node: TestServer = redis.node().await;
    for _ in 0..5 {
        let mut raw = node.raw().await;
        let mut batch = Vec::new();
        for _ in 0..2000 {
            batch.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$1\r\nd\r\n");
        }
        raw.send(&batch).await;
        drop(raw);
    }
    let mut conn = node.conn().await;
    let pong: String = cmd(&mut conn, &["PING"]).await.unwrap();
    assert_eq!(pong, "PONG");
    let d: i64 = cmd(&mut conn, &["INCR", "d"]).await.unwrap();
    assert!((1..=10_001).contains(&d), "{d}");
    // Every connection that left is gone from the node's client list.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let list: String = cmd(&mut conn, &["CLIENT", "LIST"]).await.unwrap();
        if list.lines().count() == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "clients left behind: {list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reply_skip_and_off_mute_the_right_replies_of_a_pipeline() {
    let redis = RedisServer::start("pipeline-mute").await;
    let node = redis.node().await;
    let mut raw = node.raw().await;
    let mut batch = String::new();
    for parts in [
        &["CLIENT", "REPLY", "SKIP"][..],
        &["SET", "a", "1"],
        &["SET", "b", "2"],
        &["CLIENT", "REPLY", "OFF"],
        &["INCR", "a"],
        &["INCR", "a"],
        &["CLIENT", "REPLY", "ON"],
        &["GET", "a"],
    ] {
        batch.push_str(&format!("*{}\r\n", parts.len()));
        for p in parts {
            batch.push_str(&format!("${}\r\n{p}\r\n", p.len()));
        }
    }
    raw.send(batch.as_bytes()).await;
    raw.expect("+OK\r\n+OK\r\n$1\r\n3\r\n").await;
}

/// Rounds `first..first + n` of plain commands interleaved with mailbox, stream, blackboard, board and semaphore operations (answered
/// later, on the same connection as the plain commands: a RESP2 client on database 0).
fn domain_rounds(pipe: &mut redis::Pipeline, first: usize, n: usize) {
    for i in first..first + n {
        pipe.cmd("INCR").arg("a");
        pipe.cmd("MSG.SEND").arg("d").arg("t").arg(format!("m{i}"));
        pipe.cmd("STREAM.WRITE").arg("s").arg(format!("e{i}"));
        pipe.cmd("GET").arg("a");
        pipe.cmd("MSG.LEN").arg("d");
        pipe.cmd("MSG.RECV").arg("d").arg("t");
        pipe.cmd("STREAM.READ").arg("s").arg("FROM").arg(i - 1).arg("COUNT").arg(1);
        pipe.cmd("MSG.RECV").arg("d").arg("t");
        pipe.cmd("SET").arg("k").arg(i);
        pipe.cmd("BB.SET").arg("sc").arg("k").arg(i);
        pipe.cmd("BB.GET").arg("sc").arg("k");
        pipe.cmd("BL.PUBLISH").arg("b").arg(format!(r#"{{"i": {i}}}"#));
        pipe.cmd("SEM.INFO").arg("lock");
    }
}

/// Replies to one of [`domain_rounds`].
const ROUND: usize = 13;

/// Checks [`domain_rounds`]' replies, from round `first` on.
fn check_rounds(replies: &[Value], first: usize) {
    for (r, got) in replies.chunks(ROUND).enumerate() {
        let i = (first + r) as i64;
        let what = format!("round {i}: {got:?}");
        assert_eq!(got[0], Value::Int(i), "{what}");
        assert!(matches!(got[1], Value::Int(_)), "MSG.SEND's id: {what}");
        assert_eq!(got[2], Value::Int(i - 1), "STREAM.WRITE's offset: {what}");
        assert_eq!(got[3], Value::BulkString(i.to_string().into_bytes()), "{what}");
        assert_eq!(got[4], Value::Int(1), "MSG.LEN after the send: {what}");
        assert_eq!(got[5], Value::BulkString(format!("m{i}").into_bytes()), "MSG.RECV: {what}");
        let read = format!("{:?}", got[6]);
        assert!(read.contains(&format!("e{i}")), "STREAM.READ: {what}");
        assert_eq!(got[7], Value::Nil, "the box is empty again: {what}");
        assert_eq!(got[8], Value::Okay, "{what}");
        assert_eq!(got[9], Value::Int(i), "BB.SET's revision: {what}");
        assert!(format!("{:?}", got[10]).contains(&format!("bulk-string('\"{i}\"')")), "BB.GET sees the write: {what}");
        assert!(matches!(got[11], Value::BulkString(_)), "BL.PUBLISH's id: {what}");
        assert!(matches!(got[12], Value::Array(_)), "SEM.INFO: {what}");
    }
}

fn domain_pipeline(first: usize, n: usize) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    domain_rounds(&mut pipe, first, n);
    pipe
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_and_stream_operations_pipelined_with_plain_commands_answer_in_order() {
    let redis = RedisServer::start("pipeline-mail").await;
    let node = redis.node().await;
    let mut conn = node.conn().await;
    // A first pipeline loads the scripts; the later ones travel whole.
    for batch in 0..5 {
        let replies: Vec<Value> = domain_pipeline(batch * 30 + 1, 30).query_async(&mut conn).await.unwrap();
        assert_eq!(replies.len(), 30 * ROUND);
        check_rounds(&replies, batch * 30 + 1);
    }
    // Pipelined for real: the node's own counters show the replies went out in batches.
    let len: i64 = cmd(&mut conn, &["MSG.LEN", "d"]).await.unwrap();
    assert_eq!(len, 0);
}

/// A pipeline of domain operations as the very first requests of a fresh node: its connection to Redis is
/// not made and the scripts are not loaded (each node starts on a flushed script cache).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_pipeline_on_a_fresh_node_runs_in_order() {
    let redis = RedisServer::start("pipeline-mail-fresh").await;
    for round in 0..4 {
        let mut direct = redis.conn().await;
        let _: () = cmd(&mut direct, &["SCRIPT", "FLUSH"]).await.unwrap();
        let _: () = cmd(&mut direct, &["FLUSHALL"]).await.unwrap();
        let node = redis.node().await;
        let mut conn = node.conn().await;
        let replies: Vec<Value> = domain_pipeline(1, 20).query_async(&mut conn).await.unwrap();
        assert_eq!(replies.len(), 20 * ROUND, "round {round}");
        check_rounds(&replies, 1);
    }
}

/// A SCRIPT FLUSH sent through the node in the middle of a pipeline: the domain operations after it wait
/// for it and load the scripts again, so every reply is still the right one, in order. One sent to Redis
/// behind the node's back costs a retry of the operation that meets it (it never runs twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_flush_through_the_node_keeps_a_domain_pipeline_exact() {
    let redis = RedisServer::start("pipeline-mail-flush").await;
    let node = redis.node().await;
    let mut conn = node.conn().await;
    let replies: Vec<Value> = domain_pipeline(1, 5).query_async(&mut conn).await.unwrap();
    check_rounds(&replies, 1);
    for batch in 0..5 {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        domain_rounds(&mut pipe, 6 + batch * 6, 3);
        pipe.cmd("SCRIPT").arg("FLUSH");
        domain_rounds(&mut pipe, 9 + batch * 6, 3);
        let replies: Vec<Value> = pipe.query_async(&mut conn).await.unwrap();
        assert_eq!(replies.len(), 6 * ROUND + 1);
        check_rounds(&replies[..3 * ROUND], 6 + batch * 6);
        assert_eq!(replies[3 * ROUND], Value::Okay, "SCRIPT FLUSH");
        check_rounds(&replies[3 * ROUND + 1..], 9 + batch * 6);
    }
    let mut direct = redis.conn().await;
    let _: () = cmd(&mut direct, &["SCRIPT", "FLUSH"]).await.unwrap();
    let id: i64 = cmd(&mut conn, &["MSG.SEND", "d", "t", "after"]).await.unwrap();
    assert!(id > 0);
    let got: String = cmd(&mut conn, &["MSG.RECV", "d", "t"]).await.unwrap();
    assert_eq!(got, "after");
}

/// Sessions whose plain commands go on another connection (RESP3, another database) keep their domain
/// operations one at a time: still in order with their plain commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_operations_of_a_session_on_another_database_stay_in_order() {
    let redis = RedisServer::start("pipeline-mail-db").await;
    let node = redis.node().await;
    let mut conn = node.conn().await;
    let _: () = cmd(&mut conn, &["SELECT", "3"]).await.unwrap();
    let replies: Vec<Value> = domain_pipeline(1, 20).query_async(&mut conn).await.unwrap();
    check_rounds(&replies, 1);
}

/// Board operations whose deadline is registered for the sweep after the script (a TTL, a lease) answer in
/// order within a pipeline, and their deadlines are registered all the same: a lease taken in a pipeline
/// runs out and its item comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn board_operations_with_deadlines_in_a_pipeline_answer_in_order_and_register_them() {
    let redis = RedisServer::start("pipeline-board").await;
    let node = redis.node().await;
    let mut conn = node.conn().await;
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for i in 0..10 {
        pipe.cmd("INCR").arg("n");
        pipe.cmd("BL.PUBLISH").arg("b").arg(format!(r#"{{"i": {i}}}"#)).arg("TTL").arg(60_000);
        pipe.cmd("BL.RETRIEVE").arg("b").arg("LOCK").arg(200);
        pipe.cmd("BL.LEN").arg("b");
    }
    let replies: Vec<Value> = pipe.query_async(&mut conn).await.unwrap();
    for (i, four) in replies.chunks(4).enumerate() {
        assert_eq!(four[0], Value::Int(i as i64 + 1), "{four:?}");
        let Value::BulkString(id) = &four[1] else { panic!("BL.PUBLISH: {four:?}") };
        let id = String::from_utf8_lossy(id).into_owned();
        assert!(format!("{:?}", four[2]).contains(&id), "BL.RETRIEVE takes the one just published: {four:?}");
        assert_eq!(four[3], Value::Int(i as i64 + 1), "{four:?}");
    }
    let mut direct = redis.conn().await;
    let due: i64 = cmd(&mut direct, &["ZCARD", "herald:bl:due"]).await.unwrap();
    assert_eq!(due, 1, "the board's deadline is registered for the sweep");
    // The leases run out (the sweep or the next script returns the items): all ten can be taken again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut taken = 0;
    while taken < 10 {
        match cmd::<Value>(&mut conn, &["BL.RETRIEVE", "b", "LOCK", "60000", "BLOCK", "1000"]).await.unwrap() {
            Value::Nil => assert!(tokio::time::Instant::now() < deadline, "leases never ran out"),
            _ => taken += 1,
        }
    }
}

/// Semaphore acquires in a pipeline answer in order, the second one on a name finding no permit left, and
/// each lease end is registered for the sweep (the leases run out and the names can be taken again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_acquires_in_a_pipeline_answer_in_order_and_register_their_lease_ends() {
    let redis = RedisServer::start("pipeline-sem").await;
    let node = redis.node().await;
    let mut conn = node.conn().await;
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for i in 0..10 {
        let name = format!("lock{i}");
        pipe.cmd("INCR").arg("n");
        pipe.cmd("SEM.ACQUIRE").arg(&name).arg(1).arg("LEASE").arg(300);
        pipe.cmd("SEM.ACQUIRE").arg(&name).arg(1).arg("LEASE").arg(300);
    }
    let replies: Vec<Value> = pipe.query_async(&mut conn).await.unwrap();
    for (i, three) in replies.chunks(3).enumerate() {
        assert_eq!(three[0], Value::Int(i as i64 + 1), "{three:?}");
        assert!(matches!(three[1], Value::Int(t) if t > 0), "the first acquire holds a token: {three:?}");
        assert_eq!(three[2], Value::Nil, "no permit left for the second: {three:?}");
    }
    let mut direct = redis.conn().await;
    let due: i64 = cmd(&mut direct, &["ZCARD", "herald:sem:due"]).await.unwrap();
    assert!(due > 0, "lease ends registered for the sweep");
    for i in 0..10 {
        let token: i64 = cmd(&mut conn, &["SEM.ACQUIRE", &format!("lock{i}"), "1", "LEASE", "60000", "BLOCK", "10000"]).await.unwrap();
        assert!(token > 0);
    }
}

/// Blocking forms in the middle of a pipeline of domain operations wait their turn: each sees every
/// request before it done, and the ones after it wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_domain_commands_inside_a_pipeline_keep_its_order() {
    let redis = RedisServer::start("pipeline-blocking").await;
    let node = redis.node().await;
    let mut conn = node.conn().await;
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for i in 0..5 {
        pipe.cmd("MSG.SEND").arg("d").arg("t").arg(format!("m{i}"));
        pipe.cmd("MSG.RECV").arg("d").arg("t").arg("TIMEOUT").arg(1000);
        pipe.cmd("MSG.RECV").arg("d").arg("t").arg("TIMEOUT").arg(10);
        pipe.cmd("INCR").arg("n");
        pipe.cmd("STREAM.WRITE").arg("s").arg(format!("e{i}"));
        pipe.cmd("STREAM.READ").arg("s").arg("FROM").arg(i).arg("BLOCK").arg(1000);
    }
    let replies: Vec<Value> = pipe.query_async(&mut conn).await.unwrap();
    for (i, six) in replies.chunks(6).enumerate() {
        assert!(matches!(six[0], Value::Int(_)), "{six:?}");
        assert_eq!(six[1], Value::BulkString(format!("m{i}").into_bytes()), "{six:?}");
        assert_eq!(six[2], Value::Nil, "{six:?}");
        assert_eq!(six[3], Value::Int(i as i64 + 1), "{six:?}");
        assert_eq!(six[4], Value::Int(i as i64), "{six:?}");
        assert!(format!("{:?}", six[5]).contains(&format!("e{i}")), "{six:?}");
    }
}

/// A field of a JOB.* map reply, RESP2 (pairs) or RESP3 (a map).
fn job_field(v: &Value, name: &str) -> Value {
    let pairs: Vec<(Value, Value)> = match v {
        Value::Map(m) => m.clone(),
        Value::Array(items) => items.chunks(2).map(|kv| (kv[0].clone(), kv[1].clone())).collect(),
        other => panic!("not a map: {other:?}"),
    };
    let found = pairs
        .into_iter()
        .find(|(k, _)| matches!(k, Value::BulkString(b) if b == name.as_bytes()) || *k == Value::SimpleString(name.into()));
    found.map(|(_, v)| v).unwrap_or_else(|| panic!("no {name} in {v:?}"))
}

fn error_code(v: &Value) -> String {
    match v {
        Value::ServerError(e) => e.code().to_string(),
        other => panic!("not an error: {other:?}"),
    }
}

/// Round `r` of job operations pipelined with plain commands, on a queue of its own: a submit with an
/// ID (not answered later: its index is read first), a claim, the worker's operations with a refused one
/// (a wrong token) in the middle, a fresh submit, a claim completing a job already done (refused: nothing
/// claimed), a claim, the queue's figures and a cancel of an unknown job.
fn job_round(pipe: &mut redis::Pipeline, r: usize, token: i64) {
    let (q, j) = (format!("jq{r}"), format!("j{r}"));
    pipe.cmd("JOB.SUBMIT").arg(&q).arg("p").arg("ID").arg(&j);
    pipe.cmd("INCR").arg("n");
    pipe.cmd("JOB.CLAIM").arg(&q);
    pipe.cmd("JOB.HEARTBEAT").arg(&j).arg(token);
    pipe.cmd("JOB.PROGRESS").arg(&j).arg(token).arg("half");
    pipe.cmd("JOB.CHUNK").arg(&j).arg(token).arg("c0");
    pipe.cmd("JOB.COMPLETE").arg(&j).arg(999_999).arg("wrong");
    pipe.cmd("JOB.CHUNK").arg(&j).arg(token).arg("c1");
    pipe.cmd("JOB.READ").arg(&j).arg("FROM").arg(0);
    pipe.cmd("JOB.COMPLETE").arg(&j).arg(token).arg(format!("res{r}"));
    pipe.cmd("JOB.RESULT").arg(&j);
    pipe.cmd("GET").arg("n");
    pipe.cmd("JOB.STATUS").arg(&j);
    pipe.cmd("JOB.SUBMIT").arg(&q).arg("second");
    pipe.cmd("JOB.CLAIM").arg(&q).arg("COMPLETE").arg(&j).arg(token).arg("again");
    pipe.cmd("JOB.CLAIM").arg(&q);
    pipe.cmd("JOB.STATS").arg(&q);
    pipe.cmd("JOB.CANCEL").arg(format!("nosuch{r}"));
}

fn check_job_round(got: &[Value], r: usize, token: i64) {
    let what = format!("round {r}: {got:?}");
    let j = format!("j{r}");
    assert_eq!(text(&got[0]), j, "{what}");
    assert_eq!(got[1], Value::Int(r as i64), "{what}");
    assert_eq!(text(&job_field(&got[2], "id")), j, "{what}");
    assert_eq!(job_field(&got[2], "token"), Value::Int(token), "{what}");
    assert!(matches!(got[3], Value::Int(_)), "HEARTBEAT's expiry: {what}");
    assert_eq!(got[4], Value::Okay, "{what}");
    assert_eq!(got[5], Value::Int(0), "the first chunk's offset: {what}");
    assert_eq!(error_code(&got[6]), "LEASE", "{what}");
    assert_eq!(got[7], Value::Int(1), "the chunk after the refusal: {what}");
    let read = format!("{:?}", got[8]);
    assert!(read.contains("c0") && read.contains("c1"), "JOB.READ sees both chunks: {what}");
    assert_eq!(got[9], Value::Okay, "{what}");
    assert_eq!(text(&got[10]), format!("res{r}"), "{what}");
    assert_eq!(text(&got[11]), r.to_string(), "{what}");
    assert_eq!(text(&job_field(&got[12], "state")), "done", "{what}");
    let second = text(&got[13]);
    assert_eq!(error_code(&got[14]), "LEASE", "completing a job done already: {what}");
    assert_eq!(text(&job_field(&got[15], "id")), second, "the refused claim claimed nothing: {what}");
    assert_eq!(job_field(&got[15], "token"), Value::Int(token + 1), "{what}");
    assert_eq!(job_field(&got[16], "completed"), Value::Int(1), "{what}");
    assert_eq!(job_field(&got[16], "claimed"), Value::Int(2), "{what}");
    assert_eq!(error_code(&got[17]), "NOJOB", "{what}");
}

const JOB_ROUND: usize = 18;

/// The first lease token of round `k` (0, 1, ... on one server) of [`job_round`]: the Redis engine counts
/// tokens per queue, the embedded engine across queues (each round claims twice).
fn round_token(embedded: bool, k: usize) -> i64 {
    if embedded { 2 * k as i64 + 1 } else { 1 }
}

/// Job operations in a pipeline on the Redis engine, on RESP2 (those that are one script on a known
/// queue are answered later and travel together) and RESP3 (each runs as a task the connection waits
/// for): every reply the right one, in order, errors in the middle included, as the embedded engine
/// answers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_operations_in_a_pipeline_answer_in_order_with_errors_in_the_middle() {
    let redis = RedisServer::start("pipeline-jobs").await;
    let node = redis.node().await;
    let embedded = common::start().await;
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    for (name, server) in [("redis engine", &node), ("embedded", &embedded)] {
        for (proto, client) in [("RESP2", server.client()), ("RESP3", server.client3())] {
            let mut conn = client.get_multiplexed_async_connection_with_config(&config).await.unwrap();
            let first = if proto == "RESP2" { 1 } else { 101 };
            let _: () = cmd(&mut conn, &["SET", "n", &(first - 1).to_string()]).await.unwrap();
            let done_before = if proto == "RESP2" { 0 } else { 30 };
            for batch in 0..3 {
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                for (i, r) in (first + batch * 10..first + batch * 10 + 10).enumerate() {
                    job_round(&mut pipe, r, round_token(name == "embedded", done_before + batch * 10 + i));
                }
                let replies: Vec<Value> = pipe.query_async(&mut conn).await.unwrap();
                assert_eq!(replies.len(), 10 * JOB_ROUND, "{name} {proto}");
                for (i, got) in replies.chunks(JOB_ROUND).enumerate() {
                    check_job_round(got, first + batch * 10 + i, round_token(name == "embedded", done_before + batch * 10 + i));
                }
            }
        }
    }
}
