//! Generic key commands: existence, deletion, renaming, scanning and expiry of keys of any type.

use bytes::Bytes;

use super::conn::spec;
use super::flags::*;
use super::{Command, CommandSpec, Group, NO_KEYS, keys};
use crate::error::CommandError;
use crate::request::{Args, is_word};

#[derive(Debug, Clone, PartialEq)]
pub enum KeyCommand {
    Del(Vec<Bytes>),
    Unlink(Vec<Bytes>),
    Exists(Vec<Bytes>),
    Touch(Vec<Bytes>),
    Type(Bytes),
    Keys(Bytes),
    Scan(ScanArgs),
    RandomKey,
    Rename {
        from: Bytes,
        to: Bytes,
        only_if_new: bool,
    },
    Copy {
        source: Bytes,
        destination: Bytes,
        db: Option<i64>,
        replace: bool,
    },
    Move {
        key: Bytes,
        db: i64,
    },
    /// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT: `amount` is in seconds or ms, relative or absolute.
    Expire {
        command: &'static str,
        key: Bytes,
        amount: i64,
        millis: bool,
        absolute: bool,
        condition: ExpireCondition,
    },
    /// TTL / PTTL.
    Ttl {
        key: Bytes,
        millis: bool,
    },
    /// EXPIRETIME / PEXPIRETIME.
    ExpireTime {
        key: Bytes,
        millis: bool,
    },
    Persist(Bytes),
    ObjectEncoding(Bytes),
    ObjectFreq(Bytes),
    ObjectIdleTime(Bytes),
    ObjectRefCount(Bytes),
    ObjectHelp,
}

/// EXPIRE's NX / XX / GT / LT options. XX may combine with GT or LT; a key without an expiry counts
/// as expiring infinitely late (so GT never applies to it and LT always does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExpireCondition {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanArgs {
    pub cursor: u64,
    pub pattern: Option<Bytes>,
    pub count: usize,
    pub kind: Option<Bytes>,
}

fn ok(c: KeyCommand) -> Result<Command, CommandError> {
    Ok(Command::Keys(c))
}

fn parse_expire(command: &'static str, millis: bool, absolute: bool, mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    let amount = a.next_i64()?;
    let mut c = ExpireCondition::default();
    while let Some(opt) = a.next_opt() {
        if is_word(&opt, "NX") {
            c.nx = true;
        } else if is_word(&opt, "XX") {
            c.xx = true;
        } else if is_word(&opt, "GT") {
            c.gt = true;
        } else if is_word(&opt, "LT") {
            c.lt = true;
        } else {
            return Err(CommandError::new(format!("ERR Unsupported option {}", String::from_utf8_lossy(&opt))));
        }
    }
    if c.nx && (c.xx || c.gt || c.lt) {
        return Err(CommandError::fixed("ERR NX and XX, GT or LT options at the same time are not compatible"));
    }
    if c.gt && c.lt {
        return Err(CommandError::fixed("ERR GT and LT options at the same time are not compatible"));
    }
    let condition = c;
    ok(KeyCommand::Expire { command, key, amount, millis, absolute, condition })
}

/// Redis parses the cursor with `strtoul`: any 64-bit value, negatives wrapping around.
pub(crate) fn parse_cursor(raw: &[u8]) -> Result<u64, CommandError> {
    let invalid = || CommandError::fixed("ERR invalid cursor");
    let text = std::str::from_utf8(raw).map_err(|_| invalid())?;
    if let Ok(v) = text.parse::<u64>() {
        return Ok(v);
    }
    text.parse::<i64>().map(|v| v as u64).map_err(|_| invalid())
}

fn parse_scan(mut a: Args) -> Result<Command, CommandError> {
    let cursor = parse_cursor(&a.next_bytes()?)?;
    ok(KeyCommand::Scan(parse_scan_options(&mut a, cursor, true)?))
}

/// `[MATCH pattern] [COUNT count]`, and `[TYPE type]` when `with_type` (SCAN itself): the options of
/// Redis's `scanGenericCommand`, in any order.
pub(crate) fn parse_scan_options(a: &mut Args, cursor: u64, with_type: bool) -> Result<ScanArgs, CommandError> {
    let mut scan = ScanArgs { cursor, pattern: None, count: 10, kind: None };
    while let Some(opt) = a.next_opt() {
        if a.is_empty() {
            return Err(CommandError::syntax());
        }
        if is_word(&opt, "MATCH") {
            scan.pattern = Some(a.next_bytes()?);
        } else if is_word(&opt, "COUNT") {
            scan.count = usize::try_from(a.next_i64()?).ok().filter(|n| *n >= 1).ok_or(CommandError::syntax())?;
        } else if with_type && is_word(&opt, "TYPE") {
            scan.kind = Some(a.next_bytes()?);
        } else {
            return Err(CommandError::syntax());
        }
    }
    Ok(scan)
}

