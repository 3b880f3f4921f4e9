//! DUMP / RESTORE payloads in Redis 7.0's serialization format: one RDB object (its type byte, then
//! the value in RDB version 10's encodings), the RDB version as two little-endian bytes, and a CRC64
//! (Jones polynomial, as Redis's `crc64`) of everything before it, little-endian.
//!
//! Values are written as Redis 7.0 writes the same encoding (a list as a quicklist of listpacks, a
//! small hash or sorted set as one listpack, an integer set as an intset, a large one element by
//! element), without LZF compression (which Redis reads but never requires); every encoding Redis
//! 7.0 writes for these types is read, compressed or not. Streams (`stream.rs`) are written as Redis
//! 7.0 writes them (`STREAM_LISTPACKS_2`); the older stream type of Redis 6 payloads is not read.

mod listpack;
mod stream;

use std::collections::VecDeque;

use bytes::Bytes;
use herald_protocol::number::parse_double;

use crate::engine::collections::{Hash, Set, Zset};
use crate::engine::keyspace::Value;
use crate::engine::small_bytes::SmallBytes;
use listpack::Item;

const RDB_VERSION: u16 = 10;

const TYPE_STRING: u8 = 0;
const TYPE_LIST: u8 = 1;
const TYPE_SET: u8 = 2;
const TYPE_ZSET: u8 = 3;
const TYPE_HASH: u8 = 4;
const TYPE_ZSET_2: u8 = 5;
const TYPE_SET_INTSET: u8 = 11;
const TYPE_HASH_LISTPACK: u8 = 16;
const TYPE_ZSET_LISTPACK: u8 = 17;
const TYPE_LIST_QUICKLIST_2: u8 = 18;

/// A quicklist node holding a listpack (the other kind, PLAIN, holds one large element).
const NODE_PACKED: u64 = 2;
const NODE_PLAIN: u64 = 1;
/// Entries per listpack node of a dumped list (Redis's `list-max-listpack-size -2` keeps nodes
/// within 8 KB; any split is valid).
const NODE_MAX_BYTES: usize = 8192;

/// Why a payload was refused, in Redis's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// "DUMP payload version or checksum are wrong".
    VersionOrChecksum,
    /// "Bad data format".
    BadFormat,
}

/// Redis's CRC64 (Jones, reflected, no final xor).
pub fn crc64(data: &[u8]) -> u64 {
    static TABLE: std::sync::LazyLock<[u64; 256]> = std::sync::LazyLock::new(|| {
        let mut table = [0u64; 256];
        for (i, slot) in table.iter_mut().enumerate() {
            let mut c = i as u64;
            for _ in 0..8 {
                c = if c & 1 == 1 { (c >> 1) ^ 0x95ac_9329_ac4b_c9b5 } else { c >> 1 };
            }
            *slot = c;
        }
        table
    });
    data.iter().fold(0u64, |crc, b| TABLE[((crc ^ u64::from(*b)) & 0xff) as usize] ^ (crc >> 8))
}

