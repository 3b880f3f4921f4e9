//! Property tests of every parser a client can reach, run by `cargo test` (stable Rust: no libFuzzer;
//! docs/security.md says how to run them longer). Properties: no panic on any input, bounded by the
//! limits, the same requests however the bytes are split, and encode/decode round trips.

use bytes::Bytes;
use herald_protocol::command::parse_request;
use herald_protocol::ws::parse_request as parse_envelope;
use herald_protocol::{DecodeLimits, Request, RequestDecoder};
use proptest::prelude::*;

const LIMITS: DecodeLimits = DecodeLimits { max_multibulk_len: 64, max_bulk_len: 4096, max_inline_len: 1024, max_query_buffer: 1 << 16 };

fn encode(req: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", req.len()).into_bytes();
    for arg in req {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Feeds `bytes` in the given chunk sizes; every request decoded, or the first framing error.
fn decode_chunked(bytes: &[u8], chunks: &[usize], authenticated: bool) -> (Vec<Request>, Option<String>) {
    let mut decoder = RequestDecoder::new(LIMITS);
    decoder.set_authenticated(authenticated);
    let (requests, error) = decoder.decode_in_reads(bytes, chunks);
    (requests, error.map(|e| e.to_string()))
}

fn args() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn resp_requests_survive_any_chunking(reqs in prop::collection::vec(args(), 1..6), chunks in prop::collection::vec(1usize..64, 1..8)) {
        let bytes: Vec<u8> = reqs.iter().flat_map(|r| encode(r)).collect();
        let (whole, err) = decode_chunked(&bytes, &[bytes.len()], true);
        prop_assert!(err.is_none());
        let (split, err) = decode_chunked(&bytes, &chunks, true);
        prop_assert!(err.is_none());
        prop_assert_eq!(&whole, &split);
        let expected: Vec<Request> = reqs.iter().map(|r| Request::new(r.iter().map(|a| Bytes::copy_from_slice(a)).collect())).collect();
        prop_assert_eq!(whole, expected);
    }

    #[test]
    fn resp_garbage_never_panics_and_splitting_changes_nothing(bytes in prop::collection::vec(any::<u8>(), 0..600), chunks in prop::collection::vec(1usize..50, 1..6), authenticated: bool) {
        let (whole, err_whole) = decode_chunked(&bytes, &[bytes.len().max(1)], authenticated);
        let (split, err_split) = decode_chunked(&bytes, &chunks, authenticated);
        prop_assert_eq!(whole, split);
        prop_assert_eq!(err_whole, err_split);
    }

    #[test]
    fn resp_bounds_hold(count in 0i64..100_000, len in 0i64..100_000) {
        let bytes = format!("*{count}\r\n${len}\r\n").into_bytes();
        let (_, err) = decode_chunked(&bytes, &[3], false);
        if count > 10 || len > 16 * 1024 {
            prop_assert!(err.is_some(), "pre-AUTH bounds");
        }
        let (_, err) = decode_chunked(&bytes, &[3], true);
        if count as usize > LIMITS.max_multibulk_len || len as usize > LIMITS.max_bulk_len {
            prop_assert!(err.is_some(), "configured bounds");
        }
    }

    #[test]
    fn command_parsing_never_panics(name in prop::sample::select(herald_protocol::command::all_specs().map(|s| s.name.split('|').next().unwrap_or(s.name)).collect::<Vec<_>>()), rest in prop::collection::vec(prop_oneof![
        Just(b"0".to_vec()), Just(b"-1".to_vec()), Just(b"NX".to_vec()), Just(b"BLOCK".to_vec()), Just(b"WHERE".to_vec()), Just(b"SCOPE".to_vec()),
        Just(b"LIMIT".to_vec()), Just(b"STREAMS".to_vec()), Just(b"18446744073709551616".to_vec()), Just(b"1.5e308".to_vec()), Just(b"=".to_vec()),
        prop::collection::vec(any::<u8>(), 0..8)
    ], 0..10)) {
        let mut parts = vec![Bytes::copy_from_slice(name.as_bytes())];
        parts.extend(rest.into_iter().map(Bytes::from));
        let _ = parse_request(Request::new(parts));
    }

    #[test]
    fn websocket_envelopes_never_panic(text in ".{0,200}") {
        let _ = parse_envelope(&text, 16);
    }

    #[test]
    fn websocket_envelopes_round_trip(id in any::<u32>(), cmd in prop::collection::vec(".{0,20}", 1..6)) {
        let text = serde_json::json!({"id": id, "cmd": cmd}).to_string();
        let envelope = parse_envelope(&text, 16).expect("a valid envelope");
        prop_assert_eq!(envelope.id, serde_json::json!(id));
        let parts: Vec<Bytes> = cmd.iter().map(|c| Bytes::copy_from_slice(c.as_bytes())).collect();
        prop_assert_eq!(envelope.request, Request::new(parts));
    }
}