fn parse_copy(mut a: Args) -> Result<Command, CommandError> {
    let source = a.next_bytes()?;
    let destination = a.next_bytes()?;
    let (mut db, mut replace) = (None, false);
    while let Some(opt) = a.next_opt() {
        if is_word(&opt, "REPLACE") {
            replace = true;
        } else if is_word(&opt, "DB") && !a.is_empty() {
            db = Some(a.next_i64()?);
        } else {
            return Err(CommandError::syntax());
        }
    }
    ok(KeyCommand::Copy { source, destination, db, replace })
}

fn parse_rename(only_if_new: bool, mut a: Args) -> Result<Command, CommandError> {
    ok(KeyCommand::Rename { from: a.next_bytes()?, to: a.next_bytes()?, only_if_new })
}

fn key_list(a: Args) -> Vec<Bytes> {
    a.rest()
}

fn one_key(a: &mut Args) -> Result<Bytes, CommandError> {
    a.next_bytes()
}

const OBJECT_SUBS: &[CommandSpec] = &[
    spec!("object|encoding", 3, READONLY, keys(2, 2, 1), Generic, "2.2.3", "Returns the internal encoding of a key's value.", |mut a| ok(
        KeyCommand::ObjectEncoding(one_key(&mut a)?)
    )),
    spec!(
        "object|freq",
        3,
        READONLY,
        keys(2, 2, 1),
        Generic,
        "4.0.0",
        "Returns the logarithmic access frequency counter of a key's value.",
        |mut a| ok(KeyCommand::ObjectFreq(one_key(&mut a)?))
    ),
    spec!(
        "object|idletime",
        3,
        READONLY,
        keys(2, 2, 1),
        Generic,
        "2.2.3",
        "Returns the time since the last access to a key's value.",
        |mut a| ok(KeyCommand::ObjectIdleTime(one_key(&mut a)?))
    ),
    spec!("object|refcount", 3, READONLY, keys(2, 2, 1), Generic, "2.2.3", "Returns the reference count of a value of a key.", |mut a| ok(
        KeyCommand::ObjectRefCount(one_key(&mut a)?)
    )),
    spec!("object|help", 2, LOADING | STALE, NO_KEYS, Generic, "6.2.0", "Returns helpful text about the different subcommands.", |_| ok(
        KeyCommand::ObjectHelp
    )),
];

