//! Hash commands (Redis 7.0): every H* command.

use bytes::Bytes;

use super::conn::spec;
use super::elements::{ElementScan, parse_element_scan, parse_random_count};
use super::flags::*;
use super::{Command, CommandSpec, Group, keys};
use crate::error::CommandError;
use crate::long_double::{self, LongDouble};
use crate::request::Args;

#[derive(Debug, Clone, PartialEq)]
pub enum HashCommand {
    /// HSET, or HMSET (which answers OK) when `legacy`.
    Set {
        key: Bytes,
        pairs: Vec<(Bytes, Bytes)>,
        legacy: bool,
    },
    SetNx {
        key: Bytes,
        field: Bytes,
        value: Bytes,
    },
    Get {
        key: Bytes,
        field: Bytes,
    },
    MGet {
        key: Bytes,
        fields: Vec<Bytes>,
    },
    Del {
        key: Bytes,
        fields: Vec<Bytes>,
    },
    Len(Bytes),
    StrLen {
        key: Bytes,
        field: Bytes,
    },
    Exists {
        key: Bytes,
        field: Bytes,
    },
    IncrBy {
        key: Bytes,
        field: Bytes,
        by: i64,
    },
    IncrByFloat {
        key: Bytes,
        field: Bytes,
        by: LongDouble,
    },
    GetAll(Bytes),
    Keys(Bytes),
    Vals(Bytes),
    /// HRANDFIELD key [count [WITHVALUES]].
    RandField {
        key: Bytes,
        count: Option<(i64, bool)>,
    },
    Scan(ElementScan),
}

fn ok(c: HashCommand) -> Result<Command, CommandError> {
    Ok(Command::Hashes(c))
}

/// HSET / HMSET: field-value pairs; an odd count is an arity error, as Redis reports it.
fn parse_set(name: &str, legacy: bool, mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    let rest = a.rest();
    if rest.len() % 2 == 1 {
        return Err(CommandError::arity(name));
    }
    let mut it = rest.into_iter();
    let pairs = std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect();
    ok(HashCommand::Set { key, pairs, legacy })
}

fn parse_incr_float(mut a: Args) -> Result<Command, CommandError> {
    let (key, field) = (a.next_bytes()?, a.next_bytes()?);
    let by = long_double::parse(&a.next_bytes()?).ok_or(CommandError::not_float())?;
    if matches!(by, LongDouble::Infinite { .. }) {
        return Err(CommandError::fixed("ERR value is NaN or Infinity"));
    }
    ok(HashCommand::IncrByFloat { key, field, by })
}

fn key_and_rest(mut a: Args) -> Result<(Bytes, Vec<Bytes>), CommandError> {
    Ok((a.next_bytes()?, a.rest()))
}

const W: u32 = WRITE | DENYOOM | FAST;
const R: u32 = READONLY | FAST;

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!("hset", -4, W, keys(1, 1, 1), Hash, "2.0.0", "Set the string value of a hash field", |a| parse_set("hset", false, a)),
    spec!("hmset", -4, W, keys(1, 1, 1), Hash, "2.0.0", "Set multiple hash fields to multiple values", |a| parse_set("hmset", true, a)),
    spec!("hsetnx", 4, W, keys(1, 1, 1), Hash, "2.0.0", "Set the value of a hash field, only if the field does not exist", |mut a| ok(
        HashCommand::SetNx { key: a.next_bytes()?, field: a.next_bytes()?, value: a.next_bytes()? }
    )),
    spec!("hget", 3, R, keys(1, 1, 1), Hash, "2.0.0", "Get the value of a hash field", |mut a| ok(HashCommand::Get {
        key: a.next_bytes()?,
        field: a.next_bytes()?
    })),
    spec!("hmget", -3, R, keys(1, 1, 1), Hash, "2.0.0", "Get the values of all the given hash fields", |a| {
        let (key, fields) = key_and_rest(a)?;
        ok(HashCommand::MGet { key, fields })
    }),
    spec!("hdel", -3, WRITE | FAST, keys(1, 1, 1), Hash, "2.0.0", "Delete one or more hash fields", |a| {
        let (key, fields) = key_and_rest(a)?;
        ok(HashCommand::Del { key, fields })
    }),
    spec!("hlen", 2, R, keys(1, 1, 1), Hash, "2.0.0", "Get the number of fields in a hash", |mut a| ok(HashCommand::Len(a.next_bytes()?))),
    spec!("hstrlen", 3, R, keys(1, 1, 1), Hash, "3.2.0", "Get the length of the value of a hash field", |mut a| ok(HashCommand::StrLen {
        key: a.next_bytes()?,
        field: a.next_bytes()?
    })),
    spec!("hexists", 3, R, keys(1, 1, 1), Hash, "2.0.0", "Determine if a hash field exists", |mut a| ok(HashCommand::Exists {
        key: a.next_bytes()?,
        field: a.next_bytes()?
    })),
    spec!("hincrby", 4, W, keys(1, 1, 1), Hash, "2.0.0", "Increment the integer value of a hash field by the given number", |mut a| ok(
        HashCommand::IncrBy { key: a.next_bytes()?, field: a.next_bytes()?, by: a.next_i64()? }
    )),
    spec!(
        "hincrbyfloat",
        4,
        W,
        keys(1, 1, 1),
        Hash,
        "2.6.0",
        "Increment the float value of a hash field by the given amount",
        parse_incr_float
    ),
    spec!("hgetall", 2, READONLY, keys(1, 1, 1), Hash, "2.0.0", "Get all the fields and values in a hash", |mut a| ok(
        HashCommand::GetAll(a.next_bytes()?)
    )),
    spec!("hkeys", 2, READONLY, keys(1, 1, 1), Hash, "2.0.0", "Get all the fields in a hash", |mut a| ok(HashCommand::Keys(
        a.next_bytes()?
    ))),
    spec!("hvals", 2, READONLY, keys(1, 1, 1), Hash, "2.0.0", "Get all the values in a hash", |mut a| ok(HashCommand::Vals(
        a.next_bytes()?
    ))),
    spec!("hrandfield", -2, READONLY, keys(1, 1, 1), Hash, "6.2.0", "Get one or multiple random fields from a hash", |mut a| {
        let key = a.next_bytes()?;
        ok(HashCommand::RandField { key, count: parse_random_count(a, "WITHVALUES")? })
    }),
    spec!("hscan", -3, READONLY, keys(1, 1, 1), Hash, "2.8.0", "Incrementally iterate hash fields and associated values", |a| ok(
        HashCommand::Scan(parse_element_scan(a)?)
    )),
];
