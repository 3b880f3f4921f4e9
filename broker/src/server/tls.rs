//! The TLS listeners: the handshake (bounded by `tls.handshake_timeout_ms`, on the connection's io
//! thread), then the same RESP or HTTP service as the plain ports, over the TLS stream. Nothing past
//! this file knows the connection is encrypted.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::conn::Stream;
use crate::broker::Broker;

impl Stream for TlsStream<TcpStream> {}

/// Which service a TLS listener offers.
#[derive(Debug, Clone, Copy)]
pub enum Service {
    Resp,
    Http,
}

/// Completes the TLS handshake of an accepted socket, then serves it; a failed or slow handshake
/// drops the socket (logged at debug: scanners and plain-text clients do this all the time).
pub async fn serve(stream: std::net::TcpStream, broker: Arc<Broker>, service: Service) {
    let Some(tls) = &broker.tls else { return };
    let Ok(tcp) = TcpStream::from_std(stream) else { return };
    let (Ok(peer), Ok(local)) = (tcp.peer_addr(), tcp.local_addr()) else { return };
    let timeout = Duration::from_millis(broker.config.tls.handshake_timeout_ms.max(1));
    let mut stream = match tokio::time::timeout(timeout, tls.acceptor().accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%peer, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    match service {
        Service::Resp => {
            // `maxclients` is checked once the handshake is done, so the refusal can be read.
            if broker.clients.len() >= broker.settings().maxclients {
                super::refused(&broker, Some(peer), "resp-tls");
                let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
                let _ = stream.shutdown().await;
                return;
            }
            super::resp::serve_stream(stream, peer, local, broker).await;
        }
        Service::Http => super::http::serve_stream(stream, peer, local, broker).await,
    }
}
