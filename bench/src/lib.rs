//! Shared pieces of Herald's load tools: a minimal RESP client connection good enough to drive load
//! (pipelined requests, pushes) without a client library's overhead.

pub mod resp_client;