fn push_len(out: &mut Vec<u8>, len: u64) {
    if len < 64 {
        out.push(len as u8);
    } else if len < 16384 {
        out.extend_from_slice(&[0x40 | (len >> 8) as u8, len as u8]);
    } else if let Ok(len) = u32::try_from(len) {
        out.push(0x80);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// A string as `rdbSaveRawString` writes it uncompressed: as an 8, 16 or 32-bit integer when it is
/// the canonical text of one, else length-prefixed.
fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 11
        && let Some(v) = herald_protocol::number::parse_i64(s)
    {
        if let Ok(v) = i8::try_from(v) {
            out.extend_from_slice(&[0xc0, v as u8]);
            return;
        }
        if let Ok(v) = i16::try_from(v) {
            out.push(0xc1);
            out.extend_from_slice(&v.to_le_bytes());
            return;
        }
        if let Ok(v) = i32::try_from(v) {
            out.push(0xc2);
            out.extend_from_slice(&v.to_le_bytes());
            return;
        }
    }
    push_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// A value's DUMP payload.
pub fn dump(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    match value {
        Value::Str(s) => {
            out.push(TYPE_STRING);
            push_string(&mut out, s.as_slice());
        }
        Value::List(list) => {
            out.push(TYPE_LIST_QUICKLIST_2);
            let mut nodes: Vec<Vec<u8>> = Vec::new();
            let mut node: Vec<&[u8]> = Vec::new();
            let mut bytes = 0;
            for e in list.iter() {
                if !node.is_empty() && bytes + e.len() > NODE_MAX_BYTES {
                    nodes.push(listpack::write_listpack(node.drain(..)));
                    bytes = 0;
                }
                bytes += e.len() + 11;
                node.push(e);
            }
            if !node.is_empty() {
                nodes.push(listpack::write_listpack(node));
            }
            push_len(&mut out, nodes.len() as u64);
            for lp in nodes {
                push_len(&mut out, NODE_PACKED);
                push_string(&mut out, &lp);
            }
        }
        Value::Set(set) => match &**set {
            Set::Ints(ints) => {
                out.push(TYPE_SET_INTSET);
                push_string(&mut out, &listpack::write_intset(ints));
            }
            Set::Table(_) => {
                out.push(TYPE_SET);
                push_len(&mut out, set.len() as u64);
                set.for_each(|m| push_string(&mut out, m));
            }
        },
        Value::Hash(hash) => match &**hash {
            Hash::Pack(_) => {
                out.push(TYPE_HASH_LISTPACK);
                let mut items: Vec<Vec<u8>> = Vec::with_capacity(hash.len() * 2);
                hash.for_each(|f, v| {
                    items.push(f.to_vec());
                    items.push(v.to_vec());
                });
                push_string(&mut out, &listpack::write_listpack(items.iter().map(Vec::as_slice)));
            }
            Hash::Table(_) => {
                out.push(TYPE_HASH);
                push_len(&mut out, hash.len() as u64);
                hash.for_each(|f, v| {
                    push_string(&mut out, f);
                    push_string(&mut out, v);
                });
            }
        },
        Value::Zset(zset) => match &**zset {
            Zset::Pack(_) => {
                out.push(TYPE_ZSET_LISTPACK);
                let mut texts: Vec<Vec<u8>> = Vec::with_capacity(zset.len() * 2);
                zset.for_each(|m, score| {
                    texts.push(m.to_vec());
                    texts.push(herald_protocol::number::format_double(score).into_bytes());
                });
                push_string(&mut out, &listpack::write_listpack(texts.iter().map(Vec::as_slice)));
            }
            Zset::Tree(_) => {
                out.push(TYPE_ZSET_2);
                push_len(&mut out, zset.len() as u64);
                let mut members: Vec<(Vec<u8>, f64)> = Vec::with_capacity(zset.len());
                zset.for_each(|m, score| members.push((m.to_vec(), score)));
                // Redis writes from the highest rank down, so that loading appends at the head.
                for (m, score) in members.iter().rev() {
                    push_string(&mut out, m);
                    out.extend_from_slice(&score.to_le_bytes());
                }
            }
        },
        Value::XStream(s) => stream::write(&mut out, s),
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A cursor over an RDB object's bytes.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.data.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }

    /// A length, or with `Err` the special string encoding it announces.
    fn len_or_encoding(&mut self) -> Option<Result<u64, u8>> {
        let first = self.byte()?;
        Some(match first >> 6 {
            0 => Ok(u64::from(first & 0x3f)),
            1 => Ok(u64::from(first & 0x3f) << 8 | u64::from(self.byte()?)),
            3 => Err(first & 0x3f),
            _ => match first {
                0x80 => Ok(u64::from(u32::from_be_bytes(self.bytes(4)?.try_into().ok()?))),
                0x81 => Ok(u64::from_be_bytes(self.bytes(8)?.try_into().ok()?)),
                _ => return None,
            },
        })
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.len_or_encoding()?.ok()?).ok()
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        match self.len_or_encoding()? {
            Ok(len) => Some(self.bytes(usize::try_from(len).ok()?)?.to_vec()),
            Err(0) => Some((self.byte()? as i8).to_string().into_bytes()),
            Err(1) => Some(i16::from_le_bytes(self.bytes(2)?.try_into().ok()?).to_string().into_bytes()),
            Err(2) => Some(i32::from_le_bytes(self.bytes(4)?.try_into().ok()?).to_string().into_bytes()),
            Err(3) => {
                let compressed = self.len()?;
                let len = self.len()?;
                listpack::lzf_decompress(self.bytes(compressed)?, len)
            }
            Err(_) => None,
        }
    }

    /// A score of the old text format (RDB_TYPE_ZSET): a length byte, then the text.
    fn text_double(&mut self) -> Option<f64> {
        match self.byte()? {
            253 => Some(f64::NAN),
            254 => Some(f64::INFINITY),
            255 => Some(f64::NEG_INFINITY),
            n => std::str::from_utf8(self.bytes(usize::from(n))?).ok()?.parse().ok(),
        }
    }
}

fn items_text(items: Vec<Item>) -> Vec<Vec<u8>> {
    items.into_iter().map(Item::into_bytes).collect()
}

/// A listpack's entries taken two by two (field and value, member and score).
fn pairs<T>(items: Vec<T>) -> Option<Vec<(T, T)>> {
    if !items.len().is_multiple_of(2) {
        return None;
    }
    let mut it = items.into_iter();
    let mut out = Vec::with_capacity(it.len() / 2);
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a, b));
    }
    Some(out)
}

