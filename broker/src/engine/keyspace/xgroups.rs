//! Consumer-group operations on stream keys: XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM,
//! XINFO GROUPS and CONSUMERS, with Redis 7.0's error order and texts. Group bookkeeping is announced
//! through the keyspace hook like every change, but (as in Redis) does not count as modifying the key:
//! no WATCH is dirtied and only group and consumer creation and removal notify (`xgroup-*`).

use bytes::Bytes;
use herald_protocol::stream_id;

use super::xstreams::{GroupReadId, XRead, strict_id};
use super::{Keyspace, Value, notify};
use crate::engine::Error;
use crate::engine::change::{Delivery, XEffect};
use crate::engine::xstream::{Group, GroupRead, StreamId, XStream};

/// An argument, as Redis quotes it in an error (`%s`: up to a NUL, line breaks made spaces).
fn quoted(b: &[u8]) -> String {
    let b = b.split(|c| *c == 0).next().unwrap_or_default();
    String::from_utf8_lossy(b).replace(['\r', '\n'], " ")
}

fn no_key_or_group(key: &[u8], group: &[u8]) -> Error {
    Error::new(format!("NOGROUP No such key '{}' or consumer group '{}'", quoted(key), quoted(group)))
}

fn no_group_for_key(key: &[u8], group: &[u8]) -> Error {
    Error::new(format!("NOGROUP No such consumer group '{}' for key name '{}'", quoted(group), quoted(key)))
}

const KEY_REQUIRED: Error = Error::fixed(
    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
);

/// XREADGROUP's replies for a blocked client whose stream or group went away.
pub const UNBLOCKED_NO_KEY: Error = Error::fixed("UNBLOCKED the stream key no longer exists");
pub const UNBLOCKED_NO_GROUP: Error = Error::fixed("NOGROUP the consumer group this client was blocked on no longer exists");

/// XCLAIM's `IDLE ms` or `TIME unix-ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimTime {
    Idle(i64),
    At(i64),
}

/// XCLAIM's arguments after the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimSpec {
    pub min_idle: u64,
    pub ids: Vec<StreamId>,
    pub time: Option<ClaimTime>,
    pub retry_count: Option<u64>,
    pub force: bool,
    pub just_id: bool,
    pub last_id: Option<StreamId>,
}

/// What XCLAIM claimed: the entries (or just their IDs).
pub type XClaimed = Vec<(StreamId, Option<Vec<Bytes>>)>;

/// XAUTOCLAIM's reply: the next cursor, what was claimed, and pending IDs whose entries were gone.
#[derive(Debug, PartialEq)]
pub struct XAutoClaimed {
    pub cursor: StreamId,
    pub claimed: XClaimed,
    pub deleted: Vec<StreamId>,
}

/// XPENDING's summary.
#[derive(Debug, PartialEq)]
pub struct PendingSummary {
    pub count: usize,
    pub bounds: Option<(StreamId, StreamId)>,
    pub consumers: Vec<(Bytes, usize)>,
}

/// One pending entry: ID, owner, ms since its last delivery, deliveries.
pub type PendingEntry = (StreamId, Bytes, u64, u64);

/// XINFO GROUPS' fields.
#[derive(Debug, PartialEq)]
pub struct GroupInfo {
    pub name: Bytes,
    pub consumers: usize,
    pub pending: usize,
    pub last_id: StreamId,
    pub entries_read: Option<u64>,
    pub lag: Option<i64>,
}

/// XINFO CONSUMERS' fields: name, pending count, idle ms.
pub type ConsumerInfo = (Bytes, usize, u64);

/// A group in XINFO STREAM FULL: its fields, its first pending entries (ID, owner, delivery time,
/// count) and its consumers.
#[derive(Debug)]
pub struct GroupFull {
    pub info: GroupInfo,
    pub pending: Vec<(StreamId, Bytes, u64, u64)>,
    pub consumers: Vec<ConsumerFull>,
}

/// A consumer in XINFO STREAM FULL: name, seen time, pending count, its first pending entries (ID,
/// delivery time, count).
#[derive(Debug)]
pub struct ConsumerFull {
    pub name: Bytes,
    pub seen: u64,
    pub pel_count: usize,
    pub pending: Vec<(StreamId, u64, u64)>,
}

