//! Bitmaps: strings read and written bit by bit (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP) and as
//! packed integers (BITFIELD), with Redis 7.0's semantics and notifications.
//!
//! Bit 0 is the most significant bit of the first byte. Reads are pure functions over the string's
//! bytes (the keyspace lends them through [`Keyspace::with_string`]), so the broker can check what
//! Redis checks only once it knows the key holds a string; writes change the string in place.

use bytes::Bytes;

use super::{Keyspace, Ttl, Value, notify};
use crate::engine::Error;

/// Whether a range counts bytes or bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitUnit {
    Byte,
    Bit,
}

/// The inclusive bit positions `[first, last]` that a `start end` range selects in a string of `len`
/// bytes (negative indexes count from the end, as Redis clamps them), or `None` when it selects none.
fn bit_span(len: usize, start: i64, end: i64, unit: BitUnit) -> Option<(u64, u64)> {
    let total = match unit {
        BitUnit::Byte => len as i64,
        BitUnit::Bit => len as i64 * 8,
    };
    let start = if start < 0 { (total + start).max(0) } else { start };
    let end = if end < 0 { (total + end).max(0) } else { end }.min(total - 1);
    if start > end {
        return None;
    }
    Some(match unit {
        BitUnit::Byte => (start as u64 * 8, end as u64 * 8 + 7),
        BitUnit::Bit => (start as u64, end as u64),
    })
}

/// Set bits in `bytes`, eight bytes at a time (a byte at a time costs BITCOUNT twice Redis's CPU).
fn popcount(bytes: &[u8]) -> u64 {
    let words = bytes.chunks_exact(8);
    let tail: u64 = words.remainder().iter().map(|b| u64::from(b.count_ones())).sum();
    words.map(|w| u64::from(u64::from_ne_bytes(w.try_into().expect("8 bytes")).count_ones())).sum::<u64>() + tail
}

/// BITCOUNT over the whole string (`None`) or a range.
pub fn count(s: &[u8], range: Option<(i64, i64, BitUnit)>) -> i64 {
    let span = match range {
        None if s.is_empty() => None,
        None => Some((0, s.len() as u64 * 8 - 1)),
        Some((start, end, unit)) => bit_span(s.len(), start, end, unit),
    };
    let Some((first, last)) = span else { return 0 };
    let (first_byte, last_byte) = ((first / 8) as usize, (last / 8) as usize);
    let mut n = popcount(&s[first_byte..=last_byte]);
    // Leave out the bits of the edge bytes that are outside the range.
    n -= u64::from((s[first_byte] & !(0xffu8 >> (first % 8))).count_ones());
    n -= u64::from((s[last_byte] & (0x7fu8 >> (last % 8))).count_ones());
    n as i64
}

/// BITPOS: the first bit equal to `bit` in the whole string (`range` `None`) or from `start` to `end`
/// (`end` `None`: to the end of the string, bytes only). A missing clear bit is -1, except when no end
/// was given: then the string counts as padded with zeros and the answer is the bit after it.
pub fn position(s: &[u8], bit: bool, range: Option<(i64, Option<i64>, BitUnit)>) -> i64 {
    let (start, end, unit) = range.unwrap_or((0, None, BitUnit::Byte));
    let Some((first, last)) = bit_span(s.len(), start, end.unwrap_or(-1), unit) else { return -1 };
    let mut pos = first;
    while pos <= last {
        let byte = s[(pos / 8) as usize];
        let looked_for = if bit { byte } else { !byte };
        if pos % 8 == 0 && pos + 7 <= last && looked_for == 0 {
            pos += 8;
            continue;
        }
        if looked_for & (0x80 >> (pos % 8)) != 0 {
            return pos as i64;
        }
        pos += 1;
    }
    if !bit && end.is_none() { (last + 1) as i64 } else { -1 }
}

/// BITOP's operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// The result of a BITOP over `sources` (missing keys are empty strings, shorter strings padded with
/// zeros): as long as the longest source.
fn combine(op: BitOp, sources: &[&[u8]]) -> Vec<u8> {
    let len = sources.iter().map(|s| s.len()).max().unwrap_or(0);
    let byte = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
    (0..len)
        .map(|i| {
            let mut out = byte(sources[0], i);
            for s in &sources[1..] {
                let b = byte(s, i);
                match op {
                    BitOp::And => out &= b,
                    BitOp::Or => out |= b,
                    BitOp::Xor => out ^= b,
                    BitOp::Not => {}
                }
            }
            if op == BitOp::Not { !out } else { out }
        })
        .collect()
}

