//! Redis streams in persistence files: a stream whole (snapshots, and any change recorded by its
//! result such as COPY or RENAME), and each [`XEffect`] as a log record.
//!
//! A whole stream keeps its nodes as they are in memory (master ID and packed bytes, tombstones
//! included), so node boundaries, and with them approximate trimming, are the same after a restart.

use bytes::Bytes;

use super::codec::{Malformed, Reader, Writer};
use crate::engine::change::{Delivery, XEffect};
use crate::engine::xstream::{Group, StreamId, XStream};

fn id(w: &mut Writer<'_>, id: StreamId) {
    w.u64(id.ms);
    w.u64(id.seq);
}

fn read_id(r: &mut Reader<'_>) -> Result<StreamId, Malformed> {
    Ok(StreamId::new(r.u64()?, r.u64()?))
}

fn ids(w: &mut Writer<'_>, list: &[StreamId]) {
    w.u32(list.len() as u32);
    for i in list {
        id(w, *i);
    }
}

fn read_ids(r: &mut Reader<'_>) -> Result<Vec<StreamId>, Malformed> {
    (0..r.u32()?).map(|_| read_id(r)).collect()
}

/// A stream whole.
pub fn write_value(w: &mut Writer<'_>, s: &XStream) {
    w.u32(s.node_count() as u32);
    for (master, raw) in s.raw_nodes() {
        id(w, master);
        w.bytes(raw);
    }
    id(w, s.last_id);
    id(w, s.first_id);
    id(w, s.max_deleted);
    w.u64(s.entries_added);
    w.u32(s.group_count() as u32);
    for (name, g) in s.groups() {
        w.bytes(name);
        id(w, g.last_id);
        w.opt_u64(g.entries_read);
        w.u32(g.consumers.len() as u32);
        for (cname, c) in &g.consumers {
            w.bytes(cname);
            w.u64(c.seen);
        }
        w.u32(g.pel.len() as u32);
        for (pid, nack) in &g.pel {
            id(w, *pid);
            w.bytes(&nack.consumer);
            w.u64(nack.delivered);
            w.u64(nack.count);
        }
    }
}

pub fn read_value(r: &mut Reader<'_>) -> Result<XStream, Malformed> {
    let nodes = (0..r.u32()?).map(|_| Ok((read_id(r)?, r.bytes()?.to_vec()))).collect::<Result<Vec<_>, Malformed>>()?;
    let (last_id, first_id, max_deleted) = (read_id(r)?, read_id(r)?, read_id(r)?);
    let entries_added = r.u64()?;
    let mut groups = Vec::new();
    for _ in 0..r.u32()? {
        let name = r.bytes()?;
        let mut g = Group::new(read_id(r)?, r.opt_u64()?);
        for _ in 0..r.u32()? {
            let cname = r.bytes()?;
            g.consumer(&cname, r.u64()?);
        }
        for _ in 0..r.u32()? {
            let (pid, owner) = (read_id(r)?, r.bytes()?);
            let (delivered, count) = (r.u64()?, r.u64()?);
            let (owner, _) = g.consumers.get_key_value(&owner).ok_or(Malformed("a pending entry of an unknown consumer"))?;
            let owner = owner.clone();
            g.set_pending(pid, &owner, delivered, count);
        }
        groups.push((name, g));
    }
    XStream::restore(nodes, last_id, first_id, max_deleted, entries_added, groups).ok_or(Malformed("a stream node that cannot be read"))
}

/// A stream change as the log keeps it (an owned [`XEffect`]).
#[derive(Debug, Clone, PartialEq)]
pub enum XChange {
    Added { id: StreamId, fields: Vec<Bytes> },
    Deleted { ids: Vec<StreamId> },
    Trimmed { through: StreamId, removed: u64 },
    SetId { last_id: StreamId, entries_added: u64, max_deleted: StreamId },
    GroupCreated { group: Bytes, last_id: StreamId, entries_read: Option<u64> },
    GroupSetId { group: Bytes, last_id: StreamId, entries_read: Option<u64> },
    GroupDestroyed { group: Bytes },
    ConsumerCreated { group: Bytes, consumer: Bytes, seen: u64 },
    ConsumerDeleted { group: Bytes, consumer: Bytes },
    Delivered { group: Bytes, consumer: Bytes, seen: u64, entries: Vec<Delivery> },
    Acked { group: Bytes, ids: Vec<StreamId> },
}

impl XChange {
    /// The change as the engine replays it.
    pub fn effect(&self) -> XEffect<'_> {
        match self {
            XChange::Added { id, fields } => XEffect::Added { id: *id, fields },
            XChange::Deleted { ids } => XEffect::Deleted { ids },
            XChange::Trimmed { through, removed } => XEffect::Trimmed { through: *through, removed: *removed },
            XChange::SetId { last_id, entries_added, max_deleted } => {
                XEffect::SetId { last_id: *last_id, entries_added: *entries_added, max_deleted: *max_deleted }
            }
            XChange::GroupCreated { group, last_id, entries_read } => {
                XEffect::GroupCreated { group, last_id: *last_id, entries_read: *entries_read }
            }
            XChange::GroupSetId { group, last_id, entries_read } => {
                XEffect::GroupSetId { group, last_id: *last_id, entries_read: *entries_read }
            }
            XChange::GroupDestroyed { group } => XEffect::GroupDestroyed { group },
            XChange::ConsumerCreated { group, consumer, seen } => XEffect::ConsumerCreated { group, consumer, seen: *seen },
            XChange::ConsumerDeleted { group, consumer } => XEffect::ConsumerDeleted { group, consumer },
            XChange::Delivered { group, consumer, seen, entries } => XEffect::Delivered { group, consumer, seen: *seen, entries },
            XChange::Acked { group, ids } => XEffect::Acked { group, ids },
        }
    }
}

