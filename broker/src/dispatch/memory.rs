//! MEMORY USAGE / STATS / DOCTOR / MALLOC-STATS / PURGE / HELP, and the figures INFO's memory section
//! shares with them: Redis 7.0's shapes, field names and rules, filled with what this process measures.
//!
//! `used_memory` is the counting allocator's total (`crate::alloc`: usable size plus glibc's chunk
//! header, what the heap really holds); MEMORY USAGE's estimates use the same arithmetic
//! (`engine::memory`); the `allocator.*` figures are glibc's own (`mallinfo2`), and RSS is the
//! kernel's. Nothing here is a constant standing in for a measurement: where Herald has no such
//! thing (replication, cluster links), the figure is the true zero.

use std::fmt::Write as _;

use bytes::Bytes;
use herald_protocol::command::MemoryCommand;
use herald_protocol::{CommandError, Reply};

use super::Cx;
use crate::alloc::{self, MallInfo, allocated_bytes, peak_bytes, resident_bytes, startup_bytes};
use crate::dispatch::scripting::ScriptMemory;

/// Redis names its allocator `libc` when it is the C library's malloc, as Herald's is.
pub const ALLOCATOR_NAME: &str = "libc";

/// Everything MEMORY STATS, MEMORY DOCTOR and INFO memory report, read once.
pub struct Overhead {
    pub peak: usize,
    pub total: usize,
    pub startup: usize,
    /// Bytes waiting in connections' query buffers and outboxes.
    pub clients_normal: usize,
    pub clients: usize,
    /// Persistence bytes not yet written to the log.
    pub aof_buffer: usize,
    pub scripts: ScriptMemory,
    /// Per non-empty database: (index, table overhead, deadline index overhead).
    pub dbs: Vec<(usize, usize, usize)>,
    pub keys: usize,
    pub rss: usize,
    pub malloc: MallInfo,
}

impl Overhead {
    pub fn measure(cx: &mut Cx<'_>) -> Overhead {
        let b = cx.broker;
        let clients = b.clients.all();
        let clients_normal =
            clients.iter().map(|c| c.query_buffer.load(std::sync::atomic::Ordering::Relaxed) + c.outbox.pending_bytes()).sum();
        let scripts = b.scripting.memory().unwrap_or_default();
        let aof_buffer = b.persist.as_ref().map_or(0, |p| p.pending_bytes());
        let (dbs, keys) = {
            let ks = &cx.state().keyspace;
            let mut keys = 0;
            let dbs = (0..ks.db_count())
                .filter(|&i| !ks.db(i).is_empty())
                .map(|i| {
                    let db = ks.db(i);
                    keys += db.len();
                    let (main, expires) = db.overhead();
                    (i, main, expires)
                })
                .collect();
            (dbs, keys)
        };
        Overhead {
            peak: peak_bytes(),
            total: allocated_bytes(),
            startup: startup_bytes(),
            clients_normal,
            clients: clients.len(),
            aof_buffer,
            scripts,
            dbs,
            keys,
            rss: resident_bytes(),
            malloc: MallInfo::read(),
        }
    }

    /// Redis's `overhead.total`: the startup baseline, client buffers, the log buffer, the script
    /// caches and the key tables.
    pub fn overhead_total(&self) -> usize {
        self.startup + self.clients_normal + self.aof_buffer + self.lua_caches() + self.functions_caches() + self.db_overhead()
    }

    fn db_overhead(&self) -> usize {
        self.dbs.iter().map(|(_, main, expires)| main + expires).sum()
    }

    /// The EVAL script cache (Redis's `lua.caches`): the compiled scripts live in the EVAL VM.
    pub fn lua_caches(&self) -> usize {
        if self.scripts.cached_scripts == 0 { 0 } else { self.scripts.eval_vm }
    }

    /// The function libraries' sources (Redis's `functions.caches`).
    pub fn functions_caches(&self) -> usize {
        self.scripts.library_bytes
    }

    pub fn dataset(&self) -> usize {
        self.total.saturating_sub(self.overhead_total())
    }

