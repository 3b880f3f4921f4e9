//! INFO: Redis's sections and field names, so dashboards and clients that parse INFO keep working.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use herald_protocol::Reply;

use super::Cx;
use super::memory::{ALLOCATOR_NAME, Overhead};
use super::server::REDIS_VERSION;
use crate::pubsub::ChannelKind;

const DEFAULT_SECTIONS: &[&str] = &["server", "clients", "memory", "persistence", "stats", "replication", "cpu", "keyspace"];
/// `all` and `everything`: the default sections plus the per-command and per-error ones, in Redis's order.
const ALL_SECTIONS: &[&str] =
    &["server", "clients", "memory", "persistence", "stats", "replication", "cpu", "commandstats", "errorstats", "keyspace"];

fn human(bytes: usize) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", b / (1024.0 * 1024.0 * 1024.0))
    }
}

/// The readiness API tokio's reactor (mio) runs on, per platform.
const MULTIPLEXING_API: &str = if cfg!(any(target_os = "linux", target_os = "android", target_os = "illumos")) {
    "epoll"
} else if cfg!(any(target_os = "macos", target_os = "ios", target_os = "freebsd", target_os = "netbsd", target_os = "openbsd")) {
    "kqueue"
} else if cfg!(windows) {
    "iocp"
} else {
    "poll"
};

/// tokio's `Instant` reads `CLOCK_MONOTONIC` through the standard library, as Redis's `POSIX clock_gettime`.
const MONOTONIC_CLOCK: &str = "POSIX clock_gettime";

/// `uname -srm`, as Redis prints it (`Linux 6.1.0 x86_64`).
fn os_name() -> String {
    let read = |f: &str| std::fs::read_to_string(format!("/proc/sys/kernel/{f}")).map(|s| s.trim().to_string()).ok();
    match (read("ostype"), read("osrelease")) {
        (Some(os), Some(release)) => format!("{os} {release} {}", std::env::consts::ARCH),
        _ => format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
    }
}

/// INFO memory: Redis 7.0's fields (those that mean something here), from one [`Overhead`] reading.
fn memory(out: &mut String, cx: &mut Cx<'_>) {
    let o = Overhead::measure(cx);
    let max = cx.broker.maxmemory() as usize;
    let total_system = crate::alloc::total_system_memory();
    let s = &o.scripts;
    let vm_total = s.eval_vm + s.functions_vm;
    let (allocated, active, resident) = (o.allocator_allocated(), o.allocator_active(), o.allocator_resident());
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let _ = write!(
        out,
        "# Memory\r\nused_memory:{}\r\nused_memory_human:{}\r\nused_memory_rss:{}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:{:.2}%\r\nused_memory_overhead:{}\r\nused_memory_startup:{}\r\nused_memory_dataset:{}\r\nused_memory_dataset_perc:{:.2}%\r\nallocator_allocated:{allocated}\r\nallocator_active:{active}\r\nallocator_resident:{resident}\r\ntotal_system_memory:{total_system}\r\ntotal_system_memory_human:{}\r\nused_memory_lua:{}\r\nused_memory_vm_eval:{}\r\nused_memory_lua_human:{}\r\nnumber_of_cached_scripts:{}\r\nnumber_of_functions:{}\r\nnumber_of_libraries:{}\r\nused_memory_vm_functions:{}\r\nused_memory_vm_total:{vm_total}\r\nused_memory_vm_total_human:{}\r\nused_memory_functions:{}\r\nmaxmemory:{max}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:noeviction\r\nallocator_frag_ratio:{:.2}\r\nallocator_frag_bytes:{}\r\nallocator_rss_ratio:{:.2}\r\nallocator_rss_bytes:{}\r\nrss_overhead_ratio:{:.2}\r\nrss_overhead_bytes:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_fragmentation_bytes:{}\r\nmem_clients_slaves:0\r\nmem_clients_normal:{}\r\nmem_aof_buffer:{}\r\nmem_allocator:{ALLOCATOR_NAME}\r\n",
        o.total,
        human(o.total),
        o.rss,
        human(o.rss),
        o.peak,
        human(o.peak),
        o.peak_percentage(),
        o.overhead_total(),
        o.startup,
        o.dataset(),
        o.dataset_percentage(),
        human(total_system),
        s.eval_vm,
        s.eval_vm,
        human(s.eval_vm),
        s.cached_scripts,
        s.functions,
        s.libraries,
        s.functions_vm,
        human(vm_total),
        o.functions_caches(),
        human(max),
        ratio(active, allocated),
        active as i64 - allocated as i64,
        ratio(resident, active),
        resident as i64 - active as i64,
        ratio(o.rss, resident),
        o.rss as i64 - resident as i64,
        o.fragmentation(),
        o.fragmentation_bytes(),
        o.clients_normal,
        o.aof_buffer,
    );
}

