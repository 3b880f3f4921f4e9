//! Redis Streams (XADD, XRANGE, XREAD, consumer groups...), as Redis 7.0 parses them.
//!
//! Not to be confused with Herald's own workflow streams (`STREAM.*`, `streams.rs`). Redis checks some
//! arguments before it looks the key up and others only after; the parse here does the former and
//! keeps the latter as they came (the IDs of XDEL, XACK, XREAD...), or as a parse result to report
//! once the key checks passed (XCLAIM's options, XINFO STREAM's), so errors come in Redis's order.

use bytes::Bytes;

use super::conn::spec;
use super::flags::*;
use super::{Command, CommandSpec, Group, NO_KEYS, keys};
use crate::error::CommandError;
use crate::number::parse_i64;
use crate::request::{Args, is_word};
use crate::stream_id::{self, AddId, StreamId};

mod groups;

use groups::{XGROUP_SUBS, XINFO_SUBS, parse_autoclaim, parse_claim, parse_pending};

/// How a stream is trimmed: `MAXLEN` keeps the newest `n` entries, `MINID` drops entries below an ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrimStrategy {
    MaxLen(u64),
    MinId(StreamId),
}

/// `MAXLEN|MINID [=|~] threshold [LIMIT count]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrimArgs {
    pub strategy: TrimStrategy,
    /// `~`: only whole nodes are removed.
    pub approx: bool,
    /// Most entries one trim removes (0: no limit). Only with `~`; defaults to 100 nodes' worth.
    pub limit: u64,
}

/// XCLAIM's arguments after the group: checked only once the key and group are known to exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimArgs {
    pub min_idle: u64,
    pub ids: Vec<StreamId>,
    pub idle: Option<ClaimTime>,
    pub retry_count: Option<u64>,
    pub force: bool,
    pub just_id: bool,
    pub last_id: Option<StreamId>,
}

/// XCLAIM's `IDLE ms` (delivered that long ago) or `TIME unix-ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimTime {
    Idle(i64),
    At(i64),
}

/// XPENDING's extended form: `[IDLE min-idle] start end count [consumer]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRange {
    pub min_idle: i64,
    pub start: StreamId,
    pub end: StreamId,
    pub count: u64,
    pub consumer: Option<Bytes>,
}

/// XREAD and XREADGROUP: the keys and their IDs as given (an ID's meaning depends on the stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadArgs {
    /// 0: no limit.
    pub count: u64,
    /// `BLOCK ms` (0: forever).
    pub block: Option<u64>,
    pub keys: Vec<Bytes>,
    pub ids: Vec<Bytes>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum XStreamCommand {
    /// `id: None` is `*`.
    Add {
        key: Bytes,
        no_mkstream: bool,
        trim: Option<TrimArgs>,
        id: Option<AddId>,
        fields: Vec<Bytes>,
    },
    /// XRANGE / XREVRANGE with the bounds already made inclusive. `count: Some(0)` answers a null array.
    Range {
        key: Bytes,
        start: StreamId,
        end: StreamId,
        count: Option<u64>,
        rev: bool,
    },
    Len(Bytes),
    Del {
        key: Bytes,
        ids: Vec<Bytes>,
    },
    Trim {
        key: Bytes,
        trim: TrimArgs,
    },
    SetId {
        key: Bytes,
        id: StreamId,
        entries_added: Option<u64>,
        max_deleted: Option<StreamId>,
    },
    Read(ReadArgs),
    ReadGroup {
        group: Bytes,
        consumer: Bytes,
        no_ack: bool,
        read: ReadArgs,
    },
    /// XGROUP CREATE / SETID. `id` is read after the key checks; `excess` is the error for a wrong
    /// argument count, which Redis reports only after those checks too.
    GroupCreate {
        key: Bytes,
        group: Bytes,
        id: Bytes,
        mkstream: bool,
        entries_read: Option<i64>,
        excess: Option<CommandError>,
    },
    GroupSetId {
        key: Bytes,
        group: Bytes,
        id: Bytes,
        entries_read: Option<i64>,
        excess: Option<CommandError>,
    },
    GroupDestroy {
        key: Bytes,
        group: Bytes,
    },
    GroupCreateConsumer {
        key: Bytes,
        group: Bytes,
        consumer: Bytes,
    },
    GroupDelConsumer {
        key: Bytes,
        group: Bytes,
        consumer: Bytes,
    },
    GroupHelp,
    Ack {
        key: Bytes,
        group: Bytes,
        ids: Vec<Bytes>,
    },
    Pending {
        key: Bytes,
        group: Bytes,
        range: Option<PendingRange>,
    },
    Claim {
        key: Bytes,
        group: Bytes,
        consumer: Bytes,
        args: Result<ClaimArgs, CommandError>,
    },
    AutoClaim {
        key: Bytes,
        group: Bytes,
        consumer: Bytes,
        min_idle: u64,
        start: StreamId,
        count: u64,
        just_id: bool,
    },
    /// XINFO STREAM: `full` is `Some(count)` (0: everything) for FULL; options are judged after the key.
    InfoStream {
        key: Bytes,
        full: Result<Option<u64>, CommandError>,
    },
    InfoGroups(Bytes),
    InfoConsumers {
        key: Bytes,
        group: Bytes,
    },
    InfoHelp,
}

