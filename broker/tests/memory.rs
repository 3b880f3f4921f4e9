//! Memory figures that mean what Redis's mean (docs/operations.md, "Memory"): this test binary installs
//! the broker's counting allocator, as the `herald` binary does, so INFO's `used_memory` is measured
//! here exactly as in production, and MEMORY USAGE's estimates are checked against it: the sum of
//! every key's MEMORY USAGE must account for what writing those keys made `used_memory` grow.

mod common;

use std::collections::HashMap;

use herald_broker::alloc::CountingAllocator;
use redis::Value;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// `used_memory` is the whole process's: the tests of this file take turns, so that one test's
/// dataset never shows in another's figures.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn info_memory(c: &mut redis::aio::MultiplexedConnection) -> HashMap<String, String> {
    let text: String = redis::cmd("INFO").arg("memory").query_async(c).await.unwrap();
    text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

fn num(info: &HashMap<String, String>, field: &str) -> f64 {
    info.get(field).unwrap_or_else(|| panic!("INFO memory has {field}")).trim_end_matches('%').parse().unwrap()
}

/// Writes one key of every type and size class into database `db`; returns the key names.
async fn write_dataset(c: &mut redis::aio::MultiplexedConnection, db: i64) -> Vec<String> {
    let _: () = redis::cmd("SELECT").arg(db).query_async(c).await.unwrap();
    let mut keys = Vec::new();
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        let key = format!("string:{i}");
        pipe.cmd("SET").arg(&key).arg("v".repeat(10 + i % 200)).ignore();
        keys.push(key);
    }
    for i in 0..300 {
        let key = format!("counter:with:a:key:name:longer:than:thirty:bytes:{i}");
        pipe.cmd("SET").arg(&key).arg(i).arg("EX").arg(3600).ignore();
        keys.push(key);
    }
    for i in 0..100 {
        let key = format!("list:{i}");
        let items: Vec<String> = (0..100).map(|j| format!("item-{j}-{}", "x".repeat(j % 40))).collect();
        pipe.cmd("RPUSH").arg(&key).arg(items).ignore();
        keys.push(key);
    }
    for i in 0..60 {
        // Past 128 fields: a table; below, a packed hash.
        let fields = if i % 2 == 0 { 400 } else { 20 };
        let key = format!("hash:{i}");
        let mut cmd = redis::cmd("HSET");
        cmd.arg(&key);
        for f in 0..fields {
            cmd.arg(format!("field:{f}")).arg(format!("value-{}", "y".repeat(f % 50)));
        }
        pipe.add_command(cmd).ignore();
        keys.push(key);
    }
    for i in 0..40 {
        // Integers up to 512 members: an intset; strings: a table.
        let key = format!("set:{i}");
        let members: Vec<String> =
            if i % 2 == 0 { (0..500).map(|m| m.to_string()).collect() } else { (0..500).map(|m| format!("member:{m}")).collect() };
        pipe.cmd("SADD").arg(&key).arg(members).ignore();
        keys.push(key);
    }
    for i in 0..30 {
        let key = format!("zset:{i}");
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(&key);
        for m in 0..(if i % 2 == 0 { 600 } else { 50 }) {
            cmd.arg(m as f64 * 1.5).arg(format!("member:{m}:{}", "z".repeat(m % 30)));
        }
        pipe.add_command(cmd).ignore();
        keys.push(key);
    }
    for i in 0..10 {
        let key = format!("stream:{i}");
        for e in 0..300 {
            pipe.cmd("XADD").arg(&key).arg("*").arg("field").arg(e).arg("payload").arg("p".repeat(e % 60)).ignore();
        }
        pipe.cmd("XGROUP").arg("CREATE").arg(&key).arg("g").arg("0").ignore();
        pipe.cmd("XREADGROUP").arg("GROUP").arg("g").arg("c").arg("COUNT").arg(50).arg("STREAMS").arg(&key).arg(">").ignore();
        keys.push(key);
    }
    let _: () = pipe.query_async(c).await.unwrap();
    keys
}