fn cpu_seconds() -> (f64, f64) {
    // utime and stime, fields 14 and 15 of /proc/self/stat, in clock ticks (100 per second on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    (tick(11), tick(12))
}

/// Redis's persistence fields (as of 7.0, those that mean something here), then Herald's.
fn persistence(out: &mut String, b: &crate::broker::Broker) {
    let Some(p) = &b.persist else {
        out.push_str("# Persistence\r\nloading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:0\r\nrdb_last_bgsave_status:ok\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\naof_last_write_status:ok\r\nherald_persistence:off\r\n");
        return;
    };
    let s = &p.stats;
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let rewriting = p.rewrite_in_progress();
    let current = if rewriting { (crate::persist::unix_ms().saturating_sub(get(&s.rewrite_started_ms)) / 1000) as i64 } else { -1 };
    let last_ok = if s.last_rewrite_ok.load(Ordering::Relaxed) { "ok" } else { "err" };
    let write_status = if p.failure().is_some() { "err" } else { "ok" };
    let _ = write!(
        out,
        "# Persistence\r\nloading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{last_ok}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{current}\r\nrdb_saves:{}\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\naof_enabled:1\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:0\r\naof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:{current}\r\naof_last_bgrewrite_status:{last_ok}\r\naof_rewrites:{}\r\naof_rewrites_consecutive_failures:{}\r\naof_last_write_status:{write_status}\r\naof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:0\r\naof_buffer_length:{}\r\naof_delayed_fsync:0\r\nherald_appendfsync:{}\r\nherald_data_dir:{}\r\nherald_log_lsn:{}\r\nherald_written_lsn:{}\r\nherald_synced_lsn:{}\r\nherald_fsyncs:{}\r\n",
        get(&s.changes_since_save),
        u8::from(rewriting),
        get(&s.last_save_unix),
        get(&s.last_rewrite_ms) / 1000,
        get(&s.saves),
        get(&s.loaded_expired),
        get(&s.loaded_keys),
        u8::from(rewriting),
        get(&s.last_rewrite_ms) / 1000,
        get(&s.saves),
        get(&s.rewrite_failures),
        get(&s.log_size),
        get(&s.base_size),
        p.pending_bytes(),
        p.policy().name(),
        p.dir().display(),
        p.lsn(),
        p.written_lsn(),
        p.synced_lsn(),
        get(&s.fsyncs),
    );
}

