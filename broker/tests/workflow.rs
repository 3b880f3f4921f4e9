//! Workflow communication through a real client: streams (write / read from an offset / close),
//! mailboxes (send / blocking recv, exactly once, FIFO), and the DBOS and KayGraph patterns built on
//! them.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{TestServer, cmd, eventually, start, until_blocked};
use redis::Value;

/// STREAM.READ's reply as (entries, next, closed).
fn parse_read(v: Value) -> (Vec<(i64, String)>, i64, bool) {
    let Value::Array(items) = v else { panic!("not an array: {v:?}") };
    let (mut entries, mut next, mut closed) = (Vec::new(), -1, false);
    for pair in items.chunks(2) {
        let Value::BulkString(name) = &pair[0] else { panic!("field name") };
        match (name.as_slice(), &pair[1]) {
            (b"entries", Value::Array(list)) => {
                for e in list {
                    let Value::Array(e) = e else { panic!("entry") };
                    let (Value::Int(o), Value::BulkString(d)) = (&e[0], &e[1]) else { panic!("entry shape") };
                    entries.push((*o, String::from_utf8(d.clone()).unwrap()));
                }
            }
            (b"next", Value::Int(n)) => next = *n,
            (b"closed", Value::Int(c)) => closed = *c == 1,
            _ => {}
        }
    }
    (entries, next, closed)
}

async fn stream_write_read_close_and_resume_from_an_offset(server: &TestServer) {
    let mut w = server.conn().await;
    for i in 0..5 {
        assert_eq!(cmd::<i64>(&mut w, &["STREAM.WRITE", "progress", &format!("step {i}")]).await.unwrap(), i);
    }
    let mut r = server.conn().await;
    let (entries, next, closed) = parse_read(cmd(&mut r, &["STREAM.READ", "progress", "FROM", "0", "COUNT", "2"]).await.unwrap());
    assert_eq!(entries, vec![(0, "step 0".into()), (1, "step 1".into())]);
    assert_eq!((next, closed), (2, false));
    // A reader that reconnects resumes from the offset it saw last and misses nothing.
    drop(r);
    let mut r = server.conn().await;
    let (entries, next, _) = parse_read(cmd(&mut r, &["STREAM.READ", "progress", "FROM", "2"]).await.unwrap());
    assert_eq!(entries.iter().map(|e| e.0).collect::<Vec<_>>(), [2, 3, 4]);
    assert_eq!(next, 5);
    assert_eq!(cmd::<i64>(&mut w, &["STREAM.CLOSE", "progress"]).await.unwrap(), 1);
    let err = cmd::<i64>(&mut w, &["STREAM.WRITE", "progress", "late"]).await.unwrap_err();
    assert_eq!(err.code(), Some("CLOSED"));
    let (entries, _, closed) = parse_read(cmd(&mut r, &["STREAM.READ", "progress", "FROM", "5"]).await.unwrap());
    assert!(entries.is_empty() && closed, "the reader sees the end");
}

async fn blocking_stream_read_is_woken_by_a_write_and_by_close(server: &TestServer) {
    let mut r = server.conn().await;
    let reader =
        tokio::spawn(async move { parse_read(cmd(&mut r, &["STREAM.READ", "live", "FROM", "0", "BLOCK", "5000"]).await.unwrap()) });
    until_blocked(server, 1).await;
    let mut w = server.conn().await;
    let _: i64 = cmd(&mut w, &["STREAM.WRITE", "live", "hello"]).await.unwrap();
    assert_eq!(reader.await.unwrap().0, vec![(0, "hello".into())]);
    let mut r = server.conn().await;
    let reader = tokio::spawn(async move { parse_read(cmd(&mut r, &["STREAM.READ", "live", "FROM", "1", "BLOCK", "0"]).await.unwrap()) });
    until_blocked(server, 1).await;
    let _: i64 = cmd(&mut w, &["STREAM.CLOSE", "live"]).await.unwrap();
    let (entries, next, closed) = reader.await.unwrap();
    assert!(entries.is_empty() && closed && next == 1);
    let mut r = server.conn().await;
    let timed_out: Value = cmd(&mut r, &["STREAM.READ", "quiet", "BLOCK", "50"]).await.unwrap();
    assert_eq!(timed_out, Value::Nil);
}

