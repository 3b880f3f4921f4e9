//! Bulletin `WHERE path op value` filters evaluated against arbitrary item text (items are walked as
//! JSON text without being parsed whole): no panic, and `=` / `!=` always disagree.
#![no_main]

use bytes::Bytes;
use herald_broker::engine::bulletin::filter::{Filter, FilterOp, compile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // path NUL value NUL item
    let mut parts = data.splitn(3, |&b| b == 0);
    let (Some(path), Some(value), Some(item)) = (parts.next(), parts.next(), parts.next()) else { return };
    let filter = |op| Filter { path: Bytes::copy_from_slice(path), op, value: Bytes::copy_from_slice(value) };
    let ops = [FilterOp::Eq, FilterOp::Ne, FilterOp::Lt, FilterOp::Le, FilterOp::Gt, FilterOp::Ge];
    let results: Vec<bool> = compile(&ops.map(filter)).iter().map(|f| f.matches(item)).collect();
    assert_ne!(results[0], results[1], "= and != agreed on {:?}", String::from_utf8_lossy(item));
});
