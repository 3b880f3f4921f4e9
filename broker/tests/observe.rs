//! SLOWLOG, LATENCY and MONITOR through real clients (the `redis` crate, a raw socket for MONITOR's
//! stream, the WebSocket for its JSON push).

mod common;

use common::{cmd, start};
use redis::Value;

/// A script that runs for a while (no sleep in Lua: a loop), so it is slow without a clock in the test.
const BUSY: &str = "local i = 0 while i < 3000000 do i = i + 1 end return i";

fn bulk(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("not a bulk string: {other:?}"),
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        other => panic!("not an integer: {other:?}"),
    }
}

fn array(v: &Value) -> &[Value] {
    match v {
        Value::Array(items) => items,
        other => panic!("not an array: {other:?}"),
    }
}

#[tokio::test]
async fn slowlog_records_with_redis_shapes_and_bounds() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["CLIENT", "SETNAME", "slowpoke"]).await.unwrap();
    let _: () = cmd(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]).await.unwrap();
    let _: () = cmd(&mut c, &["SLOWLOG", "RESET"]).await.unwrap();
    let long = "x".repeat(200);
    let _: () = cmd(&mut c, &["SET", "k", &long]).await.unwrap();
    let many: Vec<String> = (0..40).map(|i| format!("a{i}")).collect();
    let mut del = vec!["DEL"];
    del.extend(many.iter().map(String::as_str));
    let _: i64 = cmd(&mut c, &del).await.unwrap();
    let _: redis::RedisResult<()> = cmd(&mut c, &["AUTH", "nobody", "secret"]).await;
    let entries: Value = cmd(&mut c, &["SLOWLOG", "GET", "-1"]).await.unwrap();
    let entries = array(&entries);
    // Newest first: AUTH, DEL, SET, and the SLOWLOG RESET before them.
    let auth = array(&entries[0]);
    assert_eq!(auth.len(), 6);
    assert_eq!(array(&auth[3]).iter().map(bulk).collect::<Vec<_>>(), ["AUTH", "(redacted)", "(redacted)"]);
    assert_eq!(bulk(&auth[5]), "slowpoke");
    assert!(bulk(&auth[4]).starts_with("127.0.0.1:"), "{:?}", auth[4]);
    let del = array(&array(&entries[1])[3]);
    assert_eq!(del.len(), 32);
    assert_eq!(bulk(&del[30]), "a29");
    assert_eq!(bulk(&del[31]), "... (10 more arguments)");
    let set = array(&array(&entries[2])[3]);
    assert_eq!(bulk(&set[2]), format!("{}... (72 more bytes)", "x".repeat(128)));
    let ids: Vec<i64> = entries.iter().map(|e| int(&array(e)[0])).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1] + 1), "ids count down: {ids:?}");
    let two: Value = cmd(&mut c, &["SLOWLOG", "GET", "2"]).await.unwrap();
    assert_eq!(array(&two).len(), 2);
    let _: () = cmd(&mut c, &["CONFIG", "SET", "slowlog-max-len", "1"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["SLOWLOG", "LEN"]).await.unwrap(), 1);
    let max: Vec<String> = cmd(&mut c, &["CONFIG", "GET", "slowlog-max-len"]).await.unwrap();
    assert_eq!(max, ["slowlog-max-len", "1"]);
    // Off: nothing is logged however slow.
    let _: () = cmd(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "-1"]).await.unwrap();
    let _: () = cmd(&mut c, &["SLOWLOG", "RESET"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["EVAL", BUSY, "0"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["SLOWLOG", "LEN"]).await.unwrap(), 0);
    let err = cmd::<()>(&mut c, &["SLOWLOG", "GET", "-2"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("count should be greater than or equal to -1"));
}

#[tokio::test]
async fn exec_logs_its_commands_and_scripts_log_only_themselves() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]).await.unwrap();
    let _: () = cmd(&mut c, &["SLOWLOG", "RESET"]).await.unwrap();
    let mut pipe = redis::pipe();
    pipe.atomic().cmd("SET").arg("a").arg("1").cmd("INCR").arg("a");
    let _: (String, i64) = pipe.query_async(&mut c).await.unwrap();
    let _: i64 = cmd(&mut c, &["EVAL", "return redis.call('INCR', KEYS[1])", "1", "a"]).await.unwrap();
    let entries: Value = cmd(&mut c, &["SLOWLOG", "GET", "-1"]).await.unwrap();
    let names: Vec<String> = array(&entries).iter().map(|e| bulk(&array(&array(e)[3])[0])).collect();
    // No EXEC entry (Redis's skip_slowlog) and no INCR from inside the script.
    assert_eq!(names, ["EVAL", "INCR", "SET", "MULTI", "SLOWLOG"]);
}

