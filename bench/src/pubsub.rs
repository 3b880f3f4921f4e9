//! What the fan-out tools (`fanout` over RESP, `wsfanout` over WebSocket) share: the publishing side
//! (always RESP), the payload that carries its send time, the measuring window and the report.
//!
//! Only the subscribers differ between the tools, so both measure the same thing the same way.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use clap::Args;
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::resp_client::{RespConn, encode_command};

/// The channel every fan-out subscriber listens on.
pub const CHANNEL: &[u8] = b"fanout";

/// Hex digits of the send time (microseconds since the tool's epoch) at the start of every payload.
/// ASCII, so a payload is also a JSON string as it is: the WebSocket push carries it unchanged.
pub const STAMP: usize = 16;

/// Options both fan-out tools take.
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// Server RESP address (publishers, and RESP subscribers).
    #[arg(long, default_value = "127.0.0.1:6379")]
    pub addr: String,
    #[arg(long, default_value_t = 100)]
    pub subscribers: usize,
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Payload bytes (at least 16: the send time rides in the first 16, as hex).
    #[arg(long, default_value_t = 32)]
    pub size: usize,
    /// `max` (throughput) or `rate` (latency at a fixed publish rate).
    #[arg(long, default_value = "max")]
    pub mode: String,
    /// Publishes per second in `rate` mode (all publishers together).
    #[arg(long, default_value_t = 10)]
    pub rate: u64,
    /// PUBLISH commands per pipelined batch in `max` mode.
    #[arg(long, default_value_t = 64)]
    pub pipeline: usize,
    /// Seconds to measure (after a 1 s warm-up in `max` mode).
    #[arg(long, default_value_t = 5)]
    pub duration: u64,
    /// Tokio worker threads for this tool.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// The server's process id: its CPU time (user + system, /proc/PID/stat) over the measuring window
    /// is reported per delivery.
    #[arg(long)]
    pub pid: Option<u32>,
    /// More processes whose CPU time counts with `--pid`'s (a scale-out run's other nodes and its backing
    /// Redis), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub also_pid: Vec<u32>,
}

impl LoadArgs {
    pub fn latency(&self) -> bool {
        self.mode == "rate"
    }

    /// Read buffer per subscriber: small when there are many, so 10,000 of them stay cheap.
    pub fn read_buffer(&self) -> usize {
        if self.subscribers > 1000 { 4096 } else { 256 * 1024 }
    }

    /// Runs `run` on a runtime with `--threads` workers.
    pub fn block_on<F: std::future::Future>(&self, run: F) -> F::Output {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(self.threads).enable_all().build().expect("runtime");
        runtime.block_on(run)
    }
}

/// What the subscribers and the measuring window share.
pub struct Shared {
    pub received: AtomicU64,
    pub running: AtomicBool,
    pub epoch: Instant,
}

impl Shared {
    pub fn new() -> Arc<Self> {
        Arc::new(Shared { received: AtomicU64::new(0), running: AtomicBool::new(true), epoch: Instant::now() })
    }

    pub fn now_micros(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    pub fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// Counts deliveries a subscriber has seen, while the window is open.
    pub fn count(&self, n: u64) {
        if n > 0 && self.running() {
            self.received.fetch_add(n, Ordering::Relaxed);
        }
    }
}

pub fn histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram")
}

/// A payload of `size` bytes (at least [`STAMP`]) starting with its send time.
pub fn payload(size: usize, sent_micros: u64) -> Vec<u8> {
    let mut p = format!("{sent_micros:016x}").into_bytes();
    p.resize(size.max(STAMP), b'x');
    p
}

/// The send time at the start of a payload.
pub fn stamp(payload: &[u8]) -> Option<u64> {
    let hex = std::str::from_utf8(payload.get(..STAMP)?).ok()?;
    u64::from_str_radix(hex, 16).ok()
}

/// Records the publish-to-receive latency of one payload received at `now` (microseconds since the epoch).
pub fn record_latency(hist: &mut Histogram<u64>, now: u64, payload: &[u8]) {
    if let Some(sent) = stamp(payload) {
        let _ = hist.record(now.saturating_sub(sent).max(1));
    }
}