    /// What the broker holds beyond its startup baseline.
    fn net(&self) -> usize {
        self.total.saturating_sub(self.startup)
    }

    pub fn dataset_percentage(&self) -> f64 {
        percent(self.dataset(), self.net())
    }

    pub fn peak_percentage(&self) -> f64 {
        percent(self.total, self.peak)
    }

    pub fn fragmentation(&self) -> f64 {
        ratio(self.rss, self.total)
    }

    pub fn fragmentation_bytes(&self) -> i64 {
        self.rss as i64 - self.total as i64
    }

    /// glibc's chunks in use, as it counts them (arenas and mmap).
    pub fn allocator_allocated(&self) -> usize {
        self.malloc.allocated()
    }

    /// What glibc holds from the system (arenas, free chunks included, and mmap).
    pub fn allocator_active(&self) -> usize {
        self.malloc.active()
    }

    /// glibc cannot tell which of its pages are resident: the process's RSS stands in, as Redis
    /// does for an allocator without the figure.
    pub fn allocator_resident(&self) -> usize {
        self.rss
    }
}

/// Redis computes its ratios in `float` and prints them as doubles: the same digits come out.
fn as_float(x: f64) -> f64 {
    x as f32 as f64
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { as_float(a as f64 / b as f64) }
}

fn percent(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { as_float(a as f64 * 100.0 / b as f64) }
}

pub fn execute(cmd: MemoryCommand, cx: &mut Cx<'_>) -> Result<Reply, CommandError> {
    match cmd {
        MemoryCommand::Usage { key, samples } => {
            let (db, now) = (cx.db(), cx.now());
            Ok(match cx.state().keyspace.memory_usage(db, &key, samples, now) {
                Some(bytes) => Reply::Int(bytes as i64),
                None => Reply::Nil,
            })
        }
        MemoryCommand::Stats => Ok(stats(&Overhead::measure(cx))),
        MemoryCommand::Doctor => Ok(Reply::Verbatim(Bytes::from(doctor(&Overhead::measure(cx))))),
        MemoryCommand::MallocStats => Ok(Reply::Verbatim(Bytes::from(malloc_stats(&MallInfo::read())))),
        MemoryCommand::Purge => {
            alloc::purge();
            Ok(Reply::ok())
        }
        MemoryCommand::Help => Ok(super::server::help(
            "MEMORY",
            &[
                "DOCTOR",
                "    Return memory problems reports.",
                "MALLOC-STATS",
                "    Return internal statistics report from the memory allocator.",
                "PURGE",
                "    Attempt to purge dirty pages for reclamation by the allocator.",
                "STATS",
                "    Return information about the memory usage of the server.",
                "USAGE <key> [SAMPLES <count>]",
                "    Return memory in bytes used by <key> and its value. Nested values are",
                "    sampled up to <count> times (default: 5, 0 means sample all).",
            ],
        )),
    }
}

