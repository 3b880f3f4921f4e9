//! Job events on `__job__:<id>`: claimed, progress, chunk, done, failed, cancelled, queued,
//! lease-expired, each a JSON object with the job's `id` and the `event` name (docs/commands.md).
//! Submits, heartbeats and removals are not events.

use bytes::Bytes;
use herald_protocol::json::bytes_to_json;
use serde_json::{Value, json};

use crate::engine::change::{JobChange, JobEvent};
use crate::engine::jobs::job_channel;
use crate::pubsub::Hub;

pub fn publish(hub: &Hub, change: &JobChange<'_>) {
    let job = change.job;
    let (name, mut fields) = match &change.event {
        JobEvent::Claimed => ("claimed", json!({ "attempt": job.attempt })),
        JobEvent::Progress => ("progress", json!({ "value": job.progress.as_deref().map(bytes_to_json) })),
        JobEvent::Chunk { offset, data, .. } => ("chunk", json!({ "offset": offset, "data": bytes_to_json(data) })),
        JobEvent::Done => ("done", json!({ "result": job.result.as_deref().map(bytes_to_json) })),
        JobEvent::Failed => ("failed", json!({ "error": job.last_error.as_deref().map(bytes_to_json), "state": job.state.name() })),
        JobEvent::Cancelled => ("cancelled", json!({})),
        JobEvent::Queued { retried: true } => ("queued", json!({ "retried": true })),
        JobEvent::Queued { retried: false } => ("queued", json!({})),
        JobEvent::LeaseExpired => ("lease-expired", json!({ "state": job.state.name() })),
        JobEvent::Submitted | JobEvent::Heartbeat | JobEvent::Removed => return,
    };
    let channel = job_channel(&job.id);
    if !hub.has_receivers(&channel) {
        return;
    }
    fields["id"] = bytes_to_json(&job.id);
    fields["event"] = Value::from(name);
    let text = serde_json::to_vec(&fields).expect("JSON values always serialise");
    hub.publish_bytes(Bytes::from(channel), Bytes::from(text));
}
