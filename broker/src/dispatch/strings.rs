//! String commands.

use herald_protocol::command::{self, StringCommand};
use herald_protocol::{CommandError, Reply};

use super::Cx;
use super::keys::{bool_int, int};
use crate::engine::keyspace::lcs;
use crate::engine::keyspace::strings::{Expiry, SetArgs, SetCondition, SetReply, resolve_expiry};

fn expiry(e: command::Expiry) -> Expiry {
    match e {
        command::Expiry::Ex(s) => Expiry::Ex(s),
        command::Expiry::Px(ms) => Expiry::Px(ms),
        command::Expiry::ExAt(s) => Expiry::ExAt(s),
        command::Expiry::PxAt(ms) => Expiry::PxAt(ms),
        command::Expiry::Persist => Expiry::Persist,
    }
}

fn set_args(a: command::SetArgs) -> SetArgs {
    let condition = match a.condition {
        command::SetCondition::Always => SetCondition::Always,
        command::SetCondition::Nx => SetCondition::Nx,
        command::SetCondition::Xx => SetCondition::Xx,
    };
    SetArgs { key: a.key, value: a.value, condition, get: a.get, expiry: a.expiry.map(expiry), keep_ttl: a.keep_ttl }
}

pub fn execute(cmd: StringCommand, cx: &mut Cx<'_>) -> Result<Reply, CommandError> {
    let db = cx.db();
    let now = cx.now();
    let ks = &mut cx.state().keyspace;
    Ok(match cmd {
        StringCommand::Get(key) => Reply::bulk_or_nil(ks.get(db, &key, now)?),
        StringCommand::Set(args) => match ks.set(db, &set_args(args), now)? {
            SetReply::Ok => Reply::ok(),
            SetReply::NotSet => Reply::Nil,
            SetReply::Old(old) => Reply::bulk_or_nil(old),
        },
        StringCommand::SetNx { key, value } => bool_int(ks.set_nx(db, &key, &value, now)),
        StringCommand::SetEx { command, key, expiry, value } => {
            ks.set_ex(db, &key, &value, self::expiry(expiry), command, now)?;
            Reply::ok()
        }
        StringCommand::GetSet { key, value } => Reply::bulk_or_nil(ks.get_set(db, &key, &value, now)?),
        StringCommand::GetDel(key) => Reply::bulk_or_nil(ks.get_del(db, &key, now)?),
        StringCommand::GetEx { key, expiry: e } => {
            let expiry = e.map(self::expiry);
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
        StringCommand::Lcs { a, b, options } => {
            let (a, b) = ks.lcs_inputs(db, &a, &b, now)?;
            let options = options?;
            lcs_reply(lcs::lcs(&a, &b, options.min_match_len, ks.settings().max_string_len)?, options)
        }
    })
}

/// LCS's reply: the subsequence, its length (LEN), or the matched ranges and the length (IDX).
fn lcs_reply(found: lcs::Lcs, options: command::LcsOptions) -> Reply {
    if options.idx {
        let range = |(start, end): (u32, u32)| Reply::Array(vec![int(start as usize), int(end as usize)]);
        let matches = found
            .matches
            .iter()
            .map(|m| {
                let mut run = vec![range(m.a), range(m.b)];
                if options.with_match_len {
                    run.push(int(m.len as usize));
                }
                Reply::Array(run)
            })
            .collect();
        Reply::fields(vec![("matches", Reply::Array(matches)), ("len", int(found.len as usize))])
    } else if options.len {
        int(found.len as usize)
    } else {
        Reply::bulk(found.sequence)
    }
}
