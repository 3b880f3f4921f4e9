//! Discovery through a real client: JOB.QUEUES, BL.BOARDS, BB.SCOPES, MSG.DESTS and STREAM.LIST list
//! what exists, by pattern and with a cursor, each entry with its size and state.

mod common;

use std::collections::HashMap;

use common::{cmd, fields, int, start, text};
use redis::Value;
use redis::aio::MultiplexedConnection;

type Entry = HashMap<String, Value>;

/// Walks a listing to its end with `COUNT count` and the given options; every entry as a field map.
async fn walk(c: &mut MultiplexedConnection, command: &str, count: usize, options: &[&str]) -> Vec<Entry> {
    let mut cursor = "0".to_string();
    let mut entries = Vec::new();
    loop {
        let count = count.to_string();
        let mut parts = vec![command, &cursor, "COUNT", &count];
        parts.extend_from_slice(options);
        let (next, page): (String, Vec<Value>) = cmd(c, &parts).await.unwrap();
        assert!(page.len() <= count.parse().unwrap(), "a page holds at most COUNT entries");
        entries.extend(page.into_iter().map(fields));
        if next == "0" {
            return entries;
        }
        cursor = next;
    }
}

fn by<'a>(entries: &'a [Entry], field: &str, name: &str) -> &'a Entry {
    entries.iter().find(|e| text(&e[field]) == name).unwrap_or_else(|| panic!("no {name} in {entries:?}"))
}

fn ints(e: &Entry, names: &[&str]) -> Vec<i64> {
    names.iter().map(|n| int(&e[*n])).collect()
}

#[tokio::test]
async fn job_queues_list_every_queue_with_its_counts() {
    let server = start().await;
    let mut c = server.conn().await;
    for i in 0..25 {
        let _: String = cmd(&mut c, &["JOB.SUBMIT", &format!("q{i}"), "p"]).await.unwrap();
    }
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "mail", "a"]).await.unwrap();
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "mail", "b", "DELAY", "60000"]).await.unwrap();
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "mail", "c"]).await.unwrap();
    let _: () = cmd(&mut c, &["JOB.QUEUE", "mail", "CONCURRENCY", "4"]).await.unwrap();
    let _: () = cmd(&mut c, &["JOB.QUEUE", "mail", "PAUSE"]).await.unwrap();
    let _: () = cmd(&mut c, &["JOB.QUEUE", "mail", "RESUME"]).await.unwrap();
    let _: Value = cmd(&mut c, &["JOB.CLAIM", "mail"]).await.unwrap();

    let all = walk(&mut c, "JOB.QUEUES", 4, &[]).await;
    assert_eq!(all.len(), 26, "every queue once");
    let mail = by(&all, "queue", "mail");
    assert_eq!(ints(mail, &["queued", "delayed", "running", "dead", "paused", "concurrency"]), [1, 1, 1, 0, 0, 4]);

    let matched = walk(&mut c, "JOB.QUEUES", 100, &["MATCH", "q1*"]).await;
    let mut names: Vec<String> = matched.iter().map(|e| text(&e["queue"])).collect();
    names.sort();
    assert_eq!(names, ["q1", "q10", "q11", "q12", "q13", "q14", "q15", "q16", "q17", "q18", "q19"]);
}