fn section(out: &mut String, name: &str, cx: &mut Cx<'_>) {
    let b = cx.broker;
    let stat = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    match name {
        "server" => {
            let up = b.clock.uptime().as_secs();
            let _ = write!(
                out,
                "# Server\r\nredis_version:{REDIS_VERSION}\r\nherald_version:{}\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:{}\r\nmonotonic_clock:{MONOTONIC_CLOCK}\r\nmultiplexing_api:{MULTIPLEXING_API}\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nherald_http_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{up}\r\nuptime_in_days:{}\r\nexecutable:{}\r\nio_threads_active:{}\r\nherald_io_threads:{}\r\n",
                env!("CARGO_PKG_VERSION"),
                os_name(),
                usize::BITS,
                std::process::id(),
                b.run_id,
                b.resp_port.load(Ordering::Relaxed),
                b.http_port.load(Ordering::Relaxed),
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0),
                up / 86400,
                std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
                u8::from(b.config.io_threads > 1),
                b.config.io_threads,
            );
        }
        "clients" => {
            // Blocked in a command, or held by CLIENT PAUSE: Redis counts both.
            let remote = cx.broker.remote.as_ref().map_or(0, |r| r.blocked());
            let blocked = cx.state().blocking.len() + cx.broker.pause.waiting() + remote;
            // Redis's "recent" maxima are over its last few cron samples; these are the largest now.
            let (mut input, mut output) = (0, 0);
            for c in b.clients.all() {
                input = input.max(c.query_buffer.load(Ordering::Relaxed));
                output = output.max(c.outbox.pending_bytes());
            }
            let _ = write!(
                out,
                "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:{input}\r\nclient_recent_max_output_buffer:{output}\r\nblocked_clients:{blocked}\r\npubsub_clients:{}\r\n",
                b.clients.len(),
                b.settings().maxclients,
                b.clients.pubsub_count(),
            );
            super::info_domains::clients_by_transport(out, b);
        }
        "memory" => memory(out, cx),
        "persistence" => persistence(out, b),
        "stats" => {
            let ks = cx.state().keyspace.stats;
            let mail = cx.state().mailboxes.stats;
            let mail = cx.broker.remote.as_ref().map_or(mail, |r| r.mail_stats(mail));
            let hub = &b.hub.stats;
            let _ = write!(
                out,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\nevicted_keys:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\ntotal_error_replies:{}\r\nherald_pubsub_messages:{}\r\nherald_pubsub_deliveries:{}\r\nherald_pubsub_dropped:{}\r\nherald_output_limit_disconnects:{}\r\nherald_protocol_errors:{}\r\nherald_idle_disconnects:{}\r\nherald_killed_clients:{}\r\nherald_msg_replies_dropped:{}\r\nherald_msg_requests_expired:{}\r\n",
                stat(&b.stats.connections_received),
                b.commands.total_calls(),
                stat(&b.stats.net_input_bytes),
                stat(&b.stats.net_output_bytes),
                stat(&b.stats.rejected_connections),
                ks.expired_keys,
                ks.hits,
                ks.misses,
                b.hub.channel_count(ChannelKind::Plain),
                b.hub.pattern_count(),
                b.hub.channel_count(ChannelKind::Shard),
                b.commands.total_error_replies(),
                stat(&hub.messages_published),
                stat(&hub.deliveries),
                stat(&hub.dropped),
                stat(&b.stats.output_limit_disconnects),
                stat(&b.stats.protocol_errors),
                stat(&b.stats.idle_disconnects),
                stat(&b.stats.killed_clients),
                mail.replies_dropped,
                mail.requests_expired,
            );
            super::info_domains::stats_rates(out, b);
        }
        "replication" => {
            out.push_str("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n");
        }
        "cpu" => {
            let (user, sys) = cpu_seconds();
            let _ = write!(out, "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\n");
        }
        "keyspace" => {
            out.push_str("# Keyspace\r\n");
            let now = cx.now();
            let ks = &cx.state().keyspace;
            for i in 0..ks.db_count() {
                let db = ks.db(i);
                if db.is_empty() {
                    continue;
                }
                let _ = write!(out, "db{i}:keys={},expires={},avg_ttl={}\r\n", db.len(), db.volatile_len(), db.average_ttl(now));
            }
        }
        "commandstats" => cx.broker.commands.render_commands(out),
        "errorstats" => cx.broker.commands.render_errors(out),
        _ => {
            super::info_domains::section(out, name, cx);
        }
    }
}

/// INFO [section ...]: `default`, `all` and `everything` as in Redis; unknown sections are ignored.
pub fn info(requested: &[Bytes], cx: &mut Cx<'_>) -> Reply {
    let mut names: Vec<String> = Vec::new();
    if requested.is_empty() {
        names.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string()));
    }
    for r in requested {
        let r = String::from_utf8_lossy(r).to_ascii_lowercase();
        match r.as_str() {
            "default" => names.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string())),
            "all" | "everything" => {
                names.extend(ALL_SECTIONS.iter().map(|s| s.to_string()));
                names.extend(super::info_domains::SECTIONS.iter().map(|s| s.to_string()));
            }
            _ => names.push(r),
        }
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    let mut out = String::new();
    for name in &names {
        if !out.is_empty() && ALL_SECTIONS.contains(&name.as_str()) {
            out.push_str("\r\n");
        }
        section(&mut out, name, cx);
    }
    Reply::Verbatim(Bytes::from(out))
}