fn zset_from(pairs: Vec<(Vec<u8>, f64)>) -> Option<Value> {
    let longest = pairs.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
    let mut z = Zset::for_size(pairs.len(), longest);
    for (m, score) in pairs {
        if score.is_nan() || z.set(&m, score).is_some() {
            return None;
        }
    }
    (!z.is_empty()).then(|| Value::Zset(Box::new(z)))
}

fn hash_from(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Option<Value> {
    let mut h = Hash::default();
    for (f, v) in pairs {
        if !h.set(&f, &v) {
            return None;
        }
    }
    (!h.is_empty()).then(|| Value::Hash(Box::new(h)))
}

fn set_from(members: Vec<Vec<u8>>) -> Option<Value> {
    let mut s = Set::default();
    for m in members {
        if !s.add(&m) {
            return None;
        }
    }
    (!s.is_empty()).then(|| Value::Set(Box::new(s)))
}

/// Reads one RDB object of type `kind`. Empty aggregates and duplicate members are malformed, as
/// Redis's loader finds them.
fn load_object(kind: u8, r: &mut Reader<'_>) -> Option<Value> {
    Some(match kind {
        TYPE_STRING => Value::Str(SmallBytes::new(&r.string()?)),
        TYPE_LIST => {
            let n = r.len()?;
            let list: VecDeque<Bytes> = (0..n).map(|_| r.string().map(Bytes::from)).collect::<Option<_>>()?;
            if list.is_empty() {
                return None;
            }
            Value::List(Box::new(list))
        }
        TYPE_LIST_QUICKLIST_2 => {
            let nodes = r.len()?;
            let mut list = VecDeque::new();
            for _ in 0..nodes {
                let container = r.len_or_encoding()?.ok()?;
                let blob = r.string()?;
                match container {
                    NODE_PLAIN => list.push_back(Bytes::from(blob)),
                    NODE_PACKED => list.extend(items_text(listpack::read_listpack(&blob)?).into_iter().map(Bytes::from)),
                    _ => return None,
                }
            }
            if list.is_empty() {
                return None;
            }
            Value::List(Box::new(list))
        }
        TYPE_SET => {
            let n = r.len()?;
            set_from((0..n).map(|_| r.string()).collect::<Option<_>>()?)?
        }
        TYPE_SET_INTSET => {
            let ints = listpack::read_intset(&r.string()?)?;
            set_from(ints.iter().map(|v| v.to_string().into_bytes()).collect())?
        }
        TYPE_HASH => {
            let n = r.len()?;
            hash_from((0..n).map(|_| Some((r.string()?, r.string()?))).collect::<Option<_>>()?)?
        }
        TYPE_HASH_LISTPACK => hash_from(pairs(items_text(listpack::read_listpack(&r.string()?)?))?)?,
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = r.len()?;
            let mut pairs = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                let m = r.string()?;
                let score = if kind == TYPE_ZSET_2 { f64::from_le_bytes(r.bytes(8)?.try_into().ok()?) } else { r.text_double()? };
                pairs.push((m, score));
            }
            zset_from(pairs)?
        }
        TYPE_ZSET_LISTPACK => {
            let mut scored = Vec::new();
            for (m, score) in pairs(listpack::read_listpack(&r.string()?)?)? {
                let score = match score {
                    Item::Int(n) => n as f64,
                    Item::Str(text) => parse_double(&text)?,
                };
                scored.push((m.into_bytes(), score));
            }
            zset_from(scored)?
        }
        stream::TYPE_STREAM_LISTPACKS_2 => stream::read(r)?,
        _ => return None,
    })
}

