//! The persistence log's record decoder on arbitrary payloads (a damaged or hostile data directory):
//! a clear error, never a panic or an allocation sized by a corrupt length.
#![no_main]

use herald_broker::persist::record::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode(data);
});