#[tokio::test]
async fn memory_usage_accounts_for_what_the_allocator_counts() {
    let _turn = SERIAL.lock().await;
    let server = common::start().await;
    let mut c = server.conn().await;
    // A first round grows every buffer (the connections', the client's) to its working size, so the
    // measured round below sees only the data's growth. Its key names (the same in both rounds) are
    // kept from it: this test shares the process, and its own allocations count too.
    let keys = write_dataset(&mut c, 1).await;
    let _: () = redis::cmd("FLUSHDB").query_async(&mut c).await.unwrap();
    let before = num(&info_memory(&mut c).await, "used_memory");
    write_dataset(&mut c, 0).await;
    let after = num(&info_memory(&mut c).await, "used_memory");
    let mut sum = 0i64;
    let mut by_type: HashMap<String, i64> = HashMap::new();
    for key in &keys {
        let usage: i64 = redis::cmd("MEMORY").arg("USAGE").arg(key).arg("SAMPLES").arg(0).query_async(&mut c).await.unwrap();
        assert!(usage > 0, "{key}");
        sum += usage;
        *by_type.entry(key.split(':').next().unwrap().to_owned()).or_default() += usage;
    }
    let grown = after - before;
    let ratio = sum as f64 / grown;
    eprintln!("MEMORY USAGE sum {sum}, used_memory growth {grown}, ratio {ratio:.3}, by type {by_type:?}");
    assert!(
        (0.95..1.05).contains(&ratio),
        "MEMORY USAGE sums to {sum} bytes, used_memory grew {grown} (ratio {ratio:.3}); by type {by_type:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn sampled_usage_extrapolates_and_grows_with_the_value() {
    let _turn = SERIAL.lock().await;
    let server = common::start().await;
    let mut c = server.conn().await;
    let usage = |key: &'static str, samples: Option<i64>| {
        let mut cmd = redis::cmd("MEMORY");
        cmd.arg("USAGE").arg(key);
        if let Some(n) = samples {
            cmd.arg("SAMPLES").arg(n);
        }
        cmd
    };
    let _: () = redis::cmd("SET").arg("short").arg("x").query_async(&mut c).await.unwrap();
    let _: () = redis::cmd("SET").arg("long").arg("x".repeat(1000)).query_async(&mut c).await.unwrap();
    let short: i64 = usage("short", None).query_async(&mut c).await.unwrap();
    let long: i64 = usage("long", None).query_async(&mut c).await.unwrap();
    assert!(long >= short + 1000, "a 1000-byte value costs at least its bytes: {short} vs {long}");
    // Fields of one size: sampling five of them extrapolates to what counting all of them finds.
    let mut hset = redis::cmd("HSET");
    hset.arg("uniform");
    for f in 0..1000 {
        hset.arg(format!("f{f:05}")).arg("v".repeat(40));
    }
    let _: () = hset.query_async(&mut c).await.unwrap();
    let sampled: i64 = usage("uniform", None).query_async(&mut c).await.unwrap();
    let all: i64 = usage("uniform", Some(0)).query_async(&mut c).await.unwrap();
    assert!((sampled as f64 / all as f64 - 1.0).abs() < 0.05, "sampled {sampled}, all {all}");
    // A blackboard key of a named scope, which MEMORY USAGE cannot reach, through BB.MEMORY.
    let _: Value = redis::cmd("BB.SET").arg("team").arg("long").arg("x".repeat(1000)).query_async(&mut c).await.unwrap();
    let scoped: i64 = redis::cmd("BB.MEMORY").arg("team").arg("long").query_async(&mut c).await.unwrap();
    // The same key and value: the same node and value chunks; only the share of the (smaller) scope
    // table's buckets differs.
    assert!(scoped >= 1000 && (scoped - long).abs() <= 64, "scope {scoped}, database {long}");
    let none: Value = redis::cmd("BB.MEMORY").arg("team").arg("nokey").query_async(&mut c).await.unwrap();
    assert_eq!(none, Value::Nil);
    let none: Value = redis::cmd("BB.MEMORY").arg("noscope").arg("long").query_async(&mut c).await.unwrap();
    assert_eq!(none, Value::Nil);
    let missing: Value = usage("nokey", None).query_async(&mut c).await.unwrap();
    assert_eq!(missing, Value::Nil);
    let err = usage("short", Some(-1)).query_async::<Value>(&mut c).await.unwrap_err();
    assert_eq!(err.detail(), Some("syntax error"));
    server.stop().await;
}

