//! Bulletin board commands.

use herald_protocol::Reply;
use herald_protocol::command::{self, BulletinCommand};

use super::{Cx, Outcome, listing};
use crate::engine::Error;
use crate::engine::bulletin::filter::{self, Filter, FilterOp};
use crate::engine::bulletin::{self, ItemView, Overflow};
use crate::engine::schema::SchemaKind;
use crate::state::State;

/// A command's WHERE clauses as the engine's filters, compiled.
fn compile(filters: Vec<command::Filter>) -> Vec<filter::Compiled> {
    let op = |op| match op {
        command::FilterOp::Eq => FilterOp::Eq,
        command::FilterOp::Ne => FilterOp::Ne,
        command::FilterOp::Lt => FilterOp::Lt,
        command::FilterOp::Le => FilterOp::Le,
        command::FilterOp::Gt => FilterOp::Gt,
        command::FilterOp::Ge => FilterOp::Ge,
    };
    let filters: Vec<Filter> = filters.into_iter().map(|f| Filter { path: f.path, op: op(f.op), value: f.value }).collect();
    filter::compile(&filters)
}

pub(crate) fn item_reply(v: ItemView) -> Reply {
    let mut fields = vec![
        ("id", Reply::Bulk(v.id)),
        ("item", Reply::Bulk(v.item)),
        ("published", Reply::Int(v.published_ms as i64)),
        ("failed_leases", Reply::Int(i64::from(v.failed_leases))),
    ];
    if let Some(lease) = v.lease {
        fields.push(("token", Reply::Int(lease.token as i64)));
        fields.push(("lease_expires", Reply::Int(lease.expires_ms as i64)));
    }
    Reply::fields(fields)
}

pub fn execute(cmd: BulletinCommand, cx: &mut Cx<'_>) -> Outcome {
    // The Redis engine runs the boards on Redis (`remote/bulletin.rs`).
    if let Some(remote) = &cx.broker.remote {
        if let BulletinCommand::Publish { scope, board, item, .. } = &cmd
            && let Err(e) = remote.schemas.check(SchemaKind::Board, scope, board, item)
        {
            return e.into();
        }
        return crate::remote::bulletin::execute(remote, cmd, crate::remote::in_order(remote, cx.session));
    }
    let now = cx.now();
    let result: Result<Reply, Error> = match cmd {
        BulletinCommand::Publish { scope, board, item, ttl_ms, block } => {
            let keys = vec![bulletin::room_wait_key(&scope, &board)];
            let publish = move |state: &mut State, now| {
                state.schemas.check(SchemaKind::Board, &scope, &board, &item)?;
                if block.is_some() && !state.bulletin.has_room(&scope, &board) {
                    return Ok(None);
                }
                Ok(Some(Reply::Bulk(state.bulletin.publish(&scope, &board, &item, ttl_ms, now)?)))
            };
            return match block {
                Some(wait) => cx.now_or_block(keys, wait.duration(), Reply::Nil, publish),
                None => super::jobs::run_once(cx, publish, Reply::Nil),
            };
        }
        BulletinCommand::Retrieve { scope, board, filters, lock_ms, block } => {
            let keys = vec![bulletin::wait_key(&scope, &board)];
            let filters = compile(filters);
            let retrieve =
                move |state: &mut State, now| Ok(state.bulletin.retrieve(&scope, &board, &filters, lock_ms, now).map(item_reply));
            return match block {
                Some(wait) => cx.now_or_block(keys, wait.duration(), Reply::Nil, retrieve),
                None => {
                    let now = cx.now();
                    match retrieve(cx.state(), now) {
                        Ok(reply) => reply.unwrap_or(Reply::Nil).into(),
                        Err(e) => e.into(),
                    }
                }
            };
        }
        BulletinCommand::All { scope, board, filters, limit } => {
            let filters = compile(filters);
            Ok(Reply::Array(cx.state().bulletin.all(&scope, &board, &filters, limit).into_iter().map(item_reply).collect()))
        }
        BulletinCommand::Get { scope, board, id } => Ok(cx.state().bulletin.get(&scope, &board, &id).map_or(Reply::Nil, item_reply)),
        BulletinCommand::Len { scope, board } => Ok(Reply::Int(cx.state().bulletin.len(&scope, &board) as i64)),
        BulletinCommand::Extend { scope, board, id, token, ms } => {
            cx.state().bulletin.extend(&scope, &board, &id, token, ms, now).map(|at| Reply::Int(at as i64))
        }
        BulletinCommand::Release { scope, board, id, token } => {
            cx.state().bulletin.release(&scope, &board, &id, token, now).map(|_| Reply::ok())
        }
        BulletinCommand::Remove { scope, board, id, token } => {
            cx.state().bulletin.remove(&scope, &board, &id, token).map(|r| Reply::Int(i64::from(r)))
        }
        BulletinCommand::Config { scope, board, max_len, overflow, max_leases } => {
            let overflow = overflow.map(|o| match o {
                command::Overflow::DropOldest => Overflow::DropOldest,
                command::Overflow::RejectNew => Overflow::RejectNew,
            });
            cx.state().bulletin.configure(&scope, &board, max_len, overflow, max_leases).map(|_| Reply::ok())
        }
        BulletinCommand::Dead { scope, board } => {
            Ok(Reply::Array(cx.state().bulletin.dead(&scope, &board).into_iter().map(item_reply).collect()))
        }
        BulletinCommand::Boards(list) => {
            Ok(listing::reply(cx.state().bulletin.boards(list.scope.as_deref(), &listing::args(&list)), board_summary))
        }
        BulletinCommand::Redrive { scope, board, id } => cx.state().bulletin.redrive(&scope, &board, &id).map(|_| Reply::ok()),
    };
    result.into()
}

/// One BL.BOARDS entry (both engines).
pub fn board_summary(b: crate::engine::bulletin::BoardSummary) -> Reply {
    Reply::fields(vec![
        ("scope", Reply::Bulk(b.scope)),
        ("board", Reply::Bulk(b.board)),
        ("items", listing::int(b.items)),
        ("leased", listing::int(b.leased)),
        ("dead", listing::int(b.dead)),
        ("maxlen", listing::int(b.config.max_len)),
    ])
}
