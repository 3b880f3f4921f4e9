//! The blackboard through a real client: the seeds' patterns (basic, TTL, reactive, multi-scope),
//! compare-and-swap under contention, waits, watch events with values, and resuming with BB.CHANGES.

mod common;

use std::time::Duration;

use common::{cmd, eventually, start, start_with};
use futures_util::StreamExt;
use herald_broker::Config;
use redis::Value;
use serde_json::{Value as Json, json};

/// A BB.GET reply (a map: flat array in RESP2) as (value, revision, ttl).
fn entry(v: Value) -> Option<(String, i64, i64)> {
    let Value::Array(items) = v else { return None };
    let field = |name: &[u8]| {
        let i = items.iter().position(|x| x == &Value::BulkString(name.to_vec())).unwrap();
        items[i + 1].clone()
    };
    let Value::BulkString(value) = field(b"value") else { panic!() };
    let (Value::Int(rev), Value::Int(ttl)) = (field(b"revision"), field(b"ttl")) else { panic!() };
    Some((String::from_utf8(value).unwrap(), rev, ttl))
}

async fn next_event(stream: &mut (impl futures_util::Stream<Item = redis::Msg> + Unpin)) -> Json {
    let msg = tokio::time::timeout(Duration::from_secs(30), stream.next()).await.expect("an event").unwrap();
    serde_json::from_slice(&msg.get_payload::<Vec<u8>>().unwrap()).unwrap()
}