#[tokio::test]
async fn info_memory_reports_measured_figures() {
    let _turn = SERIAL.lock().await;
    let server = common::start().await;
    let mut c = server.conn().await;
    write_dataset(&mut c, 0).await;
    let info = info_memory(&mut c).await;
    let used = num(&info, "used_memory");
    let rss = num(&info, "used_memory_rss");
    assert!(num(&info, "used_memory_peak") >= used);
    assert!(num(&info, "used_memory_startup") > 0.0 && num(&info, "used_memory_startup") < used);
    assert!(num(&info, "used_memory_dataset") > 0.0);
    // Fragmentation is RSS over what is allocated, as Redis defines it.
    let frag = num(&info, "mem_fragmentation_ratio");
    assert!((frag - rss / used).abs() < 0.05, "ratio {frag}, rss {rss}, used {used}");
    // glibc's own count of chunks in use agrees with the counting allocator's (which sees only what
    // Rust allocates, so it can only be a little lower).
    let glibc = num(&info, "allocator_allocated");
    assert!(used <= glibc * 1.01 && used >= glibc * 0.85, "used_memory {used}, glibc's in-use chunks {glibc}");
    assert_eq!(info["mem_allocator"], "libc");
    assert_eq!(info["maxmemory_policy"], "noeviction");
    let server_info: String = redis::cmd("INFO").arg("server").query_async(&mut c).await.unwrap();
    assert!(server_info.contains("\r\nmultiplexing_api:epoll\r\n"), "{server_info}");
    assert!(server_info.contains(&format!("\r\narch_bits:{}\r\n", usize::BITS)));
    server.stop().await;
}

#[tokio::test]
async fn memory_stats_doctor_and_purge() {
    let _turn = SERIAL.lock().await;
    let server = common::start().await;
    let mut c = server.conn().await;
    let _: () = redis::cmd("SET").arg("a").arg("1").query_async(&mut c).await.unwrap();
    let stats: Vec<Value> = redis::cmd("MEMORY").arg("STATS").query_async(&mut c).await.unwrap();
    let names: Vec<String> = stats
        .iter()
        .step_by(2)
        .map(|v| if let Value::BulkString(b) = v { String::from_utf8(b.clone()).unwrap() } else { panic!("{v:?}") })
        .collect();
    assert_eq!(
        &names[..11],
        [
            "peak.allocated",
            "total.allocated",
            "startup.allocated",
            "replication.backlog",
            "clients.slaves",
            "clients.normal",
            "cluster.links",
            "aof.buffer",
            "lua.caches",
            "functions.caches",
            "db.0"
        ]
    );
    assert_eq!(names.last().map(String::as_str), Some("fragmentation.bytes"));
    let keys_count = stats.iter().position(|v| matches!(v, Value::BulkString(b) if b == b"keys.count")).unwrap();
    assert_eq!(stats[keys_count + 1], Value::Int(1));
    let doctor: String = redis::cmd("MEMORY").arg("DOCTOR").query_async(&mut c).await.unwrap();
    assert!(doctor.starts_with("Hi Sam") || doctor.starts_with("Sam, I detected"), "{doctor}");
    let malloc: String = redis::cmd("MEMORY").arg("MALLOC-STATS").query_async(&mut c).await.unwrap();
    assert!(malloc.contains("uordblks: "), "{malloc}");
    let purged: String = redis::cmd("MEMORY").arg("PURGE").query_async(&mut c).await.unwrap();
    assert_eq!(purged, "OK");
    server.stop().await;
}
