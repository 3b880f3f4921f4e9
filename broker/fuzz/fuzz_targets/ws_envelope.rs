//! The WebSocket JSON envelope (`{"id": .., "cmd": [..]}`) on arbitrary text: no panic, and a request it
//! accepts never has more arguments than the bound.
#![no_main]

use herald_protocol::ws::parse_request;
use libfuzzer_sys::fuzz_target;

const MAX_ARGS: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(envelope) = parse_request(text, MAX_ARGS) {
        assert!(envelope.request.len() <= MAX_ARGS);
    }
});
