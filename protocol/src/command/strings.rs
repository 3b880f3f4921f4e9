//! String commands: values stored as binary-safe byte strings, with integer and float views.

use bytes::Bytes;

use super::conn::spec;
use super::flags::*;
use super::{Command, CommandSpec, Group, keys};
use crate::error::CommandError;
use crate::long_double::{self, LongDouble};
use crate::number::parse_i64;
use crate::request::{Args, is_word};

#[derive(Debug, Clone, PartialEq)]
pub enum StringCommand {
    Get(Bytes),
    Set(SetArgs),
    SetNx {
        key: Bytes,
        value: Bytes,
    },
    /// SETEX (seconds) and PSETEX (milliseconds).
    SetEx {
        command: &'static str,
        key: Bytes,
        expiry: Expiry,
        value: Bytes,
    },
    GetSet {
        key: Bytes,
        value: Bytes,
    },
    GetDel(Bytes),
    GetEx {
        key: Bytes,
        expiry: Option<Expiry>,
    },
    MGet(Vec<Bytes>),
    MSet(Vec<(Bytes, Bytes)>),
    MSetNx(Vec<(Bytes, Bytes)>),
    Append {
        key: Bytes,
        value: Bytes,
    },
    StrLen(Bytes),
    GetRange {
        key: Bytes,
        start: i64,
        end: i64,
    },
    SetRange {
        key: Bytes,
        offset: i64,
        value: Bytes,
    },
    /// INCR, DECR, INCRBY, DECRBY.
    IncrBy {
        key: Bytes,
        by: i64,
    },
    /// The increment as `string2ld` reads it; `None` when it refuses it, which Redis reports only after
    /// checking the key's type (a hash key answers WRONGTYPE, whatever the increment).
    IncrByFloat {
        key: Bytes,
        by: Option<LongDouble>,
    },
    /// LCS: the options are read only after both keys are found to hold strings, so their error waits.
    Lcs {
        a: Bytes,
        b: Bytes,
        options: Result<LcsOptions, CommandError>,
    },
}

/// `LCS a b [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LcsOptions {
    pub len: bool,
    pub idx: bool,
    /// Runs shorter than this are left out of IDX's matches (negative counts as 0).
    pub min_match_len: u64,
    pub with_match_len: bool,
}

fn lcs_options(rest: Vec<Bytes>) -> Result<LcsOptions, CommandError> {
    let mut o = LcsOptions::default();
    let mut it = rest.into_iter();
    while let Some(opt) = it.next() {
        if is_word(&opt, "IDX") {
            o.idx = true;
        } else if is_word(&opt, "LEN") {
            o.len = true;
        } else if is_word(&opt, "WITHMATCHLEN") {
            o.with_match_len = true;
        } else if is_word(&opt, "MINMATCHLEN") && it.len() > 0 {
            let n = parse_i64(&it.next().expect("counted")).ok_or(CommandError::not_integer())?;
            o.min_match_len = n.max(0) as u64;
        } else {
            return Err(CommandError::syntax());
        }
    }
    if o.idx && o.len {
        return Err(CommandError::fixed("ERR If you want both the length and indexes, please just use IDX."));
    }
    Ok(o)
}

/// When a write should expire the key; validated against the clock when it executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Seconds from now.
    Ex(i64),
    /// Milliseconds from now.
    Px(i64),
    /// Unix time in seconds.
    ExAt(i64),
    /// Unix time in milliseconds.
    PxAt(i64),
    /// Remove any expiry (GETEX PERSIST).
    Persist,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetCondition {
    #[default]
    Always,
    /// Only if the key does not exist.
    Nx,
    /// Only if the key exists.
    Xx,
}

/// `SET key value [NX | XX] [GET] [EX s | PX ms | EXAT ts | PXAT ts-ms | KEEPTTL]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SetArgs {
    pub key: Bytes,
    pub value: Bytes,
    pub condition: SetCondition,
    pub get: bool,
    pub expiry: Option<Expiry>,
    pub keep_ttl: bool,
}

fn ok(c: StringCommand) -> Result<Command, CommandError> {
    Ok(Command::Strings(c))
}

/// The option loop of Redis's `parseExtendedStringArgumentsOrReply`, shared by SET and GETEX: the
/// flags are all checked first, the expiry number is parsed after (so a syntax error wins).
struct ExtendedOptions {
    condition: SetCondition,
    get: bool,
    keep_ttl: bool,
    persist: bool,
    expiry: Option<(MakeExpiry, Bytes)>,
}

/// An expiry option's constructor (EX, PX, EXAT, PXAT), kept with its raw amount until parsed.
type MakeExpiry = fn(i64) -> Expiry;

