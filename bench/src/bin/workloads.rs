//! Workflow load generator: the same workload on Herald's commands and on the closest Redis idiom,
//! run against either server, reporting operations per second.
//!
//!   workloads jobs --addr A --clients 1 --workers 1      submit -> claim -> complete -> result
//!   workloads jobs --redis ...                          LPUSH -> BRPOP -> LPUSH result -> BRPOP
//!   workloads board --addr A --workers 8 [--filtered]   retrieve-with-lease + remove over 100k items
//!   workloads board --redis ...                         LMOVE to a processing list + LREM
//!   workloads handoff --addr A                          LPUSH by a producer, BLPOP by a consumer
//!   workloads streams --addr A --readers 100            STREAM.WRITE, 100 blocking readers
//!
//! `docs/benchmarks.md` has the figures and the exact commands.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use herald_bench::resp_client::RespConn;
use redis_protocol::resp3::types::BytesFrame;

#[derive(Parser)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:6379", global = true)]
    addr: String,
    /// Run the Redis-idiom version of the workload (for redis-server).
    #[arg(long, global = true)]
    redis: bool,
    #[arg(long, default_value_t = 5, global = true)]
    duration: u64,
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Subcommand)]
enum Workload {
    Jobs {
        #[arg(long, default_value_t = 1)]
        clients: usize,
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Two round trips per job instead of four: `JOB.SUBMIT ... WAIT` and
        /// `JOB.CLAIM ... COMPLETE` (herald only).
        #[arg(long)]
        combined: bool,
    },
    Board {
        #[arg(long, default_value_t = 8)]
        workers: usize,
        #[arg(long, default_value_t = 100_000)]
        items: usize,
        /// Retrieve with a WHERE filter that matches 1% of the items.
        #[arg(long)]
        filtered: bool,
    },
    Handoff,
    Streams {
        #[arg(long, default_value_t = 100)]
        readers: usize,
    },
}

fn bulk(f: &BytesFrame) -> Option<Vec<u8>> {
    match f {
        BytesFrame::BlobString { data, .. } | BytesFrame::SimpleString { data, .. } => Some(data.to_vec()),
        _ => None,
    }
}

fn items(f: &BytesFrame) -> &[BytesFrame] {
    match f {
        BytesFrame::Array { data, .. } | BytesFrame::Push { data, .. } => data,
        _ => &[],
    }
}

/// A field of a map reply.
fn field<'a>(f: &'a BytesFrame, name: &str) -> Option<&'a BytesFrame> {
    match f {
        BytesFrame::Map { data, .. } => data.iter().find(|(k, _)| bulk(k).as_deref() == Some(name.as_bytes())).map(|(_, v)| v),
        _ => None,
    }
}

fn int(f: &BytesFrame) -> i64 {
    match f {
        BytesFrame::Number { data, .. } => *data,
        other => bulk(other).and_then(|b| String::from_utf8(b).ok()?.parse().ok()).unwrap_or(-1),
    }
}

struct Run {
    ops: AtomicU64,
    running: AtomicBool,
}

async fn conn(addr: &str) -> RespConn {
    RespConn::connect(addr).await.expect("connect")
}

/// One client with one job in flight at a time.
async fn job_client(addr: String, redis: bool, combined: bool, id: usize, run: Arc<Run>) {
    let mut c = conn(&addr).await;
    let mut n = 0u64;
    while run.running.load(Ordering::Relaxed) {
        n += 1;
        if redis {
            let job = format!("{id}:{n}");
            c.call(&[b"LPUSH", b"jobs", job.as_bytes()]).await.unwrap();
            let key = format!("result:{job}");
            c.call(&[b"BRPOP", key.as_bytes(), b"0"]).await.unwrap();
        } else if combined {
            c.call(&[b"JOB.SUBMIT", b"bench", b"payload", b"RESULT-TTL", b"1000", b"WAIT", b"0"]).await.unwrap();
        } else {
            let reply = c.call(&[b"JOB.SUBMIT", b"bench", b"payload", b"RESULT-TTL", b"1000"]).await.unwrap();
            let jid = bulk(&reply).expect("job id");
            c.call(&[b"JOB.RESULT", &jid, b"BLOCK", b"0"]).await.unwrap();
        }
        run.ops.fetch_add(1, Ordering::Relaxed);
    }
}

