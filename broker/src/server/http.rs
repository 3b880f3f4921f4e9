//! The HTTP port: one request head per connection, then either a WebSocket upgrade on `/ws` or a small
//! static answer (`/healthz`, `/readyz`, the JavaScript client, the browser example).
//!
//! Only the request head is parsed here (httparse); there is no HTTP/1.1 keep-alive or body handling,
//! because nothing on this port needs it. The WebSocket handshake is answered here too, so the bytes
//! already read stay ours and the socket goes to tokio-tungstenite ready to carry frames.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::conn::Credentials;
use super::ws;
use crate::broker::Broker;

/// Most header lines accepted in a request head.
const MAX_HEADERS: usize = 48;

/// What the WebSocket connection needs from its opening request.
#[derive(Debug, Default)]
struct Opening {
    /// `?user=..&password=..`: authenticate as the connection opens, as `AUTH` would.
    user: Option<String>,
    password: Option<String>,
    /// Bytes that arrived after the head (the client's first frames, if it did not wait).
    leftover: Vec<u8>,
}

/// Serves one connection accepted on the HTTP port.
pub async fn serve(stream: std::net::TcpStream, broker: Arc<Broker>) {
    let Ok(mut stream) = TcpStream::from_std(stream) else { return };
    let timeout = Duration::from_millis(broker.config.websocket.handshake_timeout_ms);
    let head = match tokio::time::timeout(timeout, read_head(&mut stream, broker.config.limits.max_inline_len)).await {
        Ok(Ok(Some(head))) => head,
        Ok(Ok(None)) | Err(_) => {
            let _ = respond(&mut stream, "400 Bad Request", "text/plain", b"request head incomplete or too large\n").await;
            return;
        }
        Ok(Err(_)) => return,
    };
    // The request head and its parsing are dropped before the WebSocket is served: an idle connection
    // should hold only what it needs (docs/benchmarks.md, memory per idle connection).
    if let Some(Opening { user, password, leftover }) = route(&mut stream, head, &broker).await {
        let credentials = password.map(|password| Credentials { user, password });
        ws::serve(stream, broker, leftover, credentials).await;
    }
}

/// Reads until the end of the request head; `None` if it grew past `max` or the peer closed first.
async fn read_head(stream: &mut TcpStream, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        if find_head_end(&buf).is_some() {
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

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// The JavaScript client and its browser example, compiled in so the broker serves them as they are in
/// this source tree.
const HERALD_JS: &[u8] = include_bytes!("../../../clients/js/herald.js");
const EXAMPLE_HTML: &[u8] = include_bytes!("../../../clients/js/example/index.html");

/// Answers the request; `Some` once `/ws` has been upgraded and the socket is a WebSocket.
async fn route(stream: &mut TcpStream, buf: Vec<u8>, broker: &Broker) -> Option<Opening> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(&buf) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => {
            let _ = respond(stream, "400 Bad Request", "text/plain", b"malformed HTTP request\n").await;
            return None;
        }
    };
    let (path, query) = req.path.unwrap_or("/").split_once('?').unwrap_or((req.path.unwrap_or("/"), ""));
    if req.method != Some("GET") {
        let _ = respond(stream, "405 Method Not Allowed", "text/plain", b"only GET is served here\n").await;
        return None;
    }
    let header =
        |name: &str| req.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).and_then(|h| std::str::from_utf8(h.value).ok());
    match path {
        "/ws" => {}
        "/healthz" => {
            let _ = respond(stream, "200 OK", "text/plain", b"ok\n").await;
            return None;
        }
        "/readyz" => {
            let _ = match broker.readiness() {
                Ok(()) => respond(stream, "200 OK", "text/plain", b"ready\n").await,
                Err(why) => respond(stream, "503 Service Unavailable", "text/plain", format!("{why}\n").as_bytes()).await,
            };
            return None;
        }
        "/herald.js" => {
            let _ = respond(stream, "200 OK", "text/javascript; charset=utf-8", HERALD_JS).await;
            return None;
        }
        "/example" | "/example/" => {
            let _ = respond(stream, "200 OK", "text/html; charset=utf-8", EXAMPLE_HTML).await;
            return None;
        }
        _ => {
            let _ =
                respond(stream, "404 Not Found", "text/plain", b"not found: try /ws, /healthz, /readyz, /herald.js or /example\n").await;
            return None;
        }
    }
    let upgrade = header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let connection = header("connection").is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")));
    let (Some(key), true, true) = (header("sec-websocket-key"), upgrade, connection) else {
        let _ = respond(stream, "426 Upgrade Required", "text/plain", b"/ws speaks WebSocket only\n").await;
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
        let _ = respond(stream, "403 Forbidden", "text/plain", b"origin not allowed\n").await;
        return None;
    }
    if broker.clients.len() >= broker.settings().maxclients {
        broker.stats.rejected_connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = respond(stream, "503 Service Unavailable", "text/plain", b"max number of clients reached\n").await;
        return None;
    }
    let accept = derive_accept_key(key.as_bytes());
    let response =
        format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
    stream.write_all(response.as_bytes()).await.ok()?;
    let mut opening = Opening { leftover: buf[len..].to_vec(), ..Opening::default() };
    for (name, value) in query_pairs(query) {
        match name.as_str() {
            "user" => opening.user = Some(value),
            "password" => opening.password = Some(value),
            _ => {}
        }
    }
    Some(opening)
}

/// `a=1&b=x%20y` as decoded pairs (`+` is a space, as forms send it).
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

/// Static answers are public (the client module is imported by pages of any origin), hence the CORS
/// header; the WebSocket endpoint has its own origin check.
async fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        assert_eq!(
            query_pairs("user=default&password=p%40ss+word&x"),
            vec![("user".into(), "default".into()), ("password".into(), "p@ss word".into()), ("x".into(), "".into())]
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
