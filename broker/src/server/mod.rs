//! Listeners, connection threads, the timer, and the one shutdown path.

pub mod conn;
mod http;
pub mod resp;
mod timer;
mod tls;
mod workers;
pub mod ws;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::config::Config;
use crate::doorbell::Doorbell;
use workers::Workers;

/// A bound but not yet running broker. `bind` then `run`; tests read the bound ports in between.
pub struct Server {
    broker: Arc<Broker>,
    resp: TcpListener,
    http: TcpListener,
    /// RESP and HTTP over TLS, when `[tls]` is enabled.
    tls: Option<(TcpListener, TcpListener)>,
}

impl Server {
    pub async fn bind(config: Config) -> std::io::Result<Server> {
        let ip: std::net::IpAddr =
            config.bind.parse().map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "bind is not an IP address"))?;
        let broker = Broker::new(config).map_err(std::io::Error::other)?;
        if let Some(why) = broker.config.exposure(broker.requires_auth()) {
            return Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, why));
        }
        let resp = TcpListener::bind(SocketAddr::new(ip, broker.config.port)).await?;
        let http = TcpListener::bind(SocketAddr::new(ip, broker.config.http_port)).await?;
        broker.resp_port.store(u64::from(resp.local_addr()?.port()), Ordering::Relaxed);
        let tls = match &broker.tls {
            Some(_) => {
                let settings = &broker.config.tls;
                let resp = TcpListener::bind(SocketAddr::new(ip, settings.port)).await?;
                let http = TcpListener::bind(SocketAddr::new(ip, settings.http_port)).await?;
                broker.tls_ports.0.store(u64::from(resp.local_addr()?.port()), Ordering::Relaxed);
                broker.tls_ports.1.store(u64::from(http.local_addr()?.port()), Ordering::Relaxed);
                Some((resp, http))
            }
            None => None,
        };
        Ok(Server { broker, resp, http, tls })
    }

    /// The address the RESP listener is bound to.
    pub fn resp_addr(&self) -> SocketAddr {
        self.resp.local_addr().expect("bound listener has an address")
    }

    /// The address the HTTP/WebSocket listener is bound to.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().expect("bound listener has an address")
    }

    /// The addresses of the TLS listeners (RESP, HTTPS/WSS), when TLS is enabled.
    pub fn tls_addrs(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.tls.as_ref().map(|(r, h)| (r.local_addr().expect("bound"), h.local_addr().expect("bound")))
    }

    pub fn broker(&self) -> Arc<Broker> {
        self.broker.clone()
    }

    /// Serves until `shutdown` resolves, then closes every connection and waits for them (bounded by
    /// `shutdown_timeout_ms`).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let Server { broker, resp, http, tls } = self;
        let workers = Workers::start(broker.config.io_threads)?;
        let fanout = broker.hub.start_fanout(broker.config.pubsub.fanout_backlog)?;
        let tracker = TaskTracker::new();
        let timer = tokio::spawn(timer::run(broker.clone()));
        if let Some(remote) = &broker.remote {
            remote.start(&broker.hub, broker.events.clone(), broker.shutdown.clone());
            tracing::info!("engine: redis at {}", broker.config.engine.url);
        }
        let log_writer = match &broker.persist {
            Some(p) => {
                let weak = Arc::downgrade(&broker);
                Some(p.start(move || {
                    if let Some(b) = weak.upgrade() {
                        let _ = b.start_rewrite(crate::persist::Rewrite::Automatic);
                    }
                })?)
            }
            None => None,
        };
        // Scripts parse this line to learn the port when started with --port 0.
        let (resp_addr, http_addr, io_threads) = (resp.local_addr()?, http.local_addr()?, broker.config.io_threads);
        tracing::info!(addr = %resp_addr, io_threads, "listening for RESP on {resp_addr} ({io_threads} io threads)");
        tracing::info!(addr = %http_addr, "listening for WebSocket on {http_addr} (ws://{http_addr}/ws)");
        if let Some((r, h)) = &tls {
            let (tls_addr, https_addr) = (r.local_addr()?, h.local_addr()?);
            tracing::info!(addr = %tls_addr, "listening for RESP over TLS on {tls_addr}");
            tracing::info!(addr = %https_addr, "listening for HTTPS on {https_addr} (wss://{https_addr}/ws)");
        }
        let reloader = tls.as_ref().map(|_| tokio::spawn(reload_on_sighup(broker.clone())));
        broker.serving.store(true, Ordering::Release);
        crate::alloc::mark_startup();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = broker.shutdown.cancelled() => break,
                accepted = resp.accept() => match accepted {
                    Ok((stream, _)) => admit(stream, &broker, &workers, &tracker).await,
                    Err(e) => accept_failed(e).await,
                },
                accepted = http.accept() => match accepted {
                    Ok((stream, _)) => hand_over(stream, &workers, &tracker, |s| http::serve(s, broker.clone())),
                    Err(e) => accept_failed(e).await,
                },
                accepted = accept_tls(&tls, 0) => match accepted {
                    Ok((stream, _)) => {
                        broker.stats.connections_received.fetch_add(1, Ordering::Relaxed);
                        hand_over(stream, &workers, &tracker, |s| tls::serve(s, broker.clone(), tls::Service::Resp))
                    }
                    Err(e) => accept_failed(e).await,
                },
                accepted = accept_tls(&tls, 1) => match accepted {
                    Ok((stream, _)) => hand_over(stream, &workers, &tracker, |s| tls::serve(s, broker.clone(), tls::Service::Http)),
                    Err(e) => accept_failed(e).await,
                },
            }
        }
        tracing::info!("shutting down");
        begin_shutdown(&broker);
        drop(resp);
        drop(http);
        drop(tls);
        if let Some(r) = reloader {
            r.abort();
        }
        tracker.close();
        let grace = Duration::from_millis(broker.config.shutdown_timeout_ms);
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!("connections still open after {grace:?}; closing them");
        }
        let _ = timer.await;
        if let Some(p) = broker.persist.clone() {
            let save = broker.shutdown_save.load(Ordering::Acquire);
            let b = broker.clone();
            tokio::task::spawn_blocking(move || finish_persistence(&b, &p, save, log_writer)).await.ok();
        }
        broker.hub.stop_fanout();
        tokio::task::spawn_blocking(move || {
            let _ = fanout.join();
            workers.stop();
        })
        .await
        .ok();
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// The one shutdown signal: everything watching the broker's token stops, and every connection is
/// told through its doorbell (one that registers after this sees the token when it opens).
pub(crate) fn begin_shutdown(broker: &Broker) {
    broker.shutdown.cancel();
    broker.clients.ring_all(Doorbell::SHUTDOWN);
}

