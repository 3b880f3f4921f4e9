//! Discovery listings on the Redis engine (`BB.SCOPES`, `JOB.QUEUES`, ...): every object of a domain
//! has one key whose name holds the object's name between a fixed prefix and suffix, and a page of
//! objects is Redis's own `SCAN ... MATCH prefix<pattern>suffix` over those keys. So the cursor is
//! SCAN's, with SCAN's guarantee (an object present throughout the iteration is returned at least
//! once, maybe more), and a small COUNT may return fewer entries or none on a page that still has a
//! cursor to follow, as SCAN does.

use bytes::Bytes;

use super::Remote;
use super::conn::Shared;
use super::pool::Target;
use crate::engine::listing::ListArgs;

/// A page of object names: SCAN from `args.cursor` until `args.count` names were found (every name
/// for [`ListArgs::all`]) or the iteration ended; the next cursor (0: done) and the names.
pub async fn scan_names(remote: &Remote, prefix: &[u8], suffix: &[u8], args: &ListArgs) -> redis::RedisResult<(u64, Vec<Bytes>)> {
    let pattern = [prefix, args.pattern.as_deref().unwrap_or(b"*"), suffix].concat();
    let mut conn = remote.pool.shared(Target { db: 0, resp3: false });
    let (mut cursor, mut names) = (args.cursor, Vec::new());
    loop {
        let (next, keys) = scan_keys(&mut conn, cursor, &pattern, args.count.clamp(1, 1000)).await?;
        names.extend(keys.into_iter().filter_map(|k| Some(Bytes::copy_from_slice(k.strip_prefix(prefix)?.strip_suffix(suffix)?))));
        cursor = next;
        if cursor == 0 || names.len() >= args.count {
            return Ok((cursor, names));
        }
    }
}

/// One `SCAN cursor MATCH pattern COUNT count` page: Redis's own on one server; under Redis Cluster
/// across every master in turn (`cluster::scan_page`: the master in the cursor's low bits), so the
/// listings and the followers' start-up sweeps see the objects of every master.
pub async fn scan_keys(conn: &mut Shared, cursor: u64, pattern: &[u8], count: usize) -> redis::RedisResult<(u64, Vec<Vec<u8>>)> {
    let count = count.to_string();
    if let Some(cluster) = conn.cluster().await {
        let (next, keys) = super::cluster::scan_page(&mut cluster?, cursor, &[b"MATCH", pattern, b"COUNT", count.as_bytes()]).await?;
        return Ok((next, redis::from_redis_value(keys)?));
    }
    redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(count).query_async(conn).await
}
