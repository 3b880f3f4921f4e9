//! The readers of the engines' changes. The engines hand every change to one sink; this is it, and it
//! passes each change to every consumer in turn: the event renderer now, the persistence log and
//! whatever else must see what happened next. Each consumer sees the same changes in the same order.

use std::sync::Arc;

use crate::engine::change::{Change, ChangeSink};
use crate::events::Events;

pub struct Consumers {
    pub events: Arc<Events>,
}

impl ChangeSink for Consumers {
    fn emit(&self, change: &Change<'_>) {
        self.events.observe(change);
    }

    fn listening(&self) -> bool {
        self.events.listening()
    }
}