/// Where XGROUP CREATE / SETID put the group: `$` or an ID (read after the checks), the read
/// counter (-1: unknown), and the error for a wrong argument count, reported after the checks.
#[derive(Debug, Clone)]
pub struct GroupPosition<'a> {
    pub raw_id: &'a [u8],
    pub entries_read: Option<i64>,
    pub excess: Option<Error>,
}

/// What a claim did, for its reply and its effects.
#[derive(Default)]
struct ClaimLog {
    owner: Option<Bytes>,
    claimed: XClaimed,
    delivered: Vec<(StreamId, u64, u64)>,
    gone: Vec<StreamId>,
}

impl GroupInfo {
    fn of(s: &XStream, name: &Bytes, g: &Group) -> GroupInfo {
        GroupInfo {
            name: name.clone(),
            consumers: g.consumers.len(),
            pending: g.pel.len(),
            last_id: g.last_id,
            entries_read: g.entries_read,
            lag: s.lag(g),
        }
    }
}

impl GroupFull {
    /// At most `count` pending entries per list (0: all).
    pub(super) fn of(s: &XStream, name: &Bytes, g: &Group, count: u64) -> GroupFull {
        let n = if count == 0 { usize::MAX } else { count as usize };
        GroupFull {
            info: GroupInfo::of(s, name, g),
            pending: g.pel.iter().take(n).map(|(id, p)| (*id, p.consumer.clone(), p.delivered, p.count)).collect(),
            consumers: g
                .consumers
                .iter()
                .map(|(name, c)| ConsumerFull {
                    name: name.clone(),
                    seen: c.seen,
                    pel_count: c.pending.len(),
                    pending: c.pending.iter().take(n).map(|id| (*id, g.pel[id].delivered, g.pel[id].count)).collect(),
                })
                .collect(),
        }
    }
}

fn deliveries(read: &[(StreamId, u64, u64)]) -> Vec<Delivery> {
    read.iter().map(|&(id, time, count)| Delivery { id, time, count }).collect()
}

impl Keyspace {
    /// The stream and group for a group command that needs both (NOGROUP otherwise).
    fn x_group_read(&mut self, db: usize, key: &[u8], group: &[u8], now: u64) -> Result<&Group, Error> {
        let stream = self.x_read(db, key, now)?;
        stream.and_then(|s| s.group(group)).ok_or_else(|| no_key_or_group(key, group))
    }

    /// The XGROUP checks: the key must be a stream (unless CREATE with MKSTREAM), the group must exist
    /// for the subcommands that name one; then `excess` (a wrong argument count) is reported.
    fn x_group_checks(
        &mut self,
        db: usize,
        key: &[u8],
        group: Option<&[u8]>,
        mkstream: bool,
        excess: Option<Error>,
        now: u64,
    ) -> Result<bool, Error> {
        let exists = match self.x_write(db, key, now)? {
            None if !mkstream => return Err(KEY_REQUIRED),
            None => false,
            Some(s) => {
                if let Some(g) = group
                    && s.group(g).is_none()
                {
                    return Err(no_group_for_key(key, g));
                }
                true
            }
        };
        excess.map_or(Ok(exists), Err)
    }

    /// Emits a consumer's creation (`xgroup-createconsumer`).
    fn x_consumer_created(&mut self, db: usize, key: &[u8], group: &[u8], consumer: &[u8], now: u64) {
        let effect = XEffect::ConsumerCreated { group, consumer, seen: now };
        self.x_changed(db, key, notify::STREAM, "xgroup-createconsumer", false, effect);
    }

    /// The consumer, created (and announced) if new, marked active now.
    fn x_consumer(&mut self, db: usize, key: &[u8], group: &[u8], name: &[u8], now: u64) -> Bytes {
        let g = self.x_get(db, key).group_mut(group).expect("group checked");
        let (name, created) = g.consumer(name, now);
        g.touch(&name, now);
        if created {
            self.x_consumer_created(db, key, group, &name, now);
        }
        name
    }

