//! Connections to the backing Redis: one shared, multiplexed, self-reconnecting connection per
//! (database, protocol) for everything that answers at once, and a bounded pool of dedicated
//! connections for blocking commands, which would hold a shared connection's later replies. Under
//! Redis Cluster both are cluster connections (`conn.rs`): the shared one per protocol, and a dedicated
//! cluster connection per lent connection, so a command blocked on one master holds nobody else's.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::{AsyncConnectionConfig, Client, ProtocolVersion, RedisResult};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::conn::{Dedicated, LazyCluster, Shared};
use super::connect::Endpoint;
use super::lean::Lean;
use crate::config::EngineSettings;

/// Which backing connection serves a session: Redis shapes replies by protocol, so RESP2 clients use a
/// RESP2 connection and RESP3 (and JSON) clients a RESP3 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub db: usize,
    pub resp3: bool,
}

pub struct Pool {
    /// The connections to the primary now; replaced whole when Sentinel names another one.
    conns: RwLock<Arc<Conns>>,
    endpoint: Arc<Endpoint>,
    databases: usize,
    manager: ConnectionManagerConfig,
    blocking: Blocking,
    connect_timeout: Duration,
    response_timeout: Option<Duration>,
}

/// Where dedicated connections come from.
enum Clients {
    /// A client per target (the database and protocol are part of a client's connection settings).
    Single(Vec<[Client; 2]>),
    /// Under Redis Cluster (database 0 only): a cluster client per protocol, without a response timeout.
    Cluster(Box<[ClusterClient; 2]>),
}

/// Clients and shared connections for one primary address (or one cluster).
struct Conns {
    clients: Clients,
    /// The shared connections, made lazily (no socket until first used), by target.
    shared: Vec<[Shared; 2]>,
    /// By target: what its shared connection is known to be ready for (see [`Ready`]).
    settled: Vec<[Arc<Ready>; 2]>,
    /// Which primary these are for: lent connections of an older one are not kept.
    epoch: u64,
}

/// Dedicated connections for blocking commands: at most `engine.blocking_connections` in use, idle
/// ones kept for reuse.
struct Blocking {
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
}

/// An idle dedicated connection: its target and its id in Redis (`CLIENT ID`).
type Idle = (Target, Dedicated, Option<u64>);

