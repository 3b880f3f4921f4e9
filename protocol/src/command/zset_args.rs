//! How the sorted-set commands read their arguments, in Redis 7.0's order of checks: ZADD's options,
//! ranges (ranks, `(`-exclusive scores with `inf`, `[`/`(`/`-`/`+` members) with REV, LIMIT and
//! WITHSCORES, and the set algebra's `numkeys key ... [WEIGHTS] [AGGREGATE] [WITHSCORES]`.

use bytes::Bytes;

use super::zsets::ZsetCommand;
use crate::error::CommandError;
use crate::number::{parse_double, parse_double_lax, parse_i64};
use crate::request::{Args, is_word};

/// One end of a score range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreBound {
    pub value: f64,
    pub exclusive: bool,
}

/// One end of a lexicographic range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound {
    /// `-`
    Min,
    /// `+`
    Max,
    /// `[member`
    Inclusive(Bytes),
    /// `(member`
    Exclusive(Bytes),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ZRangeBy {
    /// `start stop`, ranks (negative from the end).
    Rank(i64, i64),
    Score {
        min: ScoreBound,
        max: ScoreBound,
    },
    Lex {
        min: LexBound,
        max: LexBound,
    },
}

/// A parsed ZRANGE (and its older forms): `min`/`max` already in order when REV gave them swapped.
#[derive(Debug, Clone, PartialEq)]
pub struct ZRangeArgs {
    pub by: ZRangeBy,
    pub rev: bool,
    /// LIMIT offset count (score and lex ranges; a negative count is no limit).
    pub limit: Option<(i64, i64)>,
    pub withscores: bool,
}

/// What a command fixes of a range before its options are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ZaddArgs {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub ch: bool,
    pub incr: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aggregate {
    #[default]
    Sum,
    Min,
    Max,
}

/// ZUNION / ZINTER / ZDIFF / ZINTERCARD options.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ZsetOpArgs {
    /// One per key, or empty for all 1.
    pub weights: Vec<f64>,
    pub aggregate: Aggregate,
    pub withscores: bool,
    /// ZINTERCARD's LIMIT (0: none).
    pub limit: usize,
}

/// ZUNION, ZINTER or ZDIFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZsetAlgebra {
    Union,
    Inter,
    Diff,
}

/// `score member [score member ...]` after ZADD's options (ZINCRBY is ZADD INCR: Redis even reads
/// option words in its increment's place).
pub(crate) fn parse_zadd(mut a: Args, incr: bool) -> Result<ZsetCommand, CommandError> {
    let key = a.next_bytes()?;
    let mut flags = ZaddArgs { incr, ..ZaddArgs::default() };
    while let Some(word) = a.peek() {
        let flag = match () {
            _ if is_word(word, "NX") => &mut flags.nx,
            _ if is_word(word, "XX") => &mut flags.xx,
            _ if is_word(word, "CH") => &mut flags.ch,
            _ if is_word(word, "INCR") => &mut flags.incr,
            _ if is_word(word, "GT") => &mut flags.gt,
            _ if is_word(word, "LT") => &mut flags.lt,
            _ => break,
        };
        *flag = true;
        a.next_opt();
    }
    let rest = a.rest();
    if rest.is_empty() || rest.len() % 2 == 1 {
        return Err(CommandError::syntax());
    }
    if flags.nx && flags.xx {
        return Err(CommandError::fixed("ERR XX and NX options at the same time are not compatible"));
    }
    if ((flags.gt || flags.lt) && flags.nx) || (flags.gt && flags.lt) {
        return Err(CommandError::fixed("ERR GT, LT, and/or NX options at the same time are not compatible"));
    }
    if flags.incr && rest.len() > 2 {
        return Err(CommandError::fixed("ERR INCR option supports a single increment-element pair"));
    }
    let entries = rest
        .chunks(2)
        .map(|pair| Ok((parse_double(&pair[0]).ok_or(CommandError::not_float())?, pair[1].clone())))
        .collect::<Result<_, CommandError>>()?;
    Ok(ZsetCommand::Add { key, flags, entries })
}