    /// XGROUP CREATE (`$` is the stream's last ID, 0-0 for a stream MKSTREAM creates).
    pub fn xgroup_create(
        &mut self,
        db: usize,
        key: &[u8],
        group: &[u8],
        at: GroupPosition<'_>,
        mkstream: bool,
        now: u64,
    ) -> Result<(), Error> {
        let exists = self.x_group_checks(db, key, None, mkstream, at.excess, now)?;
        let last = if exists { self.x_get(db, key).last_id } else { StreamId::MIN };
        let id = if at.raw_id == b"$" { last } else { strict_id(at.raw_id)? };
        if !exists {
            self.x_create(db, key, now);
        }
        let entries_read = at.entries_read.and_then(|n| u64::try_from(n).ok());
        if !self.x_get(db, key).create_group(group, id, entries_read) {
            return Err(Error::fixed("BUSYGROUP Consumer Group name already exists"));
        }
        let effect = XEffect::GroupCreated { group, last_id: id, entries_read };
        match exists {
            true => self.x_changed(db, key, notify::STREAM, "xgroup-create", false, effect),
            false => self.x_record(db, key, notify::STREAM, "xgroup-create", true, effect),
        }
        Ok(())
    }

    /// XGROUP SETID: `$`, or an ID where `-` and `+` are allowed. Without ENTRIESREAD the group's read
    /// counter becomes unknown.
    pub fn xgroup_setid(&mut self, db: usize, key: &[u8], group: &[u8], at: GroupPosition<'_>, now: u64) -> Result<(), Error> {
        self.x_group_checks(db, key, Some(group), false, at.excess, now)?;
        let s = self.x_get(db, key);
        let id = if at.raw_id == b"$" { s.last_id } else { stream_id::parse(at.raw_id, 0).ok_or(super::xstreams::INVALID_ID)? };
        let entries_read = at.entries_read.and_then(|n| u64::try_from(n).ok());
        let g = s.group_mut(group).expect("group checked");
        g.last_id = id;
        g.entries_read = entries_read;
        self.x_changed(db, key, notify::STREAM, "xgroup-setid", false, XEffect::GroupSetId { group, last_id: id, entries_read });
        Ok(())
    }

    /// XGROUP DESTROY: whether the group existed. Blocked XREADGROUP clients of the group are woken
    /// (to answer NOGROUP).
    pub fn xgroup_destroy(&mut self, db: usize, key: &[u8], group: &[u8], now: u64) -> Result<bool, Error> {
        self.x_group_checks(db, key, None, false, None, now)?;
        if !self.x_get(db, key).destroy_group(group) {
            return Ok(false);
        }
        self.x_changed(db, key, notify::STREAM, "xgroup-destroy", false, XEffect::GroupDestroyed { group });
        if self.key_waiting {
            self.signal_ready(db, key);
        }
        Ok(true)
    }

    /// XGROUP CREATECONSUMER: whether it was created.
    pub fn xgroup_create_consumer(&mut self, db: usize, key: &[u8], group: &[u8], consumer: &[u8], now: u64) -> Result<bool, Error> {
        self.x_group_checks(db, key, Some(group), false, None, now)?;
        let g = self.x_get(db, key).group_mut(group).expect("group checked");
        let (name, created) = g.consumer(consumer, now);
        if created {
            self.x_consumer_created(db, key, group, &name, now);
        }
        Ok(created)
    }

    /// XGROUP DELCONSUMER: how many entries the consumer had pending (they leave the PEL with it).
    pub fn xgroup_del_consumer(&mut self, db: usize, key: &[u8], group: &[u8], consumer: &[u8], now: u64) -> Result<usize, Error> {
        self.x_group_checks(db, key, Some(group), false, None, now)?;
        let g = self.x_get(db, key).group_mut(group).expect("group checked");
        let Some(pending) = g.delete_consumer(consumer) else { return Ok(0) };
        self.x_changed(db, key, notify::STREAM, "xgroup-delconsumer", false, XEffect::ConsumerDeleted { group, consumer });
        Ok(pending)
    }

