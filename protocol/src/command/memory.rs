//! MEMORY: what keys and the server cost in memory, as Redis 7.0's diagnostics report it.

use bytes::Bytes;

use super::conn::spec;
use super::flags::*;
use super::{Command, CommandSpec, Group, NO_KEYS, keys};
use crate::error::CommandError;
use crate::number::parse_i64;
use crate::request::{Args, is_word};

#[derive(Debug, Clone, PartialEq)]
pub enum MemoryCommand {
    /// `MEMORY USAGE key [SAMPLES count]`: `samples` 0 means every element.
    Usage {
        key: Bytes,
        samples: usize,
    },
    Stats,
    Doctor,
    MallocStats,
    Purge,
    Help,
}

/// Redis's default sample count for MEMORY USAGE.
pub const DEFAULT_SAMPLES: usize = 5;

fn ok(c: MemoryCommand) -> Result<Command, CommandError> {
    Ok(Command::Memory(c))
}

/// Options are read before the key is looked up, as Redis does: a bad SAMPLES fails even for a
/// missing key. A negative count is a syntax error, a non-number an integer error, the last one wins.
fn parse_usage(mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    ok(MemoryCommand::Usage { key, samples: parse_samples(a)? })
}

/// `[SAMPLES count]` after the key (MEMORY USAGE, BB.MEMORY): 0 means every element.
pub(crate) fn parse_samples(a: Args) -> Result<usize, CommandError> {
    let mut samples = DEFAULT_SAMPLES;
    let mut rest = a.rest().into_iter();
    while let Some(opt) = rest.next() {
        if !is_word(&opt, "SAMPLES") || rest.len() == 0 {
            return Err(CommandError::syntax());
        }
        let n = parse_i64(&rest.next().expect("counted")).ok_or(CommandError::not_integer())?;
        samples = usize::try_from(n).map_err(|_| CommandError::syntax())?;
    }
    Ok(samples)
}

fn container(_: Args) -> Result<Command, CommandError> {
    unreachable!("MEMORY alone fails its arity check")
}

const MEMORY_SUBS: &[CommandSpec] = &[
    spec!("memory|stats", 2, 0, NO_KEYS, Server, "4.0.0", "Returns details about memory usage.", |_| ok(MemoryCommand::Stats)),
    spec!("memory|doctor", 2, 0, NO_KEYS, Server, "4.0.0", "Outputs a memory problems report.", |_| ok(MemoryCommand::Doctor)),
    spec!("memory|malloc-stats", 2, 0, NO_KEYS, Server, "4.0.0", "Returns the allocator statistics.", |_| ok(MemoryCommand::MallocStats)),
    spec!("memory|purge", 2, 0, NO_KEYS, Server, "4.0.0", "Asks the allocator to release memory.", |_| ok(MemoryCommand::Purge)),
    spec!("memory|help", 2, LOADING | STALE, NO_KEYS, Server, "4.0.0", "Returns helpful text about the different subcommands.", |_| ok(
        MemoryCommand::Help
    )),
    spec!("memory|usage", -3, READONLY, keys(2, 2, 1), Server, "4.0.0", "Estimates the memory usage of a key.", parse_usage),
];

pub(crate) const SPECS: &[CommandSpec] = &[CommandSpec {
    subcommands: MEMORY_SUBS,
    ..spec!("memory", -2, 0, NO_KEYS, Server, "4.0.0", "A container for memory diagnostics commands.", container)
}];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::parse_request;
    use crate::request::Request;

    fn parse(parts: &[&str]) -> Result<Command, CommandError> {
        parse_request(Request::from_strs(parts)).map(|(_, c)| c)
    }

    #[test]
    fn usage_options_as_redis_reads_them() {
        let usage = |parts: &[&str]| match parse(parts) {
            Ok(Command::Memory(MemoryCommand::Usage { samples, .. })) => Ok(samples),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.0.into_owned()),
        };
        assert_eq!(usage(&["MEMORY", "USAGE", "k"]), Ok(DEFAULT_SAMPLES));
        assert_eq!(usage(&["MEMORY", "usage", "k", "samples", "0"]), Ok(0));
        assert_eq!(usage(&["MEMORY", "USAGE", "k", "SAMPLES", "1", "SAMPLES", "9"]), Ok(9));
        assert_eq!(usage(&["MEMORY", "USAGE", "k", "SAMPLES"]), Err("ERR syntax error".into()));
        assert_eq!(usage(&["MEMORY", "USAGE", "k", "SAMPLES", "-1"]), Err("ERR syntax error".into()));
        assert_eq!(usage(&["MEMORY", "USAGE", "k", "SAMPLES", "x"]), Err("ERR value is not an integer or out of range".into()));
        assert_eq!(usage(&["MEMORY", "USAGE", "k", "b"]), Err("ERR syntax error".into()));
        assert_eq!(usage(&["MEMORY", "USAGE"]), Err("ERR wrong number of arguments for 'memory|usage' command".into()));
    }

    #[test]
    fn subcommands_and_arity() {
        assert_eq!(parse(&["MEMORY", "foo"]).unwrap_err().0, "ERR unknown subcommand 'foo'. Try MEMORY HELP.");
        assert_eq!(parse(&["MEMORY"]).unwrap_err().0, "ERR wrong number of arguments for 'memory' command");
        assert_eq!(parse(&["MEMORY", "STATS", "x"]).unwrap_err().0, "ERR wrong number of arguments for 'memory|stats' command");
        assert_eq!(parse(&["MEMORY", "malloc-stats"]).unwrap(), Command::Memory(MemoryCommand::MallocStats));
    }
}
