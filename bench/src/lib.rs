//! Shared pieces of Herald's load tools: a minimal RESP client connection good enough to drive load
//! (pipelined requests, pushes) without a client library's overhead, and the publishing and measuring
//! side the fan-out tools (`fanout`, `wsfanout`) share.

pub mod pubsub;
pub mod resp_client;
