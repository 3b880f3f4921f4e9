//! Herald's wire formats and command model: bytes in, typed commands out; replies in, bytes out.
//!
//! No sockets, no tasks, no shared state: the broker, the benchmarks and the Rust client all build on
//! this crate.

pub mod command;
pub mod encoding;
pub mod error;
pub mod json;
pub mod long_double;
pub mod number;
pub mod reply;
pub mod request;
pub mod resp;
pub mod stream_id;
pub mod ws;

pub use command::{Command, CommandSpec};
pub use encoding::Encoding;
pub use error::{CommandError, FramingError};
pub use reply::Reply;
pub use request::{Args, Request};
pub use resp::{DecodeLimits, Protocol, RequestDecoder};
