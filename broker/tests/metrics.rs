//! `GET /metrics` (docs/operations.md): scraped over HTTP while the `redis` crate and a WebSocket client
//! use the broker, checked with a strict reading of the Prometheus text format (every sample belongs to
//! a family announced by `# HELP` and `# TYPE`, names and labels well formed, histogram buckets
//! cumulative and ending in `+Inf` equal to `_count`), and checked to move with the commands run.

mod common;

use std::collections::HashMap;

use common::{cmd, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One scrape: status line, headers, body (the connection closes after it).
async fn scrape(addr: std::net::SocketAddr) -> (String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: herald.test\r\n\r\n").await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses the exposition text strictly; samples keyed by `name{labels}` as written.
fn parse(body: &str) -> HashMap<String, f64> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helped = std::collections::HashSet::new();
    let mut samples = HashMap::new();
    assert!(body.ends_with('\n'), "the text ends with a newline");
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP has text");
            assert!(valid_name(name) && !help.is_empty() && helped.insert(name.to_owned()), "{line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(helped.contains(name), "TYPE after HELP: {line}");
            assert!(types.insert(name.to_owned(), kind.to_owned()).is_none(), "one TYPE per family: {line}");
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "unexpected line {line:?}");
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("a numeric value: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(valid_name(name), "{line}");
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            let inner = labels.strip_prefix('{').and_then(|l| l.strip_suffix('}')).expect("labels in braces");
            for pair in inner.split(',') {
                let (k, v) = pair.split_once('=').expect("label=value");
                assert!(valid_name(k) && v.len() >= 2 && v.starts_with('"') && v.ends_with('"'), "{line}");
            }
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.get(*f).is_some_and(|t| t == "histogram")))
            .unwrap_or(name);
        assert!(types.contains_key(family), "sample of an announced family: {line}");
        assert!(samples.insert(series.to_owned(), value).is_none(), "no duplicate series: {line}");
    }
    samples
}

#[tokio::test]
async fn scrape_reflects_what_clients_do() {
    let server = start().await;
    let mut con = server.conn().await;
    let (head, body) = scrape(server.http).await;
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    let before = parse(&body);
    assert_eq!(before["herald_connected_clients{transport=\"resp\"}"], 1.0);
    assert_eq!(before["herald_connected_clients{transport=\"websocket\"}"], 0.0);
    assert_eq!(before["herald_persistence_enabled"], 0.0);
    assert!(before["herald_memory_used_bytes"] > 0.0 || before.contains_key("herald_memory_used_bytes"));

    let mut ws = server.ws().await;
    let ack = ws.result(serde_json::json!(["SUBSCRIBE", "news"])).await;
    for i in 0..10 {
        let _: () = cmd(&mut con, &["SET", &format!("k{i}"), "v"]).await.unwrap();
    }
    let _: () = cmd(&mut con, &["SET", "ttl", "v", "EX", "100"]).await.unwrap();
    let _: Option<String> = cmd(&mut con, &["GET", "missing"]).await.unwrap();
    let _: String = cmd(&mut con, &["JOB.SUBMIT", "q", "{}"]).await.unwrap();
    let delivered: i64 = cmd(&mut con, &["PUBLISH", "news", "hi"]).await.unwrap();
    assert_eq!(delivered, 1, "the WebSocket client is subscribed ({ack})");

    let after = parse(&scrape(server.http).await.1);
    assert_eq!(after["herald_connected_clients{transport=\"websocket\"}"], 1.0);
    assert_eq!(after["herald_keyspace_keys{db=\"0\"}"], 11.0);
    assert_eq!(after["herald_keyspace_expires{db=\"0\"}"], 1.0);
    assert_eq!(after["herald_keyspace_misses_total"], before["herald_keyspace_misses_total"] + 1.0);
    assert_eq!(after["herald_jobs"], 1.0);
    assert_eq!(after["herald_pubsub_channels{kind=\"plain\"}"], 1.0);
    assert_eq!(after["herald_pubsub_messages_total"], before["herald_pubsub_messages_total"] + 1.0);
    assert!(after["herald_commands_processed_total"] >= before["herald_commands_processed_total"] + 15.0);
    assert!(after["herald_net_input_bytes_total"] > before["herald_net_input_bytes_total"]);

    // The latency histograms: one per family used, buckets cumulative up to +Inf == _count.
    let strings = "herald_command_duration_seconds_count{family=\"string\"}";
    assert!(after[strings] >= 12.0, "SET x11 and GET: {}", after[strings]);
    assert_eq!(after["herald_command_duration_seconds_count{family=\"jobs\"}"], 1.0);
    assert!(after["herald_command_duration_seconds_sum{family=\"string\"}"] > 0.0);
    let mut buckets: Vec<(f64, f64)> = after
        .iter()
        .filter_map(|(k, v)| {
            let le = k.strip_prefix("herald_command_duration_seconds_bucket{family=\"string\",le=\"")?.strip_suffix("\"}")?;
            Some((if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap() }, *v))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() > 5 && buckets.last().unwrap().0.is_infinite());
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "cumulative: {buckets:?}");
    assert_eq!(buckets.last().unwrap().1, after[strings]);

    // CONFIG RESETSTAT clears the counters and histograms, not the gauges.
    let _: () = cmd(&mut con, &["CONFIG", "RESETSTAT"]).await.unwrap();
    let reset = parse(&scrape(server.http).await.1);
    assert!(!reset.contains_key(strings), "histogram of string commands cleared");
    assert_eq!(reset["herald_keyspace_keys{db=\"0\"}"], 11.0);
    server.stop().await;
}

