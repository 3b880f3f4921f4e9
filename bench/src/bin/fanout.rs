//! Pub-sub fan-out load generator (redis-benchmark cannot measure fan-out).
//!
//! Starts N subscriber connections on one channel and P publishers, then either publishes as fast as the
//! server accepts (`--mode max`, reports deliveries per second) or at a fixed rate (`--mode rate`,
//! reports publish-to-receive latency percentiles from an HDR histogram; each payload carries its send
//! time). `--stalled K` adds K subscribers that never read, to measure what a slow consumer costs the
//! others. Run it against herald and redis-server in the same session and compare (docs/benchmarks.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use clap::Parser;
use hdrhistogram::Histogram;
use herald_bench::resp_client::{RespConn, encode_command};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser, Debug, Clone)]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:6379")]
    addr: String,
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// Subscribers that subscribe and then never read.
    #[arg(long, default_value_t = 0)]
    stalled: usize,
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Payload bytes (at least 8: the send time rides in the first 8).
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// `max` (throughput) or `rate` (latency at a fixed publish rate).
    #[arg(long, default_value = "max")]
    mode: String,
    /// Publishes per second in `rate` mode (all publishers together).
    #[arg(long, default_value_t = 10)]
    rate: u64,
    /// PUBLISH commands per pipelined batch in `max` mode.
    #[arg(long, default_value_t = 64)]
    pipeline: usize,
    /// Seconds to measure (after a 1 s warm-up in `max` mode).
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Tokio worker threads for this tool.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Subscribe with PSUBSCRIBE to this pattern instead of SUBSCRIBE to the channel (with
    /// `--publishers 0`, to measure what watchers cost someone else's writes).
    #[arg(long)]
    pattern: Option<String>,
}

const CHANNEL: &[u8] = b"fanout";

/// Finds complete `message` frames in `buf` (RESP2 `*3` or RESP3 `>3` of bulk strings), calling `f` with
/// each payload; returns the bytes consumed. A hand-rolled scanner: decoding millions of frames a second
/// with a general decoder would make the tool the bottleneck.
fn scan_messages(buf: &[u8], mut f: impl FnMut(&[u8])) -> usize {
    let mut pos = 0;
    'frames: loop {
        let start = pos;
        let Some(&kind) = buf.get(pos) else { break };
        let Some(n) = read_line_int(buf, &mut pos, kind) else { break };
        let mut payload = None;
        let payload_at = if buf.get(start..).is_some_and(|b| b.starts_with(b"*4\r\n") || b.starts_with(b">4\r\n")) { 3 } else { 2 };
        for i in 0..n {
            if buf.get(pos) != Some(&b'$') {
                // Not a bulk (e.g. a subscribe confirmation's integer): skip the line.
                match buf[pos..].windows(2).position(|w| w == b"\r\n") {
                    Some(p) => {
                        pos += p + 2;
                        continue;
                    }
                    None => {
                        pos = start;
                        break 'frames;
                    }
                }
            }
            let Some(len) = read_line_int(buf, &mut pos, b'$') else {
                pos = start;
                break 'frames;
            };
            let len = len as usize;
            if buf.len() < pos + len + 2 {
                pos = start;
                break 'frames;
            }
            if i == payload_at {
                payload = Some(pos..pos + len);
            }
            pos += len + 2;
        }
        if let Some(range) = payload {
            let head = buf[start..].get(4..16).unwrap_or(b"");
            if head.starts_with(b"$7\r\nmessage") || head.starts_with(b"$8\r\npmessage") {
                f(&buf[range]);
            }
        }
    }
    pos
}

fn read_line_int(buf: &[u8], pos: &mut usize, _kind: u8) -> Option<i64> {
    let rest = &buf[*pos..];
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    let n = std::str::from_utf8(&rest[1..end]).ok()?.parse().ok()?;
    *pos += end + 2;
    Some(n)
}

struct Shared {
    received: AtomicU64,
    running: AtomicBool,
    epoch: Instant,
}

