//! Board events on `__bl@<scope>__:<board>`: publish, lock, release, remove, expire, lease-expired,
//! dead, dropped, each a JSON object with the item (docs/commands.md). Extends and redrives are not
//! events.

use bytes::Bytes;
use serde_json::json;

use crate::engine::change::{ItemChange, ItemEvent};
use crate::pubsub::Hub;

pub fn publish(hub: &Hub, change: &ItemChange<'_>) {
    if matches!(change.event, ItemEvent::Extended | ItemEvent::Redriven) {
        return;
    }
    let mut channel = b"__bl@".to_vec();
    channel.extend_from_slice(change.scope);
    channel.extend_from_slice(b"__:");
    channel.extend_from_slice(change.board);
    if !hub.has_receivers(&channel) {
        return;
    }
    let item = change.item;
    // Boards keep only the item's text; it was valid JSON when published.
    let parsed: serde_json::Value = serde_json::from_slice(&item.raw).unwrap_or(serde_json::Value::Null);
    let text = json!({
        "event": change.event.name(),
        "board": String::from_utf8_lossy(change.board),
        "scope": String::from_utf8_lossy(change.scope),
        "id": String::from_utf8_lossy(&item.id),
        "item": parsed,
        "failed_leases": item.failed_leases,
    });
    hub.publish_bytes(Bytes::from(channel), Bytes::from(serde_json::to_vec(&text).expect("JSON")));
}
