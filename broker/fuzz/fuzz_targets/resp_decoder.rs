//! The RESP request decoder (multibulk and inline) on arbitrary bytes, before and after AUTH: no panic,
//! and the same requests and the same error however the bytes are split into reads. (The query
//! buffer's own bound is the decoder's unit tests' business.)
#![no_main]

use herald_protocol::{DecodeLimits, FramingError, Request, RequestDecoder};
use libfuzzer_sys::fuzz_target;

const LIMITS: DecodeLimits = DecodeLimits { max_multibulk_len: 64, max_bulk_len: 4096, max_inline_len: 1024, max_query_buffer: 1 << 16 };

/// The requests and the first framing error of `bytes` arriving in reads of `sizes`.
fn decode(bytes: &[u8], sizes: &[usize], authenticated: bool) -> (Vec<Request>, Option<FramingError>) {
    let mut decoder = RequestDecoder::new(LIMITS);
    decoder.set_authenticated(authenticated);
    decoder.decode_in_reads(bytes, sizes)
}

fuzz_target!(|data: &[u8]| {
    // The first byte chooses AUTH state and the read sizes; the rest is what a client sent.
    let Some((&seed, bytes)) = data.split_first() else { return };
    let authenticated = seed & 1 == 1;
    let sizes = [1 + (seed as usize >> 1) % 7, 1 + (seed as usize >> 4), 3];
    let whole = decode(bytes, &[bytes.len().max(1)], authenticated);
    let split = decode(bytes, &sizes, authenticated);
    assert_eq!(whole, split, "splitting the input changed what was decoded");
});
