//! Sorted-set commands (Redis 7.0): every Z* command with the blocking pops; argument forms in
//! `zset_args.rs`.

use bytes::Bytes;

use super::conn::spec;
use super::elements::{ElementScan, parse_element_scan, parse_positive_count, parse_random_count};
use super::flags::*;
use super::lists::{Timeout, parse_timeout};
pub use super::zset_args::{Aggregate, LexBound, ScoreBound, ZRangeArgs, ZRangeBy, ZaddArgs, ZsetAlgebra, ZsetOpArgs};
use super::zset_args::{Kind, parse_algebra_keys, parse_algebra_options, parse_bounds, parse_range, parse_zadd};
use super::{Command, CommandSpec, Group, NO_KEYS, keys};
use crate::error::CommandError;
use crate::request::{Args, is_word};

/// How a pop answers: ZPOPMIN/MAX (`counted`: a count was given), BZPOPMIN/MAX, or [B]ZMPOP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopForm {
    Plain { counted: bool },
    Blocking(Timeout),
    Multi(Option<Timeout>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ZsetCommand {
    /// ZADD, and ZINCRBY (ZADD INCR).
    Add {
        key: Bytes,
        flags: ZaddArgs,
        entries: Vec<(f64, Bytes)>,
    },
    Card(Bytes),
    /// ZCOUNT (a score range) / ZLEXCOUNT (a lex range).
    Count {
        key: Bytes,
        by: ZRangeBy,
    },
    Score {
        key: Bytes,
        member: Bytes,
    },
    MScore {
        key: Bytes,
        members: Vec<Bytes>,
    },
    Rank {
        key: Bytes,
        member: Bytes,
        rev: bool,
    },
    Rem {
        key: Bytes,
        members: Vec<Bytes>,
    },
    RemRange {
        key: Bytes,
        by: ZRangeBy,
    },
    Range {
        key: Bytes,
        range: ZRangeArgs,
    },
    RangeStore {
        destination: Bytes,
        source: Bytes,
        range: ZRangeArgs,
    },
    Pop {
        keys: Vec<Bytes>,
        max: bool,
        count: usize,
        form: PopForm,
    },
    RandMember {
        key: Bytes,
        count: Option<(i64, bool)>,
    },
    Scan(ElementScan),
    /// ZUNION / ZINTER / ZDIFF, their STORE forms, and ZINTERCARD (`card`). Options are checked only
    /// after the keys (see `zset_args::parse_algebra_options`).
    Algebra {
        op: ZsetAlgebra,
        destination: Option<Bytes>,
        keys: Vec<Bytes>,
        card: bool,
        args: Result<ZsetOpArgs, CommandError>,
    },
}

fn ok(c: ZsetCommand) -> Result<Command, CommandError> {
    Ok(Command::Zsets(c))
}

fn parse_add(a: Args, incr: bool) -> Result<Command, CommandError> {
    ok(parse_zadd(a, incr)?)
}

fn parse_zrange(mut a: Args, kind: Kind, rev: Option<bool>) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    ok(ZsetCommand::Range { range: parse_range(&mut a, false, kind, rev)?, key })
}

fn parse_count(mut a: Args, kind: Kind) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    ok(ZsetCommand::Count { by: parse_bounds(kind, &mut a)?, key })
}

fn parse_remrange(mut a: Args, kind: Kind) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    ok(ZsetCommand::RemRange { by: parse_bounds(kind, &mut a)?, key })
}

fn parse_pop(max: bool, mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    let count = parse_positive_count(a)?;
    ok(ZsetCommand::Pop { keys: vec![key], max, count: count.unwrap_or(1), form: PopForm::Plain { counted: count.is_some() } })
}

fn parse_blocking_pop(max: bool, a: Args) -> Result<Command, CommandError> {
    let mut keys = a.rest();
    let timeout = parse_timeout(&keys.pop().ok_or(CommandError::syntax())?)?;
    ok(ZsetCommand::Pop { keys, max, count: 1, form: PopForm::Blocking(timeout) })
}

