//! Following Sentinel's primary (`redis+sentinel://`, `rediss+sentinel://`): every
//! `engine.sentinel_poll_ms` the node asks the sentinels which server is the primary; when it moved (a
//! failover), new requests go to the new one (the pool rebuilds its connections) and the pub-sub bridge
//! reconnects there. Until then requests to the lost primary fail with `-ERR redis engine unavailable`,
//! as any Redis client's would; what the lost primary acknowledged but had not replicated is lost with
//! it (docs/scale-out.md, *Guarantees*).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::Remote;

pub async fn follow(remote: Arc<Remote>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(remote.sentinel_poll) => {}
            _ = stop.cancelled() => return,
        }
        match remote.endpoint.refresh().await {
            Ok(None) => {}
            Ok(Some(primary)) => {
                tracing::warn!(%primary, "redis engine: Sentinel names a new primary; switching to it");
                if let Err(e) = remote.pool.rebuild() {
                    tracing::error!("redis engine: connections to the new primary: {e}");
                }
                remote.bridge.reconnect();
            }
            Err(e) => tracing::warn!("redis engine: asking the sentinels for the primary: {e}"),
        }
    }
}