fn container(_: Args) -> Result<Command, CommandError> {
    unreachable!("OBJECT alone fails its arity check")
}

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!("del", -2, WRITE, keys(1, -1, 1), Generic, "1.0.0", "Deletes one or more keys.", |a| ok(KeyCommand::Del(key_list(a)))),
    spec!("unlink", -2, WRITE | FAST, keys(1, -1, 1), Generic, "4.0.0", "Asynchronously deletes one or more keys.", |a| ok(
        KeyCommand::Unlink(key_list(a))
    )),
    spec!("exists", -2, READONLY | FAST, keys(1, -1, 1), Generic, "1.0.0", "Determines whether one or more keys exist.", |a| ok(
        KeyCommand::Exists(key_list(a))
    )),
    spec!(
        "touch",
        -2,
        READONLY | FAST,
        keys(1, -1, 1),
        Generic,
        "3.2.1",
        "Returns the number of existing keys out of those specified after updating the time they were last accessed.",
        |a| ok(KeyCommand::Touch(key_list(a)))
    ),
    spec!("type", 2, READONLY | FAST, keys(1, 1, 1), Generic, "1.0.0", "Determines the type of value stored at a key.", |mut a| ok(
        KeyCommand::Type(one_key(&mut a)?)
    )),
    spec!("keys", 2, READONLY | DANGEROUS, NO_KEYS, Generic, "1.0.0", "Returns all key names that match a pattern.", |mut a| ok(
        KeyCommand::Keys(a.next_bytes()?)
    )),
    spec!("scan", -2, READONLY, NO_KEYS, Generic, "2.8.0", "Iterates over the key names in the database.", parse_scan),
    spec!("randomkey", 1, READONLY, NO_KEYS, Generic, "1.0.0", "Returns a random key name from the database.", |_| ok(
        KeyCommand::RandomKey
    )),
    spec!("rename", 3, WRITE, keys(1, 2, 1), Generic, "1.0.0", "Renames a key and overwrites the destination.", |a| parse_rename(false, a)),
    spec!(
        "renamenx",
        3,
        WRITE | FAST,
        keys(1, 2, 1),
        Generic,
        "1.0.0",
        "Renames a key only when the target key name doesn't exist.",
        |a| parse_rename(true, a)
    ),
    spec!("copy", -3, WRITE | DENYOOM, keys(1, 2, 1), Generic, "6.2.0", "Copies the value of a key to a new key.", parse_copy),
    spec!("move", 3, WRITE | FAST, keys(1, 1, 1), Generic, "1.0.0", "Moves a key to another database.", |mut a| ok(KeyCommand::Move {
        key: a.next_bytes()?,
        db: a.next_i64()?
    })),
    spec!("expire", -3, WRITE | FAST, keys(1, 1, 1), Generic, "1.0.0", "Sets the expiration time of a key in seconds.", |a| parse_expire(
        "expire", false, false, a
    )),
    spec!("pexpire", -3, WRITE | FAST, keys(1, 1, 1), Generic, "2.6.0", "Sets the expiration time of a key in milliseconds.", |a| {
        parse_expire("pexpire", true, false, a)
    }),
    spec!("expireat", -3, WRITE | FAST, keys(1, 1, 1), Generic, "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", |a| {
        parse_expire("expireat", false, true, a)
    }),
    spec!(
        "pexpireat",
        -3,
        WRITE | FAST,
        keys(1, 1, 1),
        Generic,
        "2.6.0",
        "Sets the expiration time of a key to a Unix milliseconds timestamp.",
        |a| parse_expire("pexpireat", true, true, a)
    ),
    spec!("ttl", 2, READONLY | FAST, keys(1, 1, 1), Generic, "1.0.0", "Returns the expiration time in seconds of a key.", |mut a| ok(
        KeyCommand::Ttl { key: one_key(&mut a)?, millis: false }
    )),
    spec!(
        "pttl",
        2,
        READONLY | FAST,
        keys(1, 1, 1),
        Generic,
        "2.6.0",
        "Returns the expiration time in milliseconds of a key.",
        |mut a| ok(KeyCommand::Ttl { key: one_key(&mut a)?, millis: true })
    ),
    spec!(
        "expiretime",
        2,
        READONLY | FAST,
        keys(1, 1, 1),
        Generic,
        "7.0.0",
        "Returns the expiration time of a key as a Unix timestamp.",
        |mut a| ok(KeyCommand::ExpireTime { key: one_key(&mut a)?, millis: false })
    ),
    spec!(
        "pexpiretime",
        2,
        READONLY | FAST,
        keys(1, 1, 1),
        Generic,
        "7.0.0",
        "Returns the expiration time of a key as a Unix milliseconds timestamp.",
        |mut a| ok(KeyCommand::ExpireTime { key: one_key(&mut a)?, millis: true })
    ),
    spec!("persist", 2, WRITE | FAST, keys(1, 1, 1), Generic, "2.2.0", "Removes the expiration time of a key.", |mut a| ok(
        KeyCommand::Persist(one_key(&mut a)?)
    )),
    CommandSpec {
        subcommands: OBJECT_SUBS,
        ..spec!("object", -2, 0, NO_KEYS, Generic, "2.2.3", "A container for object introspection commands.", container)
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::parse_request;
    use crate::request::Request;

    fn parse(parts: &[&str]) -> Result<Command, CommandError> {
        parse_request(Request::from_strs(parts)).map(|(_, c)| c)
    }

    #[test]
    fn expire_options() {
        let Command::Keys(KeyCommand::Expire { condition, .. }) = parse(&["EXPIRE", "k", "5", "xx", "gt"]).unwrap() else { panic!() };
        assert_eq!(condition, ExpireCondition { xx: true, gt: true, ..Default::default() });
        assert!(parse(&["EXPIRE", "k", "5", "nx", "xx"]).unwrap_err().0.contains("not compatible"));
        assert_eq!(parse(&["EXPIRE", "k", "5", "foo"]).unwrap_err().0, "ERR Unsupported option foo");
    }

    #[test]
    fn scan_options() {
        assert_eq!(parse(&["SCAN", "x"]).unwrap_err().0, "ERR invalid cursor");
        assert_eq!(parse(&["SCAN", "0", "COUNT", "0"]).unwrap_err(), CommandError::syntax());
        assert_eq!(parse(&["SCAN", "0", "MATCH"]).unwrap_err(), CommandError::syntax());
        assert!(parse(&["SCAN", "-1"]).is_ok());
    }

    #[test]
    fn object_subcommands() {
        assert!(parse(&["OBJECT", "ENCODING", "k"]).is_ok());
        assert_eq!(parse(&["OBJECT", "foo"]).unwrap_err().0, "ERR unknown subcommand 'foo'. Try OBJECT HELP.");
        assert_eq!(parse(&["OBJECT"]).unwrap_err().0, "ERR wrong number of arguments for 'object' command");
    }
}
