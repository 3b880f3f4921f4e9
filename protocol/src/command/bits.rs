//! Bitmap commands: strings read and written as arrays of bits (SETBIT, GETBIT, BITCOUNT, BITPOS,
//! BITOP) and of packed integers (BITFIELD, BITFIELD_RO).
//!
//! Redis checks some arguments only after it has looked the key up (BITCOUNT and BITPOS answer a
//! missing key before reading their range), and bounds bit offsets by `proto-max-bulk-len`, a setting
//! the parser does not know. So the parsed forms keep what Redis would complain about, in the order it
//! would, for the broker to report at the right moment: a range as a `Result`, an offset unchecked
//! against the bound, BITFIELD's first bad operation after the good ones before it.

use bytes::Bytes;

use super::conn::spec;
use super::flags::*;
use super::{Command, CommandSpec, Group, keys};
use crate::error::CommandError;
use crate::number::parse_i64;
use crate::request::{Args, is_word};

#[derive(Debug, Clone, PartialEq)]
pub enum BitCommand {
    /// `value` is `None` when it is not 0 or 1 (reported after the offset's bound is checked).
    SetBit {
        key: Bytes,
        offset: u64,
        value: Option<bool>,
    },
    GetBit {
        key: Bytes,
        offset: u64,
    },
    /// The range is read only when the key holds a string (a missing key counts 0 whatever follows).
    BitCount {
        key: Bytes,
        range: Result<BitRange, CommandError>,
    },
    BitPos {
        key: Bytes,
        bit: bool,
        range: Result<BitRange, CommandError>,
    },
    BitOp {
        op: BitOp,
        dest: Bytes,
        keys: Vec<Bytes>,
    },
    BitField(BitFieldArgs),
}

/// Which bits BITCOUNT or BITPOS looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitRange {
    /// The whole string.
    Whole,
    /// Nothing at all (BITCOUNT with both indexes negative and start past end: 0 before anything else).
    Empty,
    /// From `start` to `end` (inclusive; negative counts from the end) in bytes or bits; `end` is
    /// `None` when BITPOS was given only a start.
    Span { start: i64, end: Option<i64>, unit: BitUnit },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitUnit {
    Byte,
    Bit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// `BITFIELD key [GET type offset | SET type offset value | INCRBY type offset increment | OVERFLOW
/// WRAP|SAT|FAIL] ...`, as parsed up to the first bad operation.
#[derive(Debug, Clone, PartialEq)]
pub struct BitFieldArgs {
    pub key: Bytes,
    pub ops: Vec<FieldOp>,
    /// The first refused operation: its offset when it got that far (Redis checks the offset's bound
    /// before the value), and the error it earns.
    pub refused: Option<(Option<u64>, CommandError)>,
    /// BITFIELD_RO: only GET is allowed.
    pub read_only: bool,
}

/// One BITFIELD operation on the integer of `bits` bits at bit `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldOp {
    pub action: FieldAction,
    pub signed: bool,
    pub bits: u32,
    pub offset: u64,
    pub overflow: Overflow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldAction {
    Get,
    Set(i64),
    IncrBy(i64),
}

/// What an INCRBY or SET does with a value that does not fit (BITFIELD's OVERFLOW).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    #[default]
    Wrap,
    Sat,
    Fail,
}

fn ok(c: BitCommand) -> Result<Command, CommandError> {
    Ok(Command::Bits(c))
}

pub const OFFSET_ERROR: CommandError = CommandError::fixed("ERR bit offset is not an integer or out of range");

/// A bit offset as `getBitOffsetFromArgument` reads it: an integer, or with `#` (BITFIELD) a count of
/// fields of `hash_bits` bits; negative is refused here, too large (past `proto-max-bulk-len`) by the
/// broker.
fn bit_offset(raw: &[u8], hash_bits: Option<u32>) -> Result<u64, CommandError> {
    let (digits, multiplier) = match (raw.first(), hash_bits) {
        (Some(b'#'), Some(bits)) => (&raw[1..], i64::from(bits)),
        _ => (raw, 1),
    };
    let offset = parse_i64(digits).ok_or(OFFSET_ERROR)?.wrapping_mul(multiplier);
    u64::try_from(offset).map_err(|_| OFFSET_ERROR)
}

fn parse_setbit(mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    let offset = bit_offset(&a.next_bytes()?, None)?;
    let value = match parse_i64(&a.next_bytes()?) {
        Some(0) => Some(false),
        Some(1) => Some(true),
        _ => None,
    };
    ok(BitCommand::SetBit { key, offset, value })
}

fn parse_unit(raw: &[u8]) -> Result<BitUnit, CommandError> {
    if is_word(raw, "BIT") {
        Ok(BitUnit::Bit)
    } else if is_word(raw, "BYTE") {
        Ok(BitUnit::Byte)
    } else {
        Err(CommandError::syntax())
    }
}

fn integer(raw: &[u8]) -> Result<i64, CommandError> {
    parse_i64(raw).ok_or(CommandError::not_integer())
}

