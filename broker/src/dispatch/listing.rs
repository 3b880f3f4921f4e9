//! The discovery listings' shared shape: a protocol page request to the engines' form, and a page to
//! SCAN's reply, `[next-cursor, [entry ...]]`, each entry a map (flat field/value pairs in RESP2).

use herald_protocol::Reply;
use herald_protocol::command::ListArgs;

use crate::engine::listing::{self, Page};

pub fn args(a: &ListArgs) -> listing::ListArgs {
    listing::ListArgs { cursor: a.cursor, pattern: a.pattern.clone(), count: a.count }
}

pub fn reply<T>(page: Page<T>, entry: impl FnMut(T) -> Reply) -> Reply {
    Reply::Array(vec![Reply::bulk(page.cursor.to_string()), Reply::Array(page.entries.into_iter().map(entry).collect())])
}

/// A count as a reply.
pub fn int(n: usize) -> Reply {
    Reply::Int(n as i64)
}