/// What a BITFIELD write does with a value that does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    #[default]
    Wrap,
    Sat,
    Fail,
}

impl Overflow {
    /// The value written when a result does not fit: wrapped around, saturated at `limit`, or
    /// nothing (FAIL).
    fn resolve<T>(self, wrapped: impl FnOnce() -> T, limit: T) -> Option<T> {
        match self {
            Overflow::Wrap => Some(wrapped()),
            Overflow::Sat => Some(limit),
            Overflow::Fail => None,
        }
    }
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

/// The `bits`-bit unsigned integer at bit `offset` (bits past the string read as 0).
fn get_unsigned(s: &[u8], offset: u64, bits: u32) -> u64 {
    (offset..offset + u64::from(bits)).fold(0u64, |value, pos| {
        let byte = s.get((pos / 8) as usize).copied().unwrap_or(0);
        (value << 1) | u64::from((byte >> (7 - pos % 8)) & 1)
    })
}

fn get_signed(s: &[u8], offset: u64, bits: u32) -> i64 {
    let value = get_unsigned(s, offset, bits);
    if bits < 64 && value & (1 << (bits - 1)) != 0 { (value | (u64::MAX << bits)) as i64 } else { value as i64 }
}

/// Writes the low `bits` bits of `value` at bit `offset` (the string is long enough).
fn set_bits(s: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..u64::from(bits) {
        let pos = offset + j;
        let mask = 0x80u8 >> (pos % 8);
        let byte = &mut s[(pos / 8) as usize];
        if value & (1 << (u64::from(bits) - 1 - j)) != 0 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

/// `value + incr` for an unsigned field: `None` if it fits, else the value the overflow policy gives
/// (`None` inside for FAIL). Redis's `checkUnsignedBitfieldOverflow`.
fn unsigned_overflow(value: u64, incr: i64, bits: u32, overflow: Overflow) -> Option<Option<u64>> {
    let max = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    let wrapped = || value.wrapping_add(incr as u64) & !(u64::MAX.checked_shl(bits).unwrap_or(0));
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = (value as i64).wrapping_neg();
    let limit = if value > max || (incr > 0 && incr > max_incr) {
        max
    } else if incr < 0 && incr < min_incr {
        0
    } else {
        return None;
    };
    Some(overflow.resolve(wrapped, limit))
}

/// The signed twin of [`unsigned_overflow`] (Redis's `checkSignedBitfieldOverflow`).
fn signed_overflow(value: i64, incr: i64, bits: u32, overflow: Overflow) -> Option<Option<i64>> {
    let max = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrapped = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    let limit = if value > max || (bits != 64 && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr) {
        max
    } else if value < min || (bits != 64 && incr < min_incr) || (value < 0 && incr < 0 && incr < min_incr) {
        min
    } else {
        return None;
    };
    Some(overflow.resolve(wrapped, limit))
}

/// BITFIELD's GET on a string's bytes.
pub fn field_get(s: &[u8], op: &FieldOp) -> i64 {
    if op.signed { get_signed(s, op.offset, op.bits) } else { get_unsigned(s, op.offset, op.bits) as i64 }
}

/// Runs one operation on the string: its reply (`None`: a FAIL overflow, nothing written) and whether
/// the stored bits changed.
fn field_apply(s: &mut [u8], op: &FieldOp) -> (Option<i64>, bool) {
    let (delta, is_set) = match op.action {
        FieldAction::Get => return (Some(field_get(s, op)), false),
        FieldAction::Set(v) => (v, true),
        FieldAction::IncrBy(by) => (by, false),
    };
    let (reply, old, new) = if op.signed {
        let old = get_signed(s, op.offset, op.bits);
        let (base, incr) = if is_set { (delta, 0) } else { (old, delta) };
        let new = match signed_overflow(base, incr, op.bits, op.overflow) {
            None => base.wrapping_add(incr),
            Some(Some(limit)) => limit,
            Some(None) => return (None, false),
        };
        (if is_set { old } else { new }, old as u64, new as u64)
    } else {
        let old = get_unsigned(s, op.offset, op.bits);
        let (base, incr) = if is_set { (delta as u64, 0) } else { (old, delta) };
        let new = match unsigned_overflow(base, incr, op.bits, op.overflow) {
            None => base.wrapping_add(incr as u64),
            Some(Some(limit)) => limit,
            Some(None) => return (None, false),
        };
        ((if is_set { old } else { new }) as i64, old, new)
    };
    set_bits(s, op.offset, op.bits, new);
    (Some(reply), old != new)
}

/// What making room for a bit write did to the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sized {
    Created,
    Grew,
    AsItWas,
}

/// Keyspace notifications off: a write that Redis does not announce (BITFIELD growing a string
/// without changing a field's value) is still a change for the persistence log.
const UNANNOUNCED: u32 = 0;

impl Keyspace {
    /// Lends a string key's bytes to `read` (a missing key is `None`, another type WRONGTYPE),
    /// counting a hit or miss as any read does.
    pub fn with_string<R>(&mut self, db: usize, key: &[u8], now: u64, read: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, Error> {
        match self.read(db, key, now) {
            Some(e) => Ok(Some(read(e.value.as_str()?))),
            None => Ok(None),
        }
    }

    /// Makes `key` a string at least `len` bytes long (created or zero-padded): Redis's
    /// `lookupStringForBitCommand`. Says whether it was created or grew, and bumps the revision of
    /// one that grew (a new key starts at 1; an unchanged one is bumped by its caller if it changes).
    fn string_for_bits(&mut self, db: usize, key: &[u8], len: usize, now: u64) -> Result<Sized, Error> {
        match self.live_mut(db, key, now) {
            Some(e) => {
                let s = e.value.as_str_mut()?;
                if s.len() >= len {
                    return Ok(Sized::AsItWas);
                }
                s.resize(len, 0);
                e.revision += 1;
                Ok(Sized::Grew)
            }
            None => {
                self.store(db, key, Value::string(&vec![0; len]), Ttl::Clear, now);
                Ok(Sized::Created)
            }
        }
    }

    /// SETBIT: the bit's previous value. Announced (`setbit`) only when the string was created, grew
    /// or the bit changed.
    pub fn set_bit(&mut self, db: usize, key: &[u8], offset: u64, on: bool, now: u64) -> Result<bool, Error> {
        let byte = (offset / 8) as usize;
        let sized = self.string_for_bits(db, key, byte + 1, now)?;
        let entry = self.dbs[db].get_mut(key).expect("live string");
        entry.raw = true;
        let s = entry.value.as_str_mut()?.as_mut_slice();
        let mask = 0x80u8 >> (offset % 8);
        let old = s[byte] & mask != 0;
        if sized != Sized::AsItWas || old != on {
            if on {
                s[byte] |= mask;
            } else {
                s[byte] &= !mask;
            }
            entry.revision += u64::from(sized == Sized::AsItWas);
            self.changed(db, key, notify::STRING, "setbit");
        }
        Ok(old)
    }

    /// BITOP: stores the result at `dest` (clearing its deadline) and returns its length; an empty
    /// result deletes `dest`.
    pub fn bit_op(&mut self, db: usize, op: BitOp, dest: &[u8], sources: &[Bytes], now: u64) -> Result<usize, Error> {
        let mut values: Vec<Option<Bytes>> = Vec::with_capacity(sources.len());
        for key in sources {
            values.push(self.with_string(db, key, now, Bytes::copy_from_slice)?);
        }
        let slices: Vec<&[u8]> = values.iter().map(|v| v.as_deref().unwrap_or_default()).collect();
        let result = combine(op, &slices);
        if result.is_empty() {
            self.delete(db, dest, now);
        } else {
            self.store(db, dest, Value::string(&result), Ttl::Clear, now);
            self.dbs[db].get_mut(dest).expect("stored").raw = true;
            self.changed(db, dest, notify::STRING, "set");
        }
        Ok(result.len())
    }

    /// BITFIELD with at least one SET or INCRBY: the key is made long enough for every write, then
    /// the operations run in order. Announced (`setbit`) when some field's value changed.
    pub fn bit_field(&mut self, db: usize, key: &[u8], ops: &[FieldOp], now: u64) -> Result<Vec<Option<i64>>, Error> {
        let highest = ops.iter().filter(|op| op.action != FieldAction::Get).map(|op| op.offset + u64::from(op.bits) - 1).max().unwrap_or(0);
        let sized = self.string_for_bits(db, key, (highest / 8) as usize + 1, now)?;
        let entry = self.dbs[db].get_mut(key).expect("live string");
        entry.raw = true;
        let s = entry.value.as_str_mut()?.as_mut_slice();
        let mut changed = false;
        let replies = ops
            .iter()
            .map(|op| {
                let (reply, did) = field_apply(s, op);
                changed |= did;
                reply
            })
            .collect();
        if changed {
            entry.revision += u64::from(sized == Sized::AsItWas);
            self.changed(db, key, notify::STRING, "setbit");
        } else if sized != Sized::AsItWas {
            self.changed(db, key, UNANNOUNCED, "setbit");
        }
        Ok(replies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::keyspace::test_support::keyspace;

    #[test]
    fn counting_ranges() {
        let s = b"foobar";
        assert_eq!(count(s, None), 26);
        assert_eq!(count(s, Some((0, 0, BitUnit::Byte))), 4);
        assert_eq!(count(s, Some((1, 1, BitUnit::Byte))), 6);
        assert_eq!(count(s, Some((5, 30, BitUnit::Bit))), 17);
        assert_eq!(count(s, Some((-100, -1, BitUnit::Byte))), 26);
        assert_eq!(count(b"", None), 0);
    }

    #[test]
    fn positions() {
        assert_eq!(position(b"\xff\xf0\x00", false, None), 12);
        assert_eq!(position(b"\x00\xff\xf0", true, Some((0, None, BitUnit::Byte))), 8);
        assert_eq!(position(b"\x00\xff\xf0", true, Some((2, Some(-1), BitUnit::Byte))), 16);
        assert_eq!(position(b"\x00\xff\xf0", true, Some((7, Some(15), BitUnit::Bit))), 8);
        assert_eq!(position(b"\xff", false, None), 8, "padded with zeros when no end is given");
        assert_eq!(position(b"\xff", false, Some((0, Some(-1), BitUnit::Byte))), -1);
        assert_eq!(position(b"", false, None), -1);
    }

    #[test]
    fn fields_overflow_as_redis() {
        let op = |action, signed, bits, overflow| FieldOp { action, signed, bits, offset: 0, overflow };
        let mut s = vec![0u8; 8];
        assert_eq!(field_apply(&mut s, &op(FieldAction::IncrBy(300), false, 8, Overflow::Wrap)), (Some(44), true));
        assert_eq!(field_apply(&mut s, &op(FieldAction::IncrBy(300), false, 8, Overflow::Sat)), (Some(255), true));
        assert_eq!(field_apply(&mut s, &op(FieldAction::IncrBy(1), false, 8, Overflow::Fail)), (None, false));
        assert_eq!(field_apply(&mut s, &op(FieldAction::Set(-1), true, 8, Overflow::Wrap)), (Some(-1), false));
        assert_eq!(field_apply(&mut s, &op(FieldAction::IncrBy(-200), true, 8, Overflow::Sat)), (Some(-128), true));
        assert_eq!(field_apply(&mut s, &op(FieldAction::Set(200), true, 8, Overflow::Wrap)), (Some(-128), true));
        assert_eq!(field_get(&s, &op(FieldAction::Get, true, 8, Overflow::Wrap)), -56);
        assert!(field_apply(&mut s, &op(FieldAction::Set(i64::MAX), true, 64, Overflow::Wrap)).1);
        assert_eq!(field_apply(&mut s, &op(FieldAction::IncrBy(1), true, 64, Overflow::Wrap)), (Some(i64::MIN), true));
        assert_eq!(field_apply(&mut s, &op(FieldAction::IncrBy(-1), true, 64, Overflow::Sat)), (Some(i64::MIN), false));
    }

    #[test]
    fn set_bit_announces_only_changes() {
        let mut ks = keyspace();
        assert!(!ks.set_bit(0, b"b", 7, true, 0).unwrap());
        assert!(ks.set_bit(0, b"b", 7, true, 0).unwrap());
        assert_eq!(ks.get(0, b"b", 0).unwrap().as_deref(), Some(&b"\x01"[..]));
        assert_eq!(ks.bit_op(0, BitOp::Not, b"n", &[Bytes::from_static(b"b")], 0).unwrap(), 1);
        assert_eq!(ks.get(0, b"n", 0).unwrap().as_deref(), Some(&b"\xfe"[..]));
        assert_eq!(ks.bit_op(0, BitOp::Or, b"n", &[Bytes::from_static(b"none")], 0).unwrap(), 0);
        assert_eq!(ks.get(0, b"n", 0).unwrap(), None, "an empty result deletes the destination");
    }
}
