//! Topic pub-sub: the hub that fans publications out, and the bounded outbox every connection reads.

mod fanout;
pub mod hub;
pub mod outbox;

pub use hub::{ChannelKind, Hub, Publication, Subscriber};
pub use outbox::{CloseReason, Drained, Outbox, OutboxLimits, OverflowPolicy, Pushed, WireFormat};
