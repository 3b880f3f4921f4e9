//! `GET /metrics`: the broker's counters, gauges and latency histograms in the Prometheus text
//! exposition format (version 0.0.4), for Prometheus, VictoriaMetrics, Grafana Agent and the like.
//!
//! Written by hand rather than through the `prometheus-client` crate: every figure already lives in
//! the broker as an atomic (`Stats`, `HubStats`, `PersistStats`, `latency.rs`) or in the engines behind
//! the state lock, and the crate wants to own its metrics in a registry of its own types. Mirroring ours
//! into that registry would mean a second set of counters on the hot path, or collectors that render
//! through it anyway; the format itself is a few lines of text per family (checked line by line in
//! broker/tests/metrics.rs, and by the Prometheus project's Python parser in tests/e2e/metrics.sh).
//!
//! A scrape costs O(connections) (counted by transport from the registry, no state lock) plus
//! O(databases + named objects) under the state lock: nothing here walks keys, jobs or items, so a
//! scrape stays fast however many there are. Only the per-object gauges (`object_metrics.rs`) carry
//! user data, the names of at most `metrics.max_objects` queues, boards, mailboxes and streams.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use herald_protocol::command::Group;

use crate::alloc::{allocated_bytes, peak_bytes, resident_bytes};
use crate::broker::Broker;
use crate::clients::Transport;
use crate::latency::BOUNDS_US;
use crate::pubsub::ChannelKind;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The text of one scrape.
pub fn render(broker: &Broker) -> String {
    let mut m = Metrics(String::with_capacity(16 * 1024));
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let stats = &broker.stats;

    m.family("herald_build_info", "gauge", "Herald's version (the value is always 1).");
    m.sample("herald_build_info", &format!("version=\"{}\"", env!("CARGO_PKG_VERSION")), 1);
    m.gauge("herald_uptime_seconds", "Seconds since the broker started.", broker.clock.uptime().as_secs());

    let (mut resp, mut ws, mut http) = (0u64, 0u64, 0u64);
    for client in broker.clients.all() {
        match client.transport {
            Transport::Resp => resp += 1,
            Transport::WebSocket => ws += 1,
            Transport::Http => http += 1,
        }
    }
    m.family("herald_connected_clients", "gauge", "Open client connections by transport.");
    for (transport, n) in [("resp", resp), ("websocket", ws), ("http", http)] {
        m.sample("herald_connected_clients", &format!("transport=\"{transport}\""), n);
    }
    m.gauge("herald_pubsub_clients", "Connections subscribed to at least one channel or pattern.", broker.clients.pubsub_count() as u64);
    m.counter("herald_connections_received_total", "Connections accepted.", get(&stats.connections_received));
    m.counter("herald_rejected_connections_total", "Connections refused by maxclients.", get(&stats.rejected_connections));
    m.counter("herald_commands_processed_total", "Commands executed.", broker.commands.total_calls());
    m.counter("herald_net_input_bytes_total", "Bytes read from clients.", get(&stats.net_input_bytes));
    m.counter("herald_net_output_bytes_total", "Bytes written to clients.", get(&stats.net_output_bytes));
    m.counter("herald_protocol_errors_total", "Requests refused as malformed.", get(&stats.protocol_errors));
    m.counter(
        "herald_slow_consumer_disconnects_total",
        "Connections closed because their output exceeded its limit.",
        get(&stats.output_limit_disconnects),
    );
    m.counter("herald_idle_disconnects_total", "Connections closed as idle.", get(&stats.idle_disconnects));
    m.counter("herald_killed_clients_total", "Connections closed by CLIENT KILL.", get(&stats.killed_clients));

    let hub = &broker.hub;
    m.family("herald_pubsub_channels", "gauge", "Channels with at least one subscriber, by namespace.");
    m.sample("herald_pubsub_channels", "kind=\"plain\"", hub.channel_count(ChannelKind::Plain) as u64);
    m.sample("herald_pubsub_channels", "kind=\"shard\"", hub.channel_count(ChannelKind::Shard) as u64);
    m.gauge("herald_pubsub_patterns", "Patterns with at least one subscriber.", hub.pattern_count() as u64);
    m.counter("herald_pubsub_messages_total", "Messages published.", get(&hub.stats.messages_published));
    m.counter("herald_pubsub_deliveries_total", "Messages delivered to subscribers.", get(&hub.stats.deliveries));
    m.counter("herald_outbox_dropped_total", "Pushes discarded by drop-oldest outboxes.", get(&hub.stats.dropped));

    m.gauge("herald_memory_used_bytes", "Bytes handed out by the allocator (INFO used_memory).", allocated_bytes() as u64);
    m.gauge("herald_memory_peak_bytes", "The most used_memory has been since the start (INFO used_memory_peak).", peak_bytes() as u64);
    m.gauge("herald_memory_rss_bytes", "Resident set size of the process.", resident_bytes() as u64);

    engines(&mut m, broker);
    super::object_metrics::render(&mut m, broker);
    persistence(&mut m, broker);
    latency(&mut m, broker);
    m.0
}