#[tokio::test]
async fn boards_scopes_mailboxes_and_streams_are_listed_with_their_sizes() {
    let server = start().await;
    let mut c = server.conn().await;

    let _: String = cmd(&mut c, &["BL.PUBLISH", "tasks", r#"{"n":1}"#]).await.unwrap();
    let _: String = cmd(&mut c, &["BL.PUBLISH", "tasks", r#"{"n":2}"#]).await.unwrap();
    let _: String = cmd(&mut c, &["BL.PUBLISH", "notes", r#"{"n":3}"#, "SCOPE", "team"]).await.unwrap();
    let _: Value = cmd(&mut c, &["BL.RETRIEVE", "tasks", "LOCK", "60000"]).await.unwrap();
    let boards = walk(&mut c, "BL.BOARDS", 1, &[]).await;
    assert_eq!(boards.len(), 2);
    assert_eq!(ints(by(&boards, "board", "tasks"), &["items", "leased", "dead"]), [2, 1, 0]);
    assert_eq!(text(&by(&boards, "board", "notes")["scope"]), "team");
    let team = walk(&mut c, "BL.BOARDS", 10, &["SCOPE", "team"]).await;
    assert_eq!(team.iter().map(|e| text(&e["board"])).collect::<Vec<_>>(), ["notes"]);

    let _: Value = cmd(&mut c, &["BB.SET", "run1", "a", "1"]).await.unwrap();
    let _: Value = cmd(&mut c, &["BB.SET", "run1", "a", "2"]).await.unwrap();
    let _: Value = cmd(&mut c, &["BB.SET", "run1", "b", "3"]).await.unwrap();
    let _: Value = cmd(&mut c, &["BB.SET", "run2", "c", "4"]).await.unwrap();
    let scopes = walk(&mut c, "BB.SCOPES", 2, &["MATCH", "run*"]).await;
    assert_eq!(scopes.len(), 2);
    assert_eq!(ints(by(&scopes, "scope", "run1"), &["keys", "seq", "journal"]), [2, 3, 3]);
    let names: Vec<String> = cmd(&mut c, &["BB.SCOPES"]).await.unwrap();
    assert_eq!(names, ["", "run1", "run2"], "without a cursor: every name, as before");

    let _: Value = cmd(&mut c, &["MSG.SEND", "wf", "t", "1"]).await.unwrap();
    let _: Value = cmd(&mut c, &["MSG.SEND", "wf", "t", "2"]).await.unwrap();
    let _: Value = cmd(&mut c, &["MSG.SEND", "wf", "other", "3"]).await.unwrap();
    let dests = walk(&mut c, "MSG.DESTS", 10, &[]).await;
    let wf = by(&dests, "dest", "wf");
    assert_eq!(int(&wf["length"]), 3);
    let topics: HashMap<String, i64> = fields(wf["topics"].clone()).iter().map(|(k, v)| (k.clone(), int(v))).collect();
    assert_eq!(topics, HashMap::from([("t".to_string(), 2), ("other".to_string(), 1)]));

    for data in ["a", "b", "c"] {
        let _: i64 = cmd(&mut c, &["STREAM.WRITE", "out", data]).await.unwrap();
    }
    let _: i64 = cmd(&mut c, &["STREAM.CLOSE", "out"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["STREAM.CLOSE", "empty"]).await.unwrap();
    let streams = walk(&mut c, "STREAM.LIST", 10, &[]).await;
    let out = by(&streams, "stream", "out");
    assert_eq!(ints(out, &["length", "first", "last"]), [3, 0, 2]);
    assert_eq!(out["closed"], Value::Int(1));
    assert_eq!(by(&streams, "stream", "empty")["last"], Value::Nil);
}

#[tokio::test]
async fn listings_reject_bad_arguments_as_scan_does() {
    let server = start().await;
    let mut c = server.conn().await;
    for command in ["JOB.QUEUES", "BL.BOARDS", "BB.SCOPES", "MSG.DESTS", "STREAM.LIST"] {
        let bad_cursor = cmd::<Value>(&mut c, &[command, "x"]).await.unwrap_err();
        assert_eq!(bad_cursor.detail(), Some("invalid cursor"), "{command}");
        let bad_count = cmd::<Value>(&mut c, &[command, "0", "COUNT", "0"]).await.unwrap_err();
        assert_eq!(bad_count.code(), Some("ERR"), "{command}");
        assert!(cmd::<Value>(&mut c, &[command, "0", "MATCH"]).await.is_err(), "{command}");
        let (next, page): (String, Vec<Value>) = cmd(&mut c, &[command, "0", "MATCH", "nothing-*"]).await.unwrap();
        assert_eq!((next.as_str(), page.len()), ("0", 0), "{command}");
    }
    assert!(cmd::<Value>(&mut c, &["JOB.QUEUES", "0", "SCOPE", "s"]).await.is_err(), "SCOPE is BL.BOARDS's only");
    assert!(cmd::<Value>(&mut c, &["JOB.QUEUES"]).await.is_err(), "the cursor is required");
}

/// INFO's `field:value` lines of one reply as a map.
fn info_fields(info: &str) -> HashMap<String, String> {
    info.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn info_has_a_section_per_domain_in_all_and_by_name() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: Value = cmd(&mut c, &["BB.SET", "run1", "a", "1"]).await.unwrap();
    let _: Value = cmd(&mut c, &["BB.SET", "run1", "b", "2"]).await.unwrap();
    let _: String = cmd(&mut c, &["BL.PUBLISH", "tasks", r#"{"n":1}"#]).await.unwrap();
    let _: String = cmd(&mut c, &["BL.PUBLISH", "tasks", r#"{"n":2}"#]).await.unwrap();
    let _: Value = cmd(&mut c, &["BL.RETRIEVE", "tasks", "LOCK", "60000"]).await.unwrap();
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "q", "a"]).await.unwrap();
    let _: String = cmd(&mut c, &["JOB.SUBMIT", "q", "b", "DELAY", "60000"]).await.unwrap();
    let claimed = fields(cmd::<Value>(&mut c, &["JOB.CLAIM", "q"]).await.unwrap());
    let _: () = cmd(&mut c, &["JOB.COMPLETE", &text(&claimed["id"]), &int(&claimed["token"]).to_string(), "done"]).await.unwrap();
    let _: Value = cmd(&mut c, &["MSG.SEND", "wf", "t", "1"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["STREAM.WRITE", "out", "abc"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["STREAM.CLOSE", "out"]).await.unwrap();

    let default: String = cmd(&mut c, &["INFO"]).await.unwrap();
    assert!(!default.contains("# Jobs"), "the default set stays Redis's");
    let all: String = cmd(&mut c, &["INFO", "all"]).await.unwrap();
    for header in ["# Server", "# Keyspace", "# Blackboard", "# Bulletin", "# Jobs", "# Mailboxes", "# Streams"] {
        assert!(all.contains(header), "INFO all lacks {header}: {all}");
    }
    let f = info_fields(&all);
    let expect = [
        ("blackboard_scopes", "1"),
        ("blackboard_keys", "2"),
        ("blackboard_journal_entries", "2"),
        ("bulletin_boards", "1"),
        ("bulletin_items", "2"),
        ("bulletin_leased", "1"),
        ("bulletin_dead", "0"),
        ("jobs_queues", "1"),
        ("jobs_queued", "0"),
        ("jobs_delayed", "1"),
        ("jobs_running", "0"),
        ("jobs_submitted_total", "2"),
        ("jobs_completed_total", "1"),
        ("mailboxes_destinations", "1"),
        ("mailboxes_messages", "1"),
        ("streams", "1"),
        ("streams_entries", "1"),
        ("streams_bytes", "3"),
        ("streams_closed", "1"),
    ];
    for (field, value) in expect {
        assert_eq!(f.get(field).map(String::as_str), Some(value), "{field} in {all}");
    }
    let jobs: String = cmd(&mut c, &["INFO", "JOBS"]).await.unwrap();
    assert!(jobs.starts_with("# Jobs\r\n") && !jobs.contains("# Server"), "{jobs}");
    let two: String = cmd(&mut c, &["INFO", "streams", "mailboxes"]).await.unwrap();
    assert!(two.contains("# Streams\r\nstreams:1") && two.contains("\r\n\r\n# Mailboxes\r\n"), "{two:?}");
}

#[tokio::test]
async fn info_clients_counts_connections_per_transport() {
    let server = start().await;
    let mut c = server.conn().await;
    let mut ws = server.ws().await;
    assert_eq!(ws.result(serde_json::json!(["PING"])).await, serde_json::json!("PONG"));
    let clients: String = cmd(&mut c, &["INFO", "clients"]).await.unwrap();
    let f = info_fields(&clients);
    let counts = [&f["herald_resp_clients"], &f["herald_websocket_clients"], &f["herald_http_clients"]];
    assert_eq!(counts.map(String::as_str), ["1", "1", "0"], "{clients}");
    assert_eq!(f["connected_clients"], "2");
}

#[tokio::test]
async fn info_reports_per_second_rates_as_redis_samples_them() {
    let server = start().await;
    let mut c = server.conn().await;
    let stats: String = cmd(&mut c, &["INFO", "stats"]).await.unwrap();
    for field in ["instantaneous_ops_per_sec", "instantaneous_input_kbps", "instantaneous_output_kbps"] {
        assert!(info_fields(&stats).contains_key(field), "{field} in {stats}");
    }
    let jobs: String = cmd(&mut c, &["INFO", "jobs"]).await.unwrap();
    for field in ["jobs_submitted_per_sec", "jobs_completed_per_sec", "jobs_failed_per_sec"] {
        assert!(info_fields(&jobs).contains_key(field), "{field} in {jobs}");
    }
    // Commands keep flowing (each poll is one), so the sampled rate comes above zero; bounded wait.
    for _ in 0..500 {
        let mut pipe = redis::pipe();
        for _ in 0..50 {
            pipe.cmd("PING");
        }
        let _: Vec<String> = pipe.query_async(&mut c).await.unwrap();
        let stats: String = cmd(&mut c, &["INFO", "stats"]).await.unwrap();
        if info_fields(&stats)["instantaneous_ops_per_sec"] != "0" {
            let _: () = cmd(&mut c, &["CONFIG", "RESETSTAT"]).await.unwrap();
            let after: String = cmd(&mut c, &["INFO", "stats"]).await.unwrap();
            assert_eq!(info_fields(&after)["instantaneous_ops_per_sec"], "0", "RESETSTAT clears the samples");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("instantaneous_ops_per_sec stayed 0");
}
