//! The state every connection shares: engines, hub, client registry, settings, counters, clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clients::Clients;
use crate::clock::Clock;
use crate::config::Config;
use crate::consumers::Consumers;
use crate::engine::keyspace::notify;
use crate::events::Events;
use crate::persist::{Persistence, Rewrite};
use crate::pubsub::{Hub, OutboxLimits};
use crate::state::State;

/// Settings CONFIG SET may change at run time.
#[derive(Debug, Clone)]
pub struct Settings {
    pub requirepass: String,
    pub maxclients: usize,
    pub timeout_secs: u64,
    pub outbox: OutboxLimits,
    pub proto_max_bulk_len: usize,
    pub client_query_buffer_limit: usize,
}

/// Server-wide counters for INFO stats.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub output_limit_disconnects: AtomicU64,
    pub idle_disconnects: AtomicU64,
    pub killed_clients: AtomicU64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn reset(&self) {
        for c in [
            &self.connections_received,
            &self.rejected_connections,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.protocol_errors,
            &self.output_limit_disconnects,
            &self.idle_disconnects,
            &self.killed_clients,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

pub struct Broker {
    pub config: Config,
    settings: RwLock<Settings>,
    state: Mutex<State>,
    pub hub: Arc<Hub>,
    /// Renders the engines' changes as pub-sub events (and holds `notify-keyspace-events`).
    pub events: Arc<Events>,
    pub clients: Clients,
    /// Users and permissions.
    pub acl: crate::acl::Acl,
    /// The keys browser tokens are checked with (`acl/token.rs`).
    pub tokens: crate::acl::token::Tokens,
    /// TLS listeners' certificates, when `[tls]` is enabled (`tls.rs`).
    pub tls: Option<crate::tls::Tls>,
    /// The TLS ports (RESP, HTTP) once bound.
    pub tls_ports: (AtomicU64, AtomicU64),
    pub stats: Stats,
    /// Command latency per family (`/metrics`).
    pub latency: crate::latency::Latency,
    /// CLIENT PAUSE.
    pub pause: crate::pause::Pause,
    /// Whether a pause, a running script, a failing log or `maxmemory` is in force (`alerts.rs`).
    pub alerts: crate::alerts::Alerts,
    /// INFO commandstats / errorstats.
    pub commands: crate::command_stats::CommandStats,
    /// SLOWLOG.
    pub slowlog: crate::slowlog::SlowLog,
    /// LATENCY (the latency monitor's events).
    pub latency_events: crate::latency_events::LatencyEvents,
    /// MONITOR's clients.
    pub monitors: crate::monitors::Monitors,
    /// Per-second rates, sampled by the timer task.
    pub rates: crate::rates::Rates,
    pub clock: Clock,
    /// Wakes the timer task when a deadline earlier than the one it sleeps towards appears.
    pub timer: Notify,
    /// The deadline (unix ms) the timer task is sleeping towards; `u64::MAX` when idle.
    pub timer_armed: AtomicU64,
    /// The one shutdown signal every task watches.
    pub shutdown: CancellationToken,
    /// Lua scripts and functions (EVAL, FCALL), and the monitor of the one running.
    pub scripting: crate::dispatch::scripting::Scripting,
    /// The append-only log and snapshots, when a data directory is configured.
    pub persist: Option<Arc<Persistence>>,
    /// This broker, for work that outlives a command (a background rewrite's thread).
    me: std::sync::Weak<Broker>,
    /// SHUTDOWN SAVE: take a snapshot before exiting.
    pub shutdown_save: std::sync::atomic::AtomicBool,
    /// Set when the listeners start accepting, after persistence has loaded: what `/readyz` reports
    /// (with the shutdown token) to load balancers and orchestrators.
    pub serving: std::sync::atomic::AtomicBool,
    /// Random identity for INFO `run_id`.
    pub run_id: String,
    pub resp_port: AtomicU64,
    /// `maxmemory` in bytes (0: no limit), read by every write that may grow memory.
    maxmemory: AtomicU64,
    pub http_port: AtomicU64,
    /// The Redis engine, when `engine.url` names one (docs/scale-out.md); `None`: the embedded engine.
    pub remote: Option<Arc<crate::remote::Remote>>,
    /// Per-tenant quotas (`quota.rs`); `None` when none are configured, or on the Redis engine, which
    /// counts them in Redis (`remote/quota.rs`).
    pub quotas: Option<crate::quota::Quotas>,
}

impl Broker {
    /// The broker with its engines, loaded from the data directory when persistence is on (the error
    /// says why the files could not be loaded).
    pub fn new(config: Config) -> Result<Arc<Self>, String> {
        let clock = Clock::new();
        crate::ticks::init();
        let hub = Arc::new(Hub::new());
        let flags = notify::parse_flags(config.notify_keyspace_events.as_bytes()).unwrap_or(0);
        let events = Arc::new(Events::new(hub.clone(), flags));
        let consumers = Arc::new(Consumers { events: events.clone(), log: OnceLock::new() });
        let settings = Settings {
            requirepass: config.requirepass.clone(),
            maxclients: config.limits.maxclients,
            timeout_secs: config.limits.timeout,
            outbox: config.outbox_limits(),
            proto_max_bulk_len: config.limits.proto_max_bulk_len,
            client_query_buffer_limit: config.limits.client_query_buffer_limit,
        };
        let acl = crate::acl::Acl::new(&config.acl, &config.requirepass)?;
        let alerts = crate::alerts::Alerts::default();
        alerts.set(crate::alerts::MAXMEMORY, config.maxmemory != 0);
        let tokens = crate::acl::token::Tokens::new(&config.tokens)?;
        let tls = crate::tls::Tls::new(&config.tls)?;
        let mut state = State::new(&config, consumers.clone(), clock.started_ms(), random_u64());
        let persist = match config.persistence.data_dir.is_empty() {
            true => None,
            false => {
                let persist = Persistence::open(&config.persistence, &mut state, clock.now_ms(), alerts.clone())?;
                let _ = consumers.log.set(persist.clone());
                Some(persist)
            }
        };
        // After loading the data directory: the tallies start from the keys it held. The Redis engine
        // counts in Redis instead (`remote/quota.rs`).
        let quotas = if config.engine.is_redis() { None } else { crate::quota::Quotas::new(&config.quotas) };
        if let Some(q) = &quotas {
            state.keyspace.set_quota_patterns(&q.patterns());
        }
        let scripting = crate::dispatch::scripting::Scripting::new(
            config.scripting.memory_limit,
            config.scripting.busy_reply_threshold_ms,
            alerts.clone(),
        );
        scripting.load_libraries(&state.libraries);
        let remote = match config.engine.is_redis() {
            true => Some(crate::remote::Remote::new(&config)?),
            false => None,
        };
        Ok(Arc::new_cyclic(|me| Broker {
            me: me.clone(),
            state: Mutex::new(state),
            persist,
            scripting,
            shutdown_save: std::sync::atomic::AtomicBool::new(false),
            serving: std::sync::atomic::AtomicBool::new(false),
            settings: RwLock::new(settings),
            hub,
            events,
            clients: Clients::new(clock),
            acl,
            tokens,
            tls,
            tls_ports: (AtomicU64::new(0), AtomicU64::new(0)),
            stats: Stats::default(),
            latency: Default::default(),
            pause: crate::pause::Pause::new(alerts.clone()),
            alerts,
            commands: Default::default(),
            slowlog: crate::slowlog::SlowLog::new(config.diagnostics.slowlog_log_slower_than, config.diagnostics.slowlog_max_len),
            latency_events: crate::latency_events::LatencyEvents::new(config.diagnostics.latency_monitor_threshold),
            monitors: Default::default(),
            rates: Default::default(),
            clock,
            timer: Notify::new(),
            timer_armed: AtomicU64::new(u64::MAX),
            shutdown: CancellationToken::new(),
            run_id: random_hex(40),
            resp_port: AtomicU64::new(u64::from(config.port)),
            maxmemory: AtomicU64::new(config.maxmemory),
            http_port: AtomicU64::new(u64::from(config.http_port)),
            remote,
            quotas,
            config,
        }))
    }

    /// The state lock if it can be had without waiting for a running script; otherwise it waits as
    /// [`Broker::lock`] does. `None` only while a script holds it.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, State>> {
        match self.state.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) if self.scripting.monitor.is_running() => None,
            Err(std::sync::TryLockError::WouldBlock) => Some(self.lock()),
        }
    }

    /// This broker as a weak handle, for threads that outlive a command (the script thread).
    pub fn weak(&self) -> std::sync::Weak<Broker> {
        self.me.clone()
    }

    /// Locks every engine's state. Never held across `.await`.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn settings(&self) -> Settings {
        self.settings.read().expect("settings").clone()
    }

    pub fn update_settings(&self, f: impl FnOnce(&mut Settings)) {
        f(&mut self.settings.write().expect("settings"));
    }

    /// Redis's `timeout` in seconds (0: never), read without copying the settings.
    pub fn timeout_secs(&self) -> u64 {
        self.settings.read().expect("settings").timeout_secs
    }

    pub fn maxmemory(&self) -> u64 {
        self.maxmemory.load(Ordering::Relaxed)
    }

    pub fn set_maxmemory(&self, bytes: u64) {
        self.maxmemory.store(bytes, Ordering::Relaxed);
        self.alerts.set(crate::alerts::MAXMEMORY, bytes != 0);
    }

    /// Whether memory in use (the counting allocator's measure) is past `maxmemory`: commands that
    /// may grow memory are then refused (`noeviction`), reads go on.
    pub fn over_maxmemory(&self) -> bool {
        let max = self.maxmemory();
        max != 0 && crate::alloc::allocated_bytes() as u64 > max
    }

    /// Whether connections start unauthenticated (the default user has a password or is off).
    pub fn requires_auth(&self) -> bool {
        self.acl.requires_auth()
    }

    /// Whether the broker takes work (`/readyz`): `Err` with the reason before it has started serving
    /// (the data directory still loading) and once shutdown has begun.
    pub fn readiness(&self) -> Result<(), &'static str> {
        if self.shutdown.is_cancelled() {
            Err("shutting down")
        } else if !self.serving.load(Ordering::Acquire) {
            Err("starting")
        } else {
            Ok(())
        }
    }

    /// Starts a rewrite (snapshot + fresh log) on a thread of its own; an error if persistence is off
    /// or a rewrite is already running.
    pub fn start_rewrite(&self, why: Rewrite) -> Result<(), &'static str> {
        let Some(persist) = &self.persist else { return Err("ERR persistence is off: start herald with --data-dir DIR") };
        if !persist.begin_rewrite() {
            return Err("ERR Background append only file rewriting already in progress");
        }
        let Some(broker) = self.me.upgrade() else { return Err("ERR shutting down") };
        std::thread::Builder::new()
            .name("herald-rewrite".into())
            .spawn(move || {
                if let Some(p) = &broker.persist {
                    let _ = p.rewrite(why, &|| broker.lock());
                }
            })
            .map(|_| ())
            .map_err(|_| "ERR could not start the rewrite thread")
    }

    /// Wakes the timer if `deadline` comes before what it is sleeping towards.
    pub fn schedule(&self, deadline: Option<u64>) {
        if let Some(d) = deadline
            && d < self.timer_armed.load(Ordering::Acquire)
        {
            self.timer_armed.store(d, Ordering::Release);
            self.timer.notify_one();
        }
    }
}

/// Hex from the OS's randomness (no extra dependency: std's hasher keys are randomly seeded).
pub fn random_hex(len: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(out.len());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(len);
    out
}

/// A fast non-cryptographic random source (RANDOMKEY, jitter), seeded from the OS.
pub fn random_u64() -> u64 {
    use std::cell::Cell;
    use std::hash::{BuildHasher, Hasher};
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u8(1);
            h.finish() | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}