/// Redis's `zslParseRange`: `(` makes a bound exclusive; the rest is read as `strtod` reads it.
pub(crate) fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ZRangeBy, CommandError> {
    let bound = |raw: &[u8]| {
        let (exclusive, text) = match raw.strip_prefix(b"(") {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        parse_double_lax(text).map(|value| ScoreBound { value, exclusive })
    };
    match (bound(min), bound(max)) {
        (Some(min), Some(max)) => Ok(ZRangeBy::Score { min, max }),
        _ => Err(CommandError::fixed("ERR min or max is not a float")),
    }
}

/// Redis's `zslParseLexRange`.
pub(crate) fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<ZRangeBy, CommandError> {
    let bound = |raw: &[u8]| match raw.first() {
        Some(b'+') if raw.len() == 1 => Some(LexBound::Max),
        Some(b'-') if raw.len() == 1 => Some(LexBound::Min),
        Some(b'(') => Some(LexBound::Exclusive(Bytes::copy_from_slice(&raw[1..]))),
        Some(b'[') => Some(LexBound::Inclusive(Bytes::copy_from_slice(&raw[1..]))),
        _ => None,
    };
    match (bound(min), bound(max)) {
        (Some(min), Some(max)) => Ok(ZRangeBy::Lex { min, max }),
        _ => Err(CommandError::fixed("ERR min or max not valid string range item")),
    }
}

fn rank_range(start: &[u8], stop: &[u8]) -> Result<ZRangeBy, CommandError> {
    let int = |raw: &[u8]| parse_i64(raw).ok_or(CommandError::not_integer());
    Ok(ZRangeBy::Rank(int(start)?, int(stop)?))
}

/// Redis's `zrangeGenericCommand` after the key: `min max` then options (a REV or BY* that the
/// command's name already fixed is a syntax error, as is WITHSCORES when storing), then the checks
/// for conflicting options, then the range itself.
pub(crate) fn parse_range(a: &mut Args, store: bool, kind: Kind, rev: Option<bool>) -> Result<ZRangeArgs, CommandError> {
    let (first, second) = (a.next_bytes()?, a.next_bytes()?);
    let (mut kind, mut rev, mut withscores, mut limit) = (kind, rev, false, None);
    while let Some(opt) = a.next_opt() {
        if !store && is_word(&opt, "WITHSCORES") {
            withscores = true;
        } else if is_word(&opt, "LIMIT") && a.remaining() >= 2 {
            limit = Some((a.next_i64()?, a.next_i64()?));
        } else if rev.is_none() && is_word(&opt, "REV") {
            rev = Some(true);
        } else if kind == Kind::Auto && is_word(&opt, "BYLEX") {
            kind = Kind::Lex;
        } else if kind == Kind::Auto && is_word(&opt, "BYSCORE") {
            kind = Kind::Score;
        } else {
            return Err(CommandError::syntax());
        }
    }
    let rev = rev.unwrap_or(false);
    let kind = if kind == Kind::Auto { Kind::Rank } else { kind };
    if limit.is_some_and(|(_, count)| count != -1) && kind == Kind::Rank {
        return Err(CommandError::fixed("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"));
    }
    if withscores && kind == Kind::Lex {
        return Err(CommandError::fixed("ERR syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    // Reversed score and lex ranges are written max first.
    let (min, max) = if rev && kind != Kind::Rank { (second, first) } else { (first, second) };
    let by = match kind {
        Kind::Score => parse_score_range(&min, &max)?,
        Kind::Lex => parse_lex_range(&min, &max)?,
        _ => rank_range(&min, &max)?,
    };
    let limit = if kind == Kind::Rank { None } else { limit };
    Ok(ZRangeArgs { by, rev, limit, withscores })
}

/// ZREMRANGEBYRANK / BYSCORE / BYLEX's `min max`.
pub(crate) fn parse_bounds(kind: Kind, a: &mut Args) -> Result<ZRangeBy, CommandError> {
    let (min, max) = (a.next_bytes()?, a.next_bytes()?);
    match kind {
        Kind::Score => parse_score_range(&min, &max),
        Kind::Lex => parse_lex_range(&min, &max),
        _ => rank_range(&min, &max),
    }
}

/// `numkeys key [key ...]` of the algebra commands (`name` for the message Redis gives for 0 keys).
pub(crate) fn parse_algebra_keys(a: &mut Args, name: &str) -> Result<Vec<Bytes>, CommandError> {
    let numkeys = a.next_i64()?;
    if numkeys < 1 {
        return Err(CommandError::new(format!("ERR at least 1 input key is needed for '{name}' command")));
    }
    if numkeys as u64 > a.remaining() as u64 {
        return Err(CommandError::syntax());
    }
    (0..numkeys).map(|_| a.next_bytes()).collect()
}

/// The options after the keys; Redis reads them only after looking every key up (so WRONGTYPE comes
/// first), which is why the caller keeps this result for dispatch.
pub(crate) fn parse_algebra_options(
    mut a: Args,
    op: ZsetAlgebra,
    store: bool,
    card: bool,
    keys: usize,
) -> Result<ZsetOpArgs, CommandError> {
    let mut args = ZsetOpArgs::default();
    let combines = op != ZsetAlgebra::Diff && !card;
    while let Some(opt) = a.next_opt() {
        if combines && a.remaining() >= keys && is_word(&opt, "WEIGHTS") {
            args.weights = (0..keys)
                .map(|_| parse_double(&a.next_bytes()?).ok_or(CommandError::fixed("ERR weight value is not a float")))
                .collect::<Result<_, _>>()?;
        } else if combines && a.remaining() >= 1 && is_word(&opt, "AGGREGATE") {
            let how = a.next_bytes()?;
            args.aggregate = match () {
                _ if is_word(&how, "SUM") => Aggregate::Sum,
                _ if is_word(&how, "MIN") => Aggregate::Min,
                _ if is_word(&how, "MAX") => Aggregate::Max,
                _ => return Err(CommandError::syntax()),
            };
        } else if !store && !card && is_word(&opt, "WITHSCORES") {
            args.withscores = true;
        } else if card && a.remaining() >= 1 && is_word(&opt, "LIMIT") {
            args.limit = a.next_i64_at_least(0, CommandError::fixed("ERR LIMIT can't be negative"))? as usize;
        } else {
            return Err(CommandError::syntax());
        }
    }
    Ok(args)
}
