//! Reply shapes and argument checks the hash, set and sorted-set commands share.

use bytes::Bytes;
use herald_protocol::command::ScanArgs;
use herald_protocol::{CommandError, Encoding, Reply};

use super::Cx;
use crate::engine::keyspace::ElementScan;

/// Whether the session's replies nest pairs (RESP3, and JSON, which has no reason to flatten them) or
/// flatten them (RESP2).
pub(super) fn resp3(cx: &Cx<'_>) -> bool {
    cx.session.encoding() != Encoding::Resp2
}

/// Pairs of bulk strings: `[a, b, a, b]` in RESP2, `[[a, b], [a, b]]` in RESP3 (HRANDFIELD ...
/// WITHVALUES), or only the first of each when `both` is false.
pub(super) fn pairs(items: Vec<(Bytes, Bytes)>, both: bool, resp3: bool) -> Reply {
    pairs_with(items, both, resp3, Reply::Bulk)
}

/// Members with scores (ZRANGE ... WITHSCORES and friends): scores are doubles.
pub(super) fn scored(items: Vec<(Bytes, f64)>, withscores: bool, resp3: bool) -> Reply {
    pairs_with(items, withscores, resp3, Reply::Double)
}

fn pairs_with<T>(items: Vec<(Bytes, T)>, both: bool, resp3: bool, second: impl Fn(T) -> Reply) -> Reply {
    if !both {
        return Reply::Array(items.into_iter().map(|(a, _)| Reply::Bulk(a)).collect());
    }
    if resp3 {
        return Reply::Array(items.into_iter().map(|(a, b)| Reply::Array(vec![Reply::Bulk(a), second(b)])).collect());
    }
    let mut flat = Vec::with_capacity(items.len() * 2);
    for (a, b) in items {
        flat.push(Reply::Bulk(a));
        flat.push(second(b));
    }
    Reply::Array(flat)
}

/// A SCAN-family page.
pub(super) fn scan_page(cursor: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![Reply::bulk(cursor.to_string()), Reply::Array(items)])
}

/// The options of HSCAN / SSCAN / ZSCAN, checked where Redis checks them: after the key is looked up
/// (`Ok(None)`: it is absent, the page is empty) and found to have the type `kind`.
pub(super) fn scan_options(
    cx: &mut Cx<'_>,
    key: &[u8],
    kind: &str,
    scan: Result<ScanArgs, CommandError>,
) -> Result<Option<ElementScan>, CommandError> {
    let (db, now) = (cx.db(), cx.now());
    if !cx.state().keyspace.lookup_typed(db, key, kind, now)? {
        return Ok(None);
    }
    let a = scan?;
    Ok(Some(ElementScan { cursor: a.cursor, pattern: a.pattern, count: a.count }))
}
