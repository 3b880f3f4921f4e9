//! A Redis stream as an RDB object of type `STREAM_LISTPACKS_2` (what Redis 7.0 writes): the nodes
//! (each a 16-byte big-endian key and a listpack), the counters, then each consumer group with its
//! last ID, read counter, global pending entries list (raw 16-byte IDs, delivery time, delivery
//! count) and consumers (name, seen time, the IDs they own, which must be in the global list).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::{Reader, listpack, push_len, push_string};
use crate::engine::keyspace::Value;
use crate::engine::xstream::{Consumer, Counters, Group, Nack, StreamId, XStream};

pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;

/// Redis's `-1` read counter (unknown), saved as an unsigned length.
const UNKNOWN_READS: u64 = u64::MAX;

fn push_id(out: &mut Vec<u8>, id: StreamId) {
    push_len(out, id.ms);
    push_len(out, id.seq);
}

fn push_raw_id(out: &mut Vec<u8>, id: StreamId) {
    out.extend_from_slice(&id.ms.to_be_bytes());
    out.extend_from_slice(&id.seq.to_be_bytes());
}

pub fn write(out: &mut Vec<u8>, s: &XStream) {
    out.push(TYPE_STREAM_LISTPACKS_2);
    let nodes: Vec<_> = s.listpack_nodes().collect();
    push_len(out, nodes.len() as u64);
    for (master, elements) in &nodes {
        let mut key = Vec::with_capacity(16);
        push_raw_id(&mut key, *master);
        push_string(out, &key);
        push_string(out, &listpack::write_listpack(elements.iter().map(Vec::as_slice)));
    }
    let c = s.counters();
    push_len(out, c.len);
    push_id(out, c.last_id);
    push_id(out, c.first_id);
    push_id(out, c.max_deleted);
    push_len(out, c.entries_added);
    push_len(out, s.group_count() as u64);
    for (name, group) in s.groups() {
        push_string(out, name);
        push_id(out, group.last_id);
        push_len(out, group.entries_read.unwrap_or(UNKNOWN_READS));
        push_len(out, group.pel.len() as u64);
        for (id, nack) in &group.pel {
            push_raw_id(out, *id);
            out.extend_from_slice(&nack.delivered.to_le_bytes());
            push_len(out, nack.count);
        }
        push_len(out, group.consumers.len() as u64);
        for (name, consumer) in &group.consumers {
            push_string(out, name);
            out.extend_from_slice(&consumer.seen.to_le_bytes());
            push_len(out, consumer.pending.len() as u64);
            for id in &consumer.pending {
                push_raw_id(out, *id);
            }
        }
    }
}

impl Reader<'_> {
    fn len_u64(&mut self) -> Option<u64> {
        self.len_or_encoding()?.ok()
    }

    fn id(&mut self) -> Option<StreamId> {
        Some(StreamId::new(self.len_u64()?, self.len_u64()?))
    }

    fn raw_id(&mut self) -> Option<StreamId> {
        let b = self.bytes(16)?;
        Some(StreamId::new(u64::from_be_bytes(b[..8].try_into().ok()?), u64::from_be_bytes(b[8..].try_into().ok()?)))
    }

    fn millis(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }
}

/// A group as Redis's loader checks it: no pending ID twice, every consumer's IDs in the global list
/// and owned once, and (as deep sanitization finds) no pending entry without an owner.
fn read_group(r: &mut Reader<'_>) -> Option<Group> {
    let last_id = r.id()?;
    let reads = r.len_u64()?;
    let mut group = Group::new(last_id, (reads != UNKNOWN_READS).then_some(reads));
    let mut unowned: BTreeMap<StreamId, (u64, u64)> = BTreeMap::new();
    for _ in 0..r.len_u64()? {
        let (id, delivered, count) = (r.raw_id()?, r.millis()?, r.len_u64()?);
        if unowned.insert(id, (delivered, count)).is_some() {
            return None;
        }
    }
    for _ in 0..r.len_u64()? {
        let name = Bytes::from(r.string()?);
        let seen = r.millis()?;
        let mut pending = BTreeSet::new();
        for _ in 0..r.len_u64()? {
            let id = r.raw_id()?;
            let (delivered, count) = unowned.remove(&id)?;
            pending.insert(id);
            group.pel.insert(id, Nack { consumer: name.clone(), delivered, count });
        }
        if group.consumers.insert(name, Consumer { seen, pending }).is_some() {
            return None;
        }
    }
    unowned.is_empty().then_some(group)
}

pub fn read(r: &mut Reader<'_>) -> Option<Value> {
    let mut nodes = Vec::new();
    for _ in 0..r.len_u64()? {
        let key = r.string()?;
        let mut kr = Reader { data: &key, at: 0 };
        let master = kr.raw_id().filter(|_| key.len() == 16)?;
        let elements = listpack::read_listpack(&r.string()?)?;
        if elements.is_empty() {
            return None;
        }
        nodes.push((master, elements.into_iter().map(listpack::Item::into_bytes).collect()));
    }
    let counters = Counters { len: r.len_u64()?, last_id: r.id()?, first_id: r.id()?, max_deleted: r.id()?, entries_added: r.len_u64()? };
    let mut groups: BTreeMap<Bytes, Group> = BTreeMap::new();
    for _ in 0..r.len_u64()? {
        let name = Bytes::from(r.string()?);
        let group = read_group(r)?;
        if groups.insert(name, group).is_some() {
            return None;
        }
    }
    Some(Value::XStream(Box::new(XStream::from_listpack_nodes(nodes, counters, groups.into_iter().collect())?)))
}
