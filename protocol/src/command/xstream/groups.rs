//! The consumer-group side of Redis Streams as Redis 7.0 parses it: XGROUP's and XINFO's subcommands,
//! XPENDING, XCLAIM and XAUTOCLAIM.

use bytes::Bytes;

use super::super::conn::spec;
use super::super::flags::*;
use super::super::{Command, CommandSpec, Group, NO_KEYS, keys};
use super::{ClaimArgs, ClaimTime, PendingRange, XStreamCommand, end_bound, int, ok, start_bound, strict_id, subcommand_syntax};
use crate::error::CommandError;
use crate::number::parse_i64;
use crate::request::{Args, is_word};
use crate::stream_id::{self, StreamId};

/// The options of XGROUP CREATE (MKSTREAM, ENTRIESREAD) and SETID (ENTRIESREAD), read before the key.
fn parse_group_options(sub: &[u8], opts: &[Bytes], create: bool) -> Result<(bool, Option<i64>), CommandError> {
    let (mut mkstream, mut entries_read) = (false, None);
    let mut i = 0;
    while i < opts.len() {
        if create && is_word(&opts[i], "MKSTREAM") {
            mkstream = true;
            i += 1;
        } else if is_word(&opts[i], "ENTRIESREAD") && i + 1 < opts.len() {
            let n = int(&opts[i + 1])?;
            if n < -1 {
                return Err(CommandError::fixed("ERR value for ENTRIESREAD must be positive or -1"));
            }
            entries_read = Some(n);
            i += 2;
        } else {
            return Err(subcommand_syntax(sub, "XGROUP"));
        }
    }
    Ok((mkstream, entries_read))
}

fn parse_group_create(mut a: Args, create: bool) -> Result<Command, CommandError> {
    let sub = Bytes::copy_from_slice(a.subcommand());
    let (key, group, id) = (a.next_bytes()?, a.next_bytes()?, a.next_bytes()?);
    let opts = a.rest();
    let (mkstream, entries_read) = parse_group_options(&sub, &opts, create)?;
    let fits = if create { opts.len() <= 3 } else { opts.is_empty() || opts.len() == 2 };
    let excess = (!fits).then(|| subcommand_syntax(&sub, "XGROUP"));
    match create {
        true => ok(XStreamCommand::GroupCreate { key, group, id, mkstream, entries_read, excess }),
        false => ok(XStreamCommand::GroupSetId { key, group, id, entries_read, excess }),
    }
}

/// `[IDLE ms] start end count [consumer]` (`xpendingCommand`): count and IDLE before the bounds.
pub(super) fn parse_pending(mut a: Args) -> Result<Command, CommandError> {
    let (key, group) = (a.next_bytes()?, a.next_bytes()?);
    let rest = a.rest();
    if !rest.is_empty() && !(3..=6).contains(&rest.len()) {
        return Err(CommandError::syntax());
    }
    if rest.is_empty() {
        return ok(XStreamCommand::Pending { key, group, range: None });
    }
    let (mut at, mut min_idle) = (0, 0);
    if is_word(&rest[0], "IDLE") {
        min_idle = int(&rest[1])?;
        if rest.len() < 5 {
            return Err(CommandError::syntax());
        }
        at = 2;
    }
    let count = int(&rest[at + 2])?.max(0) as u64;
    let (start, end) = (start_bound(&rest[at])?, end_bound(&rest[at + 1])?);
    let consumer = rest.get(at + 3).cloned();
    ok(XStreamCommand::Pending { key, group, range: Some(PendingRange { min_idle, start, end, count, consumer }) })
}

/// `min-idle-time id [id ...] [IDLE ms] [TIME unix-ms] [RETRYCOUNT n] [FORCE] [JUSTID] [LASTID id]`.
fn parse_claim_args(rest: &[Bytes]) -> Result<ClaimArgs, CommandError> {
    let min_idle = parse_i64(&rest[0]).ok_or(CommandError::fixed("ERR Invalid min-idle-time argument for XCLAIM"))?.max(0) as u64;
    let ids: Vec<StreamId> = rest[1..].iter().map_while(|raw| stream_id::parse_strict(raw)).collect();
    let mut claim = ClaimArgs { min_idle, ids, idle: None, retry_count: None, force: false, just_id: false, last_id: None };
    let mut i = 1 + claim.ids.len();
    let number = |raw: &[u8], what: &str| parse_i64(raw).ok_or(CommandError::new(format!("ERR Invalid {what} option argument for XCLAIM")));
    while i < rest.len() {
        let opt = &rest[i];
        let more = i + 1 < rest.len();
        if is_word(opt, "FORCE") {
            claim.force = true;
        } else if is_word(opt, "JUSTID") {
            claim.just_id = true;
        } else if is_word(opt, "IDLE") && more {
            i += 1;
            claim.idle = Some(ClaimTime::Idle(number(&rest[i], "IDLE")?));
        } else if is_word(opt, "TIME") && more {
            i += 1;
            claim.idle = Some(ClaimTime::At(number(&rest[i], "TIME")?));
        } else if is_word(opt, "RETRYCOUNT") && more {
            i += 1;
            // Redis keeps a negative RETRYCOUNT as "not given".
            claim.retry_count = u64::try_from(number(&rest[i], "RETRYCOUNT")?).ok();
        } else if is_word(opt, "LASTID") && more {
            i += 1;
            claim.last_id = Some(strict_id(&rest[i])?);
        } else {
            return Err(CommandError::new(format!("ERR Unrecognized XCLAIM option '{}'", String::from_utf8_lossy(opt))));
        }
        i += 1;
    }
    Ok(claim)
}