async fn trimmed_offsets_are_reported(server: &TestServer) {
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["STREAM.CONFIG", "s", "MAXLEN", "3"]).await.unwrap();
    for i in 0..10 {
        let _: i64 = cmd(&mut c, &["STREAM.WRITE", "s", &i.to_string()]).await.unwrap();
    }
    let err = cmd::<Value>(&mut c, &["STREAM.READ", "s", "FROM", "2"]).await.unwrap_err();
    assert_eq!(err.code(), Some("TRIMMED"));
    assert!(err.detail().unwrap().contains("oldest retained offset is 7"), "{err:?}");
    let info: Vec<Value> = cmd(&mut c, &["STREAM.INFO", "s"]).await.unwrap();
    assert!(info.contains(&Value::BulkString(b"first".to_vec())) && info.contains(&Value::Int(7)));
    // A stream deleted and re-created is a different epoch: a reader holding the old one is told.
    let epoch = match &info[info.iter().position(|v| v == &Value::BulkString(b"epoch".to_vec())).unwrap() + 1] {
        Value::Int(e) => *e,
        other => panic!("{other:?}"),
    };
    let _: i64 = cmd(&mut c, &["STREAM.DEL", "s"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["STREAM.WRITE", "s", "new life"]).await.unwrap();
    let err = cmd::<Value>(&mut c, &["STREAM.READ", "s", "FROM", "0", "EPOCH", &epoch.to_string()]).await.unwrap_err();
    assert_eq!(err.code(), Some("STALE"));
}

async fn mailbox_messages_are_fifo_and_consumed_once_by_competing_receivers(server: &TestServer) {
    let mut receivers = Vec::new();
    for _ in 0..2 {
        let mut c = server.conn().await;
        receivers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(m) = cmd::<Option<String>>(&mut c, &["MSG.RECV", "worker", "tasks", "TIMEOUT", "300"]).await.unwrap() {
                got.push(m);
            }
            got
        }));
    }
    until_blocked(server, 2).await;
    let mut s = server.conn().await;
    for i in 0..200 {
        let _: i64 = cmd(&mut s, &["MSG.SEND", "worker", "tasks", &format!("t{i:03}")]).await.unwrap();
    }
    let mut all = Vec::new();
    for r in receivers {
        let got = r.await.unwrap();
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(got, sorted, "each receiver sees its messages in send order");
        all.extend(got);
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!((all.len(), unique.len()), (200, 200), "every message delivered exactly once");
}

async fn topicless_messages_and_idempotent_sends(server: &TestServer) {
    let mut c = server.conn().await;
    let first: i64 = cmd(&mut c, &["MSG.SEND", "wf-1", "", "plain", "IDEMPOTENCY", "send-1"]).await.unwrap();
    let again: i64 = cmd(&mut c, &["MSG.SEND", "wf-1", "", "plain", "IDEMPOTENCY", "send-1"]).await.unwrap();
    assert_eq!(first, again, "a repeated idempotency key does not deliver twice");
    let _: i64 = cmd(&mut c, &["MSG.SEND", "wf-1", "approvals", "yes"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["MSG.LEN", "wf-1"]).await.unwrap(), 2);
    assert_eq!(cmd::<i64>(&mut c, &["MSG.LEN", "wf-1", ""]).await.unwrap(), 1);
    assert_eq!(cmd::<Option<String>>(&mut c, &["MSG.RECV", "wf-1", ""]).await.unwrap().as_deref(), Some("plain"));
    assert_eq!(cmd::<Option<String>>(&mut c, &["MSG.RECV", "wf-1", ""]).await.unwrap(), None, "topicless sees only topicless");
    assert_eq!(cmd::<Option<String>>(&mut c, &["MSG.RECV", "wf-1", "approvals"]).await.unwrap().as_deref(), Some("yes"));
}