/// BITCOUNT's `[start end [BYTE|BIT]]`, in Redis 7.0's order of checks.
fn count_range(rest: &[Bytes]) -> Result<BitRange, CommandError> {
    match rest {
        [] => Ok(BitRange::Whole),
        [start, end, unit @ ..] if unit.len() <= 1 => {
            let (start, end) = (integer(start)?, integer(end)?);
            if start < 0 && end < 0 && start > end {
                return Ok(BitRange::Empty);
            }
            let unit = unit.first().map(|u| parse_unit(u)).transpose()?.unwrap_or(BitUnit::Byte);
            Ok(BitRange::Span { start, end: Some(end), unit })
        }
        _ => Err(CommandError::syntax()),
    }
}

/// BITPOS's `[start [end [BYTE|BIT]]]`: the start, then the unit, then the end.
fn pos_range(rest: &[Bytes]) -> Result<BitRange, CommandError> {
    match rest {
        [] => Ok(BitRange::Whole),
        [start, more @ ..] if more.len() <= 2 => {
            let start = integer(start)?;
            let unit = more.get(1).map(|u| parse_unit(u)).transpose()?.unwrap_or(BitUnit::Byte);
            let end = more.first().map(|e| integer(e)).transpose()?;
            Ok(BitRange::Span { start, end, unit })
        }
        _ => Err(CommandError::syntax()),
    }
}

fn parse_bitpos(mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    let bit = match integer(&a.next_bytes()?)? {
        0 => false,
        1 => true,
        _ => return Err(CommandError::fixed("ERR The bit argument must be 1 or 0.")),
    };
    ok(BitCommand::BitPos { key, bit, range: pos_range(&a.rest()) })
}

fn parse_bitop(mut a: Args) -> Result<Command, CommandError> {
    let name = a.next_bytes()?;
    let op = [("AND", BitOp::And), ("OR", BitOp::Or), ("XOR", BitOp::Xor), ("NOT", BitOp::Not)]
        .into_iter()
        .find(|(w, _)| is_word(&name, w))
        .map(|(_, op)| op)
        .ok_or(CommandError::syntax())?;
    let dest = a.next_bytes()?;
    let keys = a.rest();
    if op == BitOp::Not && keys.len() != 1 {
        return Err(CommandError::fixed("ERR BITOP NOT must be called with a single source key."));
    }
    ok(BitCommand::BitOp { op, dest, keys })
}

/// A field type, `i1`..`i64` or `u1`..`u63`.
fn field_type(raw: &[u8]) -> Result<(bool, u32), CommandError> {
    const ERR: CommandError =
        CommandError::fixed("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.");
    let signed = match raw.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(ERR),
    };
    // Redis reads the width as a C string: it ends at the first NUL.
    let digits = &raw[1..];
    let digits = &digits[..digits.iter().position(|b| *b == 0).unwrap_or(digits.len())];
    match parse_i64(digits) {
        Some(bits) if bits >= 1 && bits <= if signed { 64 } else { 63 } => Ok((signed, bits as u32)),
        _ => Err(ERR),
    }
}

