//! Redis Cluster under the Redis engine (`redis+cluster://` seed lists, docs/scale-out.md): what
//! differs from one server, on top of the `redis` crate's cluster client (which keeps the slot map,
//! routes by key and follows `MOVED`, `ASK` and failovers).
//!
//! - **Routing** ([`route_of`]): a forwarded command goes to the master of its first key's slot, so a
//!   multi-key command across slots gets Redis Cluster's own `CROSSSLOT` (the cluster client would
//!   split `MGET`/`DEL`/`MSET` across slots, which a Redis Cluster server never does); keyless
//!   commands keep the cluster client's routing (`DBSIZE`, `KEYS`, `FLUSHALL` on every master,
//!   summed or concatenated).
//! - **Transactions** ([`one_slot`]): every key of a `MULTI ... EXEC` (and of its WATCH) in one slot,
//!   checked by the node at EXEC, answering `CROSSSLOT` as Redis Cluster's EXEC does.
//! - **SCAN** ([`scan_page`]): every master in turn, the master's index in the cursor's low bits.
//! - **WAIT** ([`fence`]): every master fenced, the least count the answer.

use std::sync::OnceLock;

use herald_protocol::command::CommandSpec;
use herald_protocol::{CommandError, Reply, Request};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr};
use redis::{ConnectionInfo, IntoConnectionInfo, RedisResult, Value};

use super::conn::Shared;

pub const SCHEMES: [&str; 2] = ["redis+cluster://", "rediss+cluster://"];

/// Redis Cluster's refusal of a request whose keys are in several slots.
pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// `redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]` (`rediss+cluster://` for TLS): the
/// nodes a node first asks for the cluster's slots, each with the credentials.
#[derive(Debug, Clone)]
pub struct Seeds {
    pub nodes: Vec<ConnectionInfo>,
}

impl Seeds {
    /// Parses a Cluster URL; `None` if `url` is not one, `Err` if it is malformed.
    pub fn parse(url: &str) -> Option<Result<Seeds, String>> {
        let (scheme, rest) = SCHEMES.iter().find_map(|s| Some((s, url.strip_prefix(s)?)))?;
        let tls = scheme.starts_with("rediss");
        Some(Self::parse_rest(rest, tls).ok_or_else(|| {
            format!(
                "engine.url: a Redis Cluster URL is {scheme}[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...] \
                 (seed nodes; Redis Cluster has only database 0)"
            )
        }))
    }

    fn parse_rest(rest: &str, tls: bool) -> Option<Seeds> {
        let (user_info, rest) = match rest.rsplit_once('@') {
            Some((user, rest)) => (format!("{user}@"), rest),
            None => (String::new(), rest),
        };
        let hosts = match rest.split_once('/') {
            Some((hosts, "" | "0")) => hosts,
            Some(_) => return None,
            None => rest,
        };
        let scheme = if tls { "rediss" } else { "redis" };
        let nodes = hosts
            .split(',')
            .map(|h| {
                let (host, port) = h.rsplit_once(':')?;
                port.parse::<u16>().ok().filter(|_| !host.is_empty())?;
                format!("{scheme}://{user_info}{h}").into_connection_info().ok()
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Seeds { nodes })
    }
}

/// Where a forwarded command goes: the master of its first key's slot; for the keyless commands that
/// concern every master (`DBSIZE`, `KEYS`, `FLUSHALL`, loading scripts and functions ...) `None`, the
/// cluster client's own routing, which runs them on every master and combines the replies; any other
/// keyless command (`EVAL ... 0`, `PUBLISH`, `FUNCTION LIST`) to one master (never a replica, which
/// would refuse a write).
pub fn route_of(spec: &CommandSpec, req: &Request) -> Option<RoutingInfo> {
    let mut first = None;
    spec.visit_keys(req, &mut |key| {
        first = Some(key);
        false
    });
    match first {
        Some(key) => Some(RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master)))),
        None if EVERY_MASTER.contains(&spec.name) => None,
        None => Some(RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary)),
    }
}

/// Keyless commands the cluster client runs on every master (or node) and combines.
const EVERY_MASTER: &[&str] = &[
    "dbsize",
    "keys",
    "flushall",
    "flushdb",
    "randomkey",
    "script|load",
    "script|flush",
    "script|exists",
    "script|kill",
    "function|load",
    "function|delete",
    "function|flush",
    "function|restore",
    "function|kill",
    "function|stats",
];

/// What Redis Cluster refuses that the node would otherwise run: `SELECT` of a database but 0.
pub fn refused(spec: &CommandSpec, req: &Request) -> Option<CommandError> {
    let db = (spec.name == "select").then(|| req.parts().get(1).and_then(|raw| herald_protocol::number::parse_i64(raw)))??;
    (db != 0).then(|| CommandError::fixed("ERR SELECT is not allowed in cluster mode"))
}