/// MEMORY STATS: Redis 7.0's fields in Redis's order (a map in RESP3, a flat array in RESP2).
fn stats(o: &Overhead) -> Reply {
    let int = |v: usize| Reply::Int(v as i64);
    let mut fields: Vec<(Reply, Reply)> = vec![
        (Reply::text("peak.allocated"), int(o.peak)),
        (Reply::text("total.allocated"), int(o.total)),
        (Reply::text("startup.allocated"), int(o.startup)),
        (Reply::text("replication.backlog"), int(0)),
        (Reply::text("clients.slaves"), int(0)),
        (Reply::text("clients.normal"), int(o.clients_normal)),
        (Reply::text("cluster.links"), int(0)),
        (Reply::text("aof.buffer"), int(o.aof_buffer)),
        (Reply::text("lua.caches"), int(o.lua_caches())),
        (Reply::text("functions.caches"), int(o.functions_caches())),
    ];
    for (db, main, expires) in &o.dbs {
        let per_db = vec![
            (Reply::text("overhead.hashtable.main"), int(*main)),
            (Reply::text("overhead.hashtable.expires"), int(*expires)),
            (Reply::text("overhead.hashtable.slot-to-keys"), int(0)),
        ];
        fields.push((Reply::bulk(format!("db.{db}")), Reply::Map(per_db)));
    }
    let allocated = o.allocator_allocated();
    let active = o.allocator_active();
    let resident = o.allocator_resident();
    fields.extend([
        (Reply::text("overhead.total"), int(o.overhead_total())),
        (Reply::text("keys.count"), int(o.keys)),
        (Reply::text("keys.bytes-per-key"), int(o.net().checked_div(o.keys).unwrap_or(0))),
        (Reply::text("dataset.bytes"), int(o.dataset())),
        (Reply::text("dataset.percentage"), Reply::Double(o.dataset_percentage())),
        (Reply::text("peak.percentage"), Reply::Double(o.peak_percentage())),
        (Reply::text("allocator.allocated"), int(allocated)),
        (Reply::text("allocator.active"), int(active)),
        (Reply::text("allocator.resident"), int(resident)),
        (Reply::text("allocator-fragmentation.ratio"), Reply::Double(ratio(active, allocated))),
        (Reply::text("allocator-fragmentation.bytes"), Reply::Int(active as i64 - allocated as i64)),
        (Reply::text("allocator-rss.ratio"), Reply::Double(ratio(resident, active))),
        (Reply::text("allocator-rss.bytes"), Reply::Int(resident as i64 - active as i64)),
        (Reply::text("rss-overhead.ratio"), Reply::Double(ratio(o.rss, resident))),
        (Reply::text("rss-overhead.bytes"), Reply::Int(o.rss as i64 - resident as i64)),
        (Reply::text("fragmentation"), Reply::Double(o.fragmentation())),
        (Reply::text("fragmentation.bytes"), Reply::Int(o.fragmentation_bytes())),
    ]);
    Reply::Map(fields)
}

const MB: usize = 1024 * 1024;

