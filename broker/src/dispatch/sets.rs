//! Set commands.

use herald_protocol::command::{SetAlgebra, SetCommand};
use herald_protocol::{CommandError, Reply};

use super::Cx;
use super::elements::{scan_options, scan_page};
use super::keys::{bool_int, int};
use crate::engine::keyspace::sets::SetOp;

fn set_reply(members: Vec<bytes::Bytes>) -> Reply {
    Reply::Set(members.into_iter().map(Reply::Bulk).collect())
}

pub fn execute(cmd: SetCommand, cx: &mut Cx<'_>) -> Result<Reply, CommandError> {
    let db = cx.db();
    let now = cx.now();
    let ks = &mut cx.state().keyspace;
    Ok(match cmd {
        SetCommand::Add { key, members } => int(ks.sadd(db, &key, &members, now)?),
        SetCommand::Rem { key, members } => int(ks.srem(db, &key, &members, now)?),
        SetCommand::Card(key) => int(ks.scard(db, &key, now)?),
        SetCommand::IsMember { key, member } => bool_int(ks.sismember(db, &key, &member, now)?),
        SetCommand::MIsMember { key, members } => Reply::Array(ks.smismember(db, &key, &members, now)?.into_iter().map(bool_int).collect()),
        SetCommand::Members(key) => set_reply(ks.smembers(db, &key, now)?),
        SetCommand::Pop { key, count } => {
            let (ks, mut rand) = cx.state().keyspace_random();
            let popped = ks.spop(db, &key, count.unwrap_or(1), now, &mut rand)?;
            match count {
                None => Reply::bulk_or_nil(popped.and_then(|p| p.into_iter().next())),
                Some(_) => set_reply(popped.unwrap_or_default()),
            }
        }
        SetCommand::RandMember { key, count: None } => {
            let (ks, mut rand) = cx.state().keyspace_random();
            Reply::bulk_or_nil(ks.srandmember_one(db, &key, now, &mut rand)?)
        }
        SetCommand::RandMember { key, count: Some(count) } => {
            let (ks, mut rand) = cx.state().keyspace_random();
            Reply::bulks(ks.srandmember(db, &key, count, now, &mut rand)?.unwrap_or_default())
        }
        SetCommand::Move { source, destination, member } => bool_int(ks.smove(db, &source, &destination, &member, now)?),
        SetCommand::Algebra { op, destination, keys } => {
            let result = match op {
                SetAlgebra::Inter => {
                    let members = ks.sinter(db, &keys, 0, now)?;
                    if destination.is_none() {
                        return Ok(set_reply(members));
                    }
                    let mut set = crate::engine::collections::Set::default();
                    members.iter().for_each(|m| {
                        set.add(m);
                    });
                    set
                }
                SetAlgebra::Union => ks.sunion_diff(db, &keys, SetOp::Union, now)?,
                SetAlgebra::Diff => ks.sunion_diff(db, &keys, SetOp::Diff, now)?,
            };
            match destination {
                Some(dst) => {
                    let event = match op {
                        SetAlgebra::Inter => "sinterstore",
                        SetAlgebra::Union => "sunionstore",
                        SetAlgebra::Diff => "sdiffstore",
                    };
                    int(ks.sstore(db, &dst, result, event, now))
                }
                None => set_reply(result.members()),
            }
        }
        SetCommand::InterCard { keys, limit } => int(ks.sinter(db, &keys, limit, now)?.len()),
        SetCommand::Scan(s) => match scan_options(cx, &s.key, "set", s.scan)? {
            None => scan_page(0, Vec::new()),
            Some(scan) => {
                let (cursor, found) = cx.state().keyspace.sscan(db, &s.key, &scan, now)?;
                scan_page(cursor, found.into_iter().map(Reply::Bulk).collect())
            }
        },
    })
}
