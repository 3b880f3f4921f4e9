//! The engines: synchronous, transport-free state machines, each with a domain-level API.
//!
//! Each engine exposes domain-level atomic operations (set-if-revision, claim-with-lease,
//! retrieve-matching-and-lock), never raw get/set, so that a second implementation on Redis/Valkey can
//! serve the same API with one script per operation. The rules that keep them so:
//!
//! - nothing here imports from above (`server`, `dispatch`, `state`, `events`, the broker root):
//!   time (`now`, unix ms) and randomness are parameters, configuration arrives as each engine's own
//!   settings type, and refusals are [`Error`]s, not protocol replies;
//! - every state change is a typed [`change::Change`], produced in one place per engine and handed
//!   to the [`change::ChangeSink`] the engine was built with: notifications, watch events, job and
//!   board events and the persistence log all read that one stream;
//! - engines name the [`wait::WaitKey`]s their changes may satisfy; they do not know who waits.
//!
//! `crate::state::State` composes them behind one lock.

pub mod bulletin;
pub mod change;
pub mod collections;
pub mod dict;
pub mod dump;
pub mod error;
pub mod glob;
pub mod jobs;
pub mod keyspace;
pub mod listing;
pub mod mailbox;
pub mod memory;
pub mod schedule;
pub mod schema;
pub mod semaphore;
pub mod siphash;
pub mod small_bytes;
pub mod stream;
pub mod wait;
pub mod xstream;

pub use error::Error;