/// A RESP connection that sent `SUBSCRIBE` (or `PSUBSCRIBE` with `pattern`) and, with `confirm`, has read
/// the confirmation; what else arrived with it is dropped.
pub async fn resp_subscribe(addr: &str, pattern: Option<&str>, confirm: bool) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut out = BytesMut::new();
    match pattern {
        Some(p) => encode_command(&mut out, &[b"PSUBSCRIBE", p.as_bytes()]),
        None => encode_command(&mut out, &[b"SUBSCRIBE", CHANNEL]),
    }
    stream.write_all(&out).await?;
    let mut buf = BytesMut::with_capacity(256);
    while confirm && !buf.windows(9).any(|w| w == b"subscribe") {
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(stream)
}

async fn publisher(args: LoadArgs, shared: Arc<Shared>) -> u64 {
    let mut conn = RespConn::connect(&args.addr).await.expect("connect");
    let mut published = 0;
    if args.latency() {
        let per = args.rate.max(1) as f64 / args.publishers as f64;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        while shared.running() {
            tick.tick().await;
            let p = payload(args.size, shared.now_micros());
            conn.call(&[b"PUBLISH", CHANNEL, &p]).await.expect("publish");
            published += 1;
        }
    } else {
        while shared.running() {
            for _ in 0..args.pipeline {
                let p = payload(args.size, shared.now_micros());
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

/// A process's CPU time so far (user + system), in microseconds. /proc counts in USER_HZ ticks, which
/// Linux fixes at 100 per second for user space.
pub fn cpu_micros(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name (which may hold spaces) close with ')': utime and stime are 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')').expect("stat").1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks * 10_000
}

/// What one measuring window saw.
pub struct Measured {
    pub published: u64,
    pub delivered: u64,
    pub per_sec: f64,
    pub hist: Histogram<u64>,
    /// The server's CPU time over the window, with `--pid`.
    pub server_cpu_micros: Option<u64>,
}

/// CPU time so far of `--pid` and every `--also-pid`.
fn server_cpu(args: &LoadArgs) -> Option<u64> {
    args.pid.map(|pid| cpu_micros(pid) + args.also_pid.iter().map(|&other| cpu_micros(other)).sum::<u64>())
}

/// With the subscribers running and subscribed: starts the publishers, warms up (in `max` mode),
/// counts deliveries for `--duration` seconds, stops everything and merges the subscribers' histograms.
pub async fn measure(args: &LoadArgs, shared: &Arc<Shared>, subscribers: Vec<JoinHandle<Histogram<u64>>>) -> Measured {
    let pubs: Vec<_> = (0..args.publishers).map(|_| tokio::spawn(publisher(args.clone(), shared.clone()))).collect();
    if !args.latency() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let before = shared.received.load(Ordering::Relaxed);
    let cpu_before = server_cpu(args);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    let delivered = shared.received.load(Ordering::Relaxed) - before;
    let server_cpu_micros = server_cpu(args).zip(cpu_before).map(|(after, before)| after - before);
    let elapsed = start.elapsed().as_secs_f64();
    shared.running.store(false, Ordering::Relaxed);
    let mut published = 0;
    for p in pubs {
        published += p.await.unwrap_or(0);
    }
    let mut hist = histogram();
    for s in subscribers {
        if let Ok(h) = s.await {
            hist.add(h).expect("same bounds");
        }
    }
    Measured { published, delivered, per_sec: delivered as f64 / elapsed, hist, server_cpu_micros }
}

impl Measured {
    /// Prints the results line(s) compare.py reads; `head` names the setup (`key=value ...`).
    pub fn report(&self, args: &LoadArgs, head: &str) {
        println!(
            "{head} publishers={} size={} mode={} published={} deliveries={} deliveries_per_sec={:.0}",
            args.publishers, args.size, args.mode, self.published, self.delivered, self.per_sec
        );
        if let Some(cpu) = self.server_cpu_micros {
            println!("server_cpu_us={cpu} server_ns_per_delivery={:.0}", cpu as f64 * 1000.0 / self.delivered.max(1) as f64);
        }
        if args.latency() {
            let h = &self.hist;
            println!(
                "latency_us p50={} p99={} p999={} max={} samples={}",
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max(),
                h.len()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_their_send_time() {
        let p = payload(32, 123_456_789);
        assert_eq!(p.len(), 32);
        assert_eq!(stamp(&p), Some(123_456_789));
        assert_eq!(payload(4, 1).len(), STAMP);
        assert_eq!(stamp(b"short"), None);
    }
}
