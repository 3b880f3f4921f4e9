//! Request/reply through a real client: `MSG.REQUEST` waits for the answer, the receiver sees the
//! reply address in what `MSG.RECV` returns and answers with `MSG.REPLY`; the broker correlates,
//! times out, and drops (and counts) late replies.

mod common;

use common::{TestServer, cmd, until_blocked};

fn field(v: &Value, name: &str) -> String {
    common::text(&common::field(v, name))
}
use redis::Value;

async fn stat(c: &mut redis::aio::MultiplexedConnection, name: &str) -> u64 {
    let info: String = cmd(c, &["INFO", "stats"]).await.unwrap();
    let line = info.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {info}"));
    line.split(':').nth(1).unwrap().trim().parse().unwrap()
}

async fn a_request_waits_for_its_reply(server: &TestServer) {
    let mut client = server.conn().await;
    let mut service = server.conn().await;
    let requester =
        tokio::spawn(async move { cmd::<Value>(&mut client, &["MSG.REQUEST", "calc", "add", "2+2", "TIMEOUT", "5000"]).await.unwrap() });
    let request: Value = cmd(&mut service, &["MSG.RECV", "calc", "add", "TIMEOUT", "5000"]).await.unwrap();
    assert_eq!(field(&request, "payload"), "2+2");
    let reply_to = field(&request, "reply_to");
    until_blocked(server, 1).await;
    assert_eq!(cmd::<i64>(&mut service, &["MSG.REPLY", &reply_to, "4"]).await.unwrap(), 1);
    assert_eq!(requester.await.unwrap(), Value::BulkString(b"4".to_vec()));
    assert_eq!(cmd::<i64>(&mut service, &["MSG.REPLY", &reply_to, "4 again"]).await.unwrap(), 0, "answered: dropped");
    // A plain message is still just its payload.
    let _: i64 = cmd(&mut service, &["MSG.SEND", "calc", "add", "plain"]).await.unwrap();
    assert_eq!(cmd::<String>(&mut service, &["MSG.RECV", "calc", "add"]).await.unwrap(), "plain");
}

async fn timeouts_late_replies_and_stale_requests_are_handled_by_the_broker(server: &TestServer) {
    let mut c = server.conn().await;
    let before = stat(&mut c, "herald_msg_replies_dropped").await;
    assert_eq!(cmd::<Value>(&mut c, &["MSG.REQUEST", "svc", "", "slow", "TIMEOUT", "30"]).await.unwrap(), Value::Nil, "no reply: nil");
    // The request's deadline passed: a receiver that gets to it late never sees it.
    assert_eq!(cmd::<Value>(&mut c, &["MSG.RECV", "svc", ""]).await.unwrap(), Value::Nil);
    assert_eq!(stat(&mut c, "herald_msg_requests_expired").await, 1);
    // A reply received in time but answered late is dropped and counted.
    let mut client = server.conn().await;
    let requester =
        tokio::spawn(async move { cmd::<Value>(&mut client, &["MSG.REQUEST", "svc", "", "x", "TIMEOUT", "50"]).await.unwrap() });
    let request: Value = cmd(&mut c, &["MSG.RECV", "svc", "", "TIMEOUT", "5000"]).await.unwrap();
    assert_eq!(requester.await.unwrap(), Value::Nil);
    assert_eq!(cmd::<i64>(&mut c, &["MSG.REPLY", &field(&request, "reply_to"), "late"]).await.unwrap(), 0);
    assert_eq!(cmd::<i64>(&mut c, &["MSG.REPLY", "999999", "nobody asked"]).await.unwrap(), 0);
    assert_eq!(stat(&mut c, "herald_msg_replies_dropped").await, before + 2);
    assert_eq!(common::blocked_clients(&mut c).await, 0);
    for (args, expected) in [
        (&["MSG.REQUEST", "svc", "", "x"][..], "wrong number of arguments"),
        (&["MSG.REQUEST", "svc", "", "x", "WAIT", "10"][..], "needs TIMEOUT ms"),
        (&["MSG.REQUEST", "svc", "", "x", "TIMEOUT", "0"][..], "TIMEOUT must be a positive"),
        (&["MSG.REQUEST", "svc", "", "x", "TIMEOUT", "soon"][..], "TIMEOUT must be a positive"),
        (&["MSG.REPLY", "abc", "x"][..], "invalid reply address"),
        (&["MSG.REPLY", "1"][..], "wrong number of arguments"),
    ] {
        let err = cmd::<Value>(&mut c, args).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{args:?}: {err}");
    }
    let _: () = cmd(&mut c, &["MULTI"]).await.unwrap();
    let err = cmd::<Value>(&mut c, &["MSG.REQUEST", "svc", "", "x", "TIMEOUT", "10"]).await.unwrap_err();
    assert!(err.to_string().contains("not allowed inside a transaction"), "{err}");
    let _: () = cmd(&mut c, &["DISCARD"]).await.unwrap();
}

/// Many requesters, one server: each gets its own answer (the broker correlates, not the payload).
async fn replies_go_to_their_own_requesters(server: &TestServer) {
    let mut requesters = Vec::new();
    for i in 0..5 {
        let mut c = server.conn().await;
        requesters.push(tokio::spawn(async move {
            cmd::<String>(&mut c, &["MSG.REQUEST", "echo", "", &i.to_string(), "TIMEOUT", "5000"]).await.unwrap()
        }));
    }
    let mut s = server.conn().await;
    let mut pending = Vec::new();
    for _ in 0..5 {
        let r: Value = cmd(&mut s, &["MSG.RECV", "echo", "", "TIMEOUT", "5000"]).await.unwrap();
        pending.push((field(&r, "payload"), field(&r, "reply_to")));
    }
    for (payload, reply_to) in pending.into_iter().rev() {
        let _: i64 = cmd(&mut s, &["MSG.REPLY", &reply_to, &format!("echo {payload}")]).await.unwrap();
    }
    for (i, r) in requesters.into_iter().enumerate() {
        assert_eq!(r.await.unwrap(), format!("echo {i}"));
    }
}

on_both_engines!(
    a_request_waits_for_its_reply,
    timeouts_late_replies_and_stale_requests_are_handled_by_the_broker,
    replies_go_to_their_own_requesters,
);
