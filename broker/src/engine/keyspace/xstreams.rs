//! Redis stream operations on keys: XADD, XRANGE, XLEN, XDEL, XTRIM, XSETID, XREAD and XINFO STREAM,
//! with Redis 7.0's error order, notifications (class `t`) and blocking wake-ups. The value itself
//! is `engine::xstream::XStream`; every change is announced as an [`XEffect`] through the keyspace's
//! one hook. Streams are not deleted when they become empty, as in Redis.

use bytes::Bytes;
use herald_protocol::stream_id;

use super::GroupFull;
use super::{Keyspace, Ttl, Value, notify};
use crate::engine::Error;
use crate::engine::change::XEffect;
use crate::engine::xstream::{AddId, NoId, StreamId, Trim, Trimmed, XEntry, XStream};

pub(super) const INVALID_ID: Error = Error::fixed(stream_id::INVALID);

pub(super) fn strict_id(raw: &[u8]) -> Result<StreamId, Error> {
    stream_id::parse_strict(raw).ok_or(INVALID_ID)
}

/// XADD's arguments once parsed (all of them are checked before the key is looked up).
#[derive(Debug, Clone, Copy)]
pub struct XAddArgs<'a> {
    /// `None`: `*`.
    pub id: Option<AddId>,
    pub no_mkstream: bool,
    pub trim: Option<Trim>,
    pub fields: &'a [Bytes],
}

/// XREADGROUP's ID for one stream: `>` (entries never delivered) or the consumer's history after an ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupReadId {
    New,
    After(StreamId),
}

/// What XREAD / XREADGROUP found for one stream.
pub type XRead = (Bytes, Vec<(StreamId, Option<Vec<Bytes>>)>);

/// XINFO STREAM's figures.
#[derive(Debug)]
pub struct XStreamInfo {
    pub length: u64,
    pub radix_keys: usize,
    pub radix_nodes: usize,
    pub last_id: StreamId,
    pub max_deleted: StreamId,
    pub entries_added: u64,
    pub first_id: StreamId,
    pub groups: usize,
    pub first: Option<XEntry>,
    pub last: Option<XEntry>,
    /// With FULL: the first entries, and each group in detail.
    pub full: Option<(Vec<XEntry>, Vec<GroupFull>)>,
}

fn stream_of(value: &Value) -> Result<&XStream, Error> {
    match value {
        Value::XStream(s) => Ok(s),
        _ => Err(Error::wrong_type()),
    }
}

fn stream_of_mut(value: &mut Value) -> Result<&mut XStream, Error> {
    match value {
        Value::XStream(s) => Ok(s),
        _ => Err(Error::wrong_type()),
    }
}

impl Keyspace {
    /// The live stream at `key` for reading (counts a hit or miss): `Ok(None)` when absent.
    pub(super) fn x_read(&mut self, db: usize, key: &[u8], now: u64) -> Result<Option<&XStream>, Error> {
        match self.read(db, key, now) {
            Some(entry) => stream_of(&entry.value).map(Some),
            None => Ok(None),
        }
    }

    /// The live stream at `key` for writing (no hit/miss accounting): `Ok(None)` when absent.
    pub(super) fn x_write(&mut self, db: usize, key: &[u8], now: u64) -> Result<Option<&mut XStream>, Error> {
        match self.live_mut(db, key, now) {
            Some(entry) => stream_of_mut(&mut entry.value).map(Some),
            None => Ok(None),
        }
    }

    /// The stream at `key`, which the caller knows exists.
    pub(super) fn x_get(&mut self, db: usize, key: &[u8]) -> &mut XStream {
        match self.dbs[db].get_mut(key).map(|e| &mut e.value) {
            Some(Value::XStream(s)) => s,
            _ => unreachable!("checked to be a stream"),
        }
    }

    /// Creates an empty stream at `key` (XADD, XGROUP CREATE MKSTREAM), announcing `new`.
    pub(super) fn x_create(&mut self, db: usize, key: &[u8], now: u64) {
        self.store(db, key, Value::XStream(Box::default()), Ttl::Clear, now);
    }

    /// Blocked XREAD / XREADGROUP clients may be waiting for this stream.
    fn x_signal(&mut self, db: usize, key: &[u8]) {
        if self.key_waiting {
            self.signal_ready(db, key);
        }
    }