async fn job_worker(addr: String, redis: bool, combined: bool, run: Arc<Run>) {
    let mut c = conn(&addr).await;
    // With `combined`, the job claimed last, completed by the next claim.
    let mut previous: Option<(Vec<u8>, String)> = None;
    while run.running.load(Ordering::Relaxed) {
        if redis {
            let reply = c.call(&[b"BRPOP", b"jobs", b"1"]).await.unwrap();
            let Some(job) = items(&reply).get(1).and_then(bulk) else { continue };
            let mut key = b"result:".to_vec();
            key.extend_from_slice(&job);
            c.call(&[b"LPUSH", &key, b"done"]).await.unwrap();
        } else if combined {
            let mut args: Vec<&[u8]> = vec![b"JOB.CLAIM", b"bench", b"BLOCK", b"1000"];
            if let Some((id, token)) = &previous {
                args.extend([&b"COMPLETE"[..], id, token.as_bytes(), b"done"]);
            }
            let reply = c.call(&args).await.unwrap();
            previous = match (field(&reply, "id").and_then(bulk), field(&reply, "token").map(int)) {
                (Some(id), Some(token)) => Some((id, token.to_string())),
                _ => None,
            };
        } else {
            let reply = c.call(&[b"JOB.CLAIM", b"bench", b"BLOCK", b"1000"]).await.unwrap();
            let (Some(id), Some(token)) = (field(&reply, "id").and_then(bulk), field(&reply, "token").map(int)) else { continue };
            c.call(&[b"JOB.COMPLETE", &id, token.to_string().as_bytes(), b"done"]).await.unwrap();
        }
    }
}

