//! What a key holds.

use std::cell::Cell;
use std::collections::VecDeque;

use crate::engine::Error;
use crate::engine::collections::{Hash, Set, Zset};
use bytes::Bytes;

use crate::engine::keyspace::NO_EXPIRY;
use crate::engine::small_bytes::SmallBytes;
use crate::engine::xstream::XStream;

/// A key's value. Short strings live inline in the table node; long ones grow in place for APPEND
/// and SETRANGE, amortised as Redis's sds. Aggregates are boxed so that a value stays 32 bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(SmallBytes),
    List(Box<VecDeque<Bytes>>),
    Hash(Box<Hash>),
    Set(Box<Set>),
    Zset(Box<Zset>),
    /// A Redis stream (XADD and friends).
    XStream(Box<XStream>),
}

impl Value {
    /// A string value from bytes.
    pub fn string(data: &[u8]) -> Value {
        Value::Str(SmallBytes::new(data))
    }

    /// The name TYPE reports and SCAN TYPE filters on.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::Zset(_) => "zset",
            Value::XStream(_) => "stream",
        }
    }

    /// What OBJECT ENCODING reports, using Redis's thresholds.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) if s.len() <= 20 && herald_protocol::number::parse_i64(s.as_slice()).is_some() => "int",
            Value::Str(s) if s.len() <= 44 => "embstr",
            Value::Str(_) => "raw",
            // Redis 7.0 (the reference the compatibility check runs) reports every list this way.
            Value::List(_) => "quicklist",
            Value::Hash(h) => h.encoding(),
            Value::Set(s) => s.encoding(),
            Value::Zset(z) => z.encoding(),
            Value::XStream(_) => "stream",
        }
    }

    /// A string's bytes, or WRONGTYPE.
    pub fn as_str(&self) -> Result<&[u8], Error> {
        match self {
            Value::Str(s) => Ok(s.as_slice()),
            _ => Err(Error::wrong_type()),
        }
    }

    pub fn as_str_mut(&mut self) -> Result<&mut SmallBytes, Error> {
        match self {
            Value::Str(s) => Ok(s),
            _ => Err(Error::wrong_type()),
        }
    }

    /// What the value costs the allocator beyond its 32 bytes in the table node (MEMORY USAGE): the
    /// boxed aggregate and everything it owns, collections sampled (`samples`, 0: all elements).
    pub fn memory(&self, samples: usize) -> usize {
        use crate::engine::memory::{chunk, sampled, vec};
        use std::mem::size_of;
        match self {
            Value::Str(s) => chunk(s.heap_bytes()),
            Value::List(l) => {
                chunk(size_of::<VecDeque<Bytes>>())
                    + vec::<Bytes>(l.capacity())
                    + sampled(l.len(), samples, l.iter().map(|e| chunk(e.len())))
            }
            Value::Hash(h) => chunk(size_of::<Hash>()) + h.memory(samples),
            Value::Set(s) => chunk(size_of::<Set>()) + s.memory(samples),
            Value::Zset(z) => chunk(size_of::<Zset>()) + z.memory(samples),
            Value::XStream(s) => chunk(size_of::<XStream>()) + s.memory(samples),
        }
    }
}

/// A stored key's value and metadata. Kept small: this is per key (see `docs/architecture.md`).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub value: Value,
    /// Absolute unix time in ms, or [`NO_EXPIRY`].
    pub expire_at: u64,
    /// Per-key revision: 1 on creation, +1 on every write; what BB.SET IFREV compares.
    pub revision: u64,
    /// Seconds since the broker started at the last access, for OBJECT IDLETIME. A `Cell` so a read
    /// can refresh it through a shared reference, with one table lookup.
    pub accessed: Cell<u32>,
    /// A string changed in place (APPEND, SETRANGE, SETBIT, BITFIELD, BITOP's result): Redis keeps
    /// such a string in its `raw` encoding whatever its length, and OBJECT ENCODING says so. Cleared
    /// by any write of a whole new value. Fits in the padding after `accessed`.
    pub raw: bool,
}

impl Entry {
    pub fn new(value: Value, accessed: u32) -> Self {
        Entry { value, expire_at: NO_EXPIRY, revision: 1, accessed: Cell::new(accessed), raw: false }
    }

    /// What OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        if self.raw && matches!(self.value, Value::Str(_)) { "raw" } else { self.value.encoding() }
    }

    /// What OBJECT REFCOUNT reports: Redis shares the objects of the integers 0 to 9999 (under the
    /// default eviction policy) and reports their count as `INT_MAX`.
    pub fn refcount(&self) -> i64 {
        match &self.value {
            Value::Str(s)
                if self.encoding() == "int"
                    && herald_protocol::number::parse_i64(s.as_slice()).is_some_and(|v| (0..10_000).contains(&v)) =>
            {
                i64::from(i32::MAX)
            }
            _ => 1,
        }
    }

    pub fn has_expiry(&self) -> bool {
        self.expire_at != NO_EXPIRY
    }
}