/// The one slot of `keys` (`None`: no key), or Redis Cluster's `CROSSSLOT`.
pub fn one_slot<'k>(keys: impl IntoIterator<Item = &'k [u8]>) -> Result<Option<Slot>, CommandError> {
    let mut slot = None;
    for key in keys {
        let s = Slot::for_key(key);
        if slot.is_some_and(|first| first != s) {
            return Err(CommandError::fixed(CROSSSLOT));
        }
        slot = Some(s);
    }
    Ok(slot)
}

/// A master and the first slot it serves (masters are numbered in slot order, so a failover keeps
/// a master's number: its replica takes over the same slots).
#[derive(Debug, Clone, PartialEq)]
pub struct Master {
    pub host: String,
    pub port: u16,
    pub first_slot: u16,
    /// The node's cluster id: a promoted replica is another node.
    pub id: String,
}

impl Master {
    /// To this master by the first slot it serves, not by its address: a node that never met another
    /// (a one-master cluster) reports an empty host in `CLUSTER SLOTS`, which the cluster client's slot
    /// map resolves to the address it reached it at.
    pub fn route(&self) -> SingleNodeRoutingInfo {
        SingleNodeRoutingInfo::SpecificNode(Route::new(self.first_slot, SlotAddr::Master))
    }
}

/// The masters serving slots now, in slot order, and every node (masters and replicas) as
/// `host:port`, from `CLUSTER SLOTS`.
pub async fn topology(conn: &mut ClusterConnection) -> RedisResult<(Vec<Master>, Vec<(String, u16)>)> {
    let ranges: Vec<Value> = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await?;
    let mut masters: Vec<Master> = Vec::new();
    let mut nodes = Vec::new();
    for range in ranges {
        let Value::Array(parts) = range else { continue };
        let (Some(Value::Int(start)), Some(_)) = (parts.first(), parts.get(1)) else { continue };
        for (i, node) in parts.iter().skip(2).enumerate() {
            let Value::Array(node) = node else { continue };
            let (Some(Value::BulkString(host)), Some(Value::Int(port))) = (node.first(), node.get(1)) else { continue };
            let (host, port) = (String::from_utf8_lossy(host).into_owned(), *port as u16);
            if i == 0 {
                let id = match node.get(2) {
                    Some(Value::BulkString(id)) => String::from_utf8_lossy(id).into_owned(),
                    _ => format!("{host}:{port}"),
                };
                match masters.iter_mut().find(|m| m.host == host && m.port == port) {
                    Some(m) => m.first_slot = m.first_slot.min(*start as u16),
                    None => masters.push(Master { host: host.clone(), port, first_slot: *start as u16, id }),
                }
            }
            if !nodes.contains(&(host.clone(), port)) {
                nodes.push((host, port));
            }
        }
    }
    masters.sort_by_key(|m| m.first_slot);
    Ok((masters, nodes))
}

