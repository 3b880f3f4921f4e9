//! Keyspace commands: generic key operations and strings.

use herald_protocol::command::{KeyCommand, StringCommand};
use herald_protocol::{CommandError, Reply};

use super::Cx;
use crate::broker::random_u64;
use crate::engine::keyspace::ExpireOutcome;
use crate::engine::keyspace::strings::{SetReply, resolve_expiry};

fn int(n: impl TryInto<i64>) -> Reply {
    Reply::Int(n.try_into().unwrap_or(i64::MAX))
}

fn bool_int(b: bool) -> Reply {
    Reply::Int(i64::from(b))
}

/// The absolute deadline an EXPIRE-family command asks for, with Redis's overflow checks.
fn expire_deadline(command: &str, amount: i64, millis: bool, absolute: bool, now: u64) -> Result<i64, CommandError> {
    let invalid = || CommandError::invalid_expire(command);
    let ms = if millis { amount } else { amount.checked_mul(1000).ok_or_else(invalid)? };
    let base = if absolute { 0 } else { now as i64 };
    ms.checked_add(base).ok_or_else(invalid)
}

pub fn execute_generic(cmd: KeyCommand, cx: &mut Cx<'_>) -> Result<Reply, CommandError> {
    let db = cx.db();
    let now = cx.now();
    let ks = &mut cx.state().keyspace;
    Ok(match cmd {
        KeyCommand::Del(keys) | KeyCommand::Unlink(keys) => int(ks.del(db, &keys, now)),
        KeyCommand::Exists(keys) => int(ks.exists_count(db, &keys, now)),
        KeyCommand::Touch(keys) => int(ks.touch(db, &keys, now)),
        KeyCommand::Type(key) => Reply::status(ks.type_of(db, &key, now)),
        KeyCommand::Keys(pattern) => Reply::bulks(ks.keys(db, &pattern, now)),
        KeyCommand::Scan(args) => {
            let page = ks.scan(db, &args, now);
            Reply::Array(vec![Reply::bulk(page.cursor.to_string()), Reply::bulks(page.keys)])
        }
        KeyCommand::RandomKey => Reply::bulk_or_nil(ks.random_key(db, now, random_u64)),
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
            bool_int(ks.expire(db, &key, at, condition, now) != ExpireOutcome::Skipped)
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
            Some((encoding, _)) => Reply::text(encoding),
            None => Reply::Nil,
        },
        KeyCommand::ObjectIdleTime(key) => match ks.object(db, &key, now) {
            Some((_, idle)) => int(idle),
            None => Reply::Nil,
        },
        KeyCommand::ObjectRefCount(key) => match ks.object(db, &key, now) {
            Some(_) => Reply::Int(1),
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

pub fn execute_string(cmd: StringCommand, cx: &mut Cx<'_>) -> Result<Reply, CommandError> {
    let db = cx.db();
    let now = cx.now();
    let ks = &mut cx.state().keyspace;
    Ok(match cmd {
        StringCommand::Get(key) => Reply::bulk_or_nil(ks.get(db, &key, now)?),
        StringCommand::Set(args) => match ks.set(db, &args, now)? {
            SetReply::Ok => Reply::ok(),
            SetReply::NotSet => Reply::Nil,
            SetReply::Old(old) => Reply::bulk_or_nil(old),
        },
        StringCommand::SetNx { key, value } => bool_int(ks.set_nx(db, &key, &value, now)),
        StringCommand::SetEx { command, key, expiry, value } => {
            ks.set_ex(db, &key, &value, expiry, command, now)?;
            Reply::ok()
        }
        StringCommand::GetSet { key, value } => Reply::bulk_or_nil(ks.get_set(db, &key, &value, now)?),
        StringCommand::GetDel(key) => Reply::bulk_or_nil(ks.get_del(db, &key, now)?),
        StringCommand::GetEx { key, expiry } => {
            if let Some(e) = expiry {
                resolve_expiry(e, now, "getex")?;
            }
            Reply::bulk_or_nil(ks.get_ex(db, &key, expiry, now)?)
        }
        StringCommand::MGet(keys) => Reply::Array(ks.mget(db, &keys, now).into_iter().map(Reply::bulk_or_nil).collect()),
        StringCommand::MSet(pairs) => {
            ks.mset(db, &pairs, false, now);
            Reply::ok()
        }
        StringCommand::MSetNx(pairs) => bool_int(ks.mset(db, &pairs, true, now)),
        StringCommand::Append { key, value } => int(ks.append(db, &key, &value, now)?),
        StringCommand::StrLen(key) => int(ks.strlen(db, &key, now)?),
        StringCommand::GetRange { key, start, end } => Reply::Bulk(ks.get_range(db, &key, start, end, now)?),
        StringCommand::SetRange { key, offset, value } => int(ks.set_range(db, &key, offset, &value, now)?),
        StringCommand::IncrBy { key, by } => Reply::Int(ks.incr_by(db, &key, by, now)?),
        StringCommand::IncrByFloat { key, by } => Reply::Bulk(ks.incr_by_float(db, &key, by, now)?),
    })
}
