//! The HTTP port: the WebSocket channel (`/ws`), static answers (`/healthz`, `/readyz`, the JavaScript
//! client, the browser example), and the HTTP API (`/v1/...`, docs/http.md), Herald's third wire.
//!
//! ```text
//! accept → serve (this file): the first request head → router.rs
//!            ├─ /ws:          the handshake, answered here → server/ws.rs (WsWire) → connection core
//!            ├─ static pages and /readyz: answered here, then the connection closes (response.rs)
//!            ├─ /metrics:     rendered here (metrics.rs), then the connection closes
//!            └─ anything else: wire.rs (HttpWire) → connection core, keep-alive from there on
//!                 request.rs (head, body, keep-alive) · cors.rs · auth.rs · cmd.rs (/v1/cmd,
//!                 /v1/pipeline) · sse.rs (event streams)
//! ```
//!
//! The WebSocket handshake is answered here, so the bytes already read stay ours and the socket goes
//! to tokio-tungstenite ready to carry frames. The first request head of any other connection is
//! handed to the HTTP wire with the socket, which reads it again as the first of its requests.

mod auth;
mod cmd;
mod cors;
mod metrics;
mod object_metrics;
mod request;
mod response;
mod router;
mod sse;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::conn::{self, Credentials, Stream};
use super::ws;
use crate::broker::Broker;
use request::{HttpRequest, Parsed};
use router::{Route, Routed};

pub use wire::HttpWire;

/// Serves one connection accepted on the HTTP port.
pub async fn serve(stream: std::net::TcpStream, broker: Arc<Broker>) {
    let Ok(stream) = TcpStream::from_std(stream) else { return };
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else { return };
    serve_stream(stream, peer, local, broker).await;
}

/// Serves the HTTP port's endpoints over any byte stream (TCP, or TLS once its handshake is done: HTTPS
/// and WSS).
pub async fn serve_stream<S: Stream + 'static>(mut stream: S, peer: SocketAddr, local: SocketAddr, broker: Arc<Broker>) {
    let timeout = Duration::from_millis(broker.config.websocket.handshake_timeout_ms);
    let max_head = broker.config.http.max_head_bytes;
    let buf = match tokio::time::timeout(timeout, read_head(&mut stream, max_head)).await {
        Ok(Ok(Some(buf))) => buf,
        Ok(Ok(None)) | Err(_) => {
            respond(&mut stream, 400, "text/plain", b"request head incomplete or too large\n").await;
            return;
        }
        Ok(Err(_)) => return,
    };
    // Only the head is looked at here: the body (if any) is the HTTP wire's to read.
    let limits = request::Limits { max_head, max_body: usize::MAX };
    // A head the parser refuses goes to the HTTP wire too, which answers it with its status.
    let head = match request::parse(&mut BytesMut::from(&buf[..]), limits) {
        Ok(Parsed::Complete(req)) => Some(req),
        Ok(Parsed::Incomplete { .. }) | Err(_) => None,
    };
    let route = head.as_ref().map(|req| router::route(&req.method, &req.path));
    match (route, head) {
        (Some(Routed::Found(Route::Metrics)), _) => {
            let body = metrics::render(&broker);
            respond(&mut stream, 200, metrics::CONTENT_TYPE, body.as_bytes()).await;
        }
        (Some(Routed::Found(Route::Readyz)), _) => match broker.readiness() {
            Ok(()) => respond(&mut stream, 200, "text/plain", b"ready\n").await,
            Err(why) => respond(&mut stream, 503, "text/plain", format!("{why}\n").as_bytes()).await,
        },
        (Some(Routed::Found(route)), _) if response::page(&route).is_some() => {
            let (content_type, body) = response::page(&route).expect("checked");
            respond(&mut stream, 200, content_type, body).await;
        }
        (Some(Routed::Found(Route::WebSocket)), Some(req)) => {
            if let Some((leftover, credentials)) = upgrade(&mut stream, peer, &req, &buf, &broker).await {
                ws::serve(stream, peer, local, broker, leftover, credentials).await;
            }
        }
        _ => {
            if broker.clients.len() >= broker.settings().maxclients {
                super::refused(&broker, Some(peer), "http");
                respond(&mut stream, 503, "text/plain", b"max number of clients reached\n").await;
                return;
            }
            let wire = HttpWire::new(stream, buf, &broker);
            conn::serve(wire, broker, peer, local, None).await;
        }
    }
}

/// Reads until the end of the request head; `None` if it grew past `max` or the peer closed first.
async fn read_head<S: Stream>(stream: &mut S, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(Some(buf));
        }
        if buf.len() >= max {
            return Ok(None);
        }
        buf.reserve(1024);
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(None);
        }
    }
}

/// Answers the WebSocket handshake on `/ws`; the bytes after the head and the URL's credentials once
/// the socket is a WebSocket.
async fn upgrade<S: Stream>(
    stream: &mut S,
    peer: SocketAddr,
    req: &HttpRequest,
    buf: &[u8],
    broker: &Broker,
) -> Option<(Vec<u8>, Option<Credentials>)> {
    let header = |name: &str| req.header(name);
    let upgrade = header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let connection = header("connection").is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")));
    let (Some(key), true, true) = (header("sec-websocket-key"), upgrade, connection) else {
        respond(stream, 426, "text/plain", b"/ws speaks WebSocket only\n").await;
        return None;
    };
    if header("sec-websocket-version") != Some("13") {
        let _ = stream
            .write_all(b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        return None;
    }
    let allowed = &broker.config.websocket.allowed_origins;
    if let Some(origin) = header("origin")
        && !allowed.is_empty()
        && !allowed.iter().any(|a| a == origin)
    {
        tracing::info!(origin, "WebSocket refused: origin not in websocket.allowed_origins");
        respond(stream, 403, "text/plain", b"origin not allowed\n").await;
        return None;
    }
    if broker.clients.len() >= broker.settings().maxclients {
        super::refused(broker, Some(peer), "websocket");
        respond(stream, 503, "text/plain", b"max number of clients reached\n").await;
        return None;
    }
    // `Authorization` (Basic, or Bearer with a token), else the URL's `?token=` or `?user=&password=`.
    let query = req.query_pairs();
    let presented = match auth::Presented::from_request(header("authorization"), Some(&query)) {
        Ok(p) => p,
        Err(e) => {
            respond(stream, 401, "text/plain", format!("{}\n", e.message()).as_bytes()).await;
            return None;
        }
    };
    let accept = derive_accept_key(key.as_bytes());
    let response =
        format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
    stream.write_all(response.as_bytes()).await.ok()?;
    let head_len = buf.windows(4).position(|w| w == b"\r\n\r\n").map_or(buf.len(), |i| i + 4);
    Some((buf[head_len..].to_vec(), presented.credentials()))
}

/// A static answer, then the connection closes (response.rs says why these carry CORS `*`).
async fn respond<S: Stream>(stream: &mut S, status: u16, content_type: &str, body: &[u8]) {
    let mut out = BytesMut::new();
    response::write_static(&mut out, status, content_type, body);
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}
