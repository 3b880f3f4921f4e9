//! Every command's argument parser (the typed command model, bulletin WHERE filters included) on
//! arbitrary arguments: no panic, whatever the name, the arity, the numbers or the option words.
#![no_main]

use bytes::Bytes;
use herald_protocol::Request;
use herald_protocol::command::parse_request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Arguments separated by NUL bytes; the first names the command.
    let args: Vec<Bytes> = data.split(|&b| b == 0).map(Bytes::copy_from_slice).collect();
    let _ = parse_request(Request::new(args));
});
