//! Pub-sub fan-out load generator (redis-benchmark cannot measure fan-out).
//!
//! Starts N subscriber connections on one channel and P publishers, then either publishes as fast as the
//! server accepts (`--mode max`, reports deliveries per second) or at a fixed rate (`--mode rate`,
//! reports publish-to-receive latency percentiles from an HDR histogram; each payload carries its send
//! time). `--stalled K` adds K subscribers that never read, to measure what a slow consumer costs the
//! others. Run it against herald and redis-server in the same session and compare (docs/benchmarks.md).

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use clap::Parser;
use hdrhistogram::Histogram;
use herald_bench::pubsub::{self, LoadArgs, Shared};
use tokio::io::AsyncReadExt;

#[derive(Parser, Debug, Clone)]
struct Args {
    #[command(flatten)]
    load: LoadArgs,
    /// Subscribers that subscribe and then never read.
    #[arg(long, default_value_t = 0)]
    stalled: usize,
    /// Subscribe with PSUBSCRIBE to this pattern instead of SUBSCRIBE to the channel (with
    /// `--publishers 0`, to measure what watchers cost someone else's writes).
    #[arg(long)]
    pattern: Option<String>,
    /// Spread the subscribers over these addresses (round robin; comma-separated) instead of `--addr`,
    /// which the publishers keep: several Herald nodes on one Redis (`bench/scaleout_fanout.sh`).
    #[arg(long, value_delimiter = ',')]
    sub_addrs: Vec<String>,
}

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

async fn subscriber(args: Args, i: usize, shared: Arc<Shared>, ready: tokio::sync::mpsc::Sender<()>) -> Histogram<u64> {
    let mut hist = pubsub::histogram();
    let addr = if args.sub_addrs.is_empty() { &args.load.addr } else { &args.sub_addrs[i % args.sub_addrs.len()] };
    let mut stream = pubsub::resp_subscribe(addr, args.pattern.as_deref(), true).await.expect("subscribe");
    let chunk = args.load.read_buffer();
    let mut buf = BytesMut::with_capacity(chunk);
    ready.send(()).await.ok();
    let latency = args.load.latency();
    loop {
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(chunk);
        }
        match tokio::time::timeout(Duration::from_millis(200), stream.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => {}
            Err(_) => {
                if !shared.running() {
                    break;
                }
                continue;
            }
        }
        let mut count = 0;
        let now = shared.now_micros();
        let used = scan_messages(&buf, |payload| {
            count += 1;
            if latency {
                pubsub::record_latency(&mut hist, now, payload);
            }
        });
        let _ = buf.split_to(used);
        shared.count(count);
    }
    hist
}

fn main() {
    let args = Args::parse();
    args.load.block_on(run(args.clone()));
}

async fn run(args: Args) {
    let shared = Shared::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(args.load.subscribers.max(1));
    let mut subs = Vec::new();
    for i in 0..args.load.subscribers {
        subs.push(tokio::spawn(subscriber(args.clone(), i, shared.clone(), ready_tx.clone())));
    }
    for _ in 0..args.load.subscribers {
        ready_rx.recv().await;
    }
    let mut stalled = Vec::new();
    for _ in 0..args.stalled {
        stalled.push(pubsub::resp_subscribe(&args.load.addr, None, false).await.expect("subscribe"));
    }
    let measured = pubsub::measure(&args.load, &shared, subs).await;
    drop(stalled);
    measured.report(&args.load, &format!("subscribers={} stalled={}", args.load.subscribers, args.stalled));
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
