//! The registry of connected clients, for CLIENT LIST / INFO / KILL and INFO's clients section.
//!
//! Shared state, like the hub: connections register here (`server/conn`), commands read and kill
//! through it (`dispatch`), so it sits beside both rather than inside either.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use dashmap::DashMap;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::clock::Clock;
use crate::doorbell::Doorbell;
use crate::pubsub::Outbox;
use crate::unblock::Unblocker;

/// Which surface a client came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Resp,
    WebSocket,
    /// HTTP requests and server-sent event streams (`server/http/`).
    Http,
}

impl Transport {
    /// As CLIENT LIST's `transport=` and the logs' `transport` field say it.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Resp => "resp",
            Transport::WebSocket => "websocket",
            Transport::Http => "http",
        }
    }
}

/// What CLIENT LIST shows about a client besides its timings. Name, library and no-evict live only
/// here; the fields the session owns (database, protocol version, MULTI, subscription counts) are
/// published here by the session as they change (`dispatch/session.rs`), never per command.
#[derive(Debug, Clone)]
pub struct Activity {
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub no_evict: bool,
    pub last_command: &'static str,
    pub db: usize,
    /// The RESP version HELLO negotiated (what HELLO and CLIENT LIST report, for JSON sessions too).
    pub resp: i64,
    /// Queued commands while in MULTI, -1 otherwise.
    pub multi: i64,
    pub channels: usize,
    pub patterns: usize,
    pub shard_channels: usize,
    /// The ACL user the client is authenticated as (CLIENT LIST `user`, CLIENT KILL USER, ACL DELUSER).
    pub user: Arc<str>,
    /// In MONITOR mode (CLIENT LIST flag `O`); set by `monitors.rs`.
    pub monitor: bool,
    /// The user came from a token's own permissions (not the registry): ACL changes leave it alone.
    pub detached_user: bool,
}

/// One connected client, shared between its connection task and the registry.
#[derive(Debug)]
pub struct ClientHandle {
    pub id: u64,
    pub transport: Transport,
    pub addr: SocketAddr,
    pub local_addr: SocketAddr,
    pub created: Instant,
    activity: Mutex<Activity>,
    /// When the client last ran a command (unix ms on the broker's clock). Written for every command,
    /// so an atomic rather than a field behind `info`'s lock.
    last_active_ms: AtomicU64,
    clock: Clock,
    pub outbox: Arc<Outbox>,
    /// Cancelled by CLIENT KILL, for a write stuck on a reader that stopped reading; the connection's
    /// doorbell says it too.
    killed: CancellationToken,
    /// Bytes read but not parsed yet (CLIENT LIST `qbuf`).
    pub query_buffer: AtomicUsize,
    /// While the client waits for a reply computed elsewhere that CLIENT UNBLOCK may end
    /// (`dispatch/unblock.rs`): that wait's handle.
    unblocker: Mutex<Option<Arc<Unblocker>>>,
}

impl ClientHandle {
    /// CLIENT KILL: the connection closes.
    pub fn kill(&self) {
        self.killed.cancel();
        self.outbox.doorbell().ring(Doorbell::KILL);
    }

    /// The client waits on `unblocker`'s wait from now on (`None`: on nothing CLIENT UNBLOCK can end).
    pub fn waits_on(&self, unblocker: Option<Arc<Unblocker>>) {
        *self.unblocker.lock().expect("client unblocker") = unblocker;
    }

    /// CLIENT UNBLOCK of a wait computed elsewhere: whether the client was blocked in one.
    pub fn unblock(&self, error: bool) -> bool {
        let unblocker = self.unblocker.lock().expect("client unblocker").clone();
        unblocker.is_some_and(|u| u.unblock(error))
    }