fn ok(c: XStreamCommand) -> Result<Command, CommandError> {
    Ok(Command::XStream(c))
}

const INVALID_ID: CommandError = CommandError::fixed(stream_id::INVALID);

fn strict_id(raw: &[u8]) -> Result<StreamId, CommandError> {
    stream_id::parse_strict(raw).ok_or(INVALID_ID)
}

/// A range's start: `(id` excludes the ID (so starts after it), `-` is the smallest.
fn start_bound(raw: &[u8]) -> Result<StreamId, CommandError> {
    match stream_id::parse_bound(raw, 0).ok_or(INVALID_ID)? {
        (id, true) => id.next().ok_or(CommandError::fixed("ERR invalid start ID for the interval")),
        (id, false) => Ok(id),
    }
}

/// A range's end: `(id` excludes the ID, `+` is the largest, a bare `<ms>` means its last sequence.
fn end_bound(raw: &[u8]) -> Result<StreamId, CommandError> {
    match stream_id::parse_bound(raw, u64::MAX).ok_or(INVALID_ID)? {
        (id, true) => id.prev().ok_or(CommandError::fixed("ERR invalid end ID for the interval")),
        (id, false) => Ok(id),
    }
}

fn int(raw: &[u8]) -> Result<i64, CommandError> {
    parse_i64(raw).ok_or(CommandError::not_integer())
}

/// Redis's "unknown subcommand or wrong number of arguments" for a container's subcommand.
pub fn subcommand_syntax(sub: &[u8], container: &str) -> CommandError {
    CommandError::new(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {container} HELP.",
        String::from_utf8_lossy(&sub[..sub.len().min(128)])
    ))
}

/// The options loop XADD and XTRIM share (`streamParseAddOrTrimArgsOrReply`). For XADD it stops at the
/// ID (`Some(id)`, `None` for `*`) and leaves the fields in `args`.
fn parse_add_or_trim(args: &mut Vec<Bytes>, xadd: bool) -> Result<(Option<TrimArgs>, bool, Option<AddId>), CommandError> {
    let mut strategy = None;
    let (mut approx, mut limit, mut no_mkstream, mut id) = (false, None, false, None);
    let mut i = 0;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && &opt[..] == b"*" {
            break;
        } else if (is_word(opt, "MAXLEN") || is_word(opt, "MINID")) && more > 0 {
            if strategy.is_some() {
                return Err(CommandError::fixed("ERR syntax error, MAXLEN and MINID options at the same time are not compatible"));
            }
            approx = false;
            if more >= 2 && (&args[i + 1][..] == b"~" || &args[i + 1][..] == b"=") {
                approx = &args[i + 1][..] == b"~";
                i += 1;
            }
            let value = &args[i + 1];
            strategy = Some(if is_word(opt, "MAXLEN") {
                let n = int(value)?;
                TrimStrategy::MaxLen(u64::try_from(n).map_err(|_| CommandError::fixed("ERR The MAXLEN argument must be >= 0."))?)
            } else {
                TrimStrategy::MinId(strict_id(value)?)
            });
            i += 2;
            continue;
        } else if is_word(opt, "LIMIT") && more > 0 {
            let n = int(&args[i + 1])?;
            limit = Some(u64::try_from(n).map_err(|_| CommandError::fixed("ERR The LIMIT argument must be >= 0."))?);
            i += 2;
            continue;
        } else if xadd && is_word(opt, "NOMKSTREAM") {
            no_mkstream = true;
        } else if xadd {
            id = Some(stream_id::parse_add(opt).ok_or(INVALID_ID)?);
            break;
        } else {
            return Err(CommandError::syntax());
        }
        i += 1;
    }
    if limit.is_some_and(|l| l != 0) && strategy.is_none() {
        return Err(CommandError::fixed("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"));
    }
    if !xadd && strategy.is_none() {
        return Err(CommandError::fixed("ERR syntax error, XTRIM must be called with a trimming strategy"));
    }
    if limit.is_some() && !approx {
        return Err(CommandError::fixed("ERR syntax error, LIMIT cannot be used without the special ~ option"));
    }
    // Without LIMIT, `~` trims at most 100 nodes' worth (stream-node-max-entries is 100).
    let limit = limit.unwrap_or(if approx { 100 * 100 } else { 0 });
    args.drain(..(i + 1).min(args.len()));
    Ok((strategy.map(|strategy| TrimArgs { strategy, approx, limit }), no_mkstream, id))
}

