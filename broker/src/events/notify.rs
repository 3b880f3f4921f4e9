//! Redis keyspace notifications: `__keyspace@<db>__:<key>` carrying the event name and
//! `__keyevent@<db>__:<event>` carrying the key, for the classes `notify-keyspace-events` enables.
//! Numbered databases only: blackboard scopes announce through their watch events.

use crate::engine::change::KeyChange;
use crate::engine::keyspace::notify::{self, KEYEVENT, KEYSPACE};
use crate::pubsub::Hub;

pub fn publish(hub: &Hub, flags: u32, change: &KeyChange<'_>) {
    if !change.numbered || !notify::enabled(flags, change.class) {
        return;
    }
    let db = change.db;
    if flags & KEYSPACE != 0 {
        let mut channel = format!("__keyspace@{db}__:").into_bytes();
        channel.extend_from_slice(change.key);
        hub.publish(&channel, change.event.as_bytes());
    }
    if flags & KEYEVENT != 0 {
        let channel = format!("__keyevent@{db}__:{}", change.event);
        hub.publish(channel.as_bytes(), change.key);
    }
}
