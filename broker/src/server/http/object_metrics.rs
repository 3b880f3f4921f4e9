//! `/metrics`' per-object gauges: each job queue's depths, each board's items, each mailbox's depth and
//! each stream's length, labelled with the object's name.
//!
//! Names are user data and there may be millions of objects, so the series a scrape produces are
//! bounded by `metrics.max_objects`: per kind, the largest objects (by what they hold) keep their name
//! and the rest are summed into one series named `_other`, so totals stay right whatever the bound.
//! The figures are the discovery listings' (`JOB.QUEUES`, `BL.BOARDS`, `MSG.DESTS`, `STREAM.LIST`),
//! read in one hold of the state lock: one pass over the objects, never over their jobs or items.

use super::metrics::Metrics;
use crate::broker::Broker;
use crate::engine::listing::ListArgs;

/// The label value every object past the bound is summed under.
const OTHER: &str = "_other";

/// One object: its labels (already escaped, `key="value"` pairs) and its figures.
struct Row<const N: usize> {
    labels: String,
    values: [u64; N],
}

/// Escapes a label value as the text format wants it (backslash, double quote, newline).
fn escape(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Keeps the `bound` largest rows (by the sum of their figures, then by labels for a stable order)
/// and folds the rest into one `_other` row labelled by `other`.
fn bounded<const N: usize>(mut rows: Vec<Row<N>>, bound: usize, other: &str) -> Vec<Row<N>> {
    if rows.len() <= bound {
        rows.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        return rows;
    }
    rows.sort_unstable_by(|a, b| b.values.iter().sum::<u64>().cmp(&a.values.iter().sum::<u64>()).then_with(|| a.labels.cmp(&b.labels)));
    let rest = rows.split_off(bound);
    let mut folded = [0u64; N];
    for row in &rest {
        for (sum, v) in folded.iter_mut().zip(row.values) {
            *sum += v;
        }
    }
    rows.push(Row { labels: other.to_owned(), values: folded });
    rows
}

/// Writes one gauge family per figure: `families[i]` is (name, help) of `values[i]`.
fn write<const N: usize>(m: &mut Metrics, rows: &[Row<N>], families: [(&str, &str); N]) {
    for (i, (name, help)) in families.iter().enumerate() {
        m.family(name, "gauge", help);
        for row in rows {
            m.sample(name, &row.labels, row.values[i]);
        }
    }
}

pub(super) fn render(m: &mut Metrics, broker: &Broker) {
    let bound = broker.config.metrics.max_objects;
    let all = ListArgs::all();
    let (queues, boards, mailboxes, streams) = {
        let state = broker.lock();
        let queues: Vec<Row<4>> = state
            .jobs
            .queues(&all)
            .entries
            .into_iter()
            .map(|q| Row {
                labels: format!("queue=\"{}\"", escape(&q.name)),
                values: [q.queued, q.delayed, q.running, q.dead].map(|v| v as u64),
            })
            .collect();
        let boards: Vec<Row<3>> = state
            .bulletin
            .boards(None, &all)
            .entries
            .into_iter()
            .map(|b| Row {
                labels: format!("scope=\"{}\",board=\"{}\"", escape(&b.scope), escape(&b.board)),
                values: [b.items, b.leased, b.dead].map(|v| v as u64),
            })
            .collect();
        let mailboxes: Vec<Row<1>> = state
            .mailboxes
            .dests(&all)
            .entries
            .into_iter()
            .map(|d| Row { labels: format!("dest=\"{}\"", escape(&d.dest)), values: [d.length as u64] })
            .collect();
        let streams: Vec<Row<2>> = state
            .streams
            .list(&all)
            .entries
            .into_iter()
            .map(|(name, s)| Row { labels: format!("stream=\"{}\"", escape(&name)), values: [s.length as u64, s.bytes as u64] })
            .collect();
        (queues, boards, mailboxes, streams)
    };
    m.family("herald_objects", "gauge", "Named objects that exist, by kind (all of them, whatever metrics.max_objects is).");
    for (kind, n) in [("queue", queues.len()), ("board", boards.len()), ("mailbox", mailboxes.len()), ("stream", streams.len())] {
        m.sample("herald_objects", &format!("kind=\"{kind}\""), n as u64);
    }
    write(
        m,
        &bounded(queues, bound, &format!("queue=\"{OTHER}\"")),
        [
            ("herald_queue_jobs_queued", "Jobs ready to be claimed, per queue."),
            ("herald_queue_jobs_delayed", "Jobs waiting for their delay or retry backoff, per queue."),
            ("herald_queue_jobs_running", "Jobs claimed by a worker (in flight), per queue."),
            ("herald_queue_jobs_dead", "Dead-lettered jobs kept, per queue."),
        ],
    );
    write(
        m,
        &bounded(boards, bound, &format!("scope=\"{OTHER}\",board=\"{OTHER}\"")),
        [
            ("herald_board_items", "Items on the board (leased ones included), per board."),
            ("herald_board_items_leased", "Items held under a lease, per board."),
            ("herald_board_items_dead", "Dead-lettered items kept, per board."),
        ],
    );
    write(
        m,
        &bounded(mailboxes, bound, &format!("dest=\"{OTHER}\"")),
        [("herald_mailbox_messages", "Messages waiting, all topics together, per mailbox destination.")],
    );
    write(
        m,
        &bounded(streams, bound, &format!("stream=\"{OTHER}\"")),
        [("herald_stream_entries", "Entries retained, per stream."), ("herald_stream_bytes", "Bytes of the entries retained, per stream.")],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, v: u64) -> Row<1> {
        Row { labels: format!("q=\"{name}\""), values: [v] }
    }

    #[test]
    fn past_the_bound_the_smallest_are_summed() {
        let rows = bounded(vec![row("a", 1), row("b", 5), row("c", 3), row("d", 2)], 2, "q=\"_other\"");
        let got: Vec<(&str, u64)> = rows.iter().map(|r| (r.labels.as_str(), r.values[0])).collect();
        assert_eq!(got, [("q=\"b\"", 5), ("q=\"c\"", 3), ("q=\"_other\"", 3)]);
        assert_eq!(
            bounded(vec![row("b", 1), row("a", 1)], 2, "").iter().map(|r| r.labels.as_str()).collect::<Vec<_>>(),
            ["q=\"a\"", "q=\"b\""]
        );
        assert_eq!(bounded(vec![row("a", 1)], 0, "q=\"_other\"")[0].labels, "q=\"_other\"");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(b"a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
