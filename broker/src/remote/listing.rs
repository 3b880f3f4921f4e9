//! Discovery listings on the Redis engine (`BB.SCOPES`, `JOB.QUEUES`, ...): every object of a domain
//! has one key whose name holds the object's name between a fixed prefix and suffix, and a page of
//! objects is Redis's own `SCAN ... MATCH prefix<pattern>suffix` over those keys. So the cursor is
//! SCAN's, with SCAN's guarantee (an object present throughout the iteration is returned at least
//! once, maybe more), and a small COUNT may return fewer entries or none on a page that still has a
//! cursor to follow, as SCAN does.

use bytes::Bytes;

use super::Remote;
use super::pool::Target;
use crate::engine::listing::ListArgs;

/// A page of object names: SCAN from `args.cursor` until `args.count` names were found (every name
/// for [`ListArgs::all`]) or the iteration ended; the next cursor (0: done) and the names.
pub async fn scan_names(remote: &Remote, prefix: &[u8], suffix: &[u8], args: &ListArgs) -> redis::RedisResult<(u64, Vec<Bytes>)> {
    let pattern = [prefix, args.pattern.as_deref().unwrap_or(b"*"), suffix].concat();
    let mut conn = remote.pool.shared(Target { db: 0, resp3: false });
    let (mut cursor, mut names) = (args.cursor, Vec::new());
    loop {
        let count = args.count.clamp(1, 1000);
        let (next, keys): (u64, Vec<Vec<u8>>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(count).query_async(&mut conn).await?;
        names.extend(keys.into_iter().filter_map(|k| Some(Bytes::copy_from_slice(k.strip_prefix(prefix)?.strip_suffix(suffix)?))));
        cursor = next;
        if cursor == 0 || names.len() >= args.count {
            return Ok((cursor, names));
        }
    }
}