pub(super) fn parse_claim(mut a: Args) -> Result<Command, CommandError> {
    let (key, group, consumer) = (a.next_bytes()?, a.next_bytes()?, a.next_bytes()?);
    let args = parse_claim_args(&a.rest());
    ok(XStreamCommand::Claim { key, group, consumer, args })
}

pub(super) fn parse_autoclaim(mut a: Args) -> Result<Command, CommandError> {
    let (key, group, consumer) = (a.next_bytes()?, a.next_bytes()?, a.next_bytes()?);
    let min_idle =
        parse_i64(&a.next_bytes()?).ok_or(CommandError::fixed("ERR Invalid min-idle-time argument for XAUTOCLAIM"))?.max(0) as u64;
    let start = start_bound(&a.next_bytes()?)?;
    let (mut count, mut just_id) = (100, false);
    // Redis bounds COUNT so that its attempts (10 per entry) and reply buffer cannot overflow.
    const MAX_COUNT: i64 = i64::MAX / 16;
    while let Some(opt) = a.next_opt() {
        if is_word(&opt, "COUNT") && !a.is_empty() {
            let n = parse_i64(&a.next_bytes()?).filter(|n| (1..=MAX_COUNT).contains(n));
            count = n.ok_or(CommandError::fixed("ERR COUNT must be > 0"))? as u64;
        } else if is_word(&opt, "JUSTID") {
            just_id = true;
        } else {
            return Err(CommandError::syntax());
        }
    }
    ok(XStreamCommand::AutoClaim { key, group, consumer, min_idle, start, count, just_id })
}

/// XINFO STREAM's `[FULL [COUNT n]]`, judged once the key is found.
fn parse_info_full(sub: &[u8], opts: &[Bytes]) -> Result<Option<u64>, CommandError> {
    let syntax = || subcommand_syntax(sub, "XINFO");
    match opts {
        [] => Ok(None),
        [full] if is_word(full, "FULL") => Ok(Some(10)),
        [full, count, n] if is_word(full, "FULL") && is_word(count, "COUNT") => Ok(Some(int(n)?.max(0) as u64)),
        _ => Err(syntax()),
    }
}

const GROUP_W: u32 = WRITE;

pub(super) const XGROUP_SUBS: &[CommandSpec] = &[
    spec!("xgroup|create", -5, WRITE | DENYOOM, keys(2, 2, 1), Stream, "5.0.0", "Create a consumer group.", |a| parse_group_create(
        a, true
    )),
    spec!(
        "xgroup|setid",
        -5,
        GROUP_W,
        keys(2, 2, 1),
        Stream,
        "5.0.0",
        "Set a consumer group to an arbitrary last delivered ID value.",
        |a| { parse_group_create(a, false) }
    ),
    spec!("xgroup|destroy", 4, GROUP_W, keys(2, 2, 1), Stream, "5.0.0", "Destroy a consumer group.", |mut a| ok(
        XStreamCommand::GroupDestroy { key: a.next_bytes()?, group: a.next_bytes()? }
    )),
    spec!(
        "xgroup|createconsumer",
        5,
        WRITE | DENYOOM,
        keys(2, 2, 1),
        Stream,
        "6.2.0",
        "Create a consumer in a consumer group.",
        |mut a| ok(XStreamCommand::GroupCreateConsumer { key: a.next_bytes()?, group: a.next_bytes()?, consumer: a.next_bytes()? })
    ),
    spec!("xgroup|delconsumer", 5, GROUP_W, keys(2, 2, 1), Stream, "5.0.0", "Delete a consumer from a consumer group.", |mut a| ok(
        XStreamCommand::GroupDelConsumer { key: a.next_bytes()?, group: a.next_bytes()?, consumer: a.next_bytes()? }
    )),
    spec!("xgroup|help", 2, LOADING | STALE, NO_KEYS, Stream, "5.0.0", "Show helpful text about the different subcommands", |_| ok(
        XStreamCommand::GroupHelp
    )),
];

pub(super) const XINFO_SUBS: &[CommandSpec] = &[
    spec!("xinfo|consumers", 4, READONLY, keys(2, 2, 1), Stream, "5.0.0", "List the consumers in a consumer group", |mut a| ok(
        XStreamCommand::InfoConsumers { key: a.next_bytes()?, group: a.next_bytes()? }
    )),
    spec!("xinfo|groups", 3, READONLY, keys(2, 2, 1), Stream, "5.0.0", "List the consumer groups of a stream", |mut a| ok(
        XStreamCommand::InfoGroups(a.next_bytes()?)
    )),
    spec!("xinfo|stream", -3, READONLY, keys(2, 2, 1), Stream, "5.0.0", "Get information about a stream", |mut a| {
        let sub = Bytes::copy_from_slice(a.subcommand());
        let key = a.next_bytes()?;
        ok(XStreamCommand::InfoStream { key, full: parse_info_full(&sub, &a.rest()) })
    }),
    spec!("xinfo|help", 2, LOADING | STALE, NO_KEYS, Stream, "5.0.0", "Show helpful text about the different subcommands", |_| ok(
        XStreamCommand::InfoHelp
    )),
];