/// A dedicated connection lent to one blocking command; [`Pool::give_back`] returns it.
pub struct Lent {
    pub conn: Dedicated,
    /// The connection's client id in Redis, which `CLIENT UNBLOCK` names (`None` under Redis Cluster).
    pub redis_id: Option<u64>,
    target: Target,
    epoch: u64,
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    pub fn new(settings: &EngineSettings, endpoint: Arc<Endpoint>, databases: usize) -> RedisResult<Pool> {
        let response_timeout = (settings.response_timeout_ms > 0).then(|| Duration::from_millis(settings.response_timeout_ms));
        let connect_timeout = Duration::from_millis(settings.connect_timeout_ms.max(1));
        let manager = ConnectionManagerConfig::new()
            .set_response_timeout(response_timeout)
            .set_connection_timeout(Some(connect_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conns = Conns::new(&endpoint, databases, &manager, response_timeout, connect_timeout, 0)?;
        let n = settings.blocking_connections.max(1);
        Ok(Pool {
            conns: RwLock::new(Arc::new(conns)),
            endpoint,
            databases,
            manager,
            blocking: Blocking { permits: Arc::new(Semaphore::new(n)), idle: Mutex::new(Vec::new()), max_idle: n },
            connect_timeout,
            response_timeout,
        })
    }

    /// Connections to the endpoint's primary now (after a Sentinel switch): new requests use them,
    /// idle dedicated connections to the old one are dropped, lent ones are not kept when returned.
    pub fn rebuild(&self) -> RedisResult<()> {
        let epoch = self.current().epoch + 1;
        let conns = Conns::new(&self.endpoint, self.databases, &self.manager, self.response_timeout, self.connect_timeout, epoch)?;
        *self.conns.write().expect("pool connections") = Arc::new(conns);
        self.blocking.idle.lock().expect("idle connections").clear();
        Ok(())
    }

    fn current(&self) -> Arc<Conns> {
        self.conns.read().expect("pool connections").clone()
    }

    /// The shared connection for `target` (a cheap handle; it connects, or reconnects, when used).
    pub fn shared(&self, target: Target) -> Shared {
        let conns = self.current();
        conns.shared[target.db.min(conns.shared.len() - 1)][usize::from(target.resp3)].clone()
    }

    /// Whether `target`'s shared connection is connected as far as the node knows: its last request was
    /// answered. Until then (its first use, or after an error, when it may be connecting again) a client's
    /// requests on it go one at a time: requests waiting for a connection to be made are sent in the order
    /// they happen to be woken, not the order they were made, so only a connected one may take a pipeline.
    pub fn settled(&self, target: Target) -> bool {
        let conns = self.current();
        conns.settled[target.db.min(conns.settled.len() - 1)][usize::from(target.resp3)].settled()
    }

    /// Whether `target`'s shared connection is settled and Herald's pipelined scripts are known to be loaded
    /// on its server ([`Ready::scripts_loaded`]).
    pub fn scripts_loaded(&self, target: Target) -> bool {
        let conns = self.current();
        conns.settled[target.db.min(conns.settled.len() - 1)][usize::from(target.resp3)].scripts_loaded()
    }

    /// The shared connection for `target` and the state [`Pool::settled`] reads, which the sender sets
    /// from the outcome.
    pub fn shared_tracked(&self, target: Target) -> (Shared, Arc<Ready>) {
        let conns = self.current();
        let (db, p) = (target.db.min(conns.shared.len() - 1), usize::from(target.resp3));
        (conns.shared[db][p].clone(), conns.settled[db][p].clone())
    }

    /// A dedicated connection for a blocking command: an idle one for the same target, or a new one.
    /// Waits while every permitted connection is lent out.
    pub async fn lend(&self, target: Target) -> RedisResult<Lent> {
        let permit = self.blocking.permits.clone().acquire_owned().await.expect("the pool's semaphore is never closed");
        let idle = {
            let mut idle = self.blocking.idle.lock().expect("idle connections");
            idle.iter().position(|(t, _, _)| *t == target).map(|i| idle.swap_remove(i))
        };
        let conns = self.current();
        let (conn, redis_id) = match idle {
            Some((_, conn, redis_id)) => (conn, redis_id),
            None => match &conns.clients {
                Clients::Single(clients) => {
                    let config = AsyncConnectionConfig::new().set_response_timeout(None).set_connection_timeout(Some(self.connect_timeout));
                    let client = &clients[target.db.min(clients.len() - 1)][usize::from(target.resp3)];
                    let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
                    // Asked once per connection, so CLIENT UNBLOCK can name it (`forward.rs`); a Redis
                    // user not allowed `CLIENT ID` only loses that.
                    let id: Option<u64> = redis::cmd("CLIENT").arg("ID").query_async(&mut conn).await.ok();
                    (Dedicated::Single(conn), id)
                }
                Clients::Cluster(clients) => {
                    (Dedicated::Cluster(clients[usize::from(target.resp3)].get_async_connection().await?, None), None)
                }
            },
        };
        Ok(Lent { conn, redis_id, target, epoch: conns.epoch, _permit: permit })
    }

    /// A lent connection whose command finished: kept for the next blocking command.
    pub fn give_back(&self, mut lent: Lent) {
        lent.conn.unpin();
        if lent.epoch != self.current().epoch {
            return; // a connection to a former primary
        }
        let mut idle = self.blocking.idle.lock().expect("idle connections");
        if idle.len() >= self.blocking.max_idle {
            idle.remove(0);
        }
        idle.push((lent.target, lent.conn, lent.redis_id));
    }

    /// The database and protocol a lent connection serves.
    pub fn target_of(lent: &Lent) -> Target {
        lent.target
    }
}

impl Conns {
    fn new(
        endpoint: &Endpoint,
        databases: usize,
        manager: &ConnectionManagerConfig,
        response_timeout: Option<Duration>,
        connect_timeout: Duration,
        epoch: u64,
    ) -> RedisResult<Conns> {
        if endpoint.is_cluster() {
            let protocols = [ProtocolVersion::RESP2, ProtocolVersion::RESP3];
            let shared = protocols.map(|p| endpoint.cluster_client(p, response_timeout).map(LazyCluster::new).map(Shared::Cluster));
            let [two, three] = shared;
            let dedicated = protocols.map(|p| endpoint.cluster_client(p, None));
            let [d2, d3] = dedicated;
            return Ok(Conns {
                clients: Clients::Cluster(Box::new([d2?, d3?])),
                shared: vec![[two?, three?]],
                settled: unsettled(1),
                epoch,
            });
        }
        let info = endpoint.info();
        let mut clients = Vec::with_capacity(databases);
        for db in 0..databases {
            let client = |protocol| {
                let redis = info.redis_settings().clone().set_db(db as i64).set_protocol(protocol);
                endpoint.client(info.clone().set_redis_settings(redis))
            };
            clients.push([client(ProtocolVersion::RESP2)?, client(ProtocolVersion::RESP3)?]);
        }
        // Herald's own connection where it can (not over TLS: the crate's there; `lean.rs`).
        let shared_of = |client: &Client| -> RedisResult<Shared> {
            let info = client.get_connection_info();
            let resp3 = info.redis_settings().protocol() != ProtocolVersion::RESP2;
            Ok(match Lean::new(info, resp3, connect_timeout, response_timeout) {
                Some(lean) => Shared::Lean(Arc::new(lean)),
                None => Shared::Single(ConnectionManager::new_lazy_with_config(client.clone(), manager.clone())?),
            })
        };
        let shared = clients.iter().map(|[two, three]| Ok([shared_of(two)?, shared_of(three)?])).collect::<RedisResult<Vec<_>>>()?;
        Ok(Conns { clients: Clients::Single(clients), settled: unsettled(shared.len()), shared, epoch })
    }
}

/// The lean connections of a replaced set (a Sentinel switch) end: they were to the former primary.
impl Drop for Conns {
    fn drop(&mut self) {
        for shared in self.shared.iter().flatten() {
            if let Shared::Lean(lean) = shared {
                lean.close();
            }
        }
    }
}

fn unsettled(targets: usize) -> Vec<[Arc<Ready>; 2]> {
    (0..targets).map(|_| [Arc::default(), Arc::default()]).collect()
}

/// What a shared connection is known to be ready for, as its senders last saw it: nothing yet (not
/// connected, or connecting again after an error: one request at a time), plain commands pipelined
/// (`settled`), or Herald's scripts pipelined too (`scripts_loaded`: settled, and every script a domain
/// operation may send pipelined was loaded on this connection's server since; `remote/scripted.rs`).
#[derive(Default)]
pub struct Ready(AtomicU8);

const SETTLED: u8 = 1;
const SCRIPTS_LOADED: u8 = 2;

impl Ready {
    pub fn settled(&self) -> bool {
        self.0.load(Ordering::Acquire) >= SETTLED
    }

    pub fn scripts_loaded(&self) -> bool {
        self.0.load(Ordering::Acquire) == SCRIPTS_LOADED
    }

    /// A request on the connection was answered (`true`) or failed on the connection (`false`: it may be
    /// connecting again, perhaps to a server that lost the scripts).
    pub fn answered(&self, ok: bool) {
        if ok {
            self.0.fetch_max(SETTLED, Ordering::AcqRel);
        } else {
            self.0.store(0, Ordering::Release);
        }
    }

    /// Every pipelined script was just loaded, and the connection answered.
    pub fn loaded(&self) {
        self.0.store(SCRIPTS_LOADED, Ordering::Release);
    }

    /// The scripts may be gone (a SCRIPT FLUSH, a NOSCRIPT reply): the next script goes alone and loads them.
    pub fn forget_scripts(&self) {
        self.0.fetch_min(SETTLED, Ordering::AcqRel);
    }
}