    /// XADD: the new entry's ID, `Ok(None)` for NOMKSTREAM on a missing key. The hot path: one lookup
    /// to append (and bump the revision), one in the change hook.
    pub fn xadd(&mut self, db: usize, key: &[u8], args: XAddArgs<'_>, now: u64) -> Result<Option<StreamId>, Error> {
        if args.id == Some(AddId::Explicit(StreamId::MIN)) {
            return Err(Error::fixed("ERR The ID specified in XADD must be greater than 0-0"));
        }
        let effect = |id| XEffect::Added { id, fields: args.fields };
        let id = match self.live_mut(db, key, now) {
            None if args.no_mkstream => return Ok(None),
            None => {
                let mut stream = XStream::default();
                let id = stream.next_id(args.id, now).expect("an empty stream takes any ID above 0-0");
                stream.append(id, args.fields);
                self.store(db, key, Value::XStream(Box::new(stream)), Ttl::Clear, now);
                self.x_record(db, key, notify::STREAM, "xadd", true, effect(id));
                id
            }
            Some(entry) => {
                let s = stream_of_mut(&mut entry.value)?;
                if s.last_id == StreamId::MAX {
                    return Err(Error::fixed("ERR The stream has exhausted the last possible ID, unable to add more items"));
                }
                let id = match s.next_id(args.id, now) {
                    Ok(id) => id,
                    Err(NoId::TooLarge) => return Err(Error::fixed("ERR Elements are too large to be stored")),
                    Err(_) => return Err(Error::fixed("ERR The ID specified in XADD is equal or smaller than the target stream top item")),
                };
                s.append(id, args.fields);
                entry.revision += 1;
                self.x_record(db, key, notify::STREAM, "xadd", true, effect(id));
                id
            }
        };
        if let Some(trim) = args.trim {
            let trimmed = self.x_get(db, key).trim(&trim);
            self.x_trimmed(db, key, trimmed);
        }
        self.x_signal(db, key);
        Ok(Some(id))
    }

    /// Announces a trim: `xtrim` when entries went, silently when only tombstones did.
    fn x_trimmed(&mut self, db: usize, key: &[u8], trimmed: Option<Trimmed>) {
        if let Some(Trimmed { removed, through }) = trimmed {
            let effect = XEffect::Trimmed { through, removed };
            match removed {
                0 => self.x_changed(db, key, 0, "", false, effect),
                _ => self.x_changed(db, key, notify::STREAM, "xtrim", true, effect),
            }
        }
    }

    /// XRANGE / XREVRANGE over `range` (both ends included): `Ok(None)` when the key is absent.
    pub fn xrange(
        &mut self,
        db: usize,
        key: &[u8],
        range: (StreamId, StreamId),
        count: u64,
        rev: bool,
        now: u64,
    ) -> Result<Option<Vec<XEntry>>, Error> {
        Ok(self.x_read(db, key, now)?.map(|s| s.range(range.0, range.1, count, rev)))
    }

    pub fn xlen(&mut self, db: usize, key: &[u8], now: u64) -> Result<u64, Error> {
        Ok(self.x_read(db, key, now)?.map_or(0, XStream::len))
    }

    /// XDEL: how many of the IDs were live entries. The IDs are read once the key is found.
    pub fn xdel(&mut self, db: usize, key: &[u8], raw_ids: &[Bytes], now: u64) -> Result<u64, Error> {
        let Some(stream) = self.x_write(db, key, now)? else { return Ok(0) };
        let ids = raw_ids.iter().map(|raw| strict_id(raw)).collect::<Result<Vec<_>, _>>()?;
        let deleted: Vec<StreamId> = ids.into_iter().filter(|id| stream.delete(*id)).collect();
        if !deleted.is_empty() {
            self.x_changed(db, key, notify::STREAM, "xdel", true, XEffect::Deleted { ids: &deleted });
        }
        Ok(deleted.len() as u64)
    }

    /// XTRIM: how many entries went.
    pub fn xtrim(&mut self, db: usize, key: &[u8], trim: &Trim, now: u64) -> Result<u64, Error> {
        let Some(stream) = self.x_write(db, key, now)? else { return Ok(0) };
        let trimmed = stream.trim(trim);
        self.x_trimmed(db, key, trimmed);
        Ok(trimmed.map_or(0, |t| t.removed))
    }

