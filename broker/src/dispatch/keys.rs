//! Generic key commands: any type's keys (deletion, existence, renaming, scanning, expiry, OBJECT).

use herald_protocol::command::{self, KeyCommand};
use herald_protocol::{CommandError, Reply};

use super::Cx;
use crate::engine::keyspace::{ExpireCondition, ExpireOutcome, ScanArgs};

pub(super) fn int(n: impl TryInto<i64>) -> Reply {
    Reply::Int(n.try_into().unwrap_or(i64::MAX))
}

pub(super) fn bool_int(b: bool) -> Reply {
    Reply::Int(i64::from(b))
}

fn condition(c: command::ExpireCondition) -> ExpireCondition {
    ExpireCondition { nx: c.nx, xx: c.xx, gt: c.gt, lt: c.lt }
}

/// The absolute deadline an EXPIRE-family command asks for, with Redis's overflow checks.
fn expire_deadline(command: &str, amount: i64, millis: bool, absolute: bool, now: u64) -> Result<i64, CommandError> {
    let invalid = || CommandError::invalid_expire(command);
    let ms = if millis { amount } else { amount.checked_mul(1000).ok_or_else(invalid)? };
    let base = if absolute { 0 } else { now as i64 };
    ms.checked_add(base).ok_or_else(invalid)
}

pub fn execute(cmd: KeyCommand, cx: &mut Cx<'_>) -> Result<Reply, CommandError> {
    let db = cx.db();
    let now = cx.now();
    let state = cx.state();
    let ks = &mut state.keyspace;
    Ok(match cmd {
        KeyCommand::Del(keys) | KeyCommand::Unlink(keys) => int(ks.del(db, &keys, now)),
        KeyCommand::Exists(keys) => int(ks.exists_count(db, &keys, now)),
        KeyCommand::Touch(keys) => int(ks.touch(db, &keys, now)),
        KeyCommand::Type(key) => Reply::status(ks.type_of(db, &key, now)),
        KeyCommand::Keys(pattern) => Reply::bulks(ks.keys(db, &pattern, now)),
        KeyCommand::Scan(a) => {
            let args = ScanArgs { cursor: a.cursor, pattern: a.pattern, count: a.count, kind: a.kind };
            let page = ks.scan(db, &args, now);
            Reply::Array(vec![Reply::bulk(page.cursor.to_string()), Reply::bulks(page.keys)])
        }
        KeyCommand::RandomKey => Reply::bulk_or_nil(state.random_key(db, now)),
        KeyCommand::Rename { from, to, only_if_new } => {
            let renamed = ks.rename(db, &from, &to, only_if_new, now)?;
            if only_if_new { bool_int(renamed) } else { Reply::ok() }
        }
        KeyCommand::Copy { source, destination, db: target, replace } => {
            let to_db = match target {
                Some(i) => ks.db_index(i)?,
                None => db,
            };
            bool_int(ks.copy(db, &source, to_db, &destination, replace, now)?)
        }
        KeyCommand::Move { key, db: target } => {
            let to_db = ks.db_index(target)?;
            bool_int(ks.move_key(db, &key, to_db, now)?)
        }
        KeyCommand::Expire { command, key, amount, millis, absolute, condition } => {
            let at = expire_deadline(command, amount, millis, absolute, now)?;
            bool_int(ks.expire(db, &key, at, self::condition(condition), now) != ExpireOutcome::Skipped)
        }
        KeyCommand::Ttl { key, millis } => match ks.deadline(db, &key, now) {
            Err(code) => Reply::Int(code),
            Ok(None) => Reply::Int(-1),
            Ok(Some(at)) => {
                let left = at.saturating_sub(now) as i64;
                Reply::Int(if millis { left } else { (left + 500) / 1000 })
            }
        },
        KeyCommand::ExpireTime { key, millis } => match ks.deadline(db, &key, now) {
            Err(code) => Reply::Int(code),
            Ok(None) => Reply::Int(-1),
            Ok(Some(at)) => Reply::Int(if millis { at as i64 } else { (at / 1000) as i64 }),
        },
        KeyCommand::Persist(key) => bool_int(ks.persist(db, &key, now)),
        KeyCommand::ObjectEncoding(key) => match ks.object(db, &key, now) {
            Some((encoding, ..)) => Reply::text(encoding),
            None => Reply::Nil,
        },
        KeyCommand::ObjectIdleTime(key) => match ks.object(db, &key, now) {
            Some((_, idle, _)) => int(idle),
            None => Reply::Nil,
        },
        KeyCommand::ObjectRefCount(key) => match ks.object(db, &key, now) {
            Some((.., refcount)) => Reply::Int(refcount),
            None => Reply::Nil,
        },
        KeyCommand::ObjectFreq(key) => match ks.object(db, &key, now) {
            Some(_) => {
                return Err(CommandError::fixed(
                    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
                ));
            }
            None => Reply::Nil,
        },
        KeyCommand::ObjectHelp => super::server::help(
            "OBJECT",
            &[
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>",
                "    Return the access frequency index of the <key>. The returned integer is",
                "    proportional to the logarithm of the recent access frequency of the key.",
                "IDLETIME <key>",
                "    Return the idle time of the <key>, that is the approximated number of",
                "    seconds elapsed since the last access to the key.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
            ],
        ),
    })
}