/// `[timeout] numkeys key [key ...] MIN|MAX [COUNT count]`; the timeout is checked last, as Redis does.
fn parse_mpop(mut a: Args, blocking: bool) -> Result<Command, CommandError> {
    let raw_timeout = if blocking { Some(a.next_bytes()?) } else { None };
    let numkeys = a.next_i64_at_least(1, CommandError::fixed("ERR numkeys should be greater than 0"))?;
    if numkeys as u64 >= a.remaining() as u64 {
        return Err(CommandError::syntax());
    }
    let keys: Vec<Bytes> = (0..numkeys).map(|_| a.next_bytes()).collect::<Result<_, _>>()?;
    let which = a.next_bytes()?;
    let max = if is_word(&which, "MAX") {
        true
    } else if is_word(&which, "MIN") {
        false
    } else {
        return Err(CommandError::syntax());
    };
    let mut count = None;
    while let Some(opt) = a.next_opt() {
        if count.is_some() || !is_word(&opt, "COUNT") || a.is_empty() {
            return Err(CommandError::syntax());
        }
        count = Some(a.next_i64_at_least(1, CommandError::fixed("ERR count should be greater than 0"))? as usize);
    }
    let timeout = raw_timeout.map(|raw| parse_timeout(&raw)).transpose()?;
    ok(ZsetCommand::Pop { keys, max, count: count.unwrap_or(1), form: PopForm::Multi(timeout) })
}

fn parse_algebra(op: ZsetAlgebra, name: &str, store: bool, card: bool, mut a: Args) -> Result<Command, CommandError> {
    let destination = if store { Some(a.next_bytes()?) } else { None };
    let keys = parse_algebra_keys(&mut a, name)?;
    let args = parse_algebra_options(a, op, store, card, keys.len());
    ok(ZsetCommand::Algebra { op, destination, keys, card, args })
}

fn key_and_rest(mut a: Args) -> Result<(Bytes, Vec<Bytes>), CommandError> {
    Ok((a.next_bytes()?, a.rest()))
}

const R: u32 = READONLY | FAST;
/// `spec!` in the sorted-set group.
macro_rules! zspec {
    ($name:literal, $arity:expr, $flags:expr, $keys:expr, $since:literal, $summary:literal, $parse:expr) => {
        spec!($name, $arity, $flags, $keys, SortedSet, $since, $summary, $parse)
    };
}

