//! SLOWLOG, LATENCY and MONITOR: the commands, and what [`super::run`] records for them after each
//! command (the SLOWLOG entry, the MONITOR line). The stores are `slowlog.rs`, `latency_events.rs`
//! and `monitors.rs`.

use bytes::Bytes;
use herald_protocol::command::{Found, Group, ObserveCommand, flags};
use herald_protocol::{CommandError, Reply, Request};

use super::{Cx, Outcome, Session, server};
use crate::broker::Broker;
use crate::latency_events::DoctorContext;

/// EVAL, EVALSHA, FCALL and their `_RO` forms: Redis shows them as they start (before the commands
/// the script runs), not once they ended (its `skip_monitor` flag with the script's own feed).
#[inline]
pub fn script_call(found: Found) -> bool {
    // The family first: one comparison for every other command.
    found.group == Group::Scripting && matches!(found.name, "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro")
}

/// Whether MONITOR shows the command once it ran: every command but administrative ones (too
/// dangerous to show, as Redis says) and script calls (shown before).
#[inline]
pub fn shown_after(found: Found) -> bool {
    !found.has(flags::ADMIN) && !script_call(found)
}

/// Sends the request to every monitor: with the session's database as it is now (after a SELECT,
/// its new one, as Redis 7.0 shows it) and the client's address, or `lua` inside a script.
pub fn feed_monitors(req: &Request, cx: &Cx<'_>) {
    let broker = cx.broker;
    let source = if cx.in_script { "lua".to_string() } else { cx.session.client.addr.to_string() };
    broker.monitors.feed(broker.clock.now_us(), cx.db(), &source, req.parts());
}

/// A command that ran `micros`: a SLOWLOG entry if it reached `slowlog-log-slower-than`, a latency
/// sample if it reached `latency-monitor-threshold` (each one relaxed load otherwise).
#[inline]
pub fn sample(found: Found, req: &Request, micros: u64, session: &Session, broker: &Broker) {
    if broker.slowlog.wants(micros) {
        log_slow(found, req, micros, session, broker);
    }
    broker.latency_events.observe(found.has(flags::FAST), micros, || (broker.clock.now_ms() / 1000) as i64);
}

/// A script that ran on the script thread: its time goes to INFO commandstats (its call was counted
/// when it was handed over), SLOWLOG and LATENCY, as if it had run inline.
pub fn offloaded(found: Found, req: &Request, nanos: u64, session: &Session, broker: &Broker) {
    broker.commands.add_time(found, nanos);
    sample(found, req, nanos / 1000, session, broker);
}

/// Into SLOWLOG, arguments as the client sent them (passwords redacted, as MONITOR shows them).
/// EXEC itself is not logged (Redis's `skip_slowlog`): the commands it ran are.
#[cold]
fn log_slow(found: Found, req: &Request, micros: u64, session: &Session, broker: &Broker) {
    if found.name == "exec" {
        return;
    }
    let (from, to) = crate::monitors::redacted_from(req.parts());
    let args: Vec<Bytes> = req
        .parts()
        .iter()
        .enumerate()
        .map(|(i, a)| if i >= from && i < to { Bytes::from_static(b"(redacted)") } else { a.clone() })
        .collect();
    let client = &session.client;
    let name = client.activity().name.clone().unwrap_or_default();
    broker.slowlog.push(&args, micros, (broker.clock.now_ms() / 1000) as i64, client.addr.to_string(), name);
}

const SLOWLOG_HELP: &[&str] = &[
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
];

const LATENCY_HELP: &[&str] = &[
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
];

pub fn execute(cmd: ObserveCommand, cx: &mut Cx<'_>) -> Outcome {
    let broker = cx.broker;
    match cmd {
        ObserveCommand::SlowlogGet(count) => broker.slowlog.get(count).into(),
        ObserveCommand::SlowlogLen => Reply::Int(broker.slowlog.len() as i64).into(),
        ObserveCommand::SlowlogReset => {
            broker.slowlog.reset();
            Reply::ok().into()
        }
        ObserveCommand::SlowlogHelp => server::help("SLOWLOG", SLOWLOG_HELP).into(),
        ObserveCommand::LatencyLatest => broker.latency_events.latest().into(),
        ObserveCommand::LatencyHistory(event) => broker.latency_events.history(&event).into(),
        ObserveCommand::LatencyReset(events) => Reply::Int(broker.latency_events.reset(&events) as i64).into(),
        ObserveCommand::LatencyDoctor => {
            let context = DoctorContext { slowlog_threshold_us: broker.slowlog.threshold_us(), slowlog_max_len: broker.slowlog.max_len() };
            Reply::Verbatim(Bytes::from(broker.latency_events.doctor(&context, (broker.clock.now_ms() / 1000) as i64))).into()
        }
        ObserveCommand::LatencyHelp => server::help("LATENCY", LATENCY_HELP).into(),
        ObserveCommand::Monitor => {
            // EXEC makes its client one that expects a reply per command (Redis's DENY_BLOCKING).
            if cx.in_exec {
                return CommandError::fixed("ERR MONITOR isn't allowed for DENY BLOCKING client").into();
            }
            broker.monitors.add(cx.session.client.clone());
            Reply::ok().into()
        }
    }
}
