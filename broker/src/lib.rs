//! Herald: a message broker speaking RESP2/RESP3 (and JSON over WebSocket) with a blackboard, bulletin
//! boards, jobs, pub-sub and workflow primitives. See `docs/architecture.md` for the map.

pub mod acl;
pub mod alerts;
pub mod alloc;
pub mod broker;
pub mod clients;
pub mod clock;
pub mod command_stats;
pub mod config;
pub mod consumers;
pub mod dispatch;
pub mod doorbell;
pub mod engine;
pub mod events;
pub mod latency;
pub mod latency_events;
pub mod logging;
pub mod monitors;
pub mod pause;
pub mod persist;
pub mod probe;
pub mod pubsub;
pub mod quota;
pub mod rates;
pub mod remote;
pub mod server;
pub mod slowlog;
pub mod state;
pub mod thread_slot;
pub mod ticks;
pub mod tls;
pub mod unblock;

pub use config::Config;
pub use server::{Server, run};
