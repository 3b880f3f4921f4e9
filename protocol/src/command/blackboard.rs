//! The blackboard (BB.*): scoped keys with revisions, compare-and-swap, watches and waits.

use bytes::Bytes;

use super::WaitMs;
use super::conn::spec;
use super::flags::*;
use super::{Command, CommandSpec, Group, ListArgs, NO_KEYS, keys, parse_list};
use crate::error::CommandError;
use crate::request::{Args, is_word};

/// BB.SET's expiry: milliseconds from now, or keep the key's current deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BbTtl {
    None,
    Millis(u64),
    Keep,
}

/// BB.SET's condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BbIf {
    Always,
    Nx,
    Xx,
    Revision(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum BbCommand {
    Set {
        scope: Bytes,
        key: Bytes,
        value: Bytes,
        ttl: BbTtl,
        condition: BbIf,
    },
    Get {
        scope: Bytes,
        key: Bytes,
    },
    Has {
        scope: Bytes,
        key: Bytes,
    },
    Del {
        scope: Bytes,
        keys: Vec<Bytes>,
    },
    Keys {
        scope: Bytes,
        pattern: Option<Bytes>,
    },
    Clear(Bytes),
    Stats(Bytes),
    /// `BB.MEMORY scope key [SAMPLES n]`: MEMORY USAGE for a key of a scope.
    Memory {
        scope: Bytes,
        key: Bytes,
        samples: usize,
    },
    /// BB.SCOPES: every name; `BB.SCOPES cursor [MATCH pattern] [COUNT n]`: a page with sizes.
    Scopes(Option<ListArgs>),
    Wait {
        scope: Bytes,
        key: Bytes,
        after: u64,
        timeout: WaitMs,
    },
    Changes {
        scope: Bytes,
        since: u64,
        count: usize,
    },
    GetAll {
        scope: Bytes,
        pattern: Option<Bytes>,
    },
    /// WATCH for keys of a scope: EXEC aborts if any of them changed.
    Watch {
        scope: Bytes,
        keys: Vec<Bytes>,
    },
}

fn ok(c: BbCommand) -> Result<Command, CommandError> {
    Ok(Command::Blackboard(c))
}

fn positive(a: &mut Args, command: &str) -> Result<u64, CommandError> {
    let n = a.next_i64()?;
    if n <= 0 {
        return Err(CommandError::invalid_expire(command));
    }
    Ok(n as u64)
}

fn parse_set(mut a: Args) -> Result<Command, CommandError> {
    let (scope, key, value) = (a.next_bytes()?, a.next_bytes()?, a.next_bytes()?);
    let (mut ttl, mut condition) = (BbTtl::None, BbIf::Always);
    while let Some(opt) = a.next_opt() {
        let ttl_set = ttl != BbTtl::None;
        let cond_set = condition != BbIf::Always;
        if is_word(&opt, "PX") && !ttl_set {
            ttl = BbTtl::Millis(positive(&mut a, "bb.set")?);
        } else if is_word(&opt, "EX") && !ttl_set {
            let secs = positive(&mut a, "bb.set")?;
            ttl = BbTtl::Millis(secs.checked_mul(1000).ok_or_else(|| CommandError::invalid_expire("bb.set"))?);
        } else if is_word(&opt, "KEEPTTL") && !ttl_set {
            ttl = BbTtl::Keep;
        } else if is_word(&opt, "IFREV") && !cond_set {
            condition = BbIf::Revision(a.next_u64()?);
        } else if is_word(&opt, "NX") && !cond_set {
            condition = BbIf::Nx;
        } else if is_word(&opt, "XX") && !cond_set {
            condition = BbIf::Xx;
        } else {
            return Err(CommandError::syntax());
        }
    }
    ok(BbCommand::Set { scope, key, value, ttl, condition })
}

fn parse_wait(mut a: Args) -> Result<Command, CommandError> {
    let (scope, key) = (a.next_bytes()?, a.next_bytes()?);
    let (mut after, mut timeout) = (0, None);
    while let Some(opt) = a.next_opt() {
        if is_word(&opt, "AFTER") {
            after = a.next_u64()?;
        } else if is_word(&opt, "TIMEOUT") {
            timeout = Some(WaitMs(a.next_u64()?));
        } else {
            return Err(CommandError::syntax());
        }
    }
    let timeout = timeout.ok_or(CommandError::fixed("ERR BB.WAIT needs TIMEOUT ms (0 waits forever)"))?;
    ok(BbCommand::Wait { scope, key, after, timeout })
}

fn parse_changes(mut a: Args) -> Result<Command, CommandError> {
    let scope = a.next_bytes()?;
    if !a.eat("SINCE") {
        return Err(CommandError::syntax());
    }
    let since = a.next_u64()?;
    let count = if a.eat("COUNT") { a.next_u64()?.max(1) as usize } else { 1000 };
    a.finish()?;
    ok(BbCommand::Changes { scope, since, count })
}

fn scope_key(mut a: Args) -> Result<(Bytes, Bytes), CommandError> {
    Ok((a.next_bytes()?, a.next_bytes()?))
}

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!(
        "bb.set",
        -4,
        WRITE | DENYOOM,
        keys(2, 2, 1),
        Blackboard,
        "0.1.0",
        "Sets a key in a scope; replies its new revision. BB.SET scope key value [PX ms | EX s | KEEPTTL] [IFREV rev | NX | XX]",
        parse_set
    ),
    spec!(
        "bb.get",
        3,
        READONLY | FAST,
        keys(2, 2, 1),
        Blackboard,
        "0.1.0",
        "Value, revision and remaining TTL of a key in a scope. BB.GET scope key",
        |a| {
            let (scope, key) = scope_key(a)?;
            ok(BbCommand::Get { scope, key })
        }
    ),
    spec!(
        "bb.memory",
        -3,
        READONLY,
        keys(2, 2, 1),
        Blackboard,
        "0.1.0",
        "Estimated bytes a key of a scope and its value cost, as MEMORY USAGE estimates a key. BB.MEMORY scope key [SAMPLES n]",
        |mut a| {
            let (scope, key) = (a.next_bytes()?, a.next_bytes()?);
            ok(BbCommand::Memory { scope, key, samples: super::memory::parse_samples(a)? })
        }
    ),
    spec!("bb.has", 3, READONLY | FAST, keys(2, 2, 1), Blackboard, "0.1.0", "Whether a key exists in a scope. BB.HAS scope key", |a| {
        let (scope, key) = scope_key(a)?;
        ok(BbCommand::Has { scope, key })
    }),
    spec!(
        "bb.watch",
        -3,
        NOSCRIPT | LOADING | STALE | FAST | TX_CONTROL,
        keys(2, -1, 1),
        Transactions,
        "0.1.0",
        "WATCH for keys of a blackboard scope: the next EXEC aborts if any of them changed. BB.WATCH scope key [key ...]",
        |mut a| {
            let scope = a.next_bytes()?;
            ok(BbCommand::Watch { scope, keys: a.rest() })
        }
    ),
    spec!("bb.del", -3, WRITE, keys(2, -1, 1), Blackboard, "0.1.0", "Deletes keys of a scope. BB.DEL scope key [key ...]", |mut a| {
        let scope = a.next_bytes()?;
        ok(BbCommand::Del { scope, keys: a.rest() })
    }),
    spec!(
        "bb.keys",
        -2,
        READONLY,
        NO_KEYS,
        Blackboard,
        "0.1.0",
        "Keys of a scope matching a glob pattern. BB.KEYS scope [pattern]",
        |mut a| {
            let scope = a.next_bytes()?;
            let pattern = a.next_opt();
            a.finish()?;
            ok(BbCommand::Keys { scope, pattern })
        }
    ),
    spec!(
        "bb.clear",
        2,
        WRITE,
        NO_KEYS,
        Blackboard,
        "0.1.0",
        "Deletes every key of a scope; replies how many. BB.CLEAR scope",
        |mut a| ok(BbCommand::Clear(a.next_bytes()?))
    ),
    spec!("bb.stats", 2, READONLY, NO_KEYS, Blackboard, "0.1.0", "A scope's keys, bytes and counters. BB.STATS scope", |mut a| ok(
        BbCommand::Stats(a.next_bytes()?)
    )),
    spec!(
        "bb.scopes",
        -1,
        READONLY,
        NO_KEYS,
        Blackboard,
        "0.1.0",
        "Names of all scopes (the global scope is the empty string); with a cursor, a page of scopes by pattern with their keys and journal: [next-cursor, [scope ...]]. BB.SCOPES [cursor [MATCH pattern] [COUNT n]]",
        |a| ok(BbCommand::Scopes(if a.is_empty() { None } else { Some(parse_list(a, false)?) }))
    ),
    spec!(
        "bb.wait",
        -5,
        READONLY | BLOCKING,
        keys(2, 2, 1),
        Blackboard,
        "0.1.0",
        "Waits until a key exists (or passes a revision); replies like BB.GET, nil on timeout. BB.WAIT scope key [AFTER rev] TIMEOUT ms",
        parse_wait
    ),
    spec!(
        "bb.getall",
        -2,
        READONLY,
        NO_KEYS,
        Blackboard,
        "0.1.0",
        "Every key of a scope with value, revision and TTL, and the journal position: the re-read to resume from. BB.GETALL scope [pattern]",
        |mut a| {
            let scope = a.next_bytes()?;
            let pattern = a.next_opt();
            a.finish()?;
            ok(BbCommand::GetAll { scope, pattern })
        }
    ),
    spec!(
        "bb.changes",
        -4,
        READONLY,
        NO_KEYS,
        Blackboard,
        "0.1.0",
        "Changes of a scope after a sequence number, to resume watching. BB.CHANGES scope SINCE seq [COUNT n]",
        parse_changes
    ),
];