fn parse_extended(a: &mut Args, for_set: bool) -> Result<ExtendedOptions, CommandError> {
    let mut o = ExtendedOptions { condition: SetCondition::Always, get: false, keep_ttl: false, persist: false, expiry: None };
    while let Some(opt) = a.next_opt() {
        let has_expiry = o.expiry.is_some();
        let timed: Option<MakeExpiry> = if is_word(&opt, "EX") {
            Some(Expiry::Ex)
        } else if is_word(&opt, "PX") {
            Some(Expiry::Px)
        } else if is_word(&opt, "EXAT") {
            Some(Expiry::ExAt)
        } else if is_word(&opt, "PXAT") {
            Some(Expiry::PxAt)
        } else {
            None
        };
        if for_set && is_word(&opt, "NX") && o.condition != SetCondition::Xx {
            o.condition = SetCondition::Nx;
        } else if for_set && is_word(&opt, "XX") && o.condition != SetCondition::Nx {
            o.condition = SetCondition::Xx;
        } else if for_set && is_word(&opt, "GET") {
            o.get = true;
        } else if for_set && is_word(&opt, "KEEPTTL") && !has_expiry {
            o.keep_ttl = true;
        } else if !for_set && is_word(&opt, "PERSIST") && !has_expiry {
            o.persist = true;
        } else if let Some(make) = timed {
            // The same unit may repeat (the last wins); mixing units, KEEPTTL or PERSIST may not.
            let same_unit = o.expiry.as_ref().is_none_or(|(m, _)| *m as usize == make as usize);
            if o.keep_ttl || o.persist || !same_unit || a.is_empty() {
                return Err(CommandError::syntax());
            }
            o.expiry = Some((make, a.next_bytes()?));
        } else {
            return Err(CommandError::syntax());
        }
    }
    Ok(o)
}

fn resolve_expiry(o: &ExtendedOptions) -> Result<Option<Expiry>, CommandError> {
    match &o.expiry {
        Some((make, raw)) => Ok(Some(make(parse_i64(raw).ok_or(CommandError::not_integer())?))),
        None if o.persist => Ok(Some(Expiry::Persist)),
        None => Ok(None),
    }
}

fn parse_set(mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    let value = a.next_bytes()?;
    let o = parse_extended(&mut a, true)?;
    let expiry = resolve_expiry(&o)?;
    ok(StringCommand::Set(SetArgs { key, value, condition: o.condition, get: o.get, expiry, keep_ttl: o.keep_ttl }))
}

fn parse_getex(mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    let o = parse_extended(&mut a, false)?;
    ok(StringCommand::GetEx { key, expiry: resolve_expiry(&o)? })
}

fn parse_setex(command: &'static str, millis: bool, mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    let amount = a.next_i64()?;
    let expiry = if millis { Expiry::Px(amount) } else { Expiry::Ex(amount) };
    ok(StringCommand::SetEx { command, key, expiry, value: a.next_bytes()? })
}

fn pairs(command: &str, mut a: Args) -> Result<Vec<(Bytes, Bytes)>, CommandError> {
    if !a.remaining().is_multiple_of(2) {
        return Err(CommandError::arity(command));
    }
    let mut out = Vec::with_capacity(a.remaining() / 2);
    while let (Some(k), Some(v)) = (a.next_opt(), a.next_opt()) {
        out.push((k, v));
    }
    Ok(out)
}

fn parse_incr(sign: i64, mut a: Args, with_amount: bool) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    let by = if with_amount { a.next_i64()? } else { 1 };
    let by = if sign < 0 { by.checked_neg().ok_or(CommandError::fixed("ERR decrement would overflow"))? } else { by };
    ok(StringCommand::IncrBy { key, by })
}

