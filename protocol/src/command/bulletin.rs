//! Bulletin boards (BL.*): JSON items, filtered retrieve with leases, release / remove, dead letters.

use bytes::Bytes;

use super::WaitMs;
use super::conn::spec;
use super::flags::*;
use super::{Command, CommandSpec, Group, ListArgs, NO_KEYS, keys, parse_list};
use crate::error::CommandError;
use crate::request::{Args, is_word};

/// A WHERE comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// `WHERE field op value`: `field` is a dotted path into the item (`params.file`), `value` is JSON
/// (`3`, `true`, `"x"`) or, if it does not parse as JSON, a plain string.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub path: Bytes,
    pub op: FilterOp,
    pub value: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    DropOldest,
    RejectNew,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BulletinCommand {
    Publish {
        scope: Bytes,
        board: Bytes,
        item: Bytes,
        ttl_ms: Option<u64>,
        block: Option<WaitMs>,
    },
    Retrieve {
        scope: Bytes,
        board: Bytes,
        filters: Vec<Filter>,
        lock_ms: Option<u64>,
        block: Option<WaitMs>,
    },
    All {
        scope: Bytes,
        board: Bytes,
        filters: Vec<Filter>,
        limit: Option<usize>,
    },
    Get {
        scope: Bytes,
        board: Bytes,
        id: Bytes,
    },
    Len {
        scope: Bytes,
        board: Bytes,
    },
    Extend {
        scope: Bytes,
        board: Bytes,
        id: Bytes,
        token: u64,
        ms: u64,
    },
    Release {
        scope: Bytes,
        board: Bytes,
        id: Bytes,
        token: u64,
    },
    Remove {
        scope: Bytes,
        board: Bytes,
        id: Bytes,
        token: Option<u64>,
    },
    Config {
        scope: Bytes,
        board: Bytes,
        max_len: Option<usize>,
        overflow: Option<Overflow>,
        max_leases: Option<u32>,
    },
    Dead {
        scope: Bytes,
        board: Bytes,
    },
    Redrive {
        scope: Bytes,
        board: Bytes,
        id: Bytes,
    },
    /// BL.BOARDS cursor [MATCH pattern] [COUNT n] [SCOPE s]: without SCOPE, every scope's boards.
    Boards(ListArgs),
}

fn ok(c: BulletinCommand) -> Result<Command, CommandError> {
    Ok(Command::Bulletin(c))
}

const KEYWORDS: &[&str] = &["WHERE", "LOCK", "BLOCK", "LIMIT", "SCOPE", "TTL"];

fn is_keyword(arg: &[u8]) -> bool {
    KEYWORDS.iter().any(|k| is_word(arg, k))
}

fn parse_op(raw: &[u8]) -> Result<FilterOp, CommandError> {
    Ok(match raw {
        b"=" | b"==" => FilterOp::Eq,
        b"!=" => FilterOp::Ne,
        b"<" => FilterOp::Lt,
        b"<=" => FilterOp::Le,
        b">" => FilterOp::Gt,
        b">=" => FilterOp::Ge,
        _ => {
            return Err(CommandError::new(format!("ERR unknown comparison '{}' (use = != < <= > >=)", String::from_utf8_lossy(raw))));
        }
    })
}

/// `WHERE f op v [f op v ...]` (a second WHERE is allowed too), up to the next keyword.
fn parse_filters(a: &mut Args, filters: &mut Vec<Filter>) -> Result<(), CommandError> {
    loop {
        let path = a.next_bytes()?;
        let op = parse_op(&a.next_bytes()?)?;
        filters.push(Filter { path, op, value: a.next_bytes()? });
        match a.peek() {
            Some(next) if !is_keyword(next) => continue,
            _ => return Ok(()),
        }
    }
}

/// The options shared by every BL command: `SCOPE s` and the command's own.
struct Options {
    scope: Bytes,
    filters: Vec<Filter>,
    lock_ms: Option<u64>,
    block: Option<WaitMs>,
    limit: Option<usize>,
    ttl_ms: Option<u64>,
}

