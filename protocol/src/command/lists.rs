//! List commands (Redis 7), including the blocking pops and moves.

use bytes::Bytes;

use super::conn::spec;
use super::flags::*;
use super::{Command, CommandSpec, Group, NO_KEYS, keys};
use crate::error::CommandError;
use crate::long_double;
use crate::request::{Args, is_word};

/// Which end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ListCommand {
    /// LPUSH / RPUSH, or LPUSHX / RPUSHX when `only_existing`.
    Push {
        key: Bytes,
        end: End,
        elements: Vec<Bytes>,
        only_existing: bool,
    },
    /// LPOP / RPOP; `count` present turns the reply into an array.
    Pop {
        key: Bytes,
        end: End,
        count: Option<usize>,
    },
    Len(Bytes),
    Range {
        key: Bytes,
        start: i64,
        stop: i64,
    },
    /// The index is parsed after the key is found, as Redis does (a missing key answers nil first).
    Index {
        key: Bytes,
        index: Bytes,
    },
    /// The index is parsed after the key is found, as for LINDEX (a missing key is "no such key").
    Set {
        key: Bytes,
        index: Bytes,
        element: Bytes,
    },
    Rem {
        key: Bytes,
        count: i64,
        element: Bytes,
    },
    Trim {
        key: Bytes,
        start: i64,
        stop: i64,
    },
    Insert {
        key: Bytes,
        before: bool,
        pivot: Bytes,
        element: Bytes,
    },
    Pos {
        key: Bytes,
        element: Bytes,
        rank: i64,
        count: Option<usize>,
        max_len: usize,
    },
    /// LMOVE / RPOPLPUSH, and BLMOVE / BRPOPLPUSH with a timeout.
    Move {
        source: Bytes,
        destination: Bytes,
        from: End,
        to: End,
        timeout: Option<Timeout>,
    },
    /// BLPOP / BRPOP.
    BlockingPop {
        keys: Vec<Bytes>,
        end: End,
        timeout: Timeout,
    },
    /// LMPOP, and BLMPOP with a timeout.
    MultiPop {
        keys: Vec<Bytes>,
        end: End,
        count: usize,
        timeout: Option<Timeout>,
    },
}

/// A blocking timeout in milliseconds, 0 meaning forever: the seconds given, times 1000, rounded up,
/// as Redis 7.0 computes it in `long double` (see `long_double`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub u64);

impl Timeout {
    /// `None` for "wait forever".
    pub fn duration(self) -> Option<std::time::Duration> {
        (self.0 != 0).then(|| std::time::Duration::from_millis(self.0))
    }
}

fn ok(c: ListCommand) -> Result<Command, CommandError> {
    Ok(Command::Lists(c))
}

pub(crate) fn parse_timeout(raw: &[u8]) -> Result<Timeout, CommandError> {
    let seconds = long_double::parse(raw).ok_or(CommandError::fixed("ERR timeout is not a float or out of range"))?;
    // Negative milliseconds include everything that overflowed the conversion, infinities too.
    let millis = u64::try_from(seconds.millis_ceil()).map_err(|_| CommandError::fixed("ERR timeout is negative"))?;
    Ok(Timeout(millis))
}

fn parse_end(raw: &[u8]) -> Result<End, CommandError> {
    if is_word(raw, "LEFT") {
        Ok(End::Left)
    } else if is_word(raw, "RIGHT") {
        Ok(End::Right)
    } else {
        Err(CommandError::syntax())
    }
}

fn parse_push(end: End, only_existing: bool, mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    ok(ListCommand::Push { key, end, elements: a.rest(), only_existing })
}

fn parse_pop(end: End, mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    if a.remaining() > 1 {
        return Err(CommandError::arity(if end == End::Left { "lpop" } else { "rpop" }));
    }
    // Redis reads the count with one message for text that is no integer and for a negative value.
    let count = match a.is_empty() {
        true => None,
        false => Some(a.next_i64_at_least(0, CommandError::fixed("ERR value is out of range, must be positive"))? as usize),
    };
    ok(ListCommand::Pop { key, end, count })
}

