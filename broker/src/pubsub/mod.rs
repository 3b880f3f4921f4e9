//! Topic pub-sub: the hub that fans publications out, and the bounded outbox every connection reads.
//!
//! Not an engine: it holds no state under the engine lock and renders pushes per wire format (RESP2,
//! RESP3, JSON), so it sits beside the connections, and engines reach it only through their changes.

mod fanout;
pub mod hub;
pub mod outbox;

pub use hub::{ChannelKind, Hub, Interest, InterestWatcher, Publication, Subscriber};
pub use outbox::{CloseReason, Drained, Outbox, OutboxLimits, OverflowPolicy, Pushed};