fn parse_options(mut a: Args, allowed: &[&str]) -> Result<Options, CommandError> {
    let mut o = Options { scope: Bytes::new(), filters: Vec::new(), lock_ms: None, block: None, limit: None, ttl_ms: None };
    while let Some(opt) = a.next_opt() {
        let allowed_here = allowed.iter().any(|k| is_word(&opt, k));
        if !allowed_here {
            return Err(CommandError::syntax());
        }
        if is_word(&opt, "SCOPE") {
            o.scope = a.next_bytes()?;
        } else if is_word(&opt, "WHERE") {
            parse_filters(&mut a, &mut o.filters)?;
        } else if is_word(&opt, "LOCK") {
            o.lock_ms = Some(a.next_u64()?.max(1));
        } else if is_word(&opt, "BLOCK") {
            o.block = Some(WaitMs(a.next_u64()?));
        } else if is_word(&opt, "LIMIT") {
            o.limit = Some(a.next_u64()? as usize);
        } else if is_word(&opt, "TTL") {
            o.ttl_ms = Some(a.next_u64()?.max(1));
        }
    }
    Ok(o)
}

fn token(raw: &[u8]) -> Result<u64, CommandError> {
    crate::number::parse_i64(raw).filter(|t| *t >= 0).map(|t| t as u64).ok_or(CommandError::fixed("ERR invalid lease token"))
}

fn parse_config(mut a: Args) -> Result<Command, CommandError> {
    let board = a.next_bytes()?;
    let (mut scope, mut max_len, mut overflow, mut max_leases) = (Bytes::new(), None, None, None);
    while let Some(opt) = a.next_opt() {
        if is_word(&opt, "SCOPE") {
            scope = a.next_bytes()?;
        } else if is_word(&opt, "MAXLEN") {
            max_len = Some(a.next_u64()? as usize);
        } else if is_word(&opt, "OVERFLOW") {
            let p = a.next_bytes()?;
            overflow = Some(if is_word(&p, "drop-oldest") {
                Overflow::DropOldest
            } else if is_word(&p, "reject-new") {
                Overflow::RejectNew
            } else {
                return Err(CommandError::fixed("ERR OVERFLOW must be drop-oldest or reject-new"));
            });
        } else if is_word(&opt, "MAXLEASES") {
            max_leases = Some(a.next_u64()?.min(u64::from(u32::MAX)) as u32);
        } else {
            return Err(CommandError::syntax());
        }
    }
    ok(BulletinCommand::Config { scope, board, max_len, overflow, max_leases })
}

/// `board id ...` commands take `SCOPE s` at the end.
fn board_id(a: &mut Args) -> Result<(Bytes, Bytes), CommandError> {
    Ok((a.next_bytes()?, a.next_bytes()?))
}

