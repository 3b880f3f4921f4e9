//! INFO's sections for Herald's own domains (`# Blackboard`, `# Bulletin`, `# Jobs`, `# Mailboxes`,
//! `# Streams`), in Redis's `field:value` form. They are not in INFO's default set (which stays what
//! Redis prints) but in `all` / `everything`, and each can be asked for by name. Every figure is read
//! from the engines' own bookkeeping through their discovery listings: one pass over the objects, never
//! over the jobs, items or keys, and nothing is counted on the request path.

use std::fmt::Write as _;

use super::Cx;
use crate::engine::listing::ListArgs;
use crate::rates::Metric;

pub const SECTIONS: &[&str] = &["blackboard", "bulletin", "jobs", "mailboxes", "streams"];

/// `# Stats`' rates, as Redis names them.
pub fn stats_rates(out: &mut String, b: &crate::broker::Broker) {
    let kbps = |m| b.rates.per_sec(m) as f64 / 1024.0;
    let _ = write!(
        out,
        "instantaneous_ops_per_sec:{}\r\ninstantaneous_input_kbps:{:.2}\r\ninstantaneous_output_kbps:{:.2}\r\n",
        b.rates.per_sec(Metric::Commands),
        kbps(Metric::NetInput),
        kbps(Metric::NetOutput),
    );
}

/// `# Clients`' Herald fields: connections per transport.
pub fn clients_by_transport(out: &mut String, b: &crate::broker::Broker) {
    let (resp, ws, http) = b.clients.by_transport();
    let _ = write!(out, "herald_resp_clients:{resp}\r\nherald_websocket_clients:{ws}\r\nherald_http_clients:{http}\r\n");
}

/// Writes section `name` if it is one of Herald's; false if it is not.
pub fn section(out: &mut String, name: &str, cx: &mut Cx<'_>) -> bool {
    if !SECTIONS.contains(&name) {
        return false;
    }
    if !out.is_empty() {
        out.push_str("\r\n");
    }
    let all = ListArgs::all();
    let rates = &cx.broker.rates;
    let per_sec = [Metric::JobsSubmitted, Metric::JobsCompleted, Metric::JobsFailed].map(|m| rates.per_sec(m));
    let state = cx.state();
    let _ = match name {
        "blackboard" => {
            let scopes = state.keyspace.bb_scope_list(&all).entries;
            // The global scope is the Redis keyspace's database 0: its keys are in `# Keyspace`.
            let named = scopes.iter().filter(|s| !s.scope.is_empty());
            let (keys, journal) = named.fold((0, 0), |(k, j), s| (k + s.keys, j + s.journal));
            write!(
                out,
                "# Blackboard\r\nblackboard_scopes:{}\r\nblackboard_keys:{keys}\r\nblackboard_journal_entries:{journal}\r\n",
                scopes.len() - 1
            )
        }
        "bulletin" => {
            let boards = state.bulletin.boards(None, &all).entries;
            let sum = |f: fn(&crate::engine::bulletin::BoardSummary) -> usize| boards.iter().map(f).sum::<usize>();
            write!(
                out,
                "# Bulletin\r\nbulletin_boards:{}\r\nbulletin_items:{}\r\nbulletin_leased:{}\r\nbulletin_dead:{}\r\n",
                boards.len(),
                sum(|b| b.items),
                sum(|b| b.leased),
                sum(|b| b.dead),
            )
        }
        "jobs" => {
            let queues = state.jobs.queues(&all).entries;
            let count = |f: fn(&crate::engine::jobs::QueueSummary) -> usize| queues.iter().map(f).sum::<usize>();
            let total = |f: fn(&crate::engine::jobs::QueueStats) -> u64| queues.iter().map(|q| f(&q.stats)).sum::<u64>();
            write!(
                out,
                "# Jobs\r\njobs_queues:{}\r\njobs_held:{}\r\njobs_queued:{}\r\njobs_delayed:{}\r\njobs_running:{}\r\njobs_dead:{}\r\njobs_paused_queues:{}\r\njobs_submitted_total:{}\r\njobs_completed_total:{}\r\njobs_failed_total:{}\r\njobs_retried_total:{}\r\njobs_cancelled_total:{}\r\njobs_lease_expired_total:{}\r\njobs_submitted_per_sec:{}\r\njobs_completed_per_sec:{}\r\njobs_failed_per_sec:{}\r\n",
                queues.len(),
                state.jobs.len(),
                count(|q| q.queued),
                count(|q| q.delayed),
                count(|q| q.running),
                count(|q| q.dead),
                queues.iter().filter(|q| q.config.paused).count(),
                total(|s| s.submitted),
                total(|s| s.completed),
                total(|s| s.failed),
                total(|s| s.retried),
                total(|s| s.cancelled),
                total(|s| s.lease_expired),
                per_sec[0],
                per_sec[1],
                per_sec[2],
            )
        }
        "mailboxes" => {
            let dests = state.mailboxes.dests(&all).entries;
            let stats = state.mailboxes.stats;
            write!(
                out,
                "# Mailboxes\r\nmailboxes_destinations:{}\r\nmailboxes_messages:{}\r\nmailboxes_topics:{}\r\nmailboxes_replies_dropped:{}\r\nmailboxes_requests_expired:{}\r\n",
                dests.len(),
                dests.iter().map(|d| d.length).sum::<usize>(),
                dests.iter().map(|d| d.topics.len()).sum::<usize>(),
                stats.replies_dropped,
                stats.requests_expired,
            )
        }
        _ => {
            let streams = state.streams.list(&all).entries;
            write!(
                out,
                "# Streams\r\nstreams:{}\r\nstreams_entries:{}\r\nstreams_bytes:{}\r\nstreams_closed:{}\r\n",
                streams.len(),
                streams.iter().map(|(_, s)| s.length).sum::<usize>(),
                streams.iter().map(|(_, s)| s.bytes).sum::<usize>(),
                streams.iter().filter(|(_, s)| s.closed).count(),
            )
        }
    };
    true
}