/// Every `engine.cluster_poll_ms`: the cluster's nodes now, added to the pub-sub bridge's candidates
/// (`Endpoint::learn`), so that after the node it subscribed on dies it can move to any live one, the
/// promoted replicas included, not only to a seed.
pub async fn follow(remote: std::sync::Arc<super::Remote>, stop: tokio_util::sync::CancellationToken) {
    loop {
        let conn = remote.pool.shared(super::pool::Target { db: 0, resp3: false });
        if let Some(Ok(mut cluster)) = conn.cluster().await {
            match topology(&mut cluster).await {
                Ok((masters, nodes)) => {
                    remote.masters.observe(&masters);
                    remote.endpoint.learn(&nodes);
                }
                Err(e) => tracing::debug!("redis engine: asking the cluster for its nodes: {e}"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(remote.cluster_poll) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Bits of a cluster SCAN cursor that number the master (the rest is that master's own cursor).
const MASTER_BITS: u32 = 10;

/// One page of `SCAN cursor <rest>` across the cluster: the master the cursor names (its low bits),
/// from its own cursor; when that master's iteration ends, the next cursor starts the next master.
/// The next cursor (0: every master done) and the page's keys. Each master's iteration keeps SCAN's
/// guarantee; a resharding during the iteration weakens it as it does for any cluster client.
pub async fn scan_page(conn: &mut ClusterConnection, cursor: u64, rest: &[&[u8]]) -> RedisResult<(u64, Value)> {
    let (masters, _) = topology(conn).await?;
    let index = (cursor & ((1 << MASTER_BITS) - 1)) as usize;
    let Some(master) = masters.get(index) else {
        return Err(redis::RedisError::from((redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError), "invalid cursor")));
    };
    let mut scan = redis::cmd("SCAN");
    scan.arg(cursor >> MASTER_BITS);
    for arg in rest {
        scan.arg(*arg);
    }
    let reply = conn.route_command(scan, RoutingInfo::SingleNode(master.route())).await?;
    let Value::Array(mut parts) = reply else { return Ok((0, Value::Array(Vec::new()))) };
    let keys = parts.pop().unwrap_or(Value::Array(Vec::new()));
    let own: u64 = parts.pop().map(redis::from_redis_value).transpose()?.unwrap_or(0);
    let next = match own {
        0 if index + 1 < masters.len() => (index + 1) as u64,
        0 => 0,
        // Redis's own cursors index its hash table: far below 2^54 entries.
        own => (own << MASTER_BITS) | index as u64,
    };
    Ok((next, keys))
}

/// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]` forwarded to a Cluster: one page of
/// [`scan_page`], in SCAN's reply shape.
pub async fn scan(conn: &Shared, req: &Request) -> Reply {
    let parts = req.parts();
    let Some(cursor) = parts.get(1).and_then(|c| std::str::from_utf8(c).ok()).and_then(|c| c.parse::<u64>().ok()) else {
        return Reply::error("ERR invalid cursor");
    };
    let rest: Vec<&[u8]> = parts.iter().skip(2).map(|p| &p[..]).collect();
    let page = async {
        let mut cluster = conn.cluster().await.expect("a cluster connection")?;
        scan_page(&mut cluster, cursor, &rest).await
    };
    match page.await {
        Ok((next, keys)) => Reply::Array(vec![Reply::Bulk(next.to_string().into()), super::value::reply(keys, &Reply::NilArray)]),
        Err(e) => super::value::failed(&e),
    }
}

/// A key in `slot` (`herald:fence:{<tag>}`), for a write that must land on the master of that slot: the
/// tag of each slot is the first decimal number that hashes there (found once, for every slot).
fn key_in_slot(slot: u16) -> String {
    static TAGS: OnceLock<Vec<u32>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        let mut tags = vec![u32::MAX; 16384];
        let (mut left, mut n) = (tags.len(), 0u32);
        while left > 0 {
            let s = slot_number(&n.to_string());
            if tags[s as usize] == u32::MAX {
                tags[s as usize] = n;
                left -= 1;
            }
            n += 1;
        }
        tags
    });
    format!("herald:fence:{{{}}}", tags[slot as usize % tags.len()])
}

/// The slot of `key` as a number (CRC16/XMODEM of the hash tag, as Redis Cluster computes it).
fn slot_number(key: &str) -> u16 {
    let b = key.as_bytes();
    let tag = match b.iter().position(|&c| c == b'{') {
        Some(open) => match b[open + 1..].iter().position(|&c| c == b'}') {
            Some(len) if len > 0 => &b[open + 1..open + 1 + len],
            _ => b,
        },
        None => b,
    };
    let mut crc: u16 = 0;
    for &byte in tag {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc % 16384
}

/// Which masters serve the slots, as last seen (by the node's poll or a WAIT), and a generation that
/// moves each time that set changes (a failover promoted a replica, a master was added or removed).
#[derive(Default)]
pub struct Generation {
    seen: std::sync::Mutex<Vec<String>>,
    generation: std::sync::atomic::AtomicU64,
}

impl Generation {
    pub fn current(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Records the masters now; the generation after it.
    pub fn observe(&self, masters: &[Master]) -> u64 {
        let mut ids: Vec<String> = masters.iter().map(|m| m.id.clone()).collect();
        ids.sort();
        let mut seen = self.seen.lock().expect("masters seen");
        if *seen != ids {
            if !seen.is_empty() {
                self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            }
            *seen = ids;
        }
        self.current()
    }
}

/// `WAIT numreplicas timeout` over the whole cluster, on a dedicated cluster connection: on every
/// master at once, a write of the fence's own (`MULTI`, `SET` and `DEL` of a key in one of that
/// master's slots, `EXEC`: replicated, yet no key is left for `DBSIZE` or `SCAN` to see) then `WAIT` on
/// the same connection. A replica that has the fence has everything that master
/// acknowledged before it, the session's writes included; the answer is the least count over the
/// masters, so `WAIT` answering n means every write the session had acknowledged is on at least n
/// replicas of its master. (`PUBLISH`, the fence on one server, is not replicated in a Cluster.)
///
/// A master that was replaced since the session's `since` generation (a failover) may have taken
/// acknowledged writes with it, which no fence on its successor can vouch for: then the answer is 0
/// (after the same wait), as a Redis client whose connection to the old master broke learns nothing
/// either. The session's next WAIT, once the masters stay put, counts again.
pub async fn fence(
    conn: &mut ClusterConnection,
    replicas: i64,
    timeout_ms: u64,
    masters_seen: &Generation,
    since: u64,
) -> RedisResult<Value> {
    let (masters, _) = topology(conn).await?;
    let replaced = masters_seen.observe(&masters) != since;
    let waits = masters.iter().map(|m| {
        let mut conn = conn.clone();
        let mut pipe = redis::pipe();
        let key = key_in_slot(m.first_slot);
        pipe.cmd("MULTI").cmd("SET").arg(&key).arg("").cmd("DEL").arg(&key).cmd("EXEC").cmd("WAIT").arg(replicas).arg(timeout_ms);
        let route = m.route();
        async move {
            conn.route_pipeline(pipe, 4, 1, route)
                .await
                .and_then(|mut v| Ok(redis::from_redis_value::<i64>(v.pop().unwrap_or(Value::Nil))?))
        }
    });
    let counts = futures_util::future::try_join_all(waits).await?;
    Ok(Value::Int(if replaced { 0 } else { counts.into_iter().min().unwrap_or(0) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls() {
        let s = Seeds::parse("redis+cluster://:pw@h1:7000,h2:7001").unwrap().unwrap();
        assert_eq!(s.nodes.len(), 2);
        assert_eq!(s.nodes[1].addr(), &redis::ConnectionAddr::Tcp("h2".into(), 7001));
        assert_eq!(s.nodes[0].redis_settings().password(), Some("pw"));
        let tls = Seeds::parse("rediss+cluster://h1:7000/0").unwrap().unwrap();
        assert!(matches!(tls.nodes[0].addr(), redis::ConnectionAddr::TcpTls { .. }));
        assert!(Seeds::parse("redis://h:1").is_none());
        for bad in [
            "redis+cluster://",
            "redis+cluster://h1",
            "redis+cluster://h1:x",
            "redis+cluster://h:1/2",
            "redis+cluster://:1",
            "redis+cluster://h:1,",
        ] {
            assert!(Seeds::parse(bad).unwrap().is_err(), "{bad}");
        }
    }

    #[test]
    fn commands_go_to_their_first_keys_master_or_every_master() {
        let route = |parts: &[&'static str]| {
            let req = Request::new(parts.iter().map(|p| bytes::Bytes::from_static(p.as_bytes())).collect());
            route_of(herald_protocol::command::lookup(&req).expect("known").spec, &req)
        };
        let master_of =
            |key: &str| Some(RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master))));
        assert_eq!(route(&["GET", "k"]), master_of("k"));
        // Not split across slots: the first key's master answers CROSSSLOT.
        assert_eq!(route(&["MGET", "a", "b"]), master_of("a"));
        assert_eq!(route(&["EVAL", "return 1", "1", "x"]), master_of("x"));
        assert_eq!(route(&["DBSIZE"]), None);
        assert_eq!(route(&["SCRIPT", "LOAD", "return 1"]), None);
        assert_eq!(route(&["EVAL", "return 1", "0"]), Some(RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary)));
    }

    #[test]
    fn the_masters_generation_moves_when_a_master_is_replaced() {
        let master = |id: &str, first_slot| Master { host: "h".into(), port: 1, first_slot, id: id.into() };
        let g = Generation::default();
        assert_eq!(g.observe(&[master("a", 0), master("b", 8192)]), 0, "the first sighting is no change");
        assert_eq!(g.observe(&[master("b", 8192), master("a", 0)]), 0, "the same masters in another order");
        assert_eq!(g.observe(&[master("a", 0), master("b2", 8192)]), 1, "b's replica promoted");
        assert_eq!(g.current(), 1);
    }

    #[test]
    fn slots_are_redis_clusters() {
        // From the Redis Cluster specification's examples and redis-cli CLUSTER KEYSLOT.
        assert_eq!(slot_number("123456789"), 12739);
        assert_eq!(slot_number("{user1000}.following"), slot_number("{user1000}.followers"));
        for slot in [0, 1, 5460, 16383] {
            assert_eq!(slot_number(&key_in_slot(slot)), slot);
            assert_eq!(Slot::for_key(key_in_slot(slot)), Slot::for_key(key_in_slot(slot)));
        }
        assert!(one_slot([b"a".as_slice(), b"b"]).is_err());
        assert!(one_slot([b"{t}a".as_slice(), b"{t}b"]).unwrap().is_some());
        assert!(one_slot([]).unwrap().is_none());
    }
}