fn parse_add(mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    let mut rest = a.rest();
    let (trim, no_mkstream, id) = parse_add_or_trim(&mut rest, true)?;
    if rest.len() < 2 || !rest.len().is_multiple_of(2) {
        return Err(CommandError::arity("xadd"));
    }
    ok(XStreamCommand::Add { key, no_mkstream, trim, id, fields: rest })
}

fn parse_trim(mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    let mut rest = a.rest();
    let (trim, _, _) = parse_add_or_trim(&mut rest, false)?;
    ok(XStreamCommand::Trim { key, trim: trim.expect("XTRIM has a strategy") })
}

/// `start end [COUNT n]`, start first (for XREVRANGE the arguments come end first).
fn parse_range(mut a: Args, rev: bool) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    let (first, second) = (a.next_bytes()?, a.next_bytes()?);
    let (start_raw, end_raw) = if rev { (second, first) } else { (first, second) };
    let (start, end) = (start_bound(&start_raw)?, end_bound(&end_raw)?);
    let mut count = None;
    while let Some(opt) = a.next_opt() {
        if is_word(&opt, "COUNT") && !a.is_empty() {
            count = Some(a.next_i64()?.max(0) as u64);
        } else {
            return Err(CommandError::syntax());
        }
    }
    ok(XStreamCommand::Range { key, start, end, count, rev })
}

fn parse_setid(mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    let id = strict_id(&a.next_bytes()?)?;
    let (mut entries_added, mut max_deleted) = (None, None);
    while let Some(opt) = a.next_opt() {
        if is_word(&opt, "ENTRIESADDED") && !a.is_empty() {
            let n = a.next_i64()?;
            entries_added = Some(u64::try_from(n).map_err(|_| CommandError::fixed("ERR entries_added must be positive"))?);
        } else if is_word(&opt, "MAXDELETEDID") && !a.is_empty() {
            let max = strict_id(&a.next_bytes()?)?;
            if id < max {
                return Err(CommandError::fixed("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"));
            }
            max_deleted = Some(max);
        } else {
            return Err(CommandError::syntax());
        }
    }
    ok(XStreamCommand::SetId { key, id, entries_added, max_deleted })
}

