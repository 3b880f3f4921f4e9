//! Set commands (Redis 7.0): every S* command, the STORE forms and SINTERCARD.

use bytes::Bytes;

use super::conn::spec;
use super::elements::{ElementScan, parse_element_scan, parse_numkeys, parse_positive_count, parse_signed_count};
use super::flags::*;
use super::{Command, CommandSpec, Group, NO_KEYS, keys};
use crate::error::CommandError;
use crate::request::{Args, is_word};

/// SINTER, SUNION or SDIFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetAlgebra {
    Inter,
    Union,
    Diff,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SetCommand {
    Add {
        key: Bytes,
        members: Vec<Bytes>,
    },
    Rem {
        key: Bytes,
        members: Vec<Bytes>,
    },
    Card(Bytes),
    IsMember {
        key: Bytes,
        member: Bytes,
    },
    MIsMember {
        key: Bytes,
        members: Vec<Bytes>,
    },
    Members(Bytes),
    /// SPOP key [count].
    Pop {
        key: Bytes,
        count: Option<usize>,
    },
    /// SRANDMEMBER key [count].
    RandMember {
        key: Bytes,
        count: Option<i64>,
    },
    Move {
        source: Bytes,
        destination: Bytes,
        member: Bytes,
    },
    /// SINTER / SUNION / SDIFF, or their STORE forms with a destination.
    Algebra {
        op: SetAlgebra,
        destination: Option<Bytes>,
        keys: Vec<Bytes>,
    },
    /// SINTERCARD numkeys key [key ...] [LIMIT limit] (0: no limit).
    InterCard {
        keys: Vec<Bytes>,
        limit: usize,
    },
    Scan(ElementScan),
}

fn ok(c: SetCommand) -> Result<Command, CommandError> {
    Ok(Command::Sets(c))
}

fn key_and_rest(mut a: Args) -> Result<(Bytes, Vec<Bytes>), CommandError> {
    Ok((a.next_bytes()?, a.rest()))
}

fn parse_algebra(op: SetAlgebra, store: bool, mut a: Args) -> Result<Command, CommandError> {
    let destination = if store { Some(a.next_bytes()?) } else { None };
    ok(SetCommand::Algebra { op, destination, keys: a.rest() })
}

fn parse_intercard(mut a: Args) -> Result<Command, CommandError> {
    let keys = parse_numkeys(
        &mut a,
        CommandError::fixed("ERR numkeys should be greater than 0"),
        CommandError::fixed("ERR Number of keys can't be greater than number of args"),
    )?;
    let mut limit = 0;
    while let Some(opt) = a.next_opt() {
        if !is_word(&opt, "LIMIT") || a.is_empty() {
            return Err(CommandError::syntax());
        }
        limit = a.next_i64_at_least(0, CommandError::fixed("ERR LIMIT can't be negative"))? as usize;
    }
    ok(SetCommand::InterCard { keys, limit })
}

const R: u32 = READONLY | FAST;

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!("sadd", -3, WRITE | DENYOOM | FAST, keys(1, 1, 1), Set, "1.0.0", "Add one or more members to a set", |a| {
        let (key, members) = key_and_rest(a)?;
        ok(SetCommand::Add { key, members })
    }),
    spec!("srem", -3, WRITE | FAST, keys(1, 1, 1), Set, "1.0.0", "Remove one or more members from a set", |a| {
        let (key, members) = key_and_rest(a)?;
        ok(SetCommand::Rem { key, members })
    }),
    spec!("scard", 2, R, keys(1, 1, 1), Set, "1.0.0", "Get the number of members in a set", |mut a| ok(SetCommand::Card(a.next_bytes()?))),
    spec!("sismember", 3, R, keys(1, 1, 1), Set, "1.0.0", "Determine if a given value is a member of a set", |mut a| ok(
        SetCommand::IsMember { key: a.next_bytes()?, member: a.next_bytes()? }
    )),
    spec!("smismember", -3, R, keys(1, 1, 1), Set, "6.2.0", "Returns the membership associated with the given elements for a set", |a| {
        let (key, members) = key_and_rest(a)?;
        ok(SetCommand::MIsMember { key, members })
    }),
    spec!("smembers", 2, READONLY, keys(1, 1, 1), Set, "1.0.0", "Get all the members in a set", |mut a| ok(SetCommand::Members(
        a.next_bytes()?
    ))),
    spec!("spop", -2, WRITE | FAST, keys(1, 1, 1), Set, "1.0.0", "Remove and return one or multiple random members from a set", |mut a| {
        let key = a.next_bytes()?;
        ok(SetCommand::Pop { key, count: parse_positive_count(a)? })
    }),
    spec!("srandmember", -2, READONLY, keys(1, 1, 1), Set, "1.0.0", "Get one or multiple random members from a set", |mut a| {
        let key = a.next_bytes()?;
        ok(SetCommand::RandMember { key, count: parse_signed_count(a)? })
    }),
    spec!("smove", 4, WRITE | FAST, keys(1, 2, 1), Set, "1.0.0", "Move a member from one set to another", |mut a| ok(SetCommand::Move {
        source: a.next_bytes()?,
        destination: a.next_bytes()?,
        member: a.next_bytes()?
    })),
    spec!("sinter", -2, READONLY, keys(1, -1, 1), Set, "1.0.0", "Intersect multiple sets", |a| parse_algebra(SetAlgebra::Inter, false, a)),
    spec!(
        "sinterstore",
        -3,
        WRITE | DENYOOM,
        keys(1, -1, 1),
        Set,
        "1.0.0",
        "Intersect multiple sets and store the resulting set in a key",
        |a| { parse_algebra(SetAlgebra::Inter, true, a) }
    ),
    spec!(
        "sintercard",
        -3,
        READONLY | MOVABLE_KEYS,
        NO_KEYS,
        Set,
        "7.0.0",
        "Intersect multiple sets and return the cardinality of the result",
        parse_intercard
    ),
    spec!("sunion", -2, READONLY, keys(1, -1, 1), Set, "1.0.0", "Add multiple sets", |a| parse_algebra(SetAlgebra::Union, false, a)),
    spec!(
        "sunionstore",
        -3,
        WRITE | DENYOOM,
        keys(1, -1, 1),
        Set,
        "1.0.0",
        "Add multiple sets and store the resulting set in a key",
        |a| { parse_algebra(SetAlgebra::Union, true, a) }
    ),
    spec!("sdiff", -2, READONLY, keys(1, -1, 1), Set, "1.0.0", "Subtract multiple sets", |a| parse_algebra(SetAlgebra::Diff, false, a)),
    spec!(
        "sdiffstore",
        -3,
        WRITE | DENYOOM,
        keys(1, -1, 1),
        Set,
        "1.0.0",
        "Subtract multiple sets and store the resulting set in a key",
        |a| { parse_algebra(SetAlgebra::Diff, true, a) }
    ),
    spec!("sscan", -3, READONLY, keys(1, 1, 1), Set, "2.8.0", "Incrementally iterate Set elements", |a| ok(SetCommand::Scan(
        parse_element_scan(a)?
    ))),
];
