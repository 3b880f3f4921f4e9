//! Schemas through a real client: a JSON Schema attached to a board, a job queue, a mailbox topic or
//! a blackboard scope refuses writes that do not validate with `-SCHEMA <json-pointer>: <reason>`,
//! and nothing is stored.

mod common;

use common::{cmd, data_dir, rewrite, start, start_persistent};
use redis::Value;

const TASK: &str = r#"{"type": "object", "properties": {"task_id": {"type": "string"}, "priority": {"type": "integer", "minimum": 0}}, "required": ["task_id"]}"#;

async fn refused(c: &mut redis::aio::MultiplexedConnection, args: &[&str]) -> String {
    let err = cmd::<Value>(c, args).await.unwrap_err();
    assert_eq!(err.code(), Some("SCHEMA"), "{args:?}: {err}");
    err.detail().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn every_guarded_write_must_validate_and_nothing_is_stored_otherwise() {
    let server = start().await;
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
    // Inside a transaction the refusal is that command's reply; the others run.
    let mut raw = server.raw().await;
    for args in [&["MULTI"][..], &["BB.SET", "agents", "a2", "{}"], &["BL.PUBLISH", "tasks", good], &["EXEC"]] {
        raw.cmd(args).await;
    }
    raw.expect("+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n-SCHEMA : \"task_id\" is a required property\r\n$").await;
    // Removing the schema lets anything through again.
    assert_eq!(cmd::<i64>(&mut c, &["SCHEMA.DEL", "queue", "work"]).await.unwrap(), 1);
    assert_eq!(cmd::<i64>(&mut c, &["SCHEMA.DEL", "queue", "work"]).await.unwrap(), 0);
    assert_eq!(cmd::<Value>(&mut c, &["SCHEMA.GET", "queue", "work"]).await.unwrap(), Value::Nil);
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "work", "plain text"]).await.unwrap();
}

#[tokio::test]
async fn bad_schemas_and_bad_input_are_refused_clearly() {
    let server = start().await;
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
