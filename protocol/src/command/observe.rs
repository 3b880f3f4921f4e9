//! What the server shows of the commands it runs, as Redis 7.0 has it: SLOWLOG (commands slower than
//! `slowlog-log-slower-than`), LATENCY (latency spikes by event, `latency-monitor-threshold`) and
//! MONITOR (every command as it runs).

use bytes::Bytes;

use super::conn::{container, spec};
use super::{Command, CommandSpec, Group, NO_KEYS, flags::*};
use crate::error::CommandError;
use crate::number::parse_i64;
use crate::request::Args;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObserveCommand {
    /// `SLOWLOG GET [count]`: `None` for every entry (count -1).
    SlowlogGet(Option<usize>),
    SlowlogLen,
    SlowlogReset,
    SlowlogHelp,
    LatencyLatest,
    LatencyHistory(Bytes),
    /// `LATENCY RESET [event ...]`: no events resets them all.
    LatencyReset(Vec<Bytes>),
    LatencyDoctor,
    LatencyHelp,
    Monitor,
}

fn ok(c: ObserveCommand) -> Result<Command, CommandError> {
    Ok(Command::Observe(c))
}

/// `SLOWLOG GET [count]`: Redis reads the count with `getRangeLongFromObjectOrReply(-1, LONG_MAX)`;
/// a third argument is a subcommand syntax error.
fn slowlog_get(mut a: Args) -> Result<Command, CommandError> {
    let count = match a.remaining() {
        0 => Some(10),
        1 => {
            let raw = a.next_ref()?;
            match parse_i64(raw).filter(|n| *n >= -1) {
                Some(-1) => None,
                Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                None => return Err(CommandError::fixed("ERR count should be greater than or equal to -1")),
            }
        }
        _ => {
            let typed = String::from_utf8_lossy(a.subcommand());
            return Err(CommandError::new(format!("ERR unknown subcommand or wrong number of arguments for '{typed}'. Try SLOWLOG HELP.")));
        }
    };
    ok(ObserveCommand::SlowlogGet(count))
}

const SLOW: u32 = ADMIN | LOADING | STALE;
const LATENCY: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

const SLOWLOG_SUBS: &[CommandSpec] = &[
    spec!("slowlog|get", -2, SLOW, NO_KEYS, Server, "2.2.12", "Returns the slow log's entries.", slowlog_get),
    spec!("slowlog|len", 2, SLOW, NO_KEYS, Server, "2.2.12", "Returns the number of entries in the slow log.", |_| ok(
        ObserveCommand::SlowlogLen
    )),
    spec!("slowlog|reset", 2, SLOW, NO_KEYS, Server, "2.2.12", "Clears all entries from the slow log.", |_| ok(
        ObserveCommand::SlowlogReset
    )),
    spec!("slowlog|help", 2, LOADING | STALE, NO_KEYS, Server, "6.2.0", "Show helpful text about the different subcommands", |_| ok(
        ObserveCommand::SlowlogHelp
    )),
];

const LATENCY_SUBS: &[CommandSpec] = &[
    spec!("latency|latest", 2, LATENCY, NO_KEYS, Server, "2.8.13", "Returns the latest latency samples for all events.", |_| ok(
        ObserveCommand::LatencyLatest
    )),
    spec!("latency|history", 3, LATENCY, NO_KEYS, Server, "2.8.13", "Returns timestamp-latency samples for an event.", |mut a| ok(
        ObserveCommand::LatencyHistory(a.next_bytes()?)
    )),
    spec!("latency|reset", -2, LATENCY, NO_KEYS, Server, "2.8.13", "Resets the latency data for one or more events.", |a| ok(
        ObserveCommand::LatencyReset(a.rest())
    )),
    spec!("latency|doctor", 2, LATENCY, NO_KEYS, Server, "2.8.13", "Returns a human-readable latency analysis report.", |_| ok(
        ObserveCommand::LatencyDoctor
    )),
    spec!("latency|help", 2, LOADING | STALE, NO_KEYS, Server, "2.8.13", "Returns helpful text about the different subcommands.", |_| ok(
        ObserveCommand::LatencyHelp
    )),
];

pub(crate) const SPECS: &[CommandSpec] = &[
    CommandSpec {
        subcommands: SLOWLOG_SUBS,
        ..spec!("slowlog", -2, 0, NO_KEYS, Server, "2.2.12", "A container for slow log commands.", container)
    },
    CommandSpec {
        subcommands: LATENCY_SUBS,
        ..spec!("latency", -2, 0, NO_KEYS, Server, "2.8.13", "A container for latency diagnostics commands.", container)
    },
    spec!(
        "monitor",
        1,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        Server,
        "1.0.0",
        "Listens for all requests received by the server in real-time.",
        |_| ok(ObserveCommand::Monitor)
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Request;
    use crate::command::parse_request;

    fn parse(parts: &[&str]) -> Result<Command, CommandError> {
        parse_request(Request::from_strs(parts)).map(|(_, c)| c)
    }

    #[test]
    fn slowlog_get_counts_as_redis_reads_them() {
        assert_eq!(parse(&["SLOWLOG", "GET"]), ok(ObserveCommand::SlowlogGet(Some(10))));
        assert_eq!(parse(&["slowlog", "get", "-1"]), ok(ObserveCommand::SlowlogGet(None)));
        assert_eq!(parse(&["slowlog", "get", "0"]), ok(ObserveCommand::SlowlogGet(Some(0))));
        assert_eq!(parse(&["slowlog", "get", "-2"]).unwrap_err().0, "ERR count should be greater than or equal to -1");
        assert_eq!(parse(&["slowlog", "get", "x"]).unwrap_err().0, "ERR count should be greater than or equal to -1");
        assert!(parse(&["slowlog", "get", "1", "2"]).unwrap_err().0.starts_with("ERR unknown subcommand or wrong number"));
        assert_eq!(parse(&["slowlog", "len", "x"]).unwrap_err().0, "ERR wrong number of arguments for 'slowlog|len' command");
        assert_eq!(parse(&["latency", "reset", "command"]), ok(ObserveCommand::LatencyReset(vec![Bytes::from_static(b"command")])));
        assert_eq!(parse(&["monitor"]), ok(ObserveCommand::Monitor));
    }
}
