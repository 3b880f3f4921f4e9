//! `herald --healthcheck [PATH]`: the client side of `/healthz` and `/readyz`, so a container image can
//! check the broker without carrying curl or wget (the Dockerfile's `HEALTHCHECK`).
//!
//! It reads the same configuration the broker does (defaults, `HERALD_CONFIG` / `--config`, `HERALD_*`,
//! flags), so it asks the port the broker listens on without being told twice. A plain blocking socket
//! with timeouts is enough for one request; no runtime is started.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use crate::config::Config;

/// Asks the broker's HTTP port for `path`. `Ok` with the status line when it answered 200; `Err` saying
/// what went wrong otherwise (refused, timed out, or the status and the body's first line).
pub fn check(config: &Config, path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!("the path must start with '/', e.g. /healthz or /readyz (got {path:?})"));
    }
    let addr = target(config)?;
    // The probe waits as long as the broker waits for a request head: both bound one short exchange.
    let timeout = Duration::from_millis(config.websocket.handshake_timeout_ms.max(1));
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).and_then(|()| stream.set_write_timeout(Some(timeout))).map_err(|e| format!("{addr}: {e}"))?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .map_err(|e| format!("{addr}: {e}"))?;
    // The answers on these paths are a few bytes; the bound only protects the probe from a stranger.
    let mut answer = Vec::new();
    stream.take(config.limits.max_inline_len as u64).read_to_end(&mut answer).map_err(|e| format!("{addr}: {e}"))?;
    let (status, body) = parse(&answer).ok_or_else(|| format!("{addr}: not an HTTP answer"))?;
    match status.split(' ').nth(1) {
        Some("200") => Ok(format!("{addr}{path}: {status}")),
        _ => Err(format!("{addr}{path}: {status}: {body}")),
    }
}

/// Where the broker listens, seen from the same host: a wildcard bind address is reached on loopback.
fn target(config: &Config) -> Result<SocketAddr, String> {
    if config.http_port == 0 {
        return Err("http_port is 0 (a free port picked at start): name the port with --http-port or HERALD_HTTP_PORT".into());
    }
    let ip: IpAddr = config.bind.parse().map_err(|_| format!("bind {:?} is not an IP address", config.bind))?;
    let ip = match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    };
    Ok(SocketAddr::new(ip, config.http_port))
}

/// The status line and the body's first line of an HTTP answer.
fn parse(answer: &[u8]) -> Option<(String, String)> {
    let text = String::from_utf8_lossy(answer);
    let status = text.lines().next().filter(|l| l.starts_with("HTTP/"))?.trim().to_owned();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.lines().next().unwrap_or("").trim().to_owned()).unwrap_or_default();
    Some((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_binds_are_reached_on_loopback() {
        let mut c = Config { bind: "0.0.0.0".into(), http_port: 7379, ..Config::defaults() };
        assert_eq!(target(&c), Ok("127.0.0.1:7379".parse().unwrap()));
        c.bind = "::".into();
        assert_eq!(target(&c), Ok("[::1]:7379".parse().unwrap()));
        c.bind = "10.1.2.3".into();
        assert_eq!(target(&c), Ok("10.1.2.3:7379".parse().unwrap()));
        c.http_port = 0;
        assert!(target(&c).unwrap_err().contains("http_port is 0"));
    }

    #[test]
    fn answers() {
        assert_eq!(
            parse(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 14\r\n\r\nshutting down\n"),
            Some(("HTTP/1.1 503 Service Unavailable".into(), "shutting down".into()))
        );
        assert_eq!(parse(b"SSH-2.0-OpenSSH\r\n"), None);
        assert!(check(&Config::defaults(), "healthz").unwrap_err().contains("must start with '/'"));
    }
}