/// At shutdown: a final snapshot if SHUTDOWN SAVE asked for one, then everything recorded written
/// and fsynced, whatever the policy: a clean stop loses nothing.
fn finish_persistence(broker: &Arc<Broker>, p: &crate::persist::Persistence, save: bool, writer: Option<std::thread::JoinHandle<()>>) {
    if save && p.begin_rewrite() {
        let _ = p.rewrite(crate::persist::Rewrite::Save, &|| broker.lock());
    }
    while p.rewrite_in_progress() {
        std::thread::sleep(Duration::from_millis(10));
    }
    match p.flush_all() {
        Ok(()) => tracing::info!("persistence: log written and fsynced"),
        Err(e) => tracing::error!("persistence: the last records could not be written at shutdown: {e}"),
    }
    p.stop_writer();
    if let Some(w) = writer {
        let _ = w.join();
    }
}

/// Admits an accepted connection, or refuses it past `maxclients` with Redis's error.
async fn admit(mut stream: tokio::net::TcpStream, broker: &Arc<Broker>, workers: &Workers, tracker: &TaskTracker) {
    broker.stats.connections_received.fetch_add(1, Ordering::Relaxed);
    if broker.clients.len() >= broker.settings().maxclients {
        refused(broker, stream.peer_addr().ok(), "resp");
        let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
        return;
    }
    hand_over(stream, workers, tracker, |s| resp::serve(s, broker.clone()));
}

/// Counts and logs a connection refused past `maxclients` (every wire's accept path calls it). A flood
/// of connections must not flood the log too: at most one line per second, which says how many were
/// refused since the last one (`rejected_connections` in INFO counts every one).
pub(crate) fn refused(broker: &Broker, peer: Option<std::net::SocketAddr>, wire: &'static str) {
    static LAST_LOGGED_SEC: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    static UNLOGGED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    broker.stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let last = LAST_LOGGED_SEC.load(Ordering::Relaxed);
    if now == last || LAST_LOGGED_SEC.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err() {
        UNLOGGED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let refused = UNLOGGED.swap(0, Ordering::Relaxed) + 1;
    let maxclients = broker.settings().maxclients;
    let addr = peer.map(|a| a.to_string()).unwrap_or_default();
    tracing::warn!(target: "herald::clients", addr, wire, maxclients, refused, "connection refused: max number of clients reached");
}

/// Moves an accepted socket to a connection thread, where `serve` registers and serves it.
fn hand_over<F: Future<Output = ()> + Send + 'static>(
    stream: tokio::net::TcpStream,
    workers: &Workers,
    tracker: &TaskTracker,
    serve: impl FnOnce(std::net::TcpStream) -> F,
) {
    let _ = stream.set_nodelay(true);
    match stream.into_std() {
        Ok(s) => workers.spawn(tracker.track_future(serve(s))),
        Err(e) => tracing::warn!("could not hand over connection: {e}"),
    }
}

/// Accepts on one of the TLS listeners (0: RESP, 1: HTTP); never resolves when TLS is off.
async fn accept_tls(tls: &Option<(TcpListener, TcpListener)>, which: usize) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match tls {
        Some((resp, _)) if which == 0 => resp.accept().await,
        Some((_, http)) => http.accept().await,
        None => std::future::pending().await,
    }
}

/// SIGHUP re-reads the TLS certificate and key (a renewed certificate without a restart); a pair
/// that does not load is logged and the current one stays.
async fn reload_on_sighup(broker: Arc<Broker>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: TLS files reload only with CONFIG SET");
        return;
    };
    while hup.recv().await.is_some() {
        match broker.tls.as_ref().map(crate::tls::Tls::reload) {
            Some(Ok(())) => tracing::info!("SIGHUP: TLS certificate and key reloaded"),
            Some(Err(e)) => tracing::error!("SIGHUP: TLS files not reloaded, keeping the current ones: {e}"),
            None => {}
        }
    }
}

/// Out of file descriptors and similar: back off rather than spin.
async fn accept_failed(e: std::io::Error) {
    tracing::warn!("accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// Binds and serves until `shutdown`: the one entry point for `main` and for tests.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    Server::bind(config).await?.run(shutdown).await
}