/// XREAD / XREADGROUP (`xreadCommand`): options up to STREAMS, then keys and IDs in equal numbers.
fn parse_read(mut a: Args, group: bool) -> Result<Command, CommandError> {
    let (mut count, mut block, mut names, mut no_ack) = (0, None, None, false);
    while let Some(opt) = a.next_opt() {
        let more = a.remaining();
        if is_word(&opt, "BLOCK") && more > 0 {
            let ms = parse_i64(&a.next_bytes()?).ok_or(CommandError::fixed("ERR timeout is not an integer or out of range"))?;
            block = Some(u64::try_from(ms).map_err(|_| CommandError::fixed("ERR timeout is negative"))?);
        } else if is_word(&opt, "COUNT") && more > 0 {
            count = a.next_i64()?.max(0) as u64;
        } else if is_word(&opt, "STREAMS") && more > 0 {
            let rest = a.rest();
            if !rest.len().is_multiple_of(2) {
                return Err(CommandError::fixed(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            let mut keys = rest;
            let ids = keys.split_off(keys.len() / 2);
            let read = ReadArgs { count, block, keys, ids };
            return match (group, names) {
                (false, _) => ok(XStreamCommand::Read(read)),
                (true, None) => Err(CommandError::fixed("ERR Missing GROUP option for XREADGROUP")),
                (true, Some((group, consumer))) => ok(XStreamCommand::ReadGroup { group, consumer, no_ack, read }),
            };
        } else if is_word(&opt, "GROUP") && more >= 2 {
            if !group {
                return Err(CommandError::fixed("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."));
            }
            names = Some((a.next_bytes()?, a.next_bytes()?));
        } else if is_word(&opt, "NOACK") {
            if !group {
                return Err(CommandError::fixed("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."));
            }
            no_ack = true;
        } else {
            return Err(CommandError::syntax());
        }
    }
    Err(CommandError::syntax())
}

const W: u32 = WRITE | DENYOOM | FAST;

fn container(_: Args) -> Result<Command, CommandError> {
    unreachable!("containers without their own form are rejected by arity before parsing")
}

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!("xadd", -5, W, keys(1, 1, 1), Stream, "5.0.0", "Appends a new entry to a stream", parse_add),
    spec!(
        "xrange",
        -4,
        READONLY,
        keys(1, 1, 1),
        Stream,
        "5.0.0",
        "Return a range of elements in a stream, with IDs matching the specified IDs interval",
        |a| parse_range(a, false)
    ),
    spec!(
        "xrevrange",
        -4,
        READONLY,
        keys(1, 1, 1),
        Stream,
        "5.0.0",
        "Return a range of elements in a stream, with IDs matching the specified IDs interval, in reverse order (from greater to smaller IDs) compared to XRANGE",
        |a| parse_range(a, true)
    ),
    spec!("xlen", 2, READONLY | FAST, keys(1, 1, 1), Stream, "5.0.0", "Return the number of entries in a stream", |mut a| ok(
        XStreamCommand::Len(a.next_bytes()?)
    )),
    spec!(
        "xdel",
        -3,
        WRITE | FAST,
        keys(1, 1, 1),
        Stream,
        "5.0.0",
        "Removes the specified entries from the stream. Returns the number of items actually deleted, that may be different from the number of IDs passed in case certain IDs do not exist.",
        |mut a| {
            let key = a.next_bytes()?;
            ok(XStreamCommand::Del { key, ids: a.rest() })
        }
    ),
    spec!(
        "xtrim",
        -4,
        WRITE,
        keys(1, 1, 1),
        Stream,
        "5.0.0",
        "Trims the stream to (approximately if '~' is passed) a certain size",
        parse_trim
    ),
    spec!(
        "xread",
        -4,
        READONLY | BLOCKING,
        NO_KEYS,
        Stream,
        "5.0.0",
        "Return never seen elements in multiple streams, with IDs greater than the ones reported by the caller for each stream. Can block.",
        |a| parse_read(a, false)
    ),
    spec!(
        "xreadgroup",
        -7,
        WRITE | BLOCKING,
        NO_KEYS,
        Stream,
        "5.0.0",
        "Return new entries from a stream using a consumer group, or access the history of the pending entries for a given consumer. Can block.",
        |a| parse_read(a, true)
    ),
    spec!(
        "xack",
        -4,
        WRITE | FAST,
        keys(1, 1, 1),
        Stream,
        "5.0.0",
        "Marks a pending message as correctly processed, effectively removing it from the pending entries list of the consumer group. Return value of the command is the number of messages successfully acknowledged, that is, the IDs we were actually able to resolve in the PEL.",
        |mut a| {
            let (key, group) = (a.next_bytes()?, a.next_bytes()?);
            ok(XStreamCommand::Ack { key, group, ids: a.rest() })
        }
    ),
    spec!(
        "xpending",
        -3,
        READONLY,
        keys(1, 1, 1),
        Stream,
        "5.0.0",
        "Return information and entries from a stream consumer group pending entries list, that are messages fetched but never acknowledged.",
        parse_pending
    ),
    spec!(
        "xclaim",
        -6,
        WRITE | FAST,
        keys(1, 1, 1),
        Stream,
        "5.0.0",
        "Changes (or acquires) ownership of a message in a consumer group, as if the message was delivered to the specified consumer.",
        parse_claim
    ),
    spec!(
        "xautoclaim",
        -6,
        WRITE | FAST,
        keys(1, 1, 1),
        Stream,
        "6.2.0",
        "Changes (or acquires) ownership of messages in a consumer group, as if the messages were delivered to the specified consumer.",
        parse_autoclaim
    ),
    spec!("xsetid", -3, W, keys(1, 1, 1), Stream, "5.0.0", "An internal command for replicating stream values", parse_setid),
    CommandSpec {
        subcommands: XGROUP_SUBS,
        ..spec!("xgroup", -2, 0, NO_KEYS, Stream, "5.0.0", "A container for consumer groups commands", container)
    },
    CommandSpec {
        subcommands: XINFO_SUBS,
        ..spec!("xinfo", -2, 0, NO_KEYS, Stream, "5.0.0", "A container for stream introspection commands", container)
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Request;

    fn parse(line: &str) -> Result<XStreamCommand, CommandError> {
        let parts: Vec<&str> = line.split(' ').collect();
        match super::super::parse_request(Request::from_strs(&parts))? {
            (_, Command::XStream(c)) => Ok(c),
            (_, other) => panic!("{other:?}"),
        }
    }

    fn err(line: &str) -> String {
        parse(line).unwrap_err().0.into_owned()
    }

    #[test]
    fn xadd_options_in_redis_order() {
        match parse("XADD s MAXLEN ~ 5 NOMKSTREAM 7-* f v").unwrap() {
            XStreamCommand::Add { trim: Some(t), no_mkstream: true, id: Some(AddId::Ms(7)), fields, .. } => {
                assert_eq!(t, TrimArgs { strategy: TrimStrategy::MaxLen(5), approx: true, limit: 10000 });
                assert_eq!(fields.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse("XADD s * f v").unwrap(), XStreamCommand::Add { id: None, trim: None, .. }));
        assert_eq!(err("XADD s LIMIT 5 bad f v"), stream_id::INVALID, "the ID is read before LIMIT is judged");
        assert_eq!(err("XADD s LIMIT 5 * f v"), "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy");
        assert_eq!(err("XADD s MAXLEN 5 LIMIT 5 * f v"), "ERR syntax error, LIMIT cannot be used without the special ~ option");
        assert_eq!(err("XADD s MAXLEN -1 * f v"), "ERR The MAXLEN argument must be >= 0.");
        assert_eq!(err("XADD s * f v g"), "ERR wrong number of arguments for 'xadd' command");
        assert_eq!(err("XTRIM s MAXLEN 1 extra"), "ERR syntax error");
    }

    #[test]
    fn ranges_reads_and_groups() {
        match parse("XREVRANGE s (5 (3 COUNT -2").unwrap() {
            XStreamCommand::Range { start, end, count, rev: true, .. } => {
                assert_eq!((start, end, count), (StreamId::new(3, 1), StreamId::new(5, u64::MAX - 1), Some(0)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(err("XRANGE s - (0-0"), "ERR invalid end ID for the interval");
        match parse("XREADGROUP GROUP g c COUNT 2 BLOCK 10 NOACK STREAMS a b > 0").unwrap() {
            XStreamCommand::ReadGroup { no_ack: true, read, .. } => {
                assert_eq!((read.count, read.block, read.keys.len(), read.ids.len()), (2, Some(10), 2, 2));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(err("XREAD GROUP g c STREAMS s 0"), "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.");
        assert_eq!(err("XGROUP CREATE s g 0 FOO"), "ERR unknown subcommand or wrong number of arguments for 'CREATE'. Try XGROUP HELP.");
        assert!(matches!(
            parse("XGROUP CREATE s g 0 ENTRIESREAD 1 ENTRIESREAD 2").unwrap(),
            XStreamCommand::GroupCreate { excess: Some(_), .. }
        ));
        assert!(matches!(parse("XCLAIM s g c x 1-1").unwrap(), XStreamCommand::Claim { args: Err(_), .. }));
        assert_eq!(err("XPENDING s g IDLE 5 - +"), "ERR syntax error");
    }
}