/// The value a DUMP payload holds.
pub fn restore(payload: &[u8]) -> Result<Value, Refused> {
    if payload.len() < 10 {
        return Err(Refused::VersionOrChecksum);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..].try_into().expect("8 bytes"));
    if version > RDB_VERSION || crc64(&payload[..payload.len() - 8]) != crc {
        return Err(Refused::VersionOrChecksum);
    }
    let mut r = Reader { data: body, at: 1 };
    let kind = *body.first().ok_or(Refused::BadFormat)?;
    load_object(kind, &mut r).ok_or(Refused::BadFormat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_is_redis() {
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn strings_dump_as_redis() {
        // DUMP of "hello" and of 42 from redis-server 7.0.
        assert_eq!(dump(&Value::string(b"hello")), b"\x00\x05hello\x0a\x00\x63\x72\xdf\x76\x65\x34\x20\x0a");
        assert_eq!(restore(b"\x00\xc0\x2a\x0a\x00\x81\xfb\x5c\xfa\x86\x63\x4f\x50"), Ok(Value::string(b"42")));
    }

    #[test]
    fn every_type_round_trips() {
        let list: VecDeque<Bytes> = (0..3000).map(|i| Bytes::from(format!("item-{i}"))).collect();
        let mut hash = Hash::default();
        hash.set(b"f", b"v");
        hash.set(b"n", b"12");
        let mut set = Set::default();
        set.add(b"3");
        set.add(b"-7");
        let mut words = Set::default();
        words.add(b"x");
        words.add(b"y");
        let mut zset = Zset::default();
        zset.set(b"a", 1.5);
        zset.set(b"b", -3.0);
        let mut big = Zset::for_size(300, 5);
        for i in 0..300 {
            big.set(format!("m{i}").as_bytes(), f64::from(i) / 3.0);
        }
        for value in [
            Value::string(b"x".repeat(100).as_slice()),
            Value::string(b"-2147483648"),
            Value::List(Box::new(list)),
            Value::Hash(Box::new(hash)),
            Value::Set(Box::new(set)),
            Value::Set(Box::new(words)),
            Value::Zset(Box::new(zset)),
            Value::Zset(Box::new(big)),
        ] {
            let payload = dump(&value);
            assert_eq!(restore(&payload).unwrap(), value);
            let mut bad = payload.clone();
            bad[1] ^= 1;
            assert_eq!(restore(&bad), Err(Refused::VersionOrChecksum));
        }
    }

    #[test]
    fn streams_round_trip_with_tombstones_and_groups() {
        use crate::engine::xstream::{StreamId, XStream};
        let mut s = XStream::default();
        for i in 1..=250u64 {
            let fields = if i % 7 == 0 {
                vec![Bytes::from("other"), Bytes::from(format!("{i}"))]
            } else {
                vec![Bytes::from("f"), Bytes::from(format!("v{i}"))]
            };
            s.append(StreamId::new(i, 0), &fields);
        }
        assert!(s.delete(StreamId::new(1, 0)) && s.delete(StreamId::new(120, 0)));
        s.create_group(b"g", StreamId::new(0, 0), Some(0));
        let g = s.group_mut(b"g").unwrap();
        let (alice, _) = g.consumer(b"alice", 1000);
        g.set_pending(StreamId::new(2, 0), &alice, 1500, 3);
        g.consumer(b"idle", 2000);
        let value = Value::XStream(Box::new(s));
        let payload = dump(&value);
        assert_eq!(restore(&payload).unwrap(), value);
        // A consumer owning an ID missing from the group's pending list is malformed, as in Redis.
        let Value::XStream(mut s) = value else { unreachable!() };
        s.group_mut(b"g").unwrap().pel.clear();
        assert_eq!(restore(&dump(&Value::XStream(s))), Err(Refused::BadFormat));
    }
}