#[tokio::test]
async fn latency_monitor_samples_slow_commands() {
    let server = start().await;
    let mut c = server.conn().await;
    let doctor: String = cmd(&mut c, &["LATENCY", "DOCTOR"]).await.unwrap();
    assert!(doctor.starts_with("I'm sorry, Dave, I can't do that. Latency monitoring is disabled"), "{doctor}");
    let _: () = cmd(&mut c, &["CONFIG", "SET", "latency-monitor-threshold", "1"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["EVAL", BUSY, "0"]).await.unwrap();
    let latest: Value = cmd(&mut c, &["LATENCY", "LATEST"]).await.unwrap();
    let event = array(&array(&latest)[0]);
    assert_eq!(bulk(&event[0]), "command");
    let (time, last, max) = (int(&event[1]), int(&event[2]), int(&event[3]));
    assert!(time > 1_600_000_000 && last >= 1 && max >= last, "{event:?}");
    let history: Vec<(i64, i64)> = cmd(&mut c, &["LATENCY", "HISTORY", "command"]).await.unwrap();
    assert_eq!(history.last().copied(), Some((time, last)));
    let doctor: String = cmd(&mut c, &["LATENCY", "DOCTOR"]).await.unwrap();
    assert!(doctor.contains("1. command: 1 latency spikes"), "{doctor}");
    assert!(doctor.contains("'CONFIG SET slowlog-log-slower-than 1000'"), "{doctor}");
    assert_eq!(cmd::<i64>(&mut c, &["LATENCY", "RESET", "COMMAND", "nosuch"]).await.unwrap(), 1);
    let latest: Value = cmd(&mut c, &["LATENCY", "LATEST"]).await.unwrap();
    assert!(array(&latest).is_empty());
    let threshold: Vec<String> = cmd(&mut c, &["CONFIG", "GET", "latency-monitor-threshold"]).await.unwrap();
    assert_eq!(threshold, ["latency-monitor-threshold", "1"]);
}

#[tokio::test]
async fn monitor_streams_commands_as_redis_writes_them() {
    let server = start().await;
    let mut m = server.raw().await;
    m.cmd(&["MONITOR"]).await;
    m.expect("+OK\r\n").await;
    common::eventually(|| server.broker.monitors.active()).await;
    let mut c = server.conn().await;
    let list: String = cmd(&mut c, &["CLIENT", "LIST"]).await.unwrap();
    assert!(list.lines().any(|l| l.contains(" flags=O ") && l.contains(" cmd=monitor ")), "{list}");
    let _: () = cmd(&mut c, &["SET", "k", "a\u{1}b\"c"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["EVAL", "return redis.call('INCR', KEYS[1])", "1", "n"]).await.unwrap();
    let _: redis::RedisResult<()> = cmd(&mut c, &["AUTH", "secret"]).await;
    let _: Vec<String> = cmd(&mut c, &["CONFIG", "GET", "timeout"]).await.unwrap();
    let _: () = cmd(&mut c, &["SELECT", "2"]).await.unwrap();
    let text = m.read_until("\"SELECT\" \"2\"\r\n").await.to_ascii_lowercase();
    let lines: Vec<&str> = text.lines().filter(|l| !l.contains("\"client\"") && !l.contains("\"hello\"")).collect();
    let shown: Vec<&str> = lines.iter().map(|l| l.split_once("] ").expect("a monitor line").1).collect();
    assert_eq!(
        shown,
        [
            r#""set" "k" "a\x01b\"c""#,
            r#""eval" "return redis.call('incr', keys[1])" "1" "n""#,
            r#""incr" "n""#,
            r#""auth" "(redacted)""#,
            r#""select" "2""#,
        ],
        "{text}"
    );
    assert!(lines[0].starts_with('+') && lines[0].contains(" [0 127.0.0.1:"), "{}", lines[0]);
    assert!(lines[2].contains(" [0 lua] "), "{}", lines[2]);
    // The database shown is the one after the command ran, as Redis 7.0 shows SELECT.
    assert!(lines[4].contains(" [2 127.0.0.1:"), "{}", lines[4]);
    drop(m);
    common::eventually(|| !server.broker.monitors.active()).await;
}

#[tokio::test]
async fn monitor_over_websocket_sees_every_wire() {
    let server = start().await;
    let mut monitor = server.ws().await;
    assert_eq!(monitor.result(serde_json::json!(["MONITOR"])).await, serde_json::json!("OK"));
    let mut other = server.ws().await;
    let _ = other.result(serde_json::json!(["SET", "from-ws", "1"])).await;
    let mut resp = server.conn().await;
    let _: Option<String> = cmd(&mut resp, &["GET", "from-resp"]).await.unwrap();
    let mut lines = Vec::new();
    while lines.len() < 2 {
        let push = monitor.recv().await;
        assert_eq!(push["push"], "monitor", "{push}");
        let line = push["data"].as_str().expect("a line").to_string();
        if line.contains("from-") {
            lines.push(line);
        }
    }
    assert!(lines[0].ends_with(r#"] "SET" "from-ws" "1""#), "{lines:?}");
    assert!(lines[1].ends_with(r#"] "GET" "from-resp""#), "{lines:?}");
}
