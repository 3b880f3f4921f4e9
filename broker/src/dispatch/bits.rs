//! Bitmap commands: the checks Redis makes once it knows `proto-max-bulk-len` or the key's type, in
//! its order, then the keyspace's bit operations.

use herald_protocol::command::{self, BitCommand, BitFieldArgs, BitRange};
use herald_protocol::{CommandError, Reply};

use super::Cx;
use super::keys::int;
use crate::engine::keyspace::bits::{self, BitOp, BitUnit, FieldAction, FieldOp, Overflow};

/// Redis bounds bit offsets by the largest string: `(offset >> 3) < proto-max-bulk-len`.
fn check_offset(offset: u64, max_len: usize) -> Result<u64, CommandError> {
    if offset >> 3 >= max_len as u64 { Err(command::BIT_OFFSET_ERROR) } else { Ok(offset) }
}

fn unit(u: command::BitUnit) -> BitUnit {
    match u {
        command::BitUnit::Byte => BitUnit::Byte,
        command::BitUnit::Bit => BitUnit::Bit,
    }
}

fn field_op(op: &command::FieldOp) -> FieldOp {
    FieldOp {
        action: match op.action {
            command::FieldAction::Get => FieldAction::Get,
            command::FieldAction::Set(v) => FieldAction::Set(v),
            command::FieldAction::IncrBy(v) => FieldAction::IncrBy(v),
        },
        signed: op.signed,
        bits: op.bits,
        offset: op.offset,
        overflow: match op.overflow {
            command::FieldOverflow::Wrap => Overflow::Wrap,
            command::FieldOverflow::Sat => Overflow::Sat,
            command::FieldOverflow::Fail => Overflow::Fail,
        },
    }
}

fn field_reply(values: Vec<Option<i64>>) -> Reply {
    Reply::Array(values.into_iter().map(|v| v.map_or(Reply::Nil, Reply::Int)).collect())
}

pub fn execute(cmd: BitCommand, cx: &mut Cx<'_>) -> Result<Reply, CommandError> {
    let db = cx.db();
    let now = cx.now();
    let ks = &mut cx.state().keyspace;
    let max_len = ks.settings().max_string_len;
    Ok(match cmd {
        BitCommand::SetBit { key, offset, value } => {
            let offset = check_offset(offset, max_len)?;
            let on = value.ok_or(CommandError::fixed("ERR bit is not an integer or out of range"))?;
            int(usize::from(ks.set_bit(db, &key, offset, on, now)?))
        }
        BitCommand::GetBit { key, offset } => {
            let offset = check_offset(offset, max_len)?;
            let bit = ks.with_string(db, &key, now, |s| s.get((offset / 8) as usize).is_some_and(|b| b & (0x80 >> (offset % 8)) != 0))?;
            int(usize::from(bit.unwrap_or(false)))
        }
        BitCommand::BitCount { key, range } => {
            let counted = ks.with_string(db, &key, now, |s| {
                range.map(|r| match r {
                    BitRange::Whole => bits::count(s, None),
                    BitRange::Empty => 0,
                    BitRange::Span { start, end, unit: u } => bits::count(s, Some((start, end.unwrap_or(-1), unit(u)))),
                })
            })?;
            Reply::Int(counted.transpose()?.unwrap_or(0))
        }
        BitCommand::BitPos { key, bit, range } => {
            let found = ks.with_string(db, &key, now, |s| {
                range.map(|r| match r {
                    BitRange::Whole | BitRange::Empty => bits::position(s, bit, None),
                    BitRange::Span { start, end, unit: u } => bits::position(s, bit, Some((start, end, unit(u)))),
                })
            })?;
            // A missing key is an endless run of zeros.
            Reply::Int(found.transpose()?.unwrap_or(if bit { -1 } else { 0 }))
        }
        BitCommand::BitOp { op, dest, keys } => {
            let op = match op {
                command::BitOp::And => BitOp::And,
                command::BitOp::Or => BitOp::Or,
                command::BitOp::Xor => BitOp::Xor,
                command::BitOp::Not => BitOp::Not,
            };
            int(ks.bit_op(db, op, &dest, &keys, now)?)
        }
        BitCommand::BitField(args) => bit_field(args, cx)?,
    })
}

/// BITFIELD and BITFIELD_RO: the operations' offsets are checked in order, then the first refused
/// operation's error, then BITFIELD_RO's restriction, then the key's type.
fn bit_field(args: BitFieldArgs, cx: &mut Cx<'_>) -> Result<Reply, CommandError> {
    let db = cx.db();
    let now = cx.now();
    let ks = &mut cx.state().keyspace;
    let max_len = ks.settings().max_string_len;
    for op in &args.ops {
        check_offset(op.offset, max_len)?;
    }
    if let Some((offset, error)) = args.refused {
        if let Some(offset) = offset {
            check_offset(offset, max_len)?;
        }
        return Err(error);
    }
    let ops: Vec<FieldOp> = args.ops.iter().map(field_op).collect();
    if ops.iter().all(|op| op.action == FieldAction::Get) {
        let values = ks.with_string(db, &args.key, now, |s| ops.iter().map(|op| Some(bits::field_get(s, op))).collect())?;
        return Ok(field_reply(values.unwrap_or_else(|| ops.iter().map(|op| Some(bits::field_get(&[], op))).collect())));
    }
    if args.read_only {
        return Err(CommandError::fixed("ERR BITFIELD_RO only supports the GET subcommand"));
    }
    Ok(field_reply(ks.bit_field(db, &args.key, &ops, now)?))
}