    /// Resolves once the client is killed.
    pub fn kill_requested(&self) -> WaitForCancellationFuture<'_> {
        self.killed.cancelled()
    }

    pub fn activity(&self) -> std::sync::MutexGuard<'_, Activity> {
        self.activity.lock().expect("client activity")
    }

    /// The client ran a command at `now_ms` (the command's time, read once per batch).
    pub fn touch(&self, now_ms: u64) {
        self.last_active_ms.store(now_ms, Ordering::Relaxed);
    }

    /// When the client last ran a command (unix ms).
    pub fn last_active_ms(&self) -> u64 {
        self.last_active_ms.load(Ordering::Relaxed)
    }

    /// Redis's client type for CLIENT LIST / KILL TYPE.
    pub fn kind(&self) -> &'static str {
        let a = self.activity();
        if a.channels + a.patterns + a.shard_channels > 0 { "pubsub" } else { "normal" }
    }

    /// One CLIENT LIST line, in Redis 7.2's field order.
    pub fn describe(&self) -> String {
        let a = self.activity().clone();
        let now = Instant::now();
        let idle_ms = self.clock.ms_at(now).saturating_sub(self.last_active_ms());
        let flags = if a.monitor {
            "O"
        } else if a.channels + a.patterns + a.shard_channels > 0 {
            "P"
        } else if a.multi >= 0 {
            "x"
        } else {
            "N"
        };
        let omem = self.outbox.pending_bytes();
        let text = |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        format!(
            "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll={} omem={} tot-mem={} events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={} transport={}",
            self.id,
            self.addr,
            self.local_addr,
            text(&a.name),
            now.duration_since(self.created).as_secs(),
            idle_ms / 1000,
            flags,
            a.db,
            a.channels,
            a.patterns,
            a.shard_channels,
            a.multi,
            self.query_buffer.load(Ordering::Relaxed),
            self.outbox.pending_frames(),
            omem,
            omem + self.query_buffer.load(Ordering::Relaxed),
            a.last_command,
            a.user,
            a.resp,
            text(&a.lib_name),
            text(&a.lib_ver),
            self.transport.name()
        )
    }
}

/// All connected clients, by id.
#[derive(Debug)]
pub struct Clients {
    by_id: DashMap<u64, Arc<ClientHandle>>,
    next_id: AtomicU64,
    clock: Clock,
}

impl Clients {
    pub fn new(clock: Clock) -> Self {
        Clients { by_id: DashMap::new(), next_id: AtomicU64::new(1), clock }
    }

    pub fn register(&self, transport: Transport, addr: SocketAddr, local_addr: SocketAddr, outbox: Arc<Outbox>) -> Arc<ClientHandle> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let handle = Arc::new(ClientHandle {
            id,
            transport,
            addr,
            local_addr,
            created: now,
            activity: Mutex::new(Activity {
                name: None,
                lib_name: None,
                lib_ver: None,
                no_evict: false,
                last_command: "NULL",
                db: 0,
                resp: 2,
                multi: -1,
                channels: 0,
                patterns: 0,
                shard_channels: 0,
                user: Arc::from("default"),
                monitor: false,
                detached_user: false,
            }),
            last_active_ms: AtomicU64::new(self.clock.ms_at(now)),
            clock: self.clock,
            outbox,
            killed: CancellationToken::new(),
            query_buffer: AtomicUsize::new(0),
            unblocker: Mutex::new(None),
        });
        self.by_id.insert(id, handle.clone());
        handle
    }

    /// Rings every connection's doorbell (shutdown).
    pub fn ring_all(&self, what: u8) {
        for client in self.by_id.iter() {
            client.outbox.doorbell().ring(what);
        }
    }

    pub fn unregister(&self, id: u64) {
        self.by_id.remove(&id);
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientHandle>> {
        self.by_id.get(&id).map(|h| h.clone())
    }

    /// Every client, ordered by id (CLIENT LIST order).
    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        let mut all: Vec<_> = self.by_id.iter().map(|e| e.value().clone()).collect();
        all.sort_by_key(|c| c.id);
        all
    }

    /// Connected clients per transport: (RESP, WebSocket, HTTP), for INFO's `# Clients`.
    pub fn by_transport(&self) -> (usize, usize, usize) {
        self.by_id.iter().fold((0, 0, 0), |(r, w, h), c| match c.transport {
            Transport::Resp => (r + 1, w, h),
            Transport::WebSocket => (r, w + 1, h),
            Transport::Http => (r, w, h + 1),
        })
    }

    /// Clients subscribed to anything (INFO `pubsub_clients`).
    pub fn pubsub_count(&self) -> usize {
        self.by_id.iter().filter(|c| c.kind() == "pubsub").count()
    }
}