fn key_value(mut a: Args) -> Result<(Bytes, Bytes), CommandError> {
    Ok((a.next_bytes()?, a.next_bytes()?))
}

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!("get", 2, READONLY | FAST, keys(1, 1, 1), String, "1.0.0", "Returns the string value of a key.", |mut a| ok(StringCommand::Get(
        a.next_bytes()?
    ))),
    spec!(
        "set",
        -3,
        WRITE | DENYOOM,
        keys(1, 1, 1),
        String,
        "1.0.0",
        "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
        parse_set
    ),
    spec!(
        "setnx",
        3,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        String,
        "1.0.0",
        "Set the string value of a key only when the key doesn't exist.",
        |a| {
            let (key, value) = key_value(a)?;
            ok(StringCommand::SetNx { key, value })
        }
    ),
    spec!(
        "setex",
        4,
        WRITE | DENYOOM,
        keys(1, 1, 1),
        String,
        "2.0.0",
        "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.",
        |a| parse_setex("setex", false, a)
    ),
    spec!(
        "psetex",
        4,
        WRITE | DENYOOM,
        keys(1, 1, 1),
        String,
        "2.6.0",
        "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.",
        |a| parse_setex("psetex", true, a)
    ),
    spec!(
        "getset",
        3,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        String,
        "1.0.0",
        "Returns the previous string value of a key after setting it to a new value.",
        |a| {
            let (key, value) = key_value(a)?;
            ok(StringCommand::GetSet { key, value })
        }
    ),
    spec!(
        "getdel",
        2,
        WRITE | FAST,
        keys(1, 1, 1),
        String,
        "6.2.0",
        "Returns the string value of a key after deleting the key.",
        |mut a| ok(StringCommand::GetDel(a.next_bytes()?))
    ),
    spec!(
        "getex",
        -2,
        WRITE | FAST,
        keys(1, 1, 1),
        String,
        "6.2.0",
        "Returns the string value of a key after setting its expiration time.",
        parse_getex
    ),
    spec!("mget", -2, READONLY | FAST, keys(1, -1, 1), String, "1.0.0", "Atomically returns the string values of one or more keys.", |a| {
        ok(StringCommand::MGet(a.rest()))
    }),
    spec!(
        "mset",
        -3,
        WRITE | DENYOOM,
        keys(1, -1, 2),
        String,
        "1.0.1",
        "Atomically creates or modifies the string values of one or more keys.",
        |a| ok(StringCommand::MSet(pairs("mset", a)?))
    ),
    spec!(
        "msetnx",
        -3,
        WRITE | DENYOOM,
        keys(1, -1, 2),
        String,
        "1.0.1",
        "Atomically modifies the string values of one or more keys only when all keys don't exist.",
        |a| ok(StringCommand::MSetNx(pairs("msetnx", a)?))
    ),
    spec!(
        "append",
        3,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        String,
        "2.0.0",
        "Appends a string to the value of a key. Creates the key if it doesn't exist.",
        |a| {
            let (key, value) = key_value(a)?;
            ok(StringCommand::Append { key, value })
        }
    ),
    spec!("strlen", 2, READONLY | FAST, keys(1, 1, 1), String, "2.2.0", "Returns the length of a string value.", |mut a| ok(
        StringCommand::StrLen(a.next_bytes()?)
    )),
    spec!("getrange", 4, READONLY, keys(1, 1, 1), String, "2.4.0", "Returns a substring of the string stored at a key.", |mut a| ok(
        StringCommand::GetRange { key: a.next_bytes()?, start: a.next_i64()?, end: a.next_i64()? }
    )),
    spec!(
        "setrange",
        4,
        WRITE | DENYOOM,
        keys(1, 1, 1),
        String,
        "2.2.0",
        "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.",
        |mut a| ok(StringCommand::SetRange { key: a.next_bytes()?, offset: a.next_i64()?, value: a.next_bytes()? })
    ),
    spec!(
        "incr",
        2,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        String,
        "1.0.0",
        "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
        |a| parse_incr(1, a, false)
    ),
    spec!(
        "decr",
        2,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        String,
        "1.0.0",
        "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
        |a| parse_incr(-1, a, false)
    ),
    spec!(
        "incrby",
        3,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        String,
        "1.0.0",
        "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
        |a| parse_incr(1, a, true)
    ),
    spec!(
        "decrby",
        3,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        String,
        "1.0.0",
        "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.",
        |a| parse_incr(-1, a, true)
    ),
    spec!(
        "incrbyfloat",
        3,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        String,
        "2.6.0",
        "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
        |mut a| ok(StringCommand::IncrByFloat { key: a.next_bytes()?, by: long_double::parse(&a.next_bytes()?) })
    ),
    spec!("lcs", -3, READONLY, keys(1, 2, 1), String, "7.0.0", "Finds the longest common substring.", |mut a| {
        let (a_key, b_key) = (a.next_bytes()?, a.next_bytes()?);
        ok(StringCommand::Lcs { a: a_key, b: b_key, options: lcs_options(a.rest()) })
    }),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::parse_request;
    use crate::request::Request;

    fn parse(parts: &[&str]) -> Result<Command, CommandError> {
        parse_request(Request::from_strs(parts)).map(|(_, c)| c)
    }

    fn set(parts: &[&str]) -> Result<SetArgs, CommandError> {
        match parse(parts)? {
            Command::Strings(StringCommand::Set(s)) => Ok(s),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn set_options_follow_redis() {
        let s = set(&["SET", "k", "v", "NX", "GET", "EX", "10"]).unwrap();
        assert_eq!((s.condition, s.get, s.expiry), (SetCondition::Nx, true, Some(Expiry::Ex(10))));
        assert_eq!(set(&["SET", "k", "v", "EX", "1", "EX", "2"]).unwrap().expiry, Some(Expiry::Ex(2)));
        for bad in [
            &["SET", "k", "v", "NX", "XX"][..],
            &["SET", "k", "v", "EX", "1", "PX", "1"],
            &["SET", "k", "v", "KEEPTTL", "EX", "1"],
            &["SET", "k", "v", "EX"],
            &["SET", "k", "v", "PERSIST"],
            &["SET", "k", "v", "EX", "x", "BOGUS"],
        ] {
            assert_eq!(set(bad).unwrap_err(), CommandError::syntax(), "{bad:?}");
        }
        assert_eq!(set(&["SET", "k", "v", "EX", "x"]).unwrap_err(), CommandError::not_integer());
    }

    #[test]
    fn counters_and_pairs() {
        assert_eq!(parse(&["DECRBY", "k", "-9223372036854775808"]).unwrap_err().0, "ERR decrement would overflow");
        assert_eq!(parse(&["MSET", "a", "1", "b"]).unwrap_err().0, "ERR wrong number of arguments for 'mset' command");
        assert_eq!(parse(&["GETEX", "k", "PERSIST", "EX", "1"]).unwrap_err(), CommandError::syntax());
    }
}