/// MEMORY DOCTOR: Redis 7.0's checks and thresholds (`getMemoryDoctorReport`) on Herald's figures.
/// The advice names what Herald has (MEMORY PURGE, CLIENT LIST, SCRIPT FLUSH): there is no
/// replication, active defragmentation or allocator to switch to.
pub fn doctor(o: &Overhead) -> String {
    if o.total < 5 * MB {
        return "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n".into();
    }
    let mut issues = String::new();
    if o.peak as f64 / o.total as f64 > 1.5 {
        issues.push_str(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Herald instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Herald instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n");
    }
    if o.fragmentation() > 1.4 && o.fragmentation_bytes() > 10 * MB as i64 {
        let _ = write!(
            issues,
            " * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Herald process is much larger than the sum of the logical allocations Herald performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, try the MEMORY PURGE command. Note: The currently used allocator is \"{ALLOCATOR_NAME}\".\n\n"
        );
    }
    let (allocated, active) = (o.allocator_allocated(), o.allocator_active());
    if ratio(active, allocated) > 1.1 && active.saturating_sub(allocated) > 10 * MB {
        issues.push_str(" * High allocator fragmentation: This instance has an allocator external fragmentation greater than 1.1. This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. You can try the MEMORY PURGE command to reclaim it.\n\n");
    }
    if o.clients > 0 && o.clients_normal / o.clients > 200 * 1024 {
        issues.push_str(" * Big client buffers: The clients output buffers in this instance are greater than 200K per client (on average). This may result from different causes, like Pub/Sub clients subscribed to channels bot not receiving data fast enough, so that data piles on the Herald instance output buffer, or clients sending commands with large replies or very large sequences of commands in the same pipeline. Please use the CLIENT LIST command in order to investigate the issue if it causes problems in your instance, or to understand better why certain clients are using a big amount of memory.\n\n");
    }
    if o.scripts.cached_scripts > 1000 {
        issues.push_str(" * Many scripts: There seem to be many cached scripts in this instance (more than 1000). This may be because scripts are generated and `EVAL`ed, instead of being parameterized (with KEYS and ARGV), `SCRIPT LOAD`ed and `EVALSHA`ed. Unless `SCRIPT FLUSH` is called periodically, the scripts' caches may end up consuming most of your memory.\n\n");
    }
    if issues.is_empty() {
        return "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n".into();
    }
    format!(
        "Sam, I detected a few issues in this Herald instance memory implants:\n\n{issues}I'm here to keep you safe, Sam. I want to help you.\n"
    )
}

/// MEMORY MALLOC-STATS: glibc's counters (`mallinfo2`), as jemalloc's report is for Redis.
fn malloc_stats(m: &MallInfo) -> String {
    let mut out = String::from("___ Begin glibc malloc statistics ___\n");
    for (name, value, what) in [
        ("arena", m.arena, "bytes obtained from the system for the arenas (brk and arena heaps)"),
        ("ordblks", m.ordblks, "free chunks"),
        ("smblks", m.smblks, "free fastbin chunks"),
        ("hblks", m.hblks, "chunks allocated with mmap"),
        ("hblkhd", m.hblkhd, "bytes in chunks allocated with mmap"),
        ("fsmblks", m.fsmblks, "bytes in free fastbin chunks"),
        ("uordblks", m.uordblks, "bytes in chunks in use in the arenas"),
        ("fordblks", m.fordblks, "bytes in free chunks in the arenas"),
        ("keepcost", m.keepcost, "bytes at the top of the heap that MEMORY PURGE can release"),
    ] {
        let _ = writeln!(out, "{name}: {value} ({what})");
    }
    let _ = writeln!(out, "counted by herald (used_memory): {}", allocated_bytes());
    out.push_str("--- End glibc malloc statistics ---\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overhead(total: usize, peak: usize, rss: usize) -> Overhead {
        Overhead {
            peak,
            total,
            startup: 1 << 20,
            clients_normal: 0,
            clients: 1,
            aof_buffer: 0,
            scripts: ScriptMemory::default(),
            dbs: vec![(0, 4096, 0)],
            keys: 10,
            rss,
            malloc: MallInfo { arena: total, uordblks: total, ..MallInfo::default() },
        }
    }

    #[test]
    fn doctor_applies_redis_checks() {
        assert!(doctor(&overhead(MB, MB, 8 * MB)).starts_with("Hi Sam, this instance is empty"));
        assert!(doctor(&overhead(50 * MB, 50 * MB, 55 * MB)).starts_with("Hi Sam, I can't find any memory issue"));
        let peak = doctor(&overhead(50 * MB, 100 * MB, 55 * MB));
        assert!(
            peak.starts_with("Sam, I detected a few issues") && peak.contains(" * Peak memory:") && !peak.contains("High total RSS"),
            "{peak}"
        );
        let rss = doctor(&overhead(50 * MB, 50 * MB, 100 * MB));
        assert!(rss.contains(" * High total RSS:") && rss.contains("\"libc\""), "{rss}");
        let mut clients = overhead(50 * MB, 50 * MB, 55 * MB);
        clients.clients_normal = 10 * MB;
        clients.clients = 2;
        assert!(doctor(&clients).contains(" * Big client buffers:"));
    }

    #[test]
    fn stats_figures_follow_redis_definitions() {
        let o = overhead(10 * MB, 20 * MB, 15 * MB);
        assert_eq!(o.overhead_total(), (1 << 20) + 4096);
        assert_eq!(o.dataset(), 10 * MB - (1 << 20) - 4096);
        assert_eq!(o.peak_percentage(), 50.0);
        assert_eq!(o.fragmentation(), 1.5);
        assert_eq!(o.fragmentation_bytes(), 5 * MB as i64);
        let Reply::Map(fields) = stats(&o) else { panic!("a map") };
        let names: Vec<String> = fields.iter().map(|(k, _)| format!("{k:?}")).collect();
        assert!(names.iter().any(|n| n.contains("db.0")), "{names:?}");
    }
}