#[tokio::test]
async fn other_methods_are_refused() {
    let server = start().await;
    let mut stream = TcpStream::connect(server.http).await.unwrap();
    stream.write_all(b"POST /metrics HTTP/1.1\r\nHost: herald.test\r\nContent-Length: 0\r\n\r\n").await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 405"), "{raw}");
    server.stop().await;
}

#[tokio::test]
async fn per_object_gauges_follow_queues_boards_mailboxes_and_streams() {
    let mut config = herald_broker::Config::for_tests();
    config.metrics.max_objects = 2;
    let server = common::start_with(config).await;
    let mut con = server.conn().await;
    for _ in 0..3 {
        let _: String = cmd(&mut con, &["JOB.SUBMIT", "emails", "{}"]).await.unwrap();
    }
    let _: String = cmd(&mut con, &["JOB.SUBMIT", "emails", "{}", "DELAY", "60000"]).await.unwrap();
    let _: redis::Value = cmd(&mut con, &["JOB.CLAIM", "emails"]).await.unwrap();
    let _: String = cmd(&mut con, &["JOB.SUBMIT", "reports", "{}"]).await.unwrap();
    // Past the bound of two: the smallest queue is summed under "_other".
    let _: String = cmd(&mut con, &["JOB.SUBMIT", "tiny", "{}", "DELAY", "60000"]).await.unwrap();
    let _: String = cmd(&mut con, &["BL.PUBLISH", "tasks", r#"{"n":1}"#, "SCOPE", "team"]).await.unwrap();
    let _: String = cmd(&mut con, &["BL.PUBLISH", "tasks", r#"{"n":2}"#, "SCOPE", "team"]).await.unwrap();
    let _: redis::Value = cmd(&mut con, &["BL.RETRIEVE", "tasks", "SCOPE", "team", "LOCK", "60000"]).await.unwrap();
    let _: String = cmd(&mut con, &["MSG.SEND", "worker-1", "jobs", "hello"]).await.unwrap();
    let _: String = cmd(&mut con, &["MSG.SEND", "worker-1", "other", "again"]).await.unwrap();
    for i in 0..5 {
        let _: i64 = cmd(&mut con, &["STREAM.WRITE", "wf:\"quoted\"", &format!("chunk {i}")]).await.unwrap();
    }

    let m = parse(&scrape(server.http).await.1);
    assert_eq!(m["herald_objects{kind=\"queue\"}"], 3.0);
    assert_eq!(m["herald_queue_jobs_queued{queue=\"emails\"}"], 2.0);
    assert_eq!(m["herald_queue_jobs_delayed{queue=\"emails\"}"], 1.0);
    assert_eq!(m["herald_queue_jobs_running{queue=\"emails\"}"], 1.0);
    assert_eq!(m["herald_queue_jobs_queued{queue=\"reports\"}"], 1.0);
    assert!(!m.contains_key("herald_queue_jobs_delayed{queue=\"tiny\"}"), "past the bound");
    assert_eq!(m["herald_queue_jobs_delayed{queue=\"_other\"}"], 1.0);
    assert_eq!(m["herald_board_items{scope=\"team\",board=\"tasks\"}"], 2.0);
    assert_eq!(m["herald_board_items_leased{scope=\"team\",board=\"tasks\"}"], 1.0);
    assert_eq!(m["herald_board_items_dead{scope=\"team\",board=\"tasks\"}"], 0.0);
    assert_eq!(m["herald_mailbox_messages{dest=\"worker-1\"}"], 2.0);
    assert_eq!(m["herald_stream_entries{stream=\"wf:\\\"quoted\\\"\"}"], 5.0);
    assert!(m["herald_stream_bytes{stream=\"wf:\\\"quoted\\\"\"}"] >= 35.0);
    server.stop().await;
}
