//! WebSocket pub-sub fan-out load generator: `fanout`'s measurements with the subscribers on Herald's
//! WebSocket endpoint (JSON envelope) instead of RESP.
//!
//! N WebSocket subscribers on one channel, publishers on RESP (the same publishing side as `fanout`):
//! `--mode max` reports deliveries per second, `--mode rate` publish-to-receive latency percentiles
//! (each payload starts with its send time). `--idle --pid PID` instead opens N subscribers that stay
//! idle and reports how much the broker's RSS grew per connection; `--transport resp` does the same
//! with RESP subscribers, for comparison. Used by `python3 bench/compare.py ws` (docs/benchmarks.md).
//!
//! The client stays cheap per message: pushes are not parsed as JSON, only scanned for their `"data":"`
//! field, and the default is one tokio worker thread, as for `fanout`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use futures_util::{FutureExt, SinkExt, StreamExt};
use hdrhistogram::Histogram;
use herald_bench::pubsub::{self, LoadArgs, Shared};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Parser, Debug, Clone)]
struct Args {
    #[command(flatten)]
    load: LoadArgs,
    /// The broker's WebSocket endpoint.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// Measure the broker's RSS growth per idle subscriber (needs `--pid`) instead of fan-out.
    #[arg(long)]
    idle: bool,
    /// Idle subscribers' transport: `ws` or `resp`.
    #[arg(long, default_value = "ws")]
    transport: String,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 256)]
    connecting: usize,
}

type Ws = WebSocketStream<TcpStream>;

/// tungstenite's read buffer. Not `LoadArgs::read_buffer`: tungstenite zero-fills the free part of its
/// buffer before every read (even one that finds nothing), so a large one makes the client the bottleneck.
const READ_BUFFER: usize = 8192;
type Failure = Box<dyn std::error::Error + Send + Sync>;

const SUBSCRIBE: &str = r#"{"id":1,"cmd":["SUBSCRIBE","fanout"]}"#;

/// A WebSocket connection subscribed to the fan-out channel (its confirmation read).
async fn ws_subscribe(url: String) -> Result<Ws, Failure> {
    let authority = url.strip_prefix("ws://").ok_or("only ws:// URLs")?.split('/').next().unwrap_or_default();
    let stream = TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(config)).await?;
    ws.send(Message::Text(SUBSCRIBE.into())).await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains(r#""result""#) => return Ok(ws),
            Some(Ok(Message::Text(t))) => return Err(format!("SUBSCRIBE refused: {t}").into()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err("closed before the subscription was confirmed".into()),
        }
    }
}

/// Opens `n` connections with `open`, at most `connecting` at a time (a burst of 10,000 connects would
/// overflow the listen backlog and wait out SYN retries).
async fn open_all<T, F, Fut>(n: usize, connecting: usize, open: F) -> Vec<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let opened: Vec<_> = futures_util::stream::iter(0..n).map(|_| open()).buffer_unordered(connecting.max(1)).collect().await;
    opened.into_iter().map(|r| r.unwrap_or_else(|e| panic!("opening a subscriber: {e} (too many open files? raise `ulimit -n`)"))).collect()
}

/// The `data` string of a message push (`{"channel":..,"data":"..","push":"message"}`), found by a scan
/// rather than a JSON parse. The payloads are plain ASCII, so the string has no escapes.
fn push_data(text: &[u8]) -> Option<&[u8]> {
    const FIELD: &[u8] = br#""data":""#;
    let at = text.windows(FIELD.len()).position(|w| w == FIELD)? + FIELD.len();
    let len = text[at..].iter().position(|&b| b == b'"')?;
    Some(&text[at..at + len])
}

async fn subscriber(mut ws: Ws, latency: bool, shared: Arc<Shared>) -> Histogram<u64> {
    let mut hist = pubsub::histogram();
    loop {
        let first = match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(_)) | None) => break,
            Err(_) if shared.running() => continue,
            Err(_) => break,
        };
        // Everything already readable, counted together.
        let now = shared.now_micros();
        let mut count = 0;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            if let Message::Text(text) = &message
                && let Some(data) = push_data(text.as_bytes())
            {
                count += 1;
                if latency {
                    pubsub::record_latency(&mut hist, now, data);
                }
            }
            if let Some(Some(Ok(m))) = ws.next().now_or_never() {
                next = Some(m);
            }
        }
        shared.count(count);
    }
    hist
}

/// The resident set of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).expect("VmRSS in kB") * 1024
}

async fn idle(args: Args) {
    let pid = args.load.pid.expect("--idle needs --pid (the broker's process id)");
    let n = args.load.subscribers;
    let before = rss(pid);
    // Held open (and never read) until after the second RSS reading.
    let (ws, resp) = match args.transport.as_str() {
        "ws" => (open_all(n, args.connecting, || ws_subscribe(args.url.clone())).await, Vec::new()),
        "resp" => {
            let open = || async { Ok(pubsub::resp_subscribe(&args.load.addr, None, true).await?) };
            (Vec::new(), open_all(n, args.connecting, open).await)
        }
        other => panic!("--transport is ws or resp, not {other}"),
    };
    // Let the broker finish whatever the last connections set off.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss(pid);
    println!(
        "idle transport={} connections={} rss_before={} rss_after={} bytes_per_connection={:.0}",
        args.transport,
        n,
        before,
        after,
        after.saturating_sub(before) as f64 / n.max(1) as f64
    );
    drop((ws, resp));
}

async fn run(args: Args) {
    if args.idle {
        return idle(args).await;
    }
    let shared = Shared::new();
    let conns = open_all(args.load.subscribers, args.connecting, || ws_subscribe(args.url.clone())).await;
    let subs = conns.into_iter().map(|ws| tokio::spawn(subscriber(ws, args.load.latency(), shared.clone()))).collect();
    let measured = pubsub::measure(&args.load, &shared, subs).await;
    measured.report(&args.load, &format!("transport=ws subscribers={}", args.load.subscribers));
}

fn main() {
    let args = Args::parse();
    args.load.block_on(run(args.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_data_of_a_push() {
        assert_eq!(push_data(br#"{"channel":"fanout","data":"00ab","push":"message"}"#), Some(&b"00ab"[..]));
        assert_eq!(push_data(br#"{"id":1,"result":[["subscribe","fanout",1]]}"#), None);
    }
}