pub(crate) const SPECS: &[CommandSpec] = &[
    zspec!(
        "zadd",
        -4,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        "1.2.0",
        "Add one or more members to a sorted set, or update its score if it already exists",
        |a| parse_add(a, false)
    ),
    zspec!("zincrby", 4, WRITE | DENYOOM | FAST, keys(1, 1, 1), "1.2.0", "Increment the score of a member in a sorted set", |a| {
        parse_add(a, true)
    }),
    zspec!("zcard", 2, R, keys(1, 1, 1), "1.2.0", "Get the number of members in a sorted set", |mut a| ok(ZsetCommand::Card(
        a.next_bytes()?
    ))),
    zspec!("zcount", 4, R, keys(1, 1, 1), "2.0.0", "Count the members in a sorted set with scores within the given values", |a| {
        parse_count(a, Kind::Score)
    }),
    zspec!(
        "zlexcount",
        4,
        R,
        keys(1, 1, 1),
        "2.8.9",
        "Count the number of members in a sorted set between a given lexicographical range",
        |a| parse_count(a, Kind::Lex)
    ),
    zspec!("zscore", 3, R, keys(1, 1, 1), "1.2.0", "Get the score associated with the given member in a sorted set", |mut a| ok(
        ZsetCommand::Score { key: a.next_bytes()?, member: a.next_bytes()? }
    )),
    zspec!("zmscore", -3, R, keys(1, 1, 1), "6.2.0", "Get the score associated with the given members in a sorted set", |a| {
        let (key, members) = key_and_rest(a)?;
        ok(ZsetCommand::MScore { key, members })
    }),
    zspec!("zrank", 3, R, keys(1, 1, 1), "2.0.0", "Determine the index of a member in a sorted set", |mut a| ok(ZsetCommand::Rank {
        key: a.next_bytes()?,
        member: a.next_bytes()?,
        rev: false
    })),
    zspec!(
        "zrevrank",
        3,
        R,
        keys(1, 1, 1),
        "2.0.0",
        "Determine the index of a member in a sorted set, with scores ordered from high to low",
        |mut a| ok(ZsetCommand::Rank { key: a.next_bytes()?, member: a.next_bytes()?, rev: true })
    ),
    zspec!("zrem", -3, WRITE | FAST, keys(1, 1, 1), "1.2.0", "Remove one or more members from a sorted set", |a| {
        let (key, members) = key_and_rest(a)?;
        ok(ZsetCommand::Rem { key, members })
    }),
    zspec!(
        "zremrangebylex",
        4,
        WRITE,
        keys(1, 1, 1),
        "2.8.9",
        "Remove all members in a sorted set between the given lexicographical range",
        |a| parse_remrange(a, Kind::Lex)
    ),
    zspec!("zremrangebyrank", 4, WRITE, keys(1, 1, 1), "2.0.0", "Remove all members in a sorted set within the given indexes", |a| {
        parse_remrange(a, Kind::Rank)
    }),
    zspec!("zremrangebyscore", 4, WRITE, keys(1, 1, 1), "1.2.0", "Remove all members in a sorted set within the given scores", |a| {
        parse_remrange(a, Kind::Score)
    }),
    zspec!("zrange", -4, READONLY, keys(1, 1, 1), "1.2.0", "Return a range of members in a sorted set", |a| parse_zrange(
        a,
        Kind::Auto,
        None
    )),
    zspec!(
        "zrangebylex",
        -4,
        READONLY,
        keys(1, 1, 1),
        "2.8.9",
        "Return a range of members in a sorted set, by lexicographical range",
        |a| { parse_zrange(a, Kind::Lex, Some(false)) }
    ),
    zspec!("zrangebyscore", -4, READONLY, keys(1, 1, 1), "1.0.5", "Return a range of members in a sorted set, by score", |a| {
        parse_zrange(a, Kind::Score, Some(false))
    }),
    zspec!(
        "zrevrange",
        -4,
        READONLY,
        keys(1, 1, 1),
        "1.2.0",
        "Return a range of members in a sorted set, by index, with scores ordered from high to low",
        |a| parse_zrange(a, Kind::Rank, Some(true))
    ),
    zspec!(
        "zrevrangebylex",
        -4,
        READONLY,
        keys(1, 1, 1),
        "2.8.9",
        "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.",
        |a| parse_zrange(a, Kind::Lex, Some(true))
    ),
    zspec!(
        "zrevrangebyscore",
        -4,
        READONLY,
        keys(1, 1, 1),
        "2.2.0",
        "Return a range of members in a sorted set, by score, with scores ordered from high to low",
        |a| parse_zrange(a, Kind::Score, Some(true))
    ),
    zspec!(
        "zrangestore",
        -5,
        WRITE | DENYOOM,
        keys(1, 2, 1),
        "6.2.0",
        "Store a range of members from sorted set into another key",
        |mut a| {
            let (destination, source) = (a.next_bytes()?, a.next_bytes()?);
            ok(ZsetCommand::RangeStore { range: parse_range(&mut a, true, Kind::Auto, None)?, destination, source })
        }
    ),
    zspec!("zpopmin", -2, WRITE | FAST, keys(1, 1, 1), "5.0.0", "Remove and return members with the lowest scores in a sorted set", |a| {
        parse_pop(false, a)
    }),
    zspec!("zpopmax", -2, WRITE | FAST, keys(1, 1, 1), "5.0.0", "Remove and return members with the highest scores in a sorted set", |a| {
        parse_pop(true, a)
    }),
    zspec!(
        "bzpopmin",
        -3,
        WRITE | NOSCRIPT | BLOCKING | FAST,
        keys(1, -2, 1),
        "5.0.0",
        "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available",
        |a| parse_blocking_pop(false, a)
    ),
    zspec!(
        "bzpopmax",
        -3,
        WRITE | NOSCRIPT | BLOCKING | FAST,
        keys(1, -2, 1),
        "5.0.0",
        "Remove and return the member with the highest score from one or more sorted sets, or block until one is available",
        |a| parse_blocking_pop(true, a)
    ),
    zspec!("zmpop", -4, WRITE | MOVABLE_KEYS, NO_KEYS, "7.0.0", "Remove and return members with scores in a sorted set", |a| parse_mpop(
        a, false
    )),
    zspec!(
        "bzmpop",
        -5,
        WRITE | BLOCKING | MOVABLE_KEYS,
        NO_KEYS,
        "7.0.0",
        "Remove and return members with scores in a sorted set or block until one is available",
        |a| parse_mpop(a, true)
    ),
    zspec!("zrandmember", -2, READONLY, keys(1, 1, 1), "6.2.0", "Get one or multiple random elements from a sorted set", |mut a| {
        let key = a.next_bytes()?;
        ok(ZsetCommand::RandMember { key, count: parse_random_count(a, "WITHSCORES")? })
    }),
    zspec!("zscan", -3, READONLY, keys(1, 1, 1), "2.8.0", "Incrementally iterate sorted sets elements and associated scores", |a| ok(
        ZsetCommand::Scan(parse_element_scan(a)?)
    )),
    zspec!("zunion", -3, READONLY | MOVABLE_KEYS, NO_KEYS, "6.2.0", "Add multiple sorted sets", |a| parse_algebra(
        ZsetAlgebra::Union,
        "zunion",
        false,
        false,
        a
    )),
    zspec!("zinter", -3, READONLY | MOVABLE_KEYS, NO_KEYS, "6.2.0", "Intersect multiple sorted sets", |a| parse_algebra(
        ZsetAlgebra::Inter,
        "zinter",
        false,
        false,
        a
    )),
    zspec!("zdiff", -3, READONLY | MOVABLE_KEYS, NO_KEYS, "6.2.0", "Subtract multiple sorted sets", |a| parse_algebra(
        ZsetAlgebra::Diff,
        "zdiff",
        false,
        false,
        a
    )),
    zspec!(
        "zunionstore",
        -4,
        WRITE | DENYOOM | MOVABLE_KEYS,
        keys(1, 1, 1),
        "2.0.0",
        "Add multiple sorted sets and store the resulting sorted set in a new key",
        |a| parse_algebra(ZsetAlgebra::Union, "zunionstore", true, false, a)
    ),
    zspec!(
        "zinterstore",
        -4,
        WRITE | DENYOOM | MOVABLE_KEYS,
        keys(1, 1, 1),
        "2.0.0",
        "Intersect multiple sorted sets and store the resulting sorted set in a new key",
        |a| parse_algebra(ZsetAlgebra::Inter, "zinterstore", true, false, a)
    ),
    zspec!(
        "zdiffstore",
        -4,
        WRITE | DENYOOM | MOVABLE_KEYS,
        keys(1, 1, 1),
        "6.2.0",
        "Subtract multiple sorted sets and store the resulting sorted set in a new key",
        |a| parse_algebra(ZsetAlgebra::Diff, "zdiffstore", true, false, a)
    ),
    zspec!(
        "zintercard",
        -3,
        READONLY | MOVABLE_KEYS,
        NO_KEYS,
        "7.0.0",
        "Intersect multiple sorted sets and return the cardinality of the result",
        |a| { parse_algebra(ZsetAlgebra::Inter, "zintercard", false, true, a) }
    ),
];
