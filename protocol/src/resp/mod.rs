//! RESP2/RESP3: request decoding (multibulk and inline, with limits) and reply encoding.

mod decode;
mod encode;
mod inline;

pub use decode::{DecodeLimits, RequestDecoder, UNAUTH_MAX_BULK, UNAUTH_MAX_MULTIBULK};
pub use encode::{Protocol, encode, encode_to_bytes};
pub use inline::split_inline;