fn parse_bitfield(read_only: bool, mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    let mut args = a.rest().into_iter().peekable();
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut refused = None;
    while let Some(word) = args.next() {
        let remaining = args.len();
        let action = if is_word(&word, "GET") && remaining >= 2 {
            FieldAction::Get
        } else if is_word(&word, "SET") && remaining >= 3 {
            FieldAction::Set(0)
        } else if is_word(&word, "INCRBY") && remaining >= 3 {
            FieldAction::IncrBy(0)
        } else if is_word(&word, "OVERFLOW") && remaining >= 1 {
            let kind = args.next().expect("counted");
            overflow = if is_word(&kind, "WRAP") {
                Overflow::Wrap
            } else if is_word(&kind, "SAT") {
                Overflow::Sat
            } else if is_word(&kind, "FAIL") {
                Overflow::Fail
            } else {
                refused = Some((None, CommandError::fixed("ERR Invalid OVERFLOW type specified")));
                break;
            };
            continue;
        } else {
            refused = Some((None, CommandError::syntax()));
            break;
        };
        let (signed, bits) = match field_type(&args.next().expect("counted")) {
            Ok(t) => t,
            Err(e) => {
                refused = Some((None, e));
                break;
            }
        };
        let offset = match bit_offset(&args.next().expect("counted"), Some(bits)) {
            Ok(o) => o,
            Err(e) => {
                refused = Some((None, e));
                break;
            }
        };
        let action = match action {
            FieldAction::Get => FieldAction::Get,
            FieldAction::Set(_) | FieldAction::IncrBy(_) => match parse_i64(&args.next().expect("counted")) {
                Some(v) if matches!(action, FieldAction::Set(_)) => FieldAction::Set(v),
                Some(v) => FieldAction::IncrBy(v),
                None => {
                    refused = Some((Some(offset), CommandError::not_integer()));
                    break;
                }
            },
        };
        ops.push(FieldOp { action, signed, bits, offset, overflow });
    }
    ok(BitCommand::BitField(BitFieldArgs { key, ops, refused, read_only }))
}

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!(
        "setbit",
        4,
        WRITE | DENYOOM,
        keys(1, 1, 1),
        Bitmap,
        "2.2.0",
        "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.",
        parse_setbit
    ),
    spec!("getbit", 3, READONLY | FAST, keys(1, 1, 1), Bitmap, "2.2.0", "Returns a bit value by offset.", |mut a| {
        let key = a.next_bytes()?;
        ok(BitCommand::GetBit { key, offset: bit_offset(&a.next_bytes()?, None)? })
    }),
    spec!(
        "bitcount",
        -2,
        READONLY,
        keys(1, 1, 1),
        Bitmap,
        "2.6.0",
        "Counts the number of set bits (population counting) in a string.",
        |mut a| {
            let key = a.next_bytes()?;
            ok(BitCommand::BitCount { key, range: count_range(&a.rest()) })
        }
    ),
    spec!("bitpos", -3, READONLY, keys(1, 1, 1), Bitmap, "2.8.7", "Finds the first set (1) or clear (0) bit in a string.", parse_bitpos),
    spec!(
        "bitop",
        -4,
        WRITE | DENYOOM,
        keys(2, -1, 1),
        Bitmap,
        "2.6.0",
        "Performs bitwise operations on multiple strings, and stores the result.",
        parse_bitop
    ),
    spec!(
        "bitfield",
        -2,
        WRITE | DENYOOM,
        keys(1, 1, 1),
        Bitmap,
        "3.2.0",
        "Performs arbitrary bitfield integer operations on strings.",
        |a| parse_bitfield(false, a)
    ),
    spec!(
        "bitfield_ro",
        -2,
        READONLY | FAST,
        keys(1, 1, 1),
        Bitmap,
        "6.0.0",
        "Performs arbitrary read-only bitfield integer operations on strings.",
        |a| parse_bitfield(true, a)
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::parse_request;
    use crate::request::Request;

    fn parse(parts: &[&str]) -> Result<BitCommand, CommandError> {
        match parse_request(Request::from_strs(parts))? {
            (_, Command::Bits(c)) => Ok(c),
            (_, other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn offsets_and_values() {
        assert_eq!(parse(&["SETBIT", "k", "7", "1"]).unwrap(), BitCommand::SetBit { key: "k".into(), offset: 7, value: Some(true) });
        assert_eq!(parse(&["SETBIT", "k", "7", "2"]).unwrap(), BitCommand::SetBit { key: "k".into(), offset: 7, value: None });
        assert_eq!(parse(&["SETBIT", "k", "-1", "1"]).unwrap_err(), OFFSET_ERROR);
        assert_eq!(parse(&["GETBIT", "k", "x"]).unwrap_err(), OFFSET_ERROR);
        assert_eq!(parse(&["GETBIT", "k", "#1"]).unwrap_err(), OFFSET_ERROR, "# only in BITFIELD");
    }

    #[test]
    fn ranges_keep_their_errors_for_later() {
        let range = |parts: &[&str]| match parse(parts).unwrap() {
            BitCommand::BitCount { range, .. } | BitCommand::BitPos { range, .. } => range,
            other => panic!("{other:?}"),
        };
        assert_eq!(range(&["BITCOUNT", "k", "1"]), Err(CommandError::syntax()));
        assert_eq!(range(&["BITCOUNT", "k", "-1", "-5", "nope"]), Ok(BitRange::Empty));
        assert_eq!(range(&["BITCOUNT", "k", "0", "x"]), Err(CommandError::not_integer()));
        assert_eq!(range(&["BITPOS", "k", "1", "2"]), Ok(BitRange::Span { start: 2, end: None, unit: BitUnit::Byte }));
        assert_eq!(range(&["BITPOS", "k", "1", "0", "x", "nope"]), Err(CommandError::syntax()), "the unit before the end");
        assert_eq!(parse(&["BITPOS", "k", "2"]).unwrap_err().0, "ERR The bit argument must be 1 or 0.");
    }

    #[test]
    fn bitfield_operations() {
        let BitCommand::BitField(f) = parse(&["BITFIELD", "k", "OVERFLOW", "SAT", "INCRBY", "i8", "#2", "5", "GET", "u4", "0"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(f.ops.len(), 2);
        assert_eq!(f.ops[0], FieldOp { action: FieldAction::IncrBy(5), signed: true, bits: 8, offset: 16, overflow: Overflow::Sat });
        assert!(f.refused.is_none());
        let BitCommand::BitField(f) = parse(&["BITFIELD", "k", "GET", "u8", "0", "SET", "u64", "0", "1"]).unwrap() else { panic!() };
        assert_eq!((f.ops.len(), f.refused.unwrap().1.0.contains("Invalid bitfield type")), (1, true));
        let BitCommand::BitField(f) = parse(&["BITFIELD", "k", "SET", "u8", "8", "x"]).unwrap() else { panic!() };
        assert_eq!(f.refused, Some((Some(8), CommandError::not_integer())));
    }
}
