//! Blackboard watch events: every journaled change of a scope, on `__bb:<event>@<scope>__:<key>` (so a
//! Redis client watches with `PSUBSCRIBE __bb:*@<scope>__:<glob>`, or only expiries with
//! `__bb:expire@...`), as JSON carrying the value (the old one for `del` and `expire`) and the
//! journal's sequence number, so a watcher can detect a gap and resume with BB.CHANGES.

use bytes::Bytes;
use herald_protocol::json::bytes_to_json;
use serde_json::json;

use crate::engine::change::Journaled;
use crate::engine::keyspace::ChangeKind;
use crate::pubsub::Hub;

pub fn publish(hub: &Hub, key: &[u8], j: &Journaled<'_>) {
    let mut channel = format!("__bb:{}@", j.kind.name()).into_bytes();
    channel.extend_from_slice(j.scope);
    channel.extend_from_slice(b"__:");
    channel.extend_from_slice(key);
    if hub.has_receivers(&channel) {
        let text = watch_event_json(j.scope, key, j.kind, j.seq, j.revision, j.value);
        hub.publish_bytes(Bytes::from(channel), Bytes::from(text));
    }
}

/// The JSON text of a watch event.
pub fn watch_event_json(scope: &[u8], key: &[u8], kind: ChangeKind, seq: u64, revision: u64, value: Option<&[u8]>) -> Vec<u8> {
    let event = json!({
        "scope": bytes_to_json(scope),
        "key": bytes_to_json(key),
        "event": kind.name(),
        "seq": seq,
        "revision": revision,
        "value": value.map(bytes_to_json).unwrap_or(serde_json::Value::Null),
    });
    serde_json::to_vec(&event).expect("JSON values always serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_text() {
        let text = watch_event_json(b"s", b"k", ChangeKind::Expire, 1, 2, Some(b"\xff"));
        let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(v, json!({"scope": "s", "key": "k", "event": "expire", "seq": 1, "revision": 2, "value": {"base64": "/w=="}}));
    }
}