async fn board_load(addr: &str, redis: bool, items_n: usize, filtered: bool) {
    let mut c = conn(addr).await;
    let payload = "x".repeat(1000);
    for chunk in (0..items_n).collect::<Vec<_>>().chunks(1000) {
        for i in chunk {
            let kind = if filtered && i % 100 == 0 { "wanted" } else { "other" };
            let item = format!(r#"{{"n": {i}, "kind": "{kind}", "body": "{payload}"}}"#);
            if redis {
                c.queue(&[b"LPUSH", b"items", item.as_bytes()]);
            } else {
                c.queue(&[b"BL.PUBLISH", b"items", item.as_bytes()]);
            }
        }
        c.flush().await.unwrap();
        for _ in chunk {
            c.read_frame().await.unwrap();
        }
    }
}

async fn board_worker(addr: String, redis: bool, filtered: bool, run: Arc<Run>) {
    let mut c = conn(&addr).await;
    while run.running.load(Ordering::Relaxed) {
        if redis {
            let reply = c.call(&[b"LMOVE", b"items", b"processing", b"RIGHT", b"LEFT"]).await.unwrap();
            let Some(item) = bulk(&reply) else { break };
            c.call(&[b"LREM", b"processing", b"1", &item]).await.unwrap();
        } else {
            let reply = if filtered {
                c.call(&[b"BL.RETRIEVE", b"items", b"WHERE", b"kind", b"=", b"wanted", b"LOCK", b"30000"]).await.unwrap()
            } else {
                c.call(&[b"BL.RETRIEVE", b"items", b"LOCK", b"30000"]).await.unwrap()
            };
            let (Some(id), Some(token)) = (field(&reply, "id").and_then(bulk), field(&reply, "token").map(int)) else { break };
            c.call(&[b"BL.REMOVE", b"items", &id, token.to_string().as_bytes()]).await.unwrap();
        }
        run.ops.fetch_add(1, Ordering::Relaxed);
    }
}

async fn handoff_producer(addr: String, run: Arc<Run>) {
    let mut c = conn(&addr).await;
    while run.running.load(Ordering::Relaxed) {
        for _ in 0..32 {
            c.queue(&[b"LPUSH", b"handoff", b"message"]);
        }
        c.flush().await.unwrap();
        for _ in 0..32 {
            c.read_frame().await.unwrap();
        }
        // Keep the queue short so the consumer blocks rather than draining a backlog.
        let len = c.call(&[b"LLEN", b"handoff"]).await.unwrap();
        if int(&len) > 1000 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
}

async fn handoff_consumer(addr: String, run: Arc<Run>) {
    let mut c = conn(&addr).await;
    while run.running.load(Ordering::Relaxed) {
        let reply = c.call(&[b"BLPOP", b"handoff", b"1"]).await.unwrap();
        if !items(&reply).is_empty() {
            run.ops.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn stream_writer(addr: String, run: Arc<Run>) {
    let mut c = conn(&addr).await;
    while run.running.load(Ordering::Relaxed) {
        for _ in 0..16 {
            c.queue(&[b"STREAM.WRITE", b"bench", b"an entry of forty bytes, give or take.."]);
        }
        c.flush().await.unwrap();
        for _ in 0..16 {
            c.read_frame().await.unwrap();
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

async fn stream_reader(addr: String, run: Arc<Run>) {
    let mut c = conn(&addr).await;
    let mut from = 0i64;
    while run.running.load(Ordering::Relaxed) {
        let reply =
            c.call(&[b"STREAM.READ", b"bench", b"FROM", from.to_string().as_bytes(), b"COUNT", b"1000", b"BLOCK", b"1000"]).await.unwrap();
        let Some(next) = field(&reply, "next").map(int) else { continue };
        run.ops.fetch_add((next - from).max(0) as u64, Ordering::Relaxed);
        from = next;
    }
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    runtime.block_on(run(cli));
}

async fn run(cli: Cli) {
    let run = Arc::new(Run { ops: AtomicU64::new(0), running: AtomicBool::new(true) });
    let mut tasks = Vec::new();
    let drains = matches!(cli.workload, Workload::Board { .. });
    let label = match &cli.workload {
        Workload::Jobs { clients, workers, combined } => {
            for _ in 0..*workers {
                tasks.push(tokio::spawn(job_worker(cli.addr.clone(), cli.redis, *combined, run.clone())));
            }
            for id in 0..*clients {
                tasks.push(tokio::spawn(job_client(cli.addr.clone(), cli.redis, *combined, id, run.clone())));
            }
            format!("jobs clients={clients} workers={workers} combined={combined}")
        }
        Workload::Board { workers, items, filtered } => {
            board_load(&cli.addr, cli.redis, *items, *filtered).await;
            for _ in 0..*workers {
                tasks.push(tokio::spawn(board_worker(cli.addr.clone(), cli.redis, *filtered, run.clone())));
            }
            format!("board workers={workers} items={items} filtered={filtered}")
        }
        Workload::Handoff => {
            tasks.push(tokio::spawn(handoff_consumer(cli.addr.clone(), run.clone())));
            tasks.push(tokio::spawn(handoff_producer(cli.addr.clone(), run.clone())));
            "handoff".to_owned()
        }
        Workload::Streams { readers } => {
            for _ in 0..*readers {
                tasks.push(tokio::spawn(stream_reader(cli.addr.clone(), run.clone())));
            }
            tasks.push(tokio::spawn(stream_writer(cli.addr.clone(), run.clone())));
            format!("streams readers={readers}")
        }
    };
    let start = Instant::now();
    if drains {
        // Workers stop when the board is empty: measure until then (or the duration).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(cli.duration);
        for t in tasks.iter_mut() {
            let _ = tokio::time::timeout_at(deadline, t).await;
        }
    } else {
        tokio::time::sleep(Duration::from_secs(cli.duration)).await;
    }
    let ops = run.ops.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    run.running.store(false, Ordering::Relaxed);
    for t in tasks {
        if !t.is_finished() {
            let _ = tokio::time::timeout(Duration::from_secs(3), t).await;
        }
    }
    println!("{label} redis_idiom={} ops={ops} ops_per_sec={:.0}", cli.redis, ops as f64 / elapsed);
}