/// DBOS: an approval gate that waits at most one second, once approved in time and once not.
async fn dbos_approval_gate_with_a_timeout_both_ways(server: &TestServer) {
    let mut workflow = server.conn().await;
    let mut approver = server.conn().await;
    let gate = tokio::spawn(async move {
        cmd::<Option<String>>(&mut workflow, &["MSG.RECV", "order-7", "approval", "TIMEOUT", "1000"]).await.unwrap()
    });
    until_blocked(server, 1).await;
    let _: i64 = cmd(&mut approver, &["MSG.SEND", "order-7", "approval", "approved"]).await.unwrap();
    assert_eq!(gate.await.unwrap().as_deref(), Some("approved"));
    let mut workflow = server.conn().await;
    let started = std::time::Instant::now();
    let nobody: Option<String> = cmd(&mut workflow, &["MSG.RECV", "order-8", "approval", "TIMEOUT", "1000"]).await.unwrap();
    assert_eq!(nobody, None, "no approval within the timeout");
    assert!(started.elapsed() >= Duration::from_millis(900), "it did wait");
}

/// DBOS: a live progress stream read to its close while the workflow writes it.
async fn dbos_live_progress_stream_read_to_its_close(server: &TestServer) {
    let mut workflow = server.conn().await;
    let mut reader = server.conn().await;
    let follow = tokio::spawn(async move {
        let (mut from, mut seen) = (0, Vec::new());
        loop {
            let (entries, next, closed) =
                parse_read(cmd(&mut reader, &["STREAM.READ", "job-9:progress", "FROM", &from.to_string(), "BLOCK", "5000"]).await.unwrap());
            seen.extend(entries.into_iter().map(|e| e.1));
            from = next;
            if closed {
                return seen;
            }
        }
    });
    for pct in [10, 50, 90, 100] {
        let _: i64 = cmd(&mut workflow, &["STREAM.WRITE", "job-9:progress", &format!("{pct}%")]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _: i64 = cmd(&mut workflow, &["STREAM.CLOSE", "job-9:progress"]).await.unwrap();
    assert_eq!(follow.await.unwrap(), ["10%", "50%", "90%", "100%"]);
}

/// DBOS multi-stage pipeline / KayGraph pipeline: each stage receives from its mailbox and sends on.
async fn multi_stage_pipeline_over_mailboxes(server: &TestServer) {
    let stages = [("parse", "enrich"), ("enrich", "store")];
    let mut handles = Vec::new();
    for (inbox, next) in stages {
        let mut c = server.conn().await;
        handles.push(tokio::spawn(async move {
            while let Some(m) = cmd::<Option<String>>(&mut c, &["MSG.RECV", inbox, "", "TIMEOUT", "500"]).await.unwrap() {
                let _: i64 = cmd(&mut c, &["MSG.SEND", next, "", &format!("{m}>{inbox}")]).await.unwrap();
            }
        }));
    }
    let mut src = server.conn().await;
    for i in 0..20 {
        let _: i64 = cmd(&mut src, &["MSG.SEND", "parse", "", &format!("doc{i}")]).await.unwrap();
    }
    let mut sink = server.conn().await;
    for i in 0..20 {
        let got: String = cmd(&mut sink, &["MSG.RECV", "store", "", "TIMEOUT", "5000"]).await.unwrap();
        assert_eq!(got, format!("doc{i}>parse>enrich"), "FIFO through every stage");
    }
    for h in handles {
        h.await.unwrap();
    }
}

/// KayGraph producer-consumer and request-response: a worker answers on the caller's reply box.
async fn request_response_with_a_reply_mailbox(server: &TestServer) {
    let mut service = server.conn().await;
    let worker = tokio::spawn(async move {
        for _ in 0..3 {
            let req: String = cmd(&mut service, &["MSG.RECV", "square-service", "", "TIMEOUT", "5000"]).await.unwrap();
            let (reply_to, n) = req.split_once(':').unwrap();
            let n: i64 = n.parse().unwrap();
            let _: i64 = cmd(&mut service, &["MSG.SEND", reply_to, "", &(n * n).to_string()]).await.unwrap();
        }
    });
    let mut client = server.conn().await;
    for n in [3, 4, 5] {
        let _: i64 = cmd(&mut client, &["MSG.SEND", "square-service", "", &format!("client-1:{n}")]).await.unwrap();
        let answer: i64 = cmd(&mut client, &["MSG.RECV", "client-1", "", "TIMEOUT", "5000"]).await.unwrap();
        assert_eq!(answer, n * n);
    }
    worker.await.unwrap();
}

/// KayGraph fan-out / fan-in: one producer, several workers on a Redis list, one aggregator.
async fn fan_out_fan_in(server: &TestServer) {
    let mut producer = server.conn().await;
    let mut workers = Vec::new();
    for w in 0..4 {
        let mut c = server.conn().await;
        workers.push(tokio::spawn(async move {
            loop {
                let got: Value = cmd(&mut c, &["BLPOP", "numbers", "0.3"]).await.unwrap();
                let Value::Array(kv) = got else { break };
                let Value::BulkString(n) = &kv[1] else { panic!() };
                let n: i64 = std::str::from_utf8(n).unwrap().parse().unwrap();
                let _: i64 = cmd(&mut c, &["MSG.SEND", "aggregator", "", &format!("{w}:{}", n * 2)]).await.unwrap();
            }
        }));
    }
    for n in 1..=100 {
        let _: i64 = cmd(&mut producer, &["RPUSH", "numbers", &n.to_string()]).await.unwrap();
    }
    let mut agg = server.conn().await;
    let mut sum = 0;
    for _ in 0..100 {
        let m: String = cmd(&mut agg, &["MSG.RECV", "aggregator", "", "TIMEOUT", "5000"]).await.unwrap();
        sum += m.split_once(':').unwrap().1.parse::<i64>().unwrap();
    }
    assert_eq!(sum, 2 * 5050);
    for w in workers {
        w.await.unwrap();
    }
}

/// DBOS events: the workflow publishes progress with set_event, a client follows it with get_event
/// (BB.WAIT AFTER the revision it has seen).
#[tokio::test]
async fn dbos_progress_events() {
    let server = start().await;
    let mut client = server.conn().await;
    let follower = tokio::spawn(async move {
        let (mut seen, mut rev) = (Vec::new(), 0);
        while seen.last().map(String::as_str) != Some("100") {
            let v: Value = cmd(&mut client, &["BB.WAIT", "wf-12", "progress", "AFTER", &rev.to_string(), "TIMEOUT", "5000"]).await.unwrap();
            let Value::Array(f) = v else { panic!("timed out") };
            let (Value::BulkString(value), Value::Int(r)) = (&f[1], &f[3]) else { panic!("{f:?}") };
            seen.push(String::from_utf8(value.clone()).unwrap());
            rev = *r;
        }
        seen
    });
    let mut workflow = server.conn().await;
    for pct in ["25", "50", "75", "100"] {
        let _: i64 = cmd(&mut workflow, &["BB.SET", "wf-12", "progress", pct]).await.unwrap();
        eventually(|| server.broker.lock().blocking.len() == 1 || pct == "100").await;
    }
    let seen = follower.await.unwrap();
    assert_eq!(seen.last().map(String::as_str), Some("100"));
    assert!(seen.windows(2).all(|w| w[0].parse::<u32>().unwrap() < w[1].parse::<u32>().unwrap()), "{seen:?}");
}

on_both_engines!(
    stream_write_read_close_and_resume_from_an_offset,
    blocking_stream_read_is_woken_by_a_write_and_by_close,
    trimmed_offsets_are_reported,
    dbos_live_progress_stream_read_to_its_close,
    mailbox_messages_are_fifo_and_consumed_once_by_competing_receivers,
    topicless_messages_and_idempotent_sends,
    dbos_approval_gate_with_a_timeout_both_ways,
    multi_stage_pipeline_over_mailboxes,
    request_response_with_a_reply_mailbox,
    fan_out_fan_in,
);