mod effect_tag {
    pub const ADDED: u8 = 0;
    pub const DELETED: u8 = 1;
    pub const TRIMMED: u8 = 2;
    pub const SET_ID: u8 = 3;
    pub const GROUP_CREATED: u8 = 4;
    pub const GROUP_SET_ID: u8 = 5;
    pub const GROUP_DESTROYED: u8 = 6;
    pub const CONSUMER_CREATED: u8 = 7;
    pub const CONSUMER_DELETED: u8 = 8;
    pub const DELIVERED: u8 = 9;
    pub const ACKED: u8 = 10;
}

pub fn write_effect(w: &mut Writer<'_>, e: &XEffect<'_>) {
    use effect_tag::*;
    match e {
        XEffect::Added { id: i, fields } => {
            w.u8(ADDED);
            id(w, *i);
            w.u32(fields.len() as u32);
            for f in fields.iter() {
                w.bytes(f);
            }
        }
        XEffect::Deleted { ids: list } => {
            w.u8(DELETED);
            ids(w, list);
        }
        XEffect::Trimmed { through, removed } => {
            w.u8(TRIMMED);
            id(w, *through);
            w.u64(*removed);
        }
        XEffect::SetId { last_id, entries_added, max_deleted } => {
            w.u8(SET_ID);
            id(w, *last_id);
            w.u64(*entries_added);
            id(w, *max_deleted);
        }
        XEffect::GroupCreated { group, last_id, entries_read } | XEffect::GroupSetId { group, last_id, entries_read } => {
            w.u8(if matches!(e, XEffect::GroupCreated { .. }) { GROUP_CREATED } else { GROUP_SET_ID });
            w.bytes(group);
            id(w, *last_id);
            w.opt_u64(*entries_read);
        }
        XEffect::GroupDestroyed { group } => {
            w.u8(GROUP_DESTROYED);
            w.bytes(group);
        }
        XEffect::ConsumerCreated { group, consumer, seen } => {
            w.u8(CONSUMER_CREATED);
            w.bytes(group);
            w.bytes(consumer);
            w.u64(*seen);
        }
        XEffect::ConsumerDeleted { group, consumer } => {
            w.u8(CONSUMER_DELETED);
            w.bytes(group);
            w.bytes(consumer);
        }
        XEffect::Delivered { group, consumer, seen, entries } => {
            w.u8(DELIVERED);
            w.bytes(group);
            w.bytes(consumer);
            w.u64(*seen);
            w.u32(entries.len() as u32);
            for d in entries.iter() {
                id(w, d.id);
                w.u64(d.time);
                w.u64(d.count);
            }
        }
        XEffect::Acked { group, ids: list } => {
            w.u8(ACKED);
            w.bytes(group);
            ids(w, list);
        }
    }
}

pub fn read_effect(r: &mut Reader<'_>) -> Result<XChange, Malformed> {
    use effect_tag::*;
    Ok(match r.u8()? {
        ADDED => XChange::Added { id: read_id(r)?, fields: (0..r.u32()?).map(|_| r.bytes()).collect::<Result<_, _>>()? },
        DELETED => XChange::Deleted { ids: read_ids(r)? },
        TRIMMED => XChange::Trimmed { through: read_id(r)?, removed: r.u64()? },
        SET_ID => XChange::SetId { last_id: read_id(r)?, entries_added: r.u64()?, max_deleted: read_id(r)? },
        GROUP_CREATED => XChange::GroupCreated { group: r.bytes()?, last_id: read_id(r)?, entries_read: r.opt_u64()? },
        GROUP_SET_ID => XChange::GroupSetId { group: r.bytes()?, last_id: read_id(r)?, entries_read: r.opt_u64()? },
        GROUP_DESTROYED => XChange::GroupDestroyed { group: r.bytes()? },
        CONSUMER_CREATED => XChange::ConsumerCreated { group: r.bytes()?, consumer: r.bytes()?, seen: r.u64()? },
        CONSUMER_DELETED => XChange::ConsumerDeleted { group: r.bytes()?, consumer: r.bytes()? },
        DELIVERED => {
            let (group, consumer, seen) = (r.bytes()?, r.bytes()?, r.u64()?);
            let entries = (0..r.u32()?)
                .map(|_| Ok(Delivery { id: read_id(r)?, time: r.u64()?, count: r.u64()? }))
                .collect::<Result<_, Malformed>>()?;
            XChange::Delivered { group, consumer, seen, entries }
        }
        ACKED => XChange::Acked { group: r.bytes()?, ids: read_ids(r)? },
        _ => return Err(Malformed("unknown stream change")),
    })
}