    /// XREADGROUP's IDs, key by key: each key must be a stream with the group (NOGROUP) before its
    /// ID is read; `$` has no meaning here.
    pub fn xreadgroup_ids(
        &mut self,
        db: usize,
        group: &[u8],
        keys: &[Bytes],
        raw_ids: &[Bytes],
        now: u64,
    ) -> Result<Vec<GroupReadId>, Error> {
        let mut ids = Vec::with_capacity(keys.len());
        for (key, raw) in keys.iter().zip(raw_ids) {
            let found = self.x_read(db, key, now)?.is_some_and(|s| s.group(group).is_some());
            if !found {
                return Err(Error::new(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    quoted(key),
                    quoted(group)
                )));
            }
            ids.push(match &raw[..] {
                b"$" => {
                    return Err(Error::fixed(
                        "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
                    ));
                }
                b">" => GroupReadId::New,
                raw => GroupReadId::After(strict_id(raw)?),
            });
        }
        Ok(ids)
    }

    /// XREADGROUP: for each stream, the consumer's history after its ID (always answered, even
    /// empty), or the entries never delivered to the group (`>`, when there are some). A woken blocked
    /// read answers for the first stream that moved past the group, or fails if its stream or group
    /// went away.
    #[allow(clippy::too_many_arguments)]
    pub fn xreadgroup(
        &mut self,
        db: usize,
        group: &[u8],
        consumer: &[u8],
        keys: &[Bytes],
        ids: &[GroupReadId],
        count: u64,
        no_ack: bool,
        woken: bool,
        now: u64,
    ) -> Result<Vec<XRead>, Error> {
        let mut out = Vec::new();
        for (key, id) in keys.iter().zip(ids) {
            let stream = match self.dbs[db].get(key).filter(|e| e.expire_at > now).map(|e| &e.value) {
                Some(Value::XStream(s)) => s,
                _ if woken => return Err(UNBLOCKED_NO_KEY),
                _ => continue,
            };
            let Some(g) = stream.group(group) else {
                if woken {
                    return Err(UNBLOCKED_NO_GROUP);
                }
                continue;
            };
            let serve = match id {
                GroupReadId::After(_) => true,
                GroupReadId::New if woken => stream.last_id > g.last_id,
                GroupReadId::New => stream.last_valid_id() > g.last_id,
            };
            if !serve {
                continue;
            }
            let name = self.x_consumer(db, key, group, consumer, now);
            let s = self.x_get(db, key);
            let read: GroupRead = match id {
                GroupReadId::After(after) => s.read_history(group, &name, *after, count, now),
                GroupReadId::New => s.read_new(group, &name, count, no_ack, now),
            };
            if read.advanced {
                let g = s.group(group).expect("group exists");
                let effect = XEffect::GroupSetId { group, last_id: g.last_id, entries_read: g.entries_read };
                self.x_changed(db, key, 0, "", false, effect);
            }
            if !read.deliveries.is_empty() {
                let entries = deliveries(&read.deliveries);
                self.x_changed(db, key, 0, "", false, XEffect::Delivered { group, consumer: &name, seen: now, entries: &entries });
            }
            out.push((key.clone(), read.entries));
            if woken {
                break;
            }
        }
        Ok(out)
    }

    /// XACK: how many of the IDs were pending. The IDs are read once the key and group are found.
    pub fn xack(&mut self, db: usize, key: &[u8], group: &[u8], raw_ids: &[Bytes], now: u64) -> Result<u64, Error> {
        if self.x_read(db, key, now)?.and_then(|s| s.group(group)).is_none() {
            return Ok(0);
        }
        let ids = raw_ids.iter().map(|raw| strict_id(raw)).collect::<Result<Vec<_>, _>>()?;
        let g = self.x_get(db, key).group_mut(group).expect("group checked");
        let acked: Vec<StreamId> = ids.into_iter().filter(|id| g.ack(*id)).collect();
        if !acked.is_empty() {
            self.x_changed(db, key, 0, "", false, XEffect::Acked { group, ids: &acked });
        }
        Ok(acked.len() as u64)
    }

    /// XPENDING key group.
    pub fn xpending_summary(&mut self, db: usize, key: &[u8], group: &[u8], now: u64) -> Result<PendingSummary, Error> {
        let g = self.x_group_read(db, key, group, now)?;
        let bounds = g.pel.first_key_value().zip(g.pel.last_key_value()).map(|((a, _), (b, _))| (*a, *b));
        let consumers = g.consumers.iter().filter(|(_, c)| !c.pending.is_empty()).map(|(n, c)| (n.clone(), c.pending.len())).collect();
        Ok(PendingSummary { count: g.pel.len(), bounds, consumers })
    }

    /// XPENDING key group [IDLE ms] start end count [consumer].
    #[allow(clippy::too_many_arguments)]
    pub fn xpending_range(
        &mut self,
        db: usize,
        key: &[u8],
        group: &[u8],
        min_idle: i64,
        start: StreamId,
        end: StreamId,
        count: u64,
        consumer: Option<&[u8]>,
        now: u64,
    ) -> Result<Vec<PendingEntry>, Error> {
        let g = self.x_group_read(db, key, group, now)?;
        if start > end {
            return Ok(Vec::new());
        }
        let idle_of = |delivered: u64| now.saturating_sub(delivered);
        let wanted = |delivered: u64| min_idle == 0 || (now as i64).saturating_sub(delivered as i64) >= min_idle;
        let entries: Box<dyn Iterator<Item = StreamId>> = match consumer {
            Some(name) => match g.consumers.get(name) {
                Some(c) => Box::new(c.pending.range(start..=end).copied()),
                None => return Ok(Vec::new()),
            },
            None => Box::new(g.pel.range(start..=end).map(|(id, _)| *id)),
        };
        Ok(entries
            .map(|id| (id, &g.pel[&id]))
            .filter(|(_, p)| wanted(p.delivered))
            .take(count as usize)
            .map(|(id, p)| (id, p.consumer.clone(), idle_of(p.delivered), p.count))
            .collect())
    }

    /// XCLAIM. `spec` is the option parse, judged once the key and group are found.
    pub fn xclaim(
        &mut self,
        db: usize,
        key: &[u8],
        group: &[u8],
        consumer: &[u8],
        spec: Result<ClaimSpec, Error>,
        now: u64,
    ) -> Result<XClaimed, Error> {
        self.x_group_read(db, key, group, now)?;
        let spec = spec?;
        let g = self.x_get(db, key).group_mut(group).expect("group checked");
        if let Some(last) = spec.last_id.filter(|l| *l > g.last_id) {
            g.last_id = last;
            let entries_read = g.entries_read;
            self.x_changed(db, key, 0, "", false, XEffect::GroupSetId { group, last_id: last, entries_read });
        }
        let time = match spec.time {
            Some(ClaimTime::Idle(ms)) => (now as i64).saturating_sub(ms),
            Some(ClaimTime::At(at)) => at,
            None => now as i64,
        };
        let time = if time < 0 || time > now as i64 { now } else { time as u64 };
        let mut log = ClaimLog::default();
        for &id in &spec.ids {
            let s = self.x_get(db, key);
            let exists = s.contains(id);
            let g = s.group_mut(group).expect("group checked");
            let previous = g.pel.get(&id).map(|p| (p.delivered, p.count));
            if !exists {
                if previous.is_some() {
                    g.ack(id);
                    log.gone.push(id);
                }
                continue;
            }
            let count = match previous {
                None if !spec.force => continue,
                // FORCE creates the pending entry as delivered once.
                None => 1,
                Some((at, _)) if spec.min_idle > 0 && (now as i64).saturating_sub(at as i64) < spec.min_idle as i64 => continue,
                Some((_, count)) => count,
            };
            let count = spec.retry_count.unwrap_or(if spec.just_id { count } else { count + 1 });
            self.x_claim_one(db, key, group, consumer, &mut log, (id, time, count), spec.just_id, now);
        }
        self.x_claim_effects(db, key, group, &log, now);
        Ok(log.claimed)
    }

    /// Gives pending entry `id` to `consumer` (created on the first claim) with this delivery time
    /// and count, recording it in `log`.
    #[allow(clippy::too_many_arguments)]
    fn x_claim_one(
        &mut self,
        db: usize,
        key: &[u8],
        group: &[u8],
        consumer: &[u8],
        log: &mut ClaimLog,
        delivery: (StreamId, u64, u64),
        just_id: bool,
        now: u64,
    ) {
        let name = match &log.owner {
            Some(name) => name.clone(),
            None => log.owner.insert(self.x_consumer(db, key, group, consumer, now)).clone(),
        };
        let (id, time, count) = delivery;
        let s = self.x_get(db, key);
        let fields = if just_id { None } else { s.get(id) };
        s.group_mut(group).expect("group checked").set_pending(id, &name, time, count);
        log.delivered.push(delivery);
        log.claimed.push((id, fields));
    }

    fn x_claim_effects(&mut self, db: usize, key: &[u8], group: &[u8], log: &ClaimLog, now: u64) {
        if !log.gone.is_empty() {
            self.x_changed(db, key, 0, "", false, XEffect::Acked { group, ids: &log.gone });
        }
        if let Some(consumer) = &log.owner
            && !log.delivered.is_empty()
        {
            let entries = deliveries(&log.delivered);
            self.x_changed(db, key, 0, "", false, XEffect::Delivered { group, consumer, seen: now, entries: &entries });
        }
    }

    /// XAUTOCLAIM: claims up to `count` entries idle at least `min_idle`, from `start` in the PEL,
    /// looking at no more than 10 per entry wanted; pending IDs whose entries are gone leave the PEL
    /// (and count towards `count`).
    #[allow(clippy::too_many_arguments)]
    pub fn xautoclaim(
        &mut self,
        db: usize,
        key: &[u8],
        group: &[u8],
        consumer: &[u8],
        min_idle: u64,
        start: StreamId,
        count: u64,
        just_id: bool,
        now: u64,
    ) -> Result<XAutoClaimed, Error> {
        let g = self.x_group_read(db, key, group, now)?;
        let mut attempts = count.saturating_mul(10);
        let ids: Vec<StreamId> =
            g.pel.range(start..).map(|(id, _)| *id).take(attempts.saturating_add(1).min(usize::MAX as u64) as usize).collect();
        let (mut left, mut i) = (count, 0);
        let mut log = ClaimLog::default();
        while attempts > 0 && left > 0 && i < ids.len() {
            attempts -= 1;
            let id = ids[i];
            i += 1;
            let s = self.x_get(db, key);
            if !s.contains(id) {
                s.group_mut(group).expect("group checked").ack(id);
                log.gone.push(id);
                left -= 1;
                continue;
            }
            let nack = &s.group(group).expect("group checked").pel[&id];
            if min_idle > 0 && now.saturating_sub(nack.delivered) < min_idle {
                continue;
            }
            let count = if just_id { nack.count } else { nack.count + 1 };
            self.x_claim_one(db, key, group, consumer, &mut log, (id, now, count), just_id, now);
            left -= 1;
        }
        let cursor = ids.get(i).copied().unwrap_or(StreamId::MIN);
        self.x_claim_effects(db, key, group, &log, now);
        Ok(XAutoClaimed { cursor, claimed: log.claimed, deleted: log.gone })
    }

    /// XINFO GROUPS.
    pub fn xinfo_groups(&mut self, db: usize, key: &[u8], now: u64) -> Result<Vec<GroupInfo>, Error> {
        let s = self.x_read(db, key, now)?.ok_or(Error::no_such_key())?;
        Ok(s.groups().map(|(name, g)| GroupInfo::of(s, name, g)).collect())
    }

    /// XINFO CONSUMERS: name, pending count and idle ms of each consumer.
    pub fn xinfo_consumers(&mut self, db: usize, key: &[u8], group: &[u8], now: u64) -> Result<Vec<ConsumerInfo>, Error> {
        let s = self.x_read(db, key, now)?.ok_or(Error::no_such_key())?;
        let g = s.group(group).ok_or_else(|| no_group_for_key(key, group))?;
        Ok(g.consumers.iter().map(|(name, c)| (name.clone(), c.pending.len(), now.saturating_sub(c.seen))).collect())
    }
}