async fn subscriber(args: Args, shared: Arc<Shared>, ready: tokio::sync::mpsc::Sender<()>) -> Histogram<u64> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let mut stream = TcpStream::connect(&args.addr).await.expect("connect");
    let mut out = BytesMut::new();
    match &args.pattern {
        Some(p) => encode_command(&mut out, &[b"PSUBSCRIBE", p.as_bytes()]),
        None => encode_command(&mut out, &[b"SUBSCRIBE", CHANNEL]),
    }
    stream.write_all(&out).await.expect("subscribe");
    let mut buf = BytesMut::with_capacity(if args.subscribers > 1000 { 4096 } else { 256 * 1024 });
    // The confirmation.
    while !buf.windows(9).any(|w| w == b"subscribe") {
        stream.read_buf(&mut buf).await.expect("confirmation");
    }
    buf.clear();
    ready.send(()).await.ok();
    let latency = args.mode == "rate";
    loop {
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(if args.subscribers > 1000 { 4096 } else { 256 * 1024 });
        }
        match tokio::time::timeout(Duration::from_millis(200), stream.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => {}
            Err(_) => {
                if !shared.running.load(Ordering::Relaxed) {
                    break;
                }
                continue;
            }
        }
        let mut count = 0;
        let now = shared.epoch.elapsed().as_micros() as u64;
        let used = scan_messages(&buf, |payload| {
            count += 1;
            if latency && payload.len() >= 8 {
                let sent = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
                let _ = hist.record(now.saturating_sub(sent).max(1));
            }
        });
        let _ = buf.split_to(used);
        if shared.running.load(Ordering::Relaxed) {
            shared.received.fetch_add(count, Ordering::Relaxed);
        }
    }
    hist
}

async fn stalled_subscriber(addr: String) -> TcpStream {
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    let mut out = BytesMut::new();
    encode_command(&mut out, &[b"SUBSCRIBE", CHANNEL]);
    stream.write_all(&out).await.expect("subscribe");
    stream
}

fn payload(size: usize, sent_micros: u64) -> Vec<u8> {
    let mut p = vec![b'x'; size.max(8)];
    p[..8].copy_from_slice(&sent_micros.to_le_bytes());
    p
}

async fn publisher(args: Args, shared: Arc<Shared>, id: usize) -> u64 {
    let mut conn = RespConn::connect(&args.addr).await.expect("connect");
    let mut published = 0;
    if args.mode == "rate" {
        let per = args.rate.max(1) as f64 / args.publishers as f64;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        while shared.running.load(Ordering::Relaxed) {
            tick.tick().await;
            let p = payload(args.size, shared.epoch.elapsed().as_micros() as u64);
            conn.call(&[b"PUBLISH", CHANNEL, &p]).await.expect("publish");
            published += 1;
        }
    } else {
        let _ = id;
        while shared.running.load(Ordering::Relaxed) {
            for _ in 0..args.pipeline {
                let p = payload(args.size, shared.epoch.elapsed().as_micros() as u64);
                conn.queue(&[b"PUBLISH", CHANNEL, &p]);
            }
            conn.flush().await.expect("publish");
            for _ in 0..args.pipeline {
                conn.read_frame().await.expect("publish reply");
            }
            published += args.pipeline as u64;
        }
    }
    published
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build().expect("runtime");
    runtime.block_on(run(args));
}

async fn run(args: Args) {
    let shared = Arc::new(Shared { received: AtomicU64::new(0), running: AtomicBool::new(true), epoch: Instant::now() });
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(args.subscribers.max(1));
    let mut subs = Vec::new();
    for _ in 0..args.subscribers {
        subs.push(tokio::spawn(subscriber(args.clone(), shared.clone(), ready_tx.clone())));
    }
    for _ in 0..args.subscribers {
        ready_rx.recv().await;
    }
    let mut stalled = Vec::new();
    for _ in 0..args.stalled {
        stalled.push(stalled_subscriber(args.addr.clone()).await);
    }
    let mut pubs = Vec::new();
    for id in 0..args.publishers {
        pubs.push(tokio::spawn(publisher(args.clone(), shared.clone(), id)));
    }
    if args.mode != "rate" {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let before = shared.received.load(Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    let delivered = shared.received.load(Ordering::Relaxed) - before;
    let elapsed = start.elapsed().as_secs_f64();
    shared.running.store(false, Ordering::Relaxed);
    let mut published = 0;
    for p in pubs {
        published += p.await.unwrap_or(0);
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    for s in subs {
        if let Ok(h) = s.await {
            hist.add(h).expect("same bounds");
        }
    }
    drop(stalled);
    println!(
        "subscribers={} stalled={} publishers={} size={} mode={} published={} deliveries={} deliveries_per_sec={:.0}",
        args.subscribers,
        args.stalled,
        args.publishers,
        args.size,
        args.mode,
        published,
        delivered,
        delivered as f64 / elapsed
    );
    if args.mode == "rate" {
        println!(
            "latency_us p50={} p99={} p999={} max={} samples={}",
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.99),
            hist.value_at_quantile(0.999),
            hist.max(),
            hist.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_resp2_and_resp3_messages() {
        let buf = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nabc\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nz\r\n*3\r\n$7\r\nmess";
        let mut got = Vec::new();
        let used = scan_messages(buf, |p| got.push(p.to_vec()));
        assert_eq!(got, vec![b"abc".to_vec(), b"z".to_vec()]);
        assert_eq!(&buf[used..], b"*3\r\n$7\r\nmess");
    }
}
