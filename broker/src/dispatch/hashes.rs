//! Hash commands.

use herald_protocol::command::HashCommand;
use herald_protocol::{CommandError, Reply};

use super::Cx;
use super::elements::{pairs, resp3, scan_options, scan_page};
use super::keys::{bool_int, int};

pub fn execute(cmd: HashCommand, cx: &mut Cx<'_>) -> Result<Reply, CommandError> {
    let db = cx.db();
    let now = cx.now();
    let resp3 = resp3(cx);
    let ks = &mut cx.state().keyspace;
    Ok(match cmd {
        HashCommand::Set { key, pairs, legacy } => {
            let added = ks.hset(db, &key, &pairs, now)?;
            if legacy { Reply::ok() } else { int(added) }
        }
        HashCommand::SetNx { key, field, value } => bool_int(ks.hsetnx(db, &key, &field, &value, now)?),
        HashCommand::Get { key, field } => Reply::bulk_or_nil(ks.hget(db, &key, &field, now)?),
        HashCommand::MGet { key, fields } => Reply::Array(ks.hmget(db, &key, &fields, now)?.into_iter().map(Reply::bulk_or_nil).collect()),
        HashCommand::Del { key, fields } => int(ks.hdel(db, &key, &fields, now)?),
        HashCommand::Len(key) => int(ks.hlen(db, &key, now)?),
        HashCommand::StrLen { key, field } => int(ks.hstrlen(db, &key, &field, now)?),
        HashCommand::Exists { key, field } => bool_int(ks.hexists(db, &key, &field, now)?),
        HashCommand::IncrBy { key, field, by } => Reply::Int(ks.hincrby(db, &key, &field, by, now)?),
        HashCommand::IncrByFloat { key, field, by } => Reply::Bulk(ks.hincrbyfloat(db, &key, &field, by, now)?),
        HashCommand::GetAll(key) => {
            Reply::Map(ks.hgetall(db, &key, now)?.into_iter().map(|(f, v)| (Reply::Bulk(f), Reply::Bulk(v))).collect())
        }
        HashCommand::Keys(key) => pairs(ks.hgetall(db, &key, now)?, false, resp3),
        HashCommand::Vals(key) => Reply::bulks(ks.hgetall(db, &key, now)?.into_iter().map(|(_, v)| v)),
        HashCommand::RandField { key, count: None } => {
            let (ks, mut rand) = cx.state().keyspace_random();
            Reply::bulk_or_nil(ks.hrandfield_one(db, &key, now, &mut rand)?)
        }
        HashCommand::RandField { key, count: Some((count, with_values)) } => {
            let (ks, mut rand) = cx.state().keyspace_random();
            match ks.hrandfield(db, &key, count, now, &mut rand)? {
                None => Reply::Array(Vec::new()),
                Some(found) => pairs(found, with_values, resp3),
            }
        }
        HashCommand::Scan(s) => match scan_options(cx, &s.key, "hash", s.scan)? {
            None => scan_page(0, Vec::new()),
            Some(scan) => {
                let (cursor, found) = cx.state().keyspace.hscan(db, &s.key, &scan, now)?;
                scan_page(cursor, found.into_iter().flat_map(|(f, v)| [Reply::Bulk(f), Reply::Bulk(v)]).collect())
            }
        },
    })
}
