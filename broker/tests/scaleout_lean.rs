//! The node's own connection to Redis (`remote/lean.rs`): what goes through it is answered exactly as
//! before, whatever the client's protocol, and a connection lost mid-pipeline answers every request, in
//! order, with its reply or a clear error.

mod common;

use common::redis_server::RedisServer;
use common::{cmd, start};
use redis::Value;

/// Plain commands, Herald's domain commands (one script each on the Redis engine) and errors of every
/// origin in the middle: Redis's own (WRONGTYPE, not an integer, an unknown command is the node's), a
/// script's (a revision conflict), the node's (arity).
const MIXED: &[&[&str]] = &[
    &["SET", "k", "v"],
    &["BB.SET", "s", "a", "1"],
    &["INCR", "k"],
    &["BB.SET", "s"],
    &["HSET", "k", "f", "v"],
    &["BB.SET", "s", "a", "2", "IFREV", "7"],
    &["BB.GET", "s", "a"],
    &["NOSUCHCOMMAND", "x"],
    &["GET", "k"],
    &["GET", "missing"],
    &["LPOP", "missing", "2"],
    &["MSG.SEND", "m", "t", "hello"],
    &["RPUSH", "l", "a", "b"],
    &["MSG.RECV", "m", "t"],
    &["LRANGE", "l", "0", "-1"],
    &["STREAM.WRITE", "x", "e1"],
    &["ZADD", "z", "1.5", "m"],
    &["ZSCORE", "z", "m"],
    &["STREAM.WRITE", "x", "e2"],
    &["BB.DEL", "s", "a"],
    &["EXISTS", "k", "l", "nope"],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_of_plain_and_domain_commands_with_errors_in_the_middle_answers_as_the_embedded_engine() {
    let redis = RedisServer::start("lean-mixed").await;
    let node = redis.node().await;
    let embedded = start().await;
    let through = common::pipeline(&mut node.conn().await, MIXED).await;
    let reference = common::pipeline(&mut embedded.conn().await, MIXED).await;
    assert_eq!(through.len(), MIXED.len());
    for (i, (a, b)) in through.iter().zip(&reference).enumerate() {
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "reply {i} to {:?}", MIXED[i]);
    }
    assert!(matches!(&through[2], Value::ServerError(e) if e.code() == "ERR"), "{:?}", through[2]);
    assert!(matches!(&through[4], Value::ServerError(e) if e.code() == "WRONGTYPE"), "{:?}", through[4]);
    assert_eq!(through[10], Value::Nil);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp3_replies_keep_their_shape_through_the_node() {
    let redis = RedisServer::start("lean-resp3").await;
    let node = redis.node().await;
    let plain: &[&[&str]] = &[
        &["HSET", "h", "a", "1", "b", "2"],
        &["HGETALL", "h"],
        &["SADD", "set", "x"],
        &["SMEMBERS", "set"],
        &["ZADD", "z", "1.5", "m"],
        &["ZSCORE", "z", "m"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["GET", "missing"],
        &["LPOP", "missing", "2"],
        &["INCRBYFLOAT", "f", "0.25"],
        &["HSET", "set", "f", "v"],
        &["XADD", "st", "1-1", "f", "v"],
        &["XRANGE", "st", "-", "+"],
        &["XREAD", "STREAMS", "st", "0"],
        &["EXISTS", "h", "set"],
    ];
    let resp3 = |url: String| async move {
        let client = redis::Client::open(format!("{url}?protocol=resp3")).unwrap();
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        client.get_multiplexed_async_connection_with_config(&config).await.unwrap()
    };
    let through = common::pipeline(&mut resp3(node.url()).await, plain).await;
    let straight = common::pipeline(&mut resp3(redis.url()).await, &[&["FLUSHALL"]]).await;
    assert_eq!(straight, vec![Value::Okay]);
    let straight = common::pipeline(&mut resp3(redis.url()).await, plain).await;
    for (i, (a, b)) in through.iter().zip(&straight).enumerate() {
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "reply {i} to {:?}", plain[i]);
    }
    assert!(matches!(through[1], Value::Map(_)), "{:?}", through[1]);
    assert!(matches!(through[3], Value::Set(_)), "{:?}", through[3]);
    assert_eq!(through[5], Value::Double(1.5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_to_redis_dropped_mid_pipeline_answers_every_request_in_order() {
    let redis = RedisServer::start("lean-dropped").await;
    let node = redis.node().await;
    let mut direct = redis.conn().await;
    let mut conn = node.conn().await;
    let mut last = 0;
    let (mut answered, mut failed) = (0, 0);
    for round in 0..20 {
        let commands: Vec<&[&str]> =
            (0..500).map(|i| if i % 7 == 3 { &["BB.SET", "s", "k", "v"][..] } else { &["INCR", "n"][..] }).collect();
        let pipeline = common::pipeline(&mut conn, &commands);
        let kill = async {
            // The node's shared connections (normal clients; its bridge is a pub-sub one), while the
            // pipeline is on its way through them.
            tokio::task::yield_now().await;
            let _: Value = cmd(&mut direct, &["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]).await.unwrap();
        };
        let (replies, ()) = tokio::join!(pipeline, kill);
        assert_eq!(replies.len(), commands.len(), "round {round}: a reply for every request");
        for (i, reply) in replies.iter().enumerate() {
            match reply {
                Value::Int(n) if commands[i][0] == "INCR" => {
                    assert!(*n > last, "round {round}, reply {i}: {n} after {last}: out of order");
                    last = *n;
                    answered += 1;
                }
                Value::Int(_) => answered += 1,
                Value::ServerError(e) => {
                    let text = format!("{e:?}");
                    assert!(text.contains("redis engine unavailable"), "round {round}, reply {i}: {text}");
                    failed += 1;
                }
                other => panic!("round {round}, reply {i} to {:?}: {other:?}", commands[i]),
            }
        }
    }
    assert_eq!(answered + failed, 20 * 500);
    eprintln!("{answered} answered, {failed} failed on a killed connection");
    // And the node serves again on a new connection.
    let n: i64 = cmd(&mut conn, &["INCR", "n"]).await.unwrap();
    assert!(n > last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_redis_went_away_answers_errors_and_serves_again_once_it_is_back() {
    let mut redis = RedisServer::start("lean-restart").await;
    let node = redis.node().await;
    let mut conn = node.conn().await;
    let _: () = cmd(&mut conn, &["SET", "k", "1"]).await.unwrap();
    redis.stop();
    let err = cmd::<Value>(&mut conn, &["GET", "k"]).await.unwrap_err();
    assert!(err.to_string().contains("redis engine unavailable"), "{err}");
    let err = cmd::<Value>(&mut conn, &["BB.GET", "s", "k"]).await.unwrap_err();
    assert!(err.to_string().contains("redis engine unavailable"), "{err}");
    redis.restart().await;
    let set: Value = cmd(&mut conn, &["SET", "k", "2"]).await.unwrap();
    assert_eq!(set, Value::Okay);
    let rev: i64 = cmd(&mut conn, &["BB.SET", "s", "k", "v"]).await.unwrap();
    assert_eq!(rev, 1);
}
