//! Replaying a stream's typed changes ([`XEffect`]): how a log rebuilds a stream exactly as it was.
//!
//! Each effect carries its result, so replay never generates an ID or reads a clock: the same
//! effects on the same stream give the same stream (the unit tests compare the two). Effects that
//! set state (counters, pending entries, group positions) are idempotent; appends and deletions are
//! not, and must be replayed once, in order, as the log records them.

use super::XStream;
use crate::engine::change::XEffect;

impl XStream {
    /// Applies one recorded effect.
    pub fn apply(&mut self, effect: &XEffect<'_>) {
        match *effect {
            XEffect::Added { id, fields } => {
                if id > self.last_id {
                    self.append(id, fields);
                }
            }
            XEffect::Deleted { ids } => {
                for id in ids {
                    self.delete(*id);
                }
            }
            XEffect::Trimmed { through, .. } => self.trim_through(through),
            XEffect::SetId { last_id, entries_added, max_deleted } => {
                self.last_id = last_id;
                self.entries_added = entries_added;
                self.max_deleted = max_deleted;
            }
            XEffect::GroupCreated { group, last_id, entries_read } => {
                self.create_group(group, last_id, entries_read);
            }
            XEffect::GroupSetId { group, last_id, entries_read } => {
                if let Some(g) = self.group_mut(group) {
                    g.last_id = last_id;
                    g.entries_read = entries_read;
                }
            }
            XEffect::GroupDestroyed { group } => {
                self.destroy_group(group);
            }
            XEffect::ConsumerCreated { group, consumer, seen } => {
                if let Some(g) = self.group_mut(group) {
                    g.consumer(consumer, seen);
                }
            }
            XEffect::ConsumerDeleted { group, consumer } => {
                if let Some(g) = self.group_mut(group) {
                    g.delete_consumer(consumer);
                }
            }
            XEffect::Delivered { group, consumer, seen, entries } => {
                if let Some(g) = self.group_mut(group) {
                    let (name, _) = g.consumer(consumer, seen);
                    g.touch(&name, seen);
                    for d in entries {
                        g.set_pending(d.id, &name, d.time, d.count);
                    }
                }
            }
            XEffect::Acked { group, ids } => {
                if let Some(g) = self.group_mut(group) {
                    for id in ids {
                        g.ack(*id);
                    }
                }
            }
        }
    }
}