    /// XSETID: the stream's last ID and, optionally, its counters. `max_deleted` 0-0 means unchanged.
    pub fn xsetid(
        &mut self,
        db: usize,
        key: &[u8],
        id: StreamId,
        entries_added: Option<u64>,
        max_deleted: Option<StreamId>,
        now: u64,
    ) -> Result<(), Error> {
        let stream = self.x_write(db, key, now)?.ok_or(Error::no_such_key())?;
        if !stream.is_empty() {
            if id < stream.last_valid_id() {
                return Err(Error::fixed("ERR The ID specified in XSETID is smaller than the target stream top item"));
            }
            if entries_added.is_some_and(|n| n < stream.len()) {
                return Err(Error::fixed("ERR The entries_added specified in XSETID is smaller than the target stream length"));
            }
        }
        stream.last_id = id;
        if let Some(n) = entries_added {
            stream.entries_added = n;
        }
        if let Some(max) = max_deleted.filter(|m| !m.is_zero()) {
            stream.max_deleted = max;
        }
        let effect = XEffect::SetId { last_id: stream.last_id, entries_added: stream.entries_added, max_deleted: stream.max_deleted };
        self.x_changed(db, key, notify::STREAM, "xsetid", false, effect);
        Ok(())
    }

    /// XREAD's IDs resolved against the streams, key by key as Redis does (a wrong type is found before
    /// a later key's bad ID): `$` is the stream's last ID (0-0 when absent).
    pub fn xread_ids(&mut self, db: usize, keys: &[Bytes], raw_ids: &[Bytes], now: u64) -> Result<Vec<StreamId>, Error> {
        let mut ids = Vec::with_capacity(keys.len());
        for (key, raw) in keys.iter().zip(raw_ids) {
            let last = self.x_read(db, key, now)?.map(|s| s.last_id);
            ids.push(match &raw[..] {
                b"$" => last.unwrap_or_default(),
                b">" => {
                    return Err(Error::fixed(
                        "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                    ));
                }
                raw => strict_id(raw)?,
            });
        }
        Ok(ids)
    }

    /// XREAD: the entries after each ID, for every stream that has some. A woken blocked read
    /// (`woken`) answers for the first stream whose last ID passed its ID, even if the new entries
    /// were deleted since, as Redis serves the key that woke it.
    pub fn xread(&mut self, db: usize, keys: &[Bytes], ids: &[StreamId], count: u64, woken: bool, now: u64) -> Vec<XRead> {
        let mut out = Vec::new();
        for (key, after) in keys.iter().zip(ids) {
            let Some(Value::XStream(s)) = self.dbs[db].get(key).filter(|e| e.expire_at > now).map(|e| &e.value) else { continue };
            let top = if woken { s.last_id } else { s.last_valid_id() };
            if top <= *after {
                continue;
            }
            let entries = match after.next() {
                Some(start) => s.range(start, StreamId::MAX, count, false).into_iter().map(|(id, f)| (id, Some(f))).collect(),
                None => Vec::new(),
            };
            out.push((key.clone(), entries));
            if woken {
                break;
            }
        }
        out
    }

    /// XINFO STREAM (`full`: `Some(count)` entries and pending entries per list, 0 for all).
    /// `options` is the option parse, judged once the key is found.
    pub fn xinfo_stream(&mut self, db: usize, key: &[u8], options: Result<Option<u64>, Error>, now: u64) -> Result<XStreamInfo, Error> {
        let s = self.x_read(db, key, now)?.ok_or(Error::no_such_key())?;
        let full = options?;
        let mut info = XStreamInfo {
            length: s.len(),
            radix_keys: s.node_count(),
            radix_nodes: s.radix_nodes(),
            last_id: s.last_id,
            max_deleted: s.max_deleted,
            entries_added: s.entries_added,
            first_id: s.first_id,
            groups: s.group_count(),
            first: None,
            last: None,
            full: None,
        };
        match full {
            None => {
                info.first = s.first_entry();
                info.last = s.last_entry();
            }
            Some(count) => {
                let entries = s.range(StreamId::MIN, StreamId::MAX, count, false);
                let groups = s.groups().map(|(name, g)| GroupFull::of(s, name, g, count)).collect();
                info.full = Some((entries, groups));
            }
        }
        Ok(info)
    }
}
