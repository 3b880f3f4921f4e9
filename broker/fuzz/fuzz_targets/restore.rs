//! RESTORE's payload reader (the RDB object formats DUMP writes: strings, lists, sets, hashes, sorted
//! sets, streams, in their listpack/intset/ziplist encodings) on arbitrary bodies with a valid footer,
//! so the checksum does not stop the fuzzer at the door: no panic, and a value it accepts dumps and
//! restores to the same value.
#![no_main]

use herald_broker::engine::dump::{crc64, dump, restore};
use libfuzzer_sys::fuzz_target;

/// RDB version 10 (Redis 7.0), as DUMP writes it.
const VERSION: u16 = 10;

fuzz_target!(|body: &[u8]| {
    let mut payload = body.to_vec();
    payload.extend_from_slice(&VERSION.to_le_bytes());
    let crc = crc64(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    if let Ok(value) = restore(&payload) {
        let again = restore(&dump(&value)).expect("a dumped value restores");
        assert_eq!(again, value);
    }
});
