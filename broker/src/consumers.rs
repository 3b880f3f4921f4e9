//! The readers of the engines' changes. The engines hand every change to one sink; this is it, and it
//! passes each change to every consumer in turn: the persistence log (when on), then the event
//! renderer. Each consumer sees the same changes in the same order.

use std::sync::{Arc, OnceLock};

use crate::engine::change::{Change, ChangeSink};
use crate::events::Events;
use crate::persist::Persistence;

pub struct Consumers {
    pub events: Arc<Events>,
    /// Set once recovery has loaded the data directory (recovery itself records nothing).
    pub log: OnceLock<Arc<Persistence>>,
}

impl ChangeSink for Consumers {
    fn emit(&self, change: &Change<'_>) {
        if let Some(log) = self.log.get() {
            log.observe(change);
        }
        self.events.observe(change);
    }

    fn listening(&self) -> bool {
        self.events.listening()
    }
}
