//! Inputs the coverage-guided fuzzer (`broker/fuzz`, `scripts/fuzz.sh`) once broke the broker with,
//! kept in `broker/fuzz/regressions/<target>/` and replayed here on every `cargo test`: each must now get
//! a clear refusal. (`scripts/fuzz.sh` replays them through the instrumented targets too.)

mod common;

use std::path::PathBuf;

use common::{cmd, start};

use herald_broker::engine::dump::crc64;
use herald_broker::persist::record::decode;

/// The saved inputs of one fuzz target.
fn regressions(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions").join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|f| {
            let path = f.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no regressions for {target}");
    out
}

/// RESTORE payloads (the target's body plus a valid footer, as a client can make) are refused with
/// Redis's error instead of allocating what a corrupt length says, and the broker keeps serving.
#[tokio::test]
async fn restore_payloads_are_refused_over_resp() {
    let server = start().await;
    let mut c = server.conn().await;
    for (name, body) in regressions("restore") {
        let mut payload = body;
        payload.extend_from_slice(&10u16.to_le_bytes());
        let crc = crc64(&payload);
        payload.extend_from_slice(&crc.to_le_bytes());
        let err = redis::cmd("RESTORE").arg("k").arg(0).arg(payload).query_async::<()>(&mut c).await.unwrap_err();
        assert_eq!((err.code(), err.detail()), (Some("ERR"), Some("Bad data format")), "{name}");
    }
    assert_eq!(cmd::<String>(&mut c, &["PING"]).await.unwrap(), "PONG");
}

/// Persistence log records a damaged or hostile data directory could hold: a `Malformed` error.
#[test]
fn persistence_records_are_refused() {
    for (name, payload) in regressions("persist_record") {
        assert!(decode(&payload).is_err(), "{name}");
    }
}