/// What lives behind the state lock, read in one short hold: sizes only, each O(1) per database.
fn engines(m: &mut Metrics, broker: &Broker) {
    let (dbs, stats, mail, blocked, jobs) = {
        let state = broker.lock();
        let ks = &state.keyspace;
        let dbs: Vec<(usize, u64, u64)> =
            (0..ks.db_count()).map(|i| (i, ks.db(i).len() as u64, ks.db(i).volatile_len() as u64)).filter(|d| d.1 > 0).collect();
        (dbs, ks.stats, state.mailboxes.stats, state.blocking.len() as u64, state.jobs.len() as u64)
    };
    let mail = broker.remote.as_ref().map_or(mail, |r| r.mail_stats(mail));
    let blocked = blocked + broker.remote.as_ref().map_or(0, |r| r.blocked() as u64);
    m.family("herald_keyspace_keys", "gauge", "Keys per database (databases with keys).");
    for (db, keys, _) in &dbs {
        m.sample("herald_keyspace_keys", &format!("db=\"{db}\""), *keys);
    }
    m.family("herald_keyspace_expires", "gauge", "Keys with a time to live, per database.");
    for (db, _, expires) in &dbs {
        m.sample("herald_keyspace_expires", &format!("db=\"{db}\""), *expires);
    }
    m.counter("herald_keyspace_hits_total", "Key lookups that found the key.", stats.hits);
    m.counter("herald_keyspace_misses_total", "Key lookups that did not.", stats.misses);
    m.counter("herald_expired_keys_total", "Keys removed because their time to live ran out.", stats.expired_keys);
    m.gauge("herald_blocked_clients", "Clients waiting in a blocking command.", blocked);
    m.gauge("herald_jobs", "Job records held (every state, until their retention ends).", jobs);
    m.counter("herald_msg_replies_dropped_total", "Mailbox replies no one was waiting for.", mail.replies_dropped);
    m.counter("herald_msg_requests_expired_total", "Mailbox requests that expired unanswered.", mail.requests_expired);
}

fn persistence(m: &mut Metrics, broker: &Broker) {
    let Some(p) = &broker.persist else {
        m.gauge("herald_persistence_enabled", "1 when a data directory is configured.", 0);
        return;
    };
    m.gauge("herald_persistence_enabled", "1 when a data directory is configured.", 1);
    m.family("herald_persistence_lsn", "gauge", "Log sequence numbers: appended, written to the file, fsynced.");
    for (stage, lsn) in [("logged", p.lsn()), ("written", p.written_lsn()), ("synced", p.synced_lsn())] {
        m.sample("herald_persistence_lsn", &format!("stage=\"{stage}\""), lsn);
    }
    m.counter("herald_persistence_fsyncs_total", "fsync calls on the log.", p.stats.fsyncs.load(Ordering::Relaxed));
    m.gauge("herald_persistence_log_bytes", "Size of the append-only log.", p.stats.log_size.load(Ordering::Relaxed));
    m.gauge("herald_persistence_failed", "1 while writes are refused because the log cannot be written.", u64::from(p.failure().is_some()));
}

fn latency(m: &mut Metrics, broker: &Broker) {
    const NAME: &str = "herald_command_duration_seconds";
    m.family(NAME, "histogram", "Time from a batch of requests arriving to its replies being ready, per command family.");
    for group in Group::ALL {
        let s = broker.latency.family(group).snapshot();
        if s.count() == 0 {
            continue;
        }
        let family = group.as_str();
        for (bound, n) in BOUNDS_US.iter().zip(s.cumulative) {
            let _ = writeln!(m.0, "{NAME}_bucket{{family=\"{family}\",le=\"{}\"}} {n}", *bound as f64 / 1e6);
        }
        let _ = writeln!(m.0, "{NAME}_bucket{{family=\"{family}\",le=\"+Inf\"}} {}", s.count());
        let _ = writeln!(m.0, "{NAME}_sum{{family=\"{family}\"}} {}", s.sum_seconds);
        let _ = writeln!(m.0, "{NAME}_count{{family=\"{family}\"}} {}", s.count());
    }
}

/// The text being written: `# HELP` and `# TYPE` once per family, then its samples.
pub(super) struct Metrics(String);

impl Metrics {
    pub(super) fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub(super) fn sample(&mut self, name: &str, labels: &str, value: u64) {
        let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
    }

    fn gauge(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "gauge", help);
        let _ = writeln!(self.0, "{name} {value}");
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "counter", help);
        let _ = writeln!(self.0, "{name} {value}");
    }
}