fn scope_only(a: Args) -> Result<Bytes, CommandError> {
    Ok(parse_options(a, &["SCOPE"])?.scope)
}

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!(
        "bl.publish",
        -3,
        WRITE | DENYOOM | BLOCKING,
        keys(1, 1, 1),
        Bulletin,
        "0.1.0",
        "Publishes a JSON item to a board; replies its id. With BLOCK waits for room on a full board. BL.PUBLISH board json [SCOPE s] [TTL ms] [BLOCK ms]",
        |mut a| {
            let (board, item) = (a.next_bytes()?, a.next_bytes()?);
            let o = parse_options(a, &["SCOPE", "TTL", "BLOCK"])?;
            ok(BulletinCommand::Publish { scope: o.scope, board, item, ttl_ms: o.ttl_ms, block: o.block })
        }
    ),
    spec!(
        "bl.retrieve",
        -2,
        WRITE | BLOCKING,
        keys(1, 1, 1),
        Bulletin,
        "0.1.0",
        "The first unlocked item that matches, optionally locked under a lease and optionally waiting. BL.RETRIEVE board [SCOPE s] [WHERE field op value ...] [LOCK ms] [BLOCK ms]",
        |mut a| {
            let board = a.next_bytes()?;
            let o = parse_options(a, &["SCOPE", "WHERE", "LOCK", "BLOCK"])?;
            ok(BulletinCommand::Retrieve { scope: o.scope, board, filters: o.filters, lock_ms: o.lock_ms, block: o.block })
        }
    ),
    spec!(
        "bl.all",
        -2,
        READONLY,
        keys(1, 1, 1),
        Bulletin,
        "0.1.0",
        "Every item that matches, in publish order. BL.ALL board [SCOPE s] [WHERE field op value ...] [LIMIT n]",
        |mut a| {
            let board = a.next_bytes()?;
            let o = parse_options(a, &["SCOPE", "WHERE", "LIMIT"])?;
            ok(BulletinCommand::All { scope: o.scope, board, filters: o.filters, limit: o.limit })
        }
    ),
    spec!("bl.get", -3, READONLY | FAST, keys(1, 1, 1), Bulletin, "0.1.0", "One item by id. BL.GET board id [SCOPE s]", |mut a| {
        let (board, id) = board_id(&mut a)?;
        ok(BulletinCommand::Get { scope: scope_only(a)?, board, id })
    }),
    spec!(
        "bl.len",
        -2,
        READONLY | FAST,
        keys(1, 1, 1),
        Bulletin,
        "0.1.0",
        "Items on a board (locked ones included). BL.LEN board [SCOPE s]",
        |mut a| {
            let board = a.next_bytes()?;
            ok(BulletinCommand::Len { scope: scope_only(a)?, board })
        }
    ),
    spec!(
        "bl.extend",
        -5,
        WRITE | FAST,
        keys(1, 1, 1),
        Bulletin,
        "0.1.0",
        "Extends a lease. BL.EXTEND board id token ms [SCOPE s]",
        |mut a| {
            let (board, id) = board_id(&mut a)?;
            let (token, ms) = (token(&a.next_bytes()?)?, a.next_u64()?.max(1));
            ok(BulletinCommand::Extend { scope: scope_only(a)?, board, id, token, ms })
        }
    ),
    spec!(
        "bl.release",
        -4,
        WRITE | FAST,
        keys(1, 1, 1),
        Bulletin,
        "0.1.0",
        "Returns a locked item to the board (counted as a failed lease). BL.RELEASE board id token [SCOPE s]",
        |mut a| {
            let (board, id) = board_id(&mut a)?;
            let token = token(&a.next_bytes()?)?;
            ok(BulletinCommand::Release { scope: scope_only(a)?, board, id, token })
        }
    ),
    spec!(
        "bl.remove",
        -3,
        WRITE | FAST,
        keys(1, 1, 1),
        Bulletin,
        "0.1.0",
        "Removes an item (the ack); a locked item needs its token. BL.REMOVE board id [token] [SCOPE s]",
        |mut a| {
            let (board, id) = board_id(&mut a)?;
            let token = match a.peek() {
                Some(t) if !is_word(t, "SCOPE") => Some(token(&a.next_bytes()?)?),
                _ => None,
            };
            ok(BulletinCommand::Remove { scope: scope_only(a)?, board, id, token })
        }
    ),
    spec!(
        "bl.config",
        -2,
        WRITE,
        keys(1, 1, 1),
        Bulletin,
        "0.1.0",
        "A board's bound and overflow policy, and leases before dead letter. BL.CONFIG board [SCOPE s] [MAXLEN n] [OVERFLOW drop-oldest|reject-new] [MAXLEASES n]",
        parse_config
    ),
    spec!("bl.dead", -2, READONLY, keys(1, 1, 1), Bulletin, "0.1.0", "A board's dead-letter items. BL.DEAD board [SCOPE s]", |mut a| {
        let board = a.next_bytes()?;
        ok(BulletinCommand::Dead { scope: scope_only(a)?, board })
    }),
    spec!(
        "bl.redrive",
        -3,
        WRITE,
        keys(1, 1, 1),
        Bulletin,
        "0.1.0",
        "Moves a dead-letter item back to its board. BL.REDRIVE board id [SCOPE s]",
        |mut a| {
            let (board, id) = board_id(&mut a)?;
            ok(BulletinCommand::Redrive { scope: scope_only(a)?, board, id })
        }
    ),
    spec!(
        "bl.boards",
        -2,
        READONLY,
        NO_KEYS,
        Bulletin,
        "0.1.0",
        "Lists boards by pattern with a cursor (of one scope, or of all), each with its items, leased items and dead letters; replies [next-cursor, [board ...]]. BL.BOARDS cursor [MATCH pattern] [COUNT n] [SCOPE s]",
        |a| ok(BulletinCommand::Boards(parse_list(a, true)?))
    ),
];
