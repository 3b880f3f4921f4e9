//! Connections to the backing Redis: one shared, multiplexed, self-reconnecting connection per
//! (database, protocol) for everything that answers at once, and a bounded pool of dedicated
//! connections for blocking commands, which would hold a shared connection's later replies.

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, ProtocolVersion, RedisResult};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::connect::Endpoint;
use crate::config::EngineSettings;

/// Which backing connection serves a session: Redis shapes replies by protocol, so RESP2 clients use a
/// RESP2 connection and RESP3 (and JSON) clients a RESP3 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub db: usize,
    pub resp3: bool,
}

pub struct Pool {
    /// A client per target (the database and protocol are part of a client's connection settings).
    clients: Vec<[Client; 2]>,
    /// The shared connections, made lazily (no socket until first used), by target.
    shared: Vec<[ConnectionManager; 2]>,
    blocking: Blocking,
    connect_timeout: Duration,
}

/// Dedicated connections for blocking commands: at most `engine.blocking_connections` in use, idle
/// ones kept for reuse.
struct Blocking {
    permits: std::sync::Arc<Semaphore>,
    idle: Mutex<Vec<(Target, MultiplexedConnection)>>,
    max_idle: usize,
}

/// A dedicated connection lent to one blocking command; [`Pool::give_back`] returns it.
pub struct Lent {
    pub conn: MultiplexedConnection,
    target: Target,
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    pub fn new(settings: &EngineSettings, endpoint: &Endpoint, databases: usize) -> RedisResult<Pool> {
        let info = &endpoint.info;
        let mut clients = Vec::with_capacity(databases);
        for db in 0..databases {
            let client = |protocol| {
                let redis = info.redis_settings().clone().set_db(db as i64).set_protocol(protocol);
                endpoint.client(info.clone().set_redis_settings(redis))
            };
            clients.push([client(ProtocolVersion::RESP2)?, client(ProtocolVersion::RESP3)?]);
        }
        let response_timeout = (settings.response_timeout_ms > 0).then(|| Duration::from_millis(settings.response_timeout_ms));
        let connect_timeout = Duration::from_millis(settings.connect_timeout_ms.max(1));
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(response_timeout)
            .set_connection_timeout(Some(connect_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let shared = clients
            .iter()
            .map(|[two, three]| {
                Ok([
                    ConnectionManager::new_lazy_with_config(two.clone(), config.clone())?,
                    ConnectionManager::new_lazy_with_config(three.clone(), config.clone())?,
                ])
            })
            .collect::<RedisResult<Vec<_>>>()?;
        let n = settings.blocking_connections.max(1);
        Ok(Pool {
            clients,
            shared,
            blocking: Blocking { permits: std::sync::Arc::new(Semaphore::new(n)), idle: Mutex::new(Vec::new()), max_idle: n },
            connect_timeout,
        })
    }

    /// The shared connection for `target` (a cheap handle; it connects, or reconnects, when used).
    pub fn shared(&self, target: Target) -> ConnectionManager {
        self.shared[target.db.min(self.shared.len() - 1)][usize::from(target.resp3)].clone()
    }

    /// A dedicated connection for a blocking command: an idle one for the same target, or a new one.
    /// Waits while every permitted connection is lent out.
    pub async fn lend(&self, target: Target) -> RedisResult<Lent> {
        let permit = self.blocking.permits.clone().acquire_owned().await.expect("the pool's semaphore is never closed");
        let idle = {
            let mut idle = self.blocking.idle.lock().expect("idle connections");
            idle.iter().position(|(t, _)| *t == target).map(|i| idle.swap_remove(i).1)
        };
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let config = AsyncConnectionConfig::new().set_response_timeout(None).set_connection_timeout(Some(self.connect_timeout));
                self.client(target).get_multiplexed_async_connection_with_config(&config).await?
            }
        };
        Ok(Lent { conn, target, _permit: permit })
    }

    /// A lent connection whose command finished: kept for the next blocking command.
    pub fn give_back(&self, lent: Lent) {
        let mut idle = self.blocking.idle.lock().expect("idle connections");
        if idle.len() >= self.blocking.max_idle {
            idle.remove(0);
        }
        idle.push((lent.target, lent.conn));
    }

    /// The database and protocol a lent connection serves.
    pub fn target_of(lent: &Lent) -> Target {
        lent.target
    }

    pub fn client(&self, target: Target) -> &Client {
        &self.clients[target.db.min(self.clients.len() - 1)][usize::from(target.resp3)]
    }
}