fn parse_pos(mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    let element = a.next_bytes()?;
    let (mut rank, mut count, mut max_len) = (1, None, 0);
    while let Some(opt) = a.next_opt() {
        if a.is_empty() {
            return Err(CommandError::syntax());
        }
        if is_word(&opt, "RANK") {
            rank = a.next_i64()?;
            if rank == 0 {
                return Err(CommandError::fixed(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if is_word(&opt, "COUNT") {
            count = Some(a.next_i64_at_least(0, CommandError::fixed("ERR COUNT can't be negative"))? as usize);
        } else if is_word(&opt, "MAXLEN") {
            max_len = a.next_i64_at_least(0, CommandError::fixed("ERR MAXLEN can't be negative"))? as usize;
        } else {
            return Err(CommandError::syntax());
        }
    }
    if rank == i64::MIN {
        // Redis 7.0 negates the rank and gets i64::MIN back, so every match from the tail qualifies
        // and a COUNT never stops the scan: the first match without COUNT, all of them with it.
        rank = -1;
        count = count.map(|_| 0);
    }
    ok(ListCommand::Pos { key, element, rank, count, max_len })
}

fn parse_move(mut a: Args, blocking: bool) -> Result<Command, CommandError> {
    let source = a.next_bytes()?;
    let destination = a.next_bytes()?;
    let from = parse_end(&a.next_bytes()?)?;
    let to = parse_end(&a.next_bytes()?)?;
    let timeout = if blocking { Some(parse_timeout(&a.next_bytes()?)?) } else { None };
    ok(ListCommand::Move { source, destination, from, to, timeout })
}

fn parse_blocking_pop(end: End, a: Args) -> Result<Command, CommandError> {
    let mut keys = a.rest();
    let timeout = parse_timeout(&keys.pop().ok_or(CommandError::syntax())?)?;
    ok(ListCommand::BlockingPop { keys, end, timeout })
}

/// `[timeout] numkeys key [key ...] LEFT|RIGHT [COUNT count]`. Redis checks the timeout last.
fn parse_multi_pop(mut a: Args, blocking: bool) -> Result<Command, CommandError> {
    let raw_timeout = if blocking { Some(a.next_bytes()?) } else { None };
    let numkeys = a.next_i64_at_least(1, CommandError::fixed("ERR numkeys should be greater than 0"))?;
    if numkeys as u64 >= a.remaining() as u64 {
        return Err(CommandError::syntax());
    }
    let keys: Vec<Bytes> = (0..numkeys).map(|_| a.next_bytes()).collect::<Result<_, _>>()?;
    let end = parse_end(&a.next_bytes()?)?;
    let mut count = 1;
    if let Some(opt) = a.next_opt() {
        if !is_word(&opt, "COUNT") || a.remaining() != 1 {
            return Err(CommandError::syntax());
        }
        count = a.next_i64_at_least(1, CommandError::fixed("ERR count should be greater than 0"))? as usize;
    }
    let timeout = raw_timeout.map(|raw| parse_timeout(&raw)).transpose()?;
    ok(ListCommand::MultiPop { keys, end, count, timeout })
}

fn parse_insert(mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    let place = a.next_bytes()?;
    let before = if is_word(&place, "BEFORE") {
        true
    } else if is_word(&place, "AFTER") {
        false
    } else {
        return Err(CommandError::syntax());
    };
    ok(ListCommand::Insert { key, before, pivot: a.next_bytes()?, element: a.next_bytes()? })
}

const W: u32 = WRITE | DENYOOM | FAST;
const BLOCK: u32 = WRITE | NOSCRIPT | BLOCKING;

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!(
        "lpush",
        -3,
        W,
        keys(1, 1, 1),
        List,
        "1.0.0",
        "Prepends one or more elements to a list. Creates the key if it doesn't exist.",
        |a| parse_push(End::Left, false, a)
    ),
    spec!(
        "rpush",
        -3,
        W,
        keys(1, 1, 1),
        List,
        "1.0.0",
        "Appends one or more elements to a list. Creates the key if it doesn't exist.",
        |a| parse_push(End::Right, false, a)
    ),
    spec!("lpushx", -3, W, keys(1, 1, 1), List, "2.2.0", "Prepends one or more elements to a list only when the list exists.", |a| {
        parse_push(End::Left, true, a)
    }),
    spec!("rpushx", -3, W, keys(1, 1, 1), List, "2.2.0", "Appends an element to a list only when the list exists.", |a| parse_push(
        End::Right,
        true,
        a
    )),
    spec!(
        "lpop",
        -2,
        WRITE | FAST,
        keys(1, 1, 1),
        List,
        "1.0.0",
        "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.",
        |a| parse_pop(End::Left, a)
    ),
    spec!(
        "rpop",
        -2,
        WRITE | FAST,
        keys(1, 1, 1),
        List,
        "1.0.0",
        "Returns and removes the last elements of a list. Deletes the list if the last element was popped.",
        |a| parse_pop(End::Right, a)
    ),
    spec!("llen", 2, READONLY | FAST, keys(1, 1, 1), List, "1.0.0", "Returns the length of a list.", |mut a| ok(ListCommand::Len(
        a.next_bytes()?
    ))),
    spec!("lrange", 4, READONLY, keys(1, 1, 1), List, "1.0.0", "Returns a range of elements from a list.", |mut a| ok(
        ListCommand::Range { key: a.next_bytes()?, start: a.next_i64()?, stop: a.next_i64()? }
    )),
    spec!("lindex", 3, READONLY, keys(1, 1, 1), List, "1.0.0", "Returns an element from a list by its index.", |mut a| ok(
        ListCommand::Index { key: a.next_bytes()?, index: a.next_bytes()? }
    )),
    spec!("lset", 4, WRITE | DENYOOM, keys(1, 1, 1), List, "1.0.0", "Sets the value of an element in a list by its index.", |mut a| ok(
        ListCommand::Set { key: a.next_bytes()?, index: a.next_bytes()?, element: a.next_bytes()? }
    )),
    spec!(
        "lrem",
        4,
        WRITE,
        keys(1, 1, 1),
        List,
        "1.0.0",
        "Removes elements from a list. Deletes the list if the last element was removed.",
        |mut a| ok(ListCommand::Rem { key: a.next_bytes()?, count: a.next_i64()?, element: a.next_bytes()? })
    ),
    spec!(
        "ltrim",
        4,
        WRITE,
        keys(1, 1, 1),
        List,
        "1.0.0",
        "Removes elements from both ends a list. Deletes the list if all elements were trimmed.",
        |mut a| ok(ListCommand::Trim { key: a.next_bytes()?, start: a.next_i64()?, stop: a.next_i64()? })
    ),
    spec!(
        "linsert",
        5,
        WRITE | DENYOOM,
        keys(1, 1, 1),
        List,
        "2.2.0",
        "Inserts an element before or after another element in a list.",
        parse_insert
    ),
    spec!("lpos", -3, READONLY, keys(1, 1, 1), List, "6.0.6", "Returns the index of matching elements in a list.", parse_pos),
    spec!(
        "lmove",
        5,
        WRITE | DENYOOM,
        keys(1, 2, 1),
        List,
        "6.2.0",
        "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.",
        |a| parse_move(a, false)
    ),
    spec!(
        "rpoplpush",
        3,
        WRITE | DENYOOM,
        keys(1, 2, 1),
        List,
        "1.2.0",
        "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.",
        |mut a| ok(ListCommand::Move {
            source: a.next_bytes()?,
            destination: a.next_bytes()?,
            from: End::Right,
            to: End::Left,
            timeout: None
        })
    ),
    spec!(
        "blpop",
        -3,
        BLOCK,
        keys(1, -2, 1),
        List,
        "2.0.0",
        "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
        |a| parse_blocking_pop(End::Left, a)
    ),
    spec!(
        "brpop",
        -3,
        BLOCK,
        keys(1, -2, 1),
        List,
        "2.0.0",
        "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
        |a| parse_blocking_pop(End::Right, a)
    ),
    spec!(
        "blmove",
        6,
        BLOCK | DENYOOM,
        keys(1, 2, 1),
        List,
        "6.2.0",
        "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.",
        |a| parse_move(a, true)
    ),
    spec!(
        "brpoplpush",
        4,
        BLOCK | DENYOOM,
        keys(1, 2, 1),
        List,
        "2.2.0",
        "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.",
        |mut a| {
            let (source, destination) = (a.next_bytes()?, a.next_bytes()?);
            ok(ListCommand::Move { source, destination, from: End::Right, to: End::Left, timeout: Some(parse_timeout(&a.next_bytes()?)?) })
        }
    ),
    spec!(
        "lmpop",
        -4,
        WRITE | MOVABLE_KEYS,
        NO_KEYS,
        List,
        "7.0.0",
        "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.",
        |a| parse_multi_pop(a, false)
    ),
    spec!(
        "blmpop",
        -5,
        BLOCK | MOVABLE_KEYS,
        NO_KEYS,
        List,
        "7.0.0",
        "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
        |a| parse_multi_pop(a, true)
    ),
];
