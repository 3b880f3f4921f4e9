//! Schemas through a real client: a JSON Schema attached to a board, a job queue, a mailbox topic or
//! a blackboard scope refuses writes that do not validate with `-SCHEMA <json-pointer>: <reason>`,
//! and nothing is stored. On both engines; on the Redis engine a schema set on one node guards the
//! writes of every node.

mod common;

use std::time::Duration;

use common::redis_server::RedisServer;
use common::{TestServer, cmd, data_dir, rewrite, start_persistent};
use redis::Value;

const TASK: &str = r#"{"type": "object", "properties": {"task_id": {"type": "string"}, "priority": {"type": "integer", "minimum": 0}}, "required": ["task_id"]}"#;

async fn refused(c: &mut redis::aio::MultiplexedConnection, args: &[&str]) -> String {
    let err = cmd::<Value>(c, args).await.unwrap_err();
    assert_eq!(err.code(), Some("SCHEMA"), "{args:?}: {err}");
    err.detail().unwrap_or_default().to_owned()
}

async fn every_guarded_write_must_validate_and_nothing_is_stored_otherwise(server: &TestServer) {
    let mut c = server.conn().await;
    for (kind, name) in [("board", "tasks"), ("queue", "work"), ("topic", "orders"), ("scope", "agents")] {
        let _: () = cmd(&mut c, &["SCHEMA.SET", kind, name, TASK]).await.unwrap();
        assert_eq!(cmd::<String>(&mut c, &["SCHEMA.GET", kind, name]).await.unwrap(), TASK);
    }
    let good = r#"{"task_id": "t1", "priority": 2}"#;
    let bad = r#"{"task_id": "t1", "priority": -1}"#;
    // Boards.
    assert_eq!(refused(&mut c, &["BL.PUBLISH", "tasks", bad]).await, "/priority: value is less than the minimum of 0");
    assert_eq!(cmd::<i64>(&mut c, &["BL.LEN", "tasks"]).await.unwrap(), 0);
    let _: String = cmd(&mut c, &["BL.PUBLISH", "tasks", good]).await.unwrap();
    let _: String = cmd(&mut c, &["BL.PUBLISH", "tasks", bad, "SCOPE", "elsewhere"]).await.unwrap();
    // Job queues.
    assert_eq!(refused(&mut c, &["JOB.SUBMIT", "work", r#"{"priority": 1}"#]).await, ": \"task_id\" is a required property");
    assert!(cmd::<Vec<String>>(&mut c, &["JOB.LIST", "work"]).await.unwrap().is_empty());
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "work", good]).await.unwrap();
    // Mailbox topics, in every mailbox, for sends and requests.
    assert!(refused(&mut c, &["MSG.SEND", "anyone", "orders", "not json"]).await.starts_with(": the message is not JSON"));
    refused(&mut c, &["MSG.REQUEST", "svc", "orders", "[]", "TIMEOUT", "10"]).await;
    assert_eq!(cmd::<i64>(&mut c, &["MSG.LEN", "anyone"]).await.unwrap(), 0);
    let _: i64 = cmd(&mut c, &["MSG.SEND", "anyone", "other-topic", "not json"]).await.unwrap();
    // Blackboard scopes.
    assert_eq!(refused(&mut c, &["BB.SET", "agents", "a1", r#"{"task_id": 7}"#]).await, "/task_id: value is not of type \"string\"");
    assert_eq!(cmd::<Value>(&mut c, &["BB.GET", "agents", "a1"]).await.unwrap(), Value::Nil);
    let _: i64 = cmd(&mut c, &["BB.SET", "agents", "a1", good]).await.unwrap();
    // Inside a transaction the refusal is that command's reply; the others run (one node: the Redis
    // engine's transactions hold plain commands only).
    if server.broker.remote.is_none() {
        let mut raw = server.raw().await;
        for args in [&["MULTI"][..], &["BB.SET", "agents", "a2", "{}"], &["BL.PUBLISH", "tasks", good], &["EXEC"]] {
            raw.cmd(args).await;
        }
        raw.expect("+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n-SCHEMA : \"task_id\" is a required property\r\n$").await;
    }
    // Removing the schema lets anything through again.
    assert_eq!(cmd::<i64>(&mut c, &["SCHEMA.DEL", "queue", "work"]).await.unwrap(), 1);
    assert_eq!(cmd::<i64>(&mut c, &["SCHEMA.DEL", "queue", "work"]).await.unwrap(), 0);
    assert_eq!(cmd::<Value>(&mut c, &["SCHEMA.GET", "queue", "work"]).await.unwrap(), Value::Nil);
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "work", "plain text"]).await.unwrap();
}

async fn bad_schemas_and_bad_input_are_refused_clearly(server: &TestServer) {
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["SCHEMA.SET", "board", "b", r#"{"type": "object"}"#, "SCOPE", "team"]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut c, &["SCHEMA.GET", "board", "b"]).await.unwrap(), Value::Nil, "another scope's board");
    assert!(refused(&mut c, &["BL.PUBLISH", "b", "[1]", "SCOPE", "team"]).await.starts_with(": value is not of type"));
    for (args, expected) in [
        (&["SCHEMA.SET", "board", "b", "{"][..], "the schema is not JSON"),
        (&["SCHEMA.SET", "board", "b", r#"{"type": 12}"#][..], "invalid JSON Schema"),
        (&["SCHEMA.SET", "board", "b", r#"{"$ref": "https://example.com/s.json"}"#][..], "invalid JSON Schema"),
        (&["SCHEMA.SET", "table", "b", "{}"][..], "unknown schema kind 'table'"),
        (&["SCHEMA.SET", "queue", "q", "{}", "SCOPE", "s"][..], "SCOPE applies to boards only"),
        (&["SCHEMA.SET", "scope", "", "{}"][..], "the global scope"),
        (&["SCHEMA.SET", "board", "b"][..], "wrong number of arguments"),
        (&["SCHEMA.GET", "board", "b", "extra"][..], "syntax error"),
        (&["SCHEMA.DEL", "board"][..], "wrong number of arguments"),
    ] {
        let err = cmd::<Value>(&mut c, args).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{args:?}: {err}");
    }
}

on_both_engines!(every_guarded_write_must_validate_and_nothing_is_stored_otherwise, bad_schemas_and_bad_input_are_refused_clearly);

/// Two nodes on one redis-server: a schema set on node A guards node B's writes (once B's replica has it:
/// a moment after), and deleting it on B frees A's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_set_on_one_node_guards_every_node() {
    let redis = RedisServer::start("schemas_two_nodes").await;
    let (a, b) = (redis.node().await, redis.node().await);
    let (mut ca, mut cb) = (a.conn().await, b.conn().await);
    let _: () = cmd(&mut ca, &["SCHEMA.SET", "queue", "work", TASK]).await.unwrap();
    assert_eq!(cmd::<String>(&mut cb, &["SCHEMA.GET", "queue", "work"]).await.unwrap(), TASK);
    let mut refused_on_b = false;
    for _ in 0..500 {
        match cmd::<Value>(&mut cb, &["JOB.SUBMIT", "work", "{}"]).await {
            Err(e) if e.code() == Some("SCHEMA") => {
                refused_on_b = true;
                break;
            }
            Err(e) => panic!("{e}"),
            Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    assert!(refused_on_b, "node B never applied node A's schema");
    assert_eq!(cmd::<i64>(&mut cb, &["SCHEMA.DEL", "queue", "work"]).await.unwrap(), 1);
    let mut accepted_on_a = false;
    for _ in 0..500 {
        if cmd::<String>(&mut ca, &["JOB.SUBMIT", "work", "{}"]).await.is_ok() {
            accepted_on_a = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(accepted_on_a, "node A never dropped the schema node B deleted");
}

/// Schemas survive a restart (from the log, then from a snapshot), and keep refusing.
#[tokio::test]
async fn schemas_survive_restarts() {
    let dir = data_dir("schemas");
    for step in 0..3 {
        let server = start_persistent(&dir).await;
        let mut c = server.conn().await;
        if step == 0 {
            let _: () = cmd(&mut c, &["SCHEMA.SET", "topic", "orders", TASK]).await.unwrap();
            let _: () = cmd(&mut c, &["SCHEMA.SET", "queue", "gone", TASK]).await.unwrap();
            let _: i64 = cmd(&mut c, &["SCHEMA.DEL", "queue", "gone"]).await.unwrap();
        } else {
            assert_eq!(cmd::<String>(&mut c, &["SCHEMA.GET", "topic", "orders"]).await.unwrap(), TASK, "step {step}");
            assert_eq!(cmd::<Value>(&mut c, &["SCHEMA.GET", "queue", "gone"]).await.unwrap(), Value::Nil);
            refused(&mut c, &["MSG.SEND", "d", "orders", "{}"]).await;
            rewrite(&mut c).await;
        }
        server.stop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