/// Every bulk string inside a reply, in order (for replies whose exact nesting does not matter).
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::BulkString(b) => vec![String::from_utf8_lossy(b).into_owned()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn basic_usage_and_the_global_scope_is_the_keyspace() {
    let server = start().await;
    let mut c = server.conn().await;
    assert_eq!(cmd::<i64>(&mut c, &["BB.SET", "", "config", r#"{"model":"gpt-4"}"#]).await.unwrap(), 1);
    assert_eq!(cmd::<i64>(&mut c, &["BB.SET", "session_001", "user_session", "user123"]).await.unwrap(), 1);
    assert_eq!(cmd::<String>(&mut c, &["GET", "config"]).await.unwrap(), r#"{"model":"gpt-4"}"#, "global BB keys are Redis keys");
    let _: () = cmd(&mut c, &["SET", "config", "v2"]).await.unwrap();
    assert_eq!(entry(cmd(&mut c, &["BB.GET", "", "config"]).await.unwrap()), Some(("v2".into(), 2, -1)), "a plain SET is revision 2");
    assert_eq!(entry(cmd(&mut c, &["BB.GET", "session_001", "user_session"]).await.unwrap()).unwrap().0, "user123");
    assert_eq!(cmd::<Value>(&mut c, &["BB.GET", "session_001", "config"]).await.unwrap(), Value::Nil, "scopes are isolated");
    assert_eq!(cmd::<i64>(&mut c, &["BB.HAS", "", "config"]).await.unwrap(), 1);
    assert_eq!(cmd::<Vec<String>>(&mut c, &["BB.SCOPES"]).await.unwrap(), ["", "session_001"]);
    let value: Vec<u8> = vec![0, 255, 10, 13];
    let _: i64 = redis::cmd("BB.SET").arg("bin").arg("k").arg(&value).query_async(&mut c).await.unwrap();
    let got: Value = cmd(&mut c, &["BB.GET", "bin", "k"]).await.unwrap();
    let Value::Array(fields) = got else { panic!() };
    assert_eq!(fields[1], Value::BulkString(value), "values are binary-safe");
}

#[tokio::test]
async fn ttl_on_every_write_and_multi_scope_stats() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: i64 = cmd(&mut c, &["BB.SET", "agent_001", "temp_token", "abc123", "EX", "300"]).await.unwrap();
    let (_, _, ttl) = entry(cmd(&mut c, &["BB.GET", "agent_001", "temp_token"]).await.unwrap()).unwrap();
    assert!((299_000..=300_000).contains(&ttl), "{ttl}");
    // An update can set a new TTL (NATS KV cannot).
    let _: i64 = cmd(&mut c, &["BB.SET", "agent_001", "temp_token", "def456", "PX", "1000"]).await.unwrap();
    let (_, rev, ttl) = entry(cmd(&mut c, &["BB.GET", "agent_001", "temp_token"]).await.unwrap()).unwrap();
    assert_eq!(rev, 2);
    assert!(ttl <= 1000);
    let _: i64 = cmd(&mut c, &["BB.SET", "agent_001", "current_task", "analyze_data"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["BB.SET", "agent_002", "current_task", "generate_report"]).await.unwrap();
    let _: Value = cmd(&mut c, &["BB.GET", "agent_001", "missing"]).await.unwrap();
    let stats: Vec<Value> = cmd(&mut c, &["BB.STATS", "agent_001"]).await.unwrap();
    let field = |name: &str| stats[stats.iter().position(|v| v == &Value::BulkString(name.as_bytes().to_vec())).unwrap() + 1].clone();
    assert_eq!(
        (field("keys"), field("sets"), field("gets"), field("hits"), field("misses")),
        (Value::Int(2), Value::Int(3), Value::Int(3), Value::Int(2), Value::Int(1))
    );
    assert_eq!(cmd::<Vec<String>>(&mut c, &["BB.KEYS", "agent_001", "current_*"]).await.unwrap(), ["current_task"]);
    assert_eq!(cmd::<i64>(&mut c, &["BB.CLEAR", "agent_001"]).await.unwrap(), 2);
    assert_eq!(cmd::<i64>(&mut c, &["BB.HAS", "agent_002", "current_task"]).await.unwrap(), 1, "clearing one scope leaves the others");
}

#[tokio::test]
async fn compare_and_swap_race_has_exactly_one_winner() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: i64 = cmd(&mut c, &["BB.SET", "race", "counter", "0"]).await.unwrap();
    for round in 1..=5 {
        let mut racers = Vec::new();
        for id in 0..16 {
            let mut conn = server.conn().await;
            racers.push(tokio::spawn(async move {
                let won = cmd::<i64>(&mut conn, &["BB.SET", "race", "counter", &format!("winner-{id}"), "IFREV", &round.to_string()]).await;
                match won {
                    Ok(rev) => Some(rev),
                    Err(e) => {
                        assert_eq!(e.code(), Some("CONFLICT"));
                        assert!(e.detail().unwrap().contains(&format!("revision {}", round + 1)), "{e:?}");
                        None
                    }
                }
            }));
        }
        let winners: Vec<i64> = futures_util::future::join_all(racers).await.into_iter().filter_map(|r| r.unwrap()).collect();
        assert_eq!(winners, vec![round + 1], "exactly one IFREV {round} wins");
    }
}

#[tokio::test]
async fn watches_carry_values_for_set_delete_and_expire() {
    let server = start().await;
    let mut c = server.conn().await;
    let mut sub = server.client().get_async_pubsub().await.unwrap();
    sub.psubscribe("__bb:*@__:config").await.unwrap();
    sub.psubscribe("__bb:*@__:cache_*").await.unwrap();
    let mut events = sub.on_message();
    let _: () = cmd(&mut c, &["SET", "config", r#"{"model":"gpt-3.5-turbo"}"#]).await.unwrap();
    let e = next_event(&mut events).await;
    assert_eq!(
        (&e["event"], &e["key"], &e["value"], &e["revision"]),
        (&json!("set"), &json!("config"), &json!(r#"{"model":"gpt-3.5-turbo"}"#), &json!(1))
    );
    let _: i64 = cmd(&mut c, &["BB.SET", "", "cache_user_data", r#"{"id":123}"#, "PX", "50"]).await.unwrap();
    assert_eq!(next_event(&mut events).await["event"], json!("set"));
    let expired = next_event(&mut events).await;
    assert_eq!((&expired["event"], &expired["value"]), (&json!("expire"), &json!(r#"{"id":123}"#)), "expiry carries the expired value");
    let _: i64 = cmd(&mut c, &["DEL", "config"]).await.unwrap();
    let deleted = next_event(&mut events).await;
    assert_eq!((&deleted["event"], &deleted["value"]), (&json!("del"), &json!(r#"{"model":"gpt-3.5-turbo"}"#)));
    assert!(deleted["seq"].as_u64().unwrap() > expired["seq"].as_u64().unwrap());
}

#[tokio::test]
async fn revisions_reach_watchers_without_gaps() {
    let server = start().await;
    let mut sub = server.client().get_async_pubsub().await.unwrap();
    sub.psubscribe("__bb:*@jobs__:*").await.unwrap();
    let mut events = sub.on_message();
    let mut writers = Vec::new();
    for w in 0..4 {
        let mut c = server.conn().await;
        writers.push(tokio::spawn(async move {
            for i in 0..25 {
                let _: i64 = cmd(&mut c, &["BB.SET", "jobs", "state", &format!("{w}-{i}")]).await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    for expected in 1..=100 {
        assert_eq!(next_event(&mut events).await["revision"], json!(expected));
    }
}

#[tokio::test]
async fn bb_wait_is_woken_by_a_set_and_times_out() {
    let server = start().await;
    let mut waiter = server.conn().await;
    let wait = tokio::spawn(async move { cmd::<Value>(&mut waiter, &["BB.WAIT", "wf-1", "result", "TIMEOUT", "5000"]).await.unwrap() });
    eventually(|| server.broker.lock().blocking.len() == 1).await;
    let mut setter = server.conn().await;
    let _: i64 = cmd(&mut setter, &["BB.SET", "wf-1", "result", "done"]).await.unwrap();
    assert_eq!(entry(wait.await.unwrap()).unwrap().0, "done");
    // AFTER rev waits for the next revision, even from a plain SET on the global scope.
    let _: () = cmd(&mut setter, &["SET", "progress", "10%"]).await.unwrap();
    let mut waiter = server.conn().await;
    let wait =
        tokio::spawn(
            async move { cmd::<Value>(&mut waiter, &["BB.WAIT", "", "progress", "AFTER", "1", "TIMEOUT", "5000"]).await.unwrap() },
        );
    eventually(|| server.broker.lock().blocking.len() == 1).await;
    let _: () = cmd(&mut setter, &["SET", "progress", "50%"]).await.unwrap();
    assert_eq!(entry(wait.await.unwrap()), Some(("50%".into(), 2, -1)));
    let nothing: Value = cmd(&mut setter, &["BB.WAIT", "wf-1", "never", "TIMEOUT", "50"]).await.unwrap();
    assert_eq!(nothing, Value::Nil);
    let err = cmd::<Value>(&mut setter, &["BB.WAIT", "wf-1", "never", "AFTER", "1"]).await.unwrap_err();
    assert!(err.detail().unwrap().contains("TIMEOUT"));
}

#[tokio::test]
async fn a_watcher_that_reconnects_resumes_with_changes() {
    let mut config = Config::for_tests();
    config.blackboard.journal_max_entries = 20;
    let server = start_with(config).await;
    let mut c = server.conn().await;
    let mut sub = server.client().get_async_pubsub().await.unwrap();
    sub.psubscribe("__bb:*@team__:*").await.unwrap();
    let last_seen = {
        let mut events = sub.on_message();
        let _: i64 = cmd(&mut c, &["BB.SET", "team", "a", "1"]).await.unwrap();
        let _: i64 = cmd(&mut c, &["BB.SET", "team", "b", "2"]).await.unwrap();
        next_event(&mut events).await;
        next_event(&mut events).await["seq"].as_u64().unwrap()
    };
    drop(sub);
    // While the watcher is away:
    let _: i64 = cmd(&mut c, &["BB.SET", "team", "a", "3"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["BB.DEL", "team", "b"]).await.unwrap();
    let missed: Value = cmd(&mut c, &["BB.CHANGES", "team", "SINCE", &last_seen.to_string()]).await.unwrap();
    let text = strings(&missed);
    let events: Vec<&str> = text.iter().map(String::as_str).filter(|s| matches!(*s, "set" | "del")).collect();
    assert_eq!(events, ["set", "del"], "{text:?}");
    assert!(text.iter().any(|s| s == "3") && text.iter().any(|s| s == "2"), "values included: {text:?}");
    // Far behind: the log no longer reaches back, and the watcher is told so.
    for i in 0..30 {
        let _: i64 = cmd(&mut c, &["BB.SET", "team", "x", &i.to_string()]).await.unwrap();
    }
    let err = cmd::<Value>(&mut c, &["BB.CHANGES", "team", "SINCE", &last_seen.to_string()]).await.unwrap_err();
    assert_eq!(err.code(), Some("LOST"));
    // ...so it re-reads the scope, and resumes from the position the re-read reflects.
    let all: Value = cmd(&mut c, &["BB.GETALL", "team"]).await.unwrap();
    let text = strings(&all);
    assert!(text.contains(&"x".to_owned()) && text.contains(&"29".to_owned()) && !text.contains(&"b".to_owned()), "{text:?}");
    let Value::Array(top) = all else { panic!() };
    let Value::Int(seq) = top[1] else { panic!("{top:?}") };
    let _: i64 = cmd(&mut c, &["BB.SET", "team", "a", "after"]).await.unwrap();
    let next: Value = cmd(&mut c, &["BB.CHANGES", "team", "SINCE", &seq.to_string()]).await.unwrap();
    assert!(strings(&next).contains(&"after".to_owned()));
}

/// Expiry events fire from the timer at the deadline: checked on tokio's paused clock, so the
/// assertion is about virtual time, not about how busy the machine is.
#[tokio::test(start_paused = true)]
async fn expire_events_fire_at_the_deadline() {
    let server = start().await;
    let mut c = server.conn().await;
    let mut sub = server.client().get_async_pubsub().await.unwrap();
    sub.psubscribe("__bb:*@timers__:*").await.unwrap();
    let mut events = sub.on_message();
    let _: i64 = cmd(&mut c, &["BB.SET", "timers", "lease", "v", "PX", "5000"]).await.unwrap();
    assert_eq!(next_event(&mut events).await["event"], json!("set"));
    let set_at = tokio::time::Instant::now();
    let e = next_event(&mut events).await;
    let after = set_at.elapsed();
    assert_eq!(e["event"], json!("expire"));
    assert!(after >= Duration::from_millis(4_990) && after <= Duration::from_millis(5_100), "fired {after:?} after the set");
}

/// FLUSHALL empties named scopes too, with WATCHed keys in database 0 and a scope that has none (it
/// used to index the WATCH registry past the numbered databases and panic under the state lock).
#[tokio::test]
async fn flushall_with_named_scopes_and_watches() {
    let server = start().await;
    let mut c = server.conn().await;
    let mut watcher = server.conn().await;
    let _: i64 = cmd(&mut c, &["BB.SET", "s", "k", "v"]).await.unwrap();
    let _: () = cmd(&mut c, &["SET", "w", "1"]).await.unwrap();
    let _: () = cmd(&mut watcher, &["WATCH", "w"]).await.unwrap();
    let _: () = cmd(&mut c, &["FLUSHALL"]).await.unwrap();
    assert_eq!(cmd::<Value>(&mut c, &["BB.GET", "s", "k"]).await.unwrap(), Value::Nil);
    let _: () = cmd(&mut c, &["FLUSHDB"]).await.unwrap();
    // The broker still serves commands that take the state lock, and the WATCH saw the flush.
    assert_eq!(cmd::<i64>(&mut c, &["DBSIZE"]).await.unwrap(), 0);
    let mut tx = redis::pipe();
    tx.atomic().cmd("SET").arg("w").arg("2");
    let aborted: Value = tx.query_async(&mut watcher).await.unwrap();
    assert_eq!(aborted, Value::Nil, "EXEC aborted: the watched key was flushed");
}
