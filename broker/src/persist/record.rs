//! Records: the engines' typed changes as the log stores them, and back.
//!
//! Every record starts with its log sequence number (LSN) and a tag. The log holds one record per
//! change that alters stored data (notification-only changes are not recorded); a snapshot holds the
//! same kinds of records describing each object whole, each with the LSN at which it was captured.
//! [`encode`] writes a change; [`decode`] reads any record back as an owned [`Record`] that recovery
//! applies to the engines.

use bytes::Bytes;

use super::codec::{Malformed, Reader, Writer};
use super::xstream::{self, XChange};
use crate::engine::bulletin::{BoardConfig, Item, Lease as ItemLease, Overflow};
use crate::engine::change::{Change, End, ItemEvent, JobEvent, KeyChange, KeyEffect, MailChange, SemChange, StreamChange};
use crate::engine::collections::{Hash, Set, Zset};
use crate::engine::jobs::{Backoff, BackoffKind, Job, JobState, Lease as JobLease, QueueConfig};
use crate::engine::keyspace::{ChangeKind, Entry, Value};
use crate::engine::schema::{SchemaKind, Target as SchemaTarget};
use crate::engine::stream::{Retention, StreamLog};

mod tag {
    pub const KEY_SET: u8 = 1;
    pub const KEY_EXPIRE: u8 = 2;
    pub const KEY_DEL: u8 = 3;
    pub const LIST_PUSH: u8 = 4;
    pub const LIST_POP: u8 = 5;
    pub const XSTREAM: u8 = 10;
    pub const FLUSH: u8 = 6;
    pub const SWAP_DB: u8 = 7;
    pub const SCOPE_SEQ: u8 = 8;
    pub const JOURNAL: u8 = 9;
    pub const HASH_SET: u8 = 11;
    pub const HASH_DEL: u8 = 12;
    pub const SET_ADD: u8 = 13;
    pub const SET_REM: u8 = 14;
    pub const ZSET_ADD: u8 = 15;
    pub const ZSET_REM: u8 = 16;
    pub const JOB: u8 = 20;
    pub const JOB_CHUNK: u8 = 21;
    pub const JOB_GONE: u8 = 22;
    /// A queue's concurrency alone (written before queues could be paused; still read).
    pub const QUEUE: u8 = 23;
    pub const QUEUE_CONFIG: u8 = 24;
    pub const ITEM: u8 = 30;
    pub const ITEM_GONE: u8 = 31;
    pub const BOARD: u8 = 32;
    pub const MAIL_SENT: u8 = 40;
    pub const MAIL_RECEIVED: u8 = 41;
    pub const MAIL_KEY: u8 = 42;
    pub const MAIL_REQUESTED: u8 = 43;
    pub const MAIL_CONFIG: u8 = 44;
    pub const STREAM_CREATED: u8 = 50;
    pub const STREAM_APPENDED: u8 = 51;
    pub const STREAM_CLOSED: u8 = 52;
    pub const STREAM_CONFIGURED: u8 = 53;
    pub const STREAM_DELETED: u8 = 54;
    pub const COUNTERS: u8 = 60;
    pub const GROUP: u8 = 70;
    pub const SEM_HELD: u8 = 80;
    pub const SEM_DROPPED: u8 = 81;
    pub const SEM_FENCE: u8 = 82;
    pub const SCHEMA: u8 = 90;
    pub const LIBRARIES: u8 = 91;
}

mod value_tag {
    pub const STR: u8 = 0;
    pub const LIST: u8 = 1;
    pub const XSTREAM: u8 = 2;
    pub const HASH: u8 = 3;
    pub const SET: u8 = 4;
    pub const ZSET: u8 = 5;
}

/// Where a key lives: a numbered database, or a blackboard scope by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Db(usize),
    Scope(Bytes),
}

/// A blackboard journal entry carried by a key record, so the journal continues after a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Journal {
    pub seq: u64,
    pub kind: ChangeKind,
    pub revision: u64,
    pub value: Option<Bytes>,
}

/// Where an item is: on its board (free or leased), or among the board's dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Board,
    Dead,
}

/// Counters that must never go backwards across a restart (fencing tokens above all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub job_seq: u64,
    pub job_token: u64,
    pub item_seq: u64,
    pub item_token: u64,
    pub mail_id: u64,
}

#[derive(Debug)]
pub enum Record {
    KeySet {
        target: Target,
        key: Bytes,
        value: Value,
        expire_at: u64,
        revision: u64,
        journal: Option<Journal>,
    },
    KeyExpire {
        target: Target,
        key: Bytes,
        at: u64,
    },
    KeyDel {
        target: Target,
        key: Bytes,
        journal: Option<Journal>,
    },
    ListPush {
        target: Target,
        key: Bytes,
        end: End,
        values: Vec<Bytes>,
        journal: Option<Journal>,
    },
    ListPop {
        target: Target,
        key: Bytes,
        end: End,
        count: usize,
        journal: Option<Journal>,
    },
    /// Hash fields set, set members added or removed, sorted-set members scored or removed (the
    /// typed deltas of `KeyEffect`).
    Aggregate {
        target: Target,
        key: Bytes,
        delta: Delta,
        journal: Option<Journal>,
    },
    /// A Redis stream changed (see `engine::change::XEffect`).
    XStream {
        target: Target,
        key: Bytes,
        change: XChange,
        journal: Option<Journal>,
    },
    Flush(Option<usize>),
    SwapDb(usize, usize),
    /// A scope's journal position (snapshots; also creates the scope).
    ScopeSeq {
        scope: Bytes,
        seq: u64,
    },
    /// A retained journal entry of a scope (snapshots), so watchers resume across a restart.
    Journal {
        scope: Bytes,
        key: Bytes,
        journal: Journal,
    },
    /// A job as it is (its chunks are separate records). Without `payload_recorded` the job's payload
    /// is not in the record (an update of a job submitted earlier).
    Job {
        job: Box<Job>,
        payload_recorded: bool,
    },
    JobChunk {
        id: Bytes,
        offset: u64,
        data: Bytes,
        at_ms: u64,
    },
    JobGone {
        id: Bytes,
    },
    Queue {
        name: Bytes,
        config: QueueConfig,
    },
    Item {
        scope: Bytes,
        board: Bytes,
        item: Box<Item>,
        place: Place,
    },
    ItemGone {
        scope: Bytes,
        board: Bytes,
        id: Bytes,
    },
    Board {
        scope: Bytes,
        board: Bytes,
        config: BoardConfig,
    },
    MailSent {
        dest: Bytes,
        topic: Bytes,
        id: u64,
        payload: Bytes,
        idempotency: Option<Bytes>,
    },
    MailReceived {
        dest: Bytes,
        topic: Bytes,
        id: u64,
    },
    /// A request's id (ids never go backwards; the request itself does not outlive its requester).
    MailRequested {
        id: u64,
    },
    MailConfig {
        dest: Bytes,
        max_len: usize,
    },
    /// A remembered idempotency key (snapshots).
    MailKey {
        dest: Bytes,
        key: Bytes,
        id: u64,
    },
    /// A stream created (`next` 0), or a snapshot's stream with the offset its next entry gets.
    StreamCreated {
        key: Bytes,
        epoch: u64,
        retention: Retention,
        next: u64,
    },
    StreamAppended {
        key: Bytes,
        offset: u64,
        data: Bytes,
        at_ms: u64,
    },
    StreamClosed {
        key: Bytes,
    },
    StreamConfigured {
        key: Bytes,
        retention: Retention,
    },
    StreamDeleted {
        key: Bytes,
    },
    Counters(Counters),
    SemHeld {
        name: Bytes,
        permits: u32,
        token: u64,
        expires_ms: u64,
    },
    SemDropped {
        name: Bytes,
        token: u64,
    },
    /// The last fencing token handed out (snapshots): tokens never go backwards.
    SemFence(u64),
    /// A schema attached (`Some`) or removed.
    Schema {
        target: SchemaTarget,
        schema: Option<Bytes>,
    },
    /// The Lua libraries' sources (FUNCTION LOAD...): the whole set, replacing the previous one.
    Libraries(Vec<Bytes>),
}

/// What an `Aggregate` record did: the owned form of `KeyEffect`'s hash, set and sorted-set deltas.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    HashSet(Vec<(Bytes, Bytes)>),
    HashDel(Vec<Bytes>),
    SetAdd(Vec<Bytes>),
    SetRem(Vec<Bytes>),
    ZAdd(Vec<(f64, Bytes)>),
    ZRem(Vec<Bytes>),
}

/// Writes `change` (one that [`recorded`] accepts) as a record with sequence number `lsn`.
pub fn encode(w: &mut Writer<'_>, lsn: u64, change: &Change<'_>) {
    w.u64(lsn);
    match change {
        Change::Key(k) => key_change(w, k),
        Change::Flush(db) => {
            w.u8(tag::FLUSH);
            w.opt_u64(db.map(|d| d as u64));
        }
        Change::SwapDb(a, b) => {
            w.u8(tag::SWAP_DB);
            w.u64(*a as u64);
            w.u64(*b as u64);
        }
        Change::Job(j) => match &j.event {
            JobEvent::Chunk { offset, data, at_ms } => {
                w.u8(tag::JOB_CHUNK);
                w.bytes(&j.job.id);
                w.u64(*offset);
                w.bytes(data);
                w.u64(*at_ms);
            }
            JobEvent::Removed => {
                w.u8(tag::JOB_GONE);
                w.bytes(&j.job.id);
            }
            event => job(w, j.job, matches!(event, JobEvent::Submitted)),
        },
        Change::Queue { name, config } => queue_config(w, name, *config),
        Change::Item(i) => match i.event {
            ItemEvent::Dropped | ItemEvent::Removed | ItemEvent::Expired => {
                w.u8(tag::ITEM_GONE);
                w.bytes(i.scope);
                w.bytes(i.board);
                w.bytes(&i.item.id);
            }
            event => item(w, i.scope, i.board, i.item, if event == ItemEvent::Dead { Place::Dead } else { Place::Board }),
        },
        Change::Board { scope, board, config } => board_config(w, scope, board, *config),
        Change::Mail(MailChange::Sent { dest, topic, id, payload, idempotency }) => {
            w.u8(tag::MAIL_SENT);
            w.bytes(dest);
            w.bytes(topic);
            w.u64(*id);
            w.bytes(payload);
            w.opt_bytes(*idempotency);
        }
        Change::Mail(MailChange::Requested { id, .. }) => {
            w.u8(tag::MAIL_REQUESTED);
            w.u64(*id);
        }
        Change::Mail(MailChange::Configured { dest, max_len }) => mail_config(w, dest, *max_len),
        Change::Mail(MailChange::Received { dest, topic, id }) => {
            w.u8(tag::MAIL_RECEIVED);
            w.bytes(dest);
            w.bytes(topic);
            w.u64(*id);
        }
        Change::Stream(s) => stream_change(w, s),
        Change::Schema { kind, scope, name, schema: text } => schema(w, *kind, scope, name, *text),
        Change::Libraries(codes) => libraries(w, codes),
        Change::Sem(SemChange::Held { name, permits, token, expires_ms }) => sem_held(w, name, *permits, *token, *expires_ms),
        Change::Sem(SemChange::Dropped { name, token, .. }) => {
            w.u8(tag::SEM_DROPPED);
            w.bytes(name);
            w.u64(*token);
        }
    }
}

fn schema(w: &mut Writer<'_>, kind: SchemaKind, scope: &[u8], name: &[u8], text: Option<&[u8]>) {
    w.u8(tag::SCHEMA);
    w.u8(SCHEMA_KINDS.iter().position(|k| *k == kind).expect("every kind is listed") as u8);
    w.bytes(scope);
    w.bytes(name);
    w.opt_bytes(text);
}

fn libraries(w: &mut Writer<'_>, codes: &[Bytes]) {
    w.u8(tag::LIBRARIES);
    w.u32(codes.len() as u32);
    for code in codes {
        w.bytes(code);
    }
}

/// The libraries' record of a snapshot.
pub fn encode_libraries(w: &mut Writer<'_>, lsn: u64, codes: &[Bytes]) {
    w.u64(lsn);
    libraries(w, codes);
}

pub fn encode_schema(w: &mut Writer<'_>, lsn: u64, (kind, scope, name): &SchemaTarget, text: &[u8]) {
    w.u64(lsn);
    schema(w, *kind, scope, name, Some(text));
}

const SCHEMA_KINDS: [SchemaKind; 4] = [SchemaKind::Board, SchemaKind::Queue, SchemaKind::Topic, SchemaKind::Scope];

fn sem_held(w: &mut Writer<'_>, name: &[u8], permits: u32, token: u64, expires_ms: u64) {
    w.u8(tag::SEM_HELD);
    w.bytes(name);
    w.u32(permits);
    w.u64(token);
    w.u64(expires_ms);
}

pub fn encode_sem_held(w: &mut Writer<'_>, lsn: u64, name: &[u8], permits: u32, token: u64, expires_ms: u64) {
    w.u64(lsn);
    sem_held(w, name, permits, token, expires_ms);
}

pub fn encode_sem_fence(w: &mut Writer<'_>, lsn: u64, last_token: u64) {
    w.u64(lsn);
    w.u8(tag::SEM_FENCE);
    w.u64(last_token);
}

/// Whether a change alters stored data (else the log skips it).
pub fn recorded(change: &Change<'_>) -> bool {
    match change {
        Change::Key(k) => !matches!(k.effect, KeyEffect::Notice),
        // A claim's lease and attempt, a heartbeat's new lease, a progress report: all stored.
        _ => true,
    }
}

fn target(w: &mut Writer<'_>, k: &KeyChange<'_>) {
    match k.scope {
        Some(scope) => {
            w.u8(1);
            w.bytes(scope);
        }
        None => {
            w.u8(0);
            w.u64(k.db as u64);
        }
    }
}

fn journal(w: &mut Writer<'_>, k: &KeyChange<'_>) {
    match &k.journal {
        Some(j) => {
            w.u8(1);
            w.u64(j.seq);
            w.u8(change_kind_tag(j.kind));
            w.u64(j.revision);
            w.opt_bytes(j.value);
        }
        None => w.u8(0),
    }
}

fn key_change(w: &mut Writer<'_>, k: &KeyChange<'_>) {
    match &k.effect {
        KeyEffect::Notice => unreachable!("notices are not recorded"),
        KeyEffect::Stored(entry) => {
            w.u8(tag::KEY_SET);
            target(w, k);
            w.bytes(k.key);
            entry_fields(w, entry);
            journal(w, k);
        }
        KeyEffect::Deadline(at) => {
            w.u8(tag::KEY_EXPIRE);
            target(w, k);
            w.bytes(k.key);
            w.u64(*at);
        }
        KeyEffect::Removed => {
            w.u8(tag::KEY_DEL);
            target(w, k);
            w.bytes(k.key);
            journal(w, k);
        }
        KeyEffect::Pushed { end, values } => {
            w.u8(tag::LIST_PUSH);
            target(w, k);
            w.bytes(k.key);
            w.u8(end_tag(*end));
            w.u32(values.len() as u32);
            for v in values.iter() {
                w.bytes(v);
            }
            journal(w, k);
        }
        KeyEffect::Popped { end, count } => {
            w.u8(tag::LIST_POP);
            target(w, k);
            w.bytes(k.key);
            w.u8(end_tag(*end));
            w.u64(*count as u64);
            journal(w, k);
        }
        KeyEffect::HashSet { fields } => aggregate(w, k, tag::HASH_SET, fields.len(), |w| {
            fields.iter().for_each(|(f, v)| {
                w.bytes(f);
                w.bytes(v);
            })
        }),
        KeyEffect::HashDel { fields } => aggregate(w, k, tag::HASH_DEL, fields.len(), |w| fields.iter().for_each(|f| w.bytes(f))),
        KeyEffect::SetAdd { members } => aggregate(w, k, tag::SET_ADD, members.len(), |w| members.iter().for_each(|m| w.bytes(m))),
        KeyEffect::SetRem { members } => aggregate(w, k, tag::SET_REM, members.len(), |w| members.iter().for_each(|m| w.bytes(m))),
        KeyEffect::ZAdd { entries } => aggregate(w, k, tag::ZSET_ADD, entries.len(), |w| {
            entries.iter().for_each(|(s, m)| {
                w.u64(s.to_bits());
                w.bytes(m);
            })
        }),
        KeyEffect::ZRem { members } => aggregate(w, k, tag::ZSET_REM, members.len(), |w| members.iter().for_each(|m| w.bytes(m))),
        KeyEffect::XStream(effect) => {
            w.u8(tag::XSTREAM);
            target(w, k);
            w.bytes(k.key);
            xstream::write_effect(w, effect);
            journal(w, k);
        }
    }
}

/// A hash, set or sorted-set delta: its tag, the key, how many elements, the elements, the journal.
fn aggregate(w: &mut Writer<'_>, k: &KeyChange<'_>, tag: u8, n: usize, elements: impl FnOnce(&mut Writer<'_>)) {
    w.u8(tag);
    target(w, k);
    w.bytes(k.key);
    w.u32(n as u32);
    elements(w);
    journal(w, k);
}

/// A key's whole entry: value, deadline, revision.
fn entry_fields(w: &mut Writer<'_>, entry: &Entry) {
    value(w, &entry.value);
    w.u64(entry.expire_at);
    w.u64(entry.revision);
}

fn value(w: &mut Writer<'_>, value: &Value) {
    match value {
        Value::Str(s) => {
            w.u8(value_tag::STR);
            w.bytes(s.as_slice());
        }
        Value::List(l) => {
            w.u8(value_tag::LIST);
            w.u32(l.len() as u32);
            for e in l.iter() {
                w.bytes(e);
            }
        }
        Value::Hash(h) => {
            w.u8(value_tag::HASH);
            w.u32(h.len() as u32);
            h.for_each(|f, v| {
                w.bytes(f);
                w.bytes(v);
            });
        }
        Value::Set(s) => {
            w.u8(value_tag::SET);
            w.u32(s.len() as u32);
            s.for_each(|m| w.bytes(m));
        }
        Value::Zset(z) => {
            w.u8(value_tag::ZSET);
            w.u32(z.len() as u32);
            z.for_each(|m, s| {
                w.u64(s.to_bits());
                w.bytes(m);
            });
        }
        Value::XStream(s) => {
            w.u8(value_tag::XSTREAM);
            xstream::write_value(w, s);
        }
    }
}

/// The records of one command (or MULTI/EXEC) that made several, as one frame: recovery applies
/// all of them or, if the frame is torn, none.
pub fn encode_group(w: &mut Writer<'_>, frames: &[u8]) {
    w.u64(0);
    w.u8(tag::GROUP);
    w.raw(frames);
}

/// The inner frames of a group record, or `None` if `payload` is not a group.
pub fn group_frames(payload: &[u8]) -> Option<&[u8]> {
    (payload.len() >= 9 && payload[8] == tag::GROUP).then(|| &payload[9..])
}

/// A key record for a snapshot: the key's whole entry.
pub fn encode_key(w: &mut Writer<'_>, lsn: u64, target: &Target, key: &[u8], entry: &Entry) {
    w.u64(lsn);
    w.u8(tag::KEY_SET);
    match target {
        Target::Scope(scope) => {
            w.u8(1);
            w.bytes(scope);
        }
        Target::Db(db) => {
            w.u8(0);
            w.u64(*db as u64);
        }
    }
    w.bytes(key);
    entry_fields(w, entry);
    w.u8(0);
}

pub fn encode_scope_seq(w: &mut Writer<'_>, lsn: u64, scope: &[u8], seq: u64) {
    w.u64(lsn);
    w.u8(tag::SCOPE_SEQ);
    w.bytes(scope);
    w.u64(seq);
}

pub fn encode_journal(w: &mut Writer<'_>, lsn: u64, scope: &[u8], e: &crate::engine::keyspace::JournalEntry) {
    w.u64(lsn);
    w.u8(tag::JOURNAL);
    w.bytes(scope);
    w.bytes(e.key());
    w.u8(1);
    w.u64(e.seq);
    w.u8(change_kind_tag(e.kind));
    w.u64(e.revision);
    w.opt_bytes(e.value());
}

pub fn encode_job(w: &mut Writer<'_>, lsn: u64, j: &Job) {
    w.u64(lsn);
    job(w, j, true);
}

pub fn encode_chunk(w: &mut Writer<'_>, lsn: u64, id: &[u8], offset: u64, data: &[u8], at_ms: u64) {
    w.u64(lsn);
    w.u8(tag::JOB_CHUNK);
    w.bytes(id);
    w.u64(offset);
    w.bytes(data);
    w.u64(at_ms);
}

pub fn encode_queue(w: &mut Writer<'_>, lsn: u64, name: &[u8], config: QueueConfig) {
    w.u64(lsn);
    queue_config(w, name, config);
}

fn queue_config(w: &mut Writer<'_>, name: &[u8], config: QueueConfig) {
    w.u8(tag::QUEUE_CONFIG);
    w.bytes(name);
    w.u64(config.concurrency as u64);
    w.bool(config.paused);
}

pub fn encode_item(w: &mut Writer<'_>, lsn: u64, scope: &[u8], board: &[u8], i: &Item, place: Place) {
    w.u64(lsn);
    item(w, scope, board, i, place);
}

pub fn encode_board(w: &mut Writer<'_>, lsn: u64, scope: &[u8], board: &[u8], config: BoardConfig) {
    w.u64(lsn);
    board_config(w, scope, board, config);
}

pub fn encode_mail(w: &mut Writer<'_>, lsn: u64, dest: &[u8], topic: &[u8], id: u64, payload: &[u8], idempotency: Option<&[u8]>) {
    w.u64(lsn);
    w.u8(tag::MAIL_SENT);
    w.bytes(dest);
    w.bytes(topic);
    w.u64(id);
    w.bytes(payload);
    w.opt_bytes(idempotency);
}

pub fn encode_stream(w: &mut Writer<'_>, lsn: u64, key: &[u8], log: &StreamLog) {
    w.u64(lsn);
    stream_created(w, key, log.epoch(), log.retention(), log.next_offset());
}

fn stream_created(w: &mut Writer<'_>, key: &[u8], epoch: u64, r: Retention, next: u64) {
    w.u8(tag::STREAM_CREATED);
    w.bytes(key);
    w.u64(epoch);
    retention(w, r);
    w.u64(next);
}

pub fn encode_stream_entry(w: &mut Writer<'_>, lsn: u64, key: &[u8], offset: u64, data: &[u8], at_ms: u64) {
    w.u64(lsn);
    stream_change(w, &StreamChange::Appended { key, offset, data, at_ms });
}

pub fn encode_stream_closed(w: &mut Writer<'_>, lsn: u64, key: &[u8]) {
    w.u64(lsn);
    stream_change(w, &StreamChange::Closed { key });
}

fn mail_config(w: &mut Writer<'_>, dest: &[u8], max_len: usize) {
    w.u8(tag::MAIL_CONFIG);
    w.bytes(dest);
    w.u64(max_len as u64);
}

pub fn encode_mail_config(w: &mut Writer<'_>, lsn: u64, dest: &[u8], max_len: usize) {
    w.u64(lsn);
    mail_config(w, dest, max_len);
}

pub fn encode_mail_key(w: &mut Writer<'_>, lsn: u64, dest: &[u8], key: &[u8], id: u64) {
    w.u64(lsn);
    w.u8(tag::MAIL_KEY);
    w.bytes(dest);
    w.bytes(key);
    w.u64(id);
}

pub fn encode_counters(w: &mut Writer<'_>, lsn: u64, c: Counters) {
    w.u64(lsn);
    w.u8(tag::COUNTERS);
    for v in [c.job_seq, c.job_token, c.item_seq, c.item_token, c.mail_id] {
        w.u64(v);
    }
}

/// A job whole; its payload only when `with_payload` (a job's payload never changes, so updates leave
/// it out rather than writing it again on every claim, heartbeat and progress report).
fn job(w: &mut Writer<'_>, j: &Job, with_payload: bool) {
    w.u8(tag::JOB);
    w.bytes(&j.id);
    w.bytes(&j.queue);
    w.opt_bytes(with_payload.then_some(&j.payload[..]));
    w.i64(j.priority);
    w.u32(j.max_attempts);
    w.u8(match j.backoff.kind {
        BackoffKind::Fixed => 0,
        BackoffKind::Exponential => 1,
    });
    w.u64(j.backoff.base_ms);
    w.bool(j.backoff.jitter);
    w.u64(j.lease_ms);
    w.u64(j.result_ttl_ms);
    w.u8(job_state_tag(j.state));
    w.u32(j.attempt);
    w.u64(j.seq);
    w.opt_u64(j.lease.map(|l| l.token));
    w.opt_u64(j.lease.map(|l| l.expires_ms));
    w.opt_bytes(j.progress.as_deref());
    w.opt_bytes(j.result.as_deref());
    w.opt_bytes(j.last_error.as_deref());
    w.u64(j.created_ms);
    w.opt_u64(j.started_ms);
    w.opt_u64(j.finished_ms);
    w.opt_u64(j.run_at_ms);
    // The chunk stream's shape (its entries are JOB_CHUNK records).
    w.u64(j.chunks.epoch());
    w.u64(j.chunks.next_offset());
    w.bool(j.chunks.is_closed());
    retention(w, j.chunks.retention());
}

fn item(w: &mut Writer<'_>, scope: &[u8], board: &[u8], i: &Item, place: Place) {
    w.u8(tag::ITEM);
    w.bytes(scope);
    w.bytes(board);
    w.u8(match place {
        Place::Board => 0,
        Place::Dead => 1,
    });
    w.bytes(&i.id);
    w.u64(i.seq);
    w.bytes(&i.raw);
    w.u64(i.published_ms);
    w.opt_u64(i.expires_ms);
    w.opt_u64(i.lease.map(|l| l.token));
    w.opt_u64(i.lease.map(|l| l.expires_ms));
    w.u32(i.failed_leases);
}

fn board_config(w: &mut Writer<'_>, scope: &[u8], board: &[u8], config: BoardConfig) {
    w.u8(tag::BOARD);
    w.bytes(scope);
    w.bytes(board);
    w.u64(config.max_len as u64);
    w.u8(match config.overflow {
        Overflow::DropOldest => 0,
        Overflow::RejectNew => 1,
    });
    w.u32(config.max_leases);
}

fn retention(w: &mut Writer<'_>, r: Retention) {
    w.u64(r.max_len as u64);
    w.u64(r.max_age_ms);
}

fn stream_change(w: &mut Writer<'_>, s: &StreamChange<'_>) {
    match s {
        StreamChange::Created { key, epoch, retention: r } => stream_created(w, key, *epoch, *r, 0),
        StreamChange::Appended { key, offset, data, at_ms } => {
            w.u8(tag::STREAM_APPENDED);
            w.bytes(key);
            w.u64(*offset);
            w.bytes(data);
            w.u64(*at_ms);
        }
        StreamChange::Closed { key } => {
            w.u8(tag::STREAM_CLOSED);
            w.bytes(key);
        }
        StreamChange::Configured { key, retention: r } => {
            w.u8(tag::STREAM_CONFIGURED);
            w.bytes(key);
            retention(w, *r);
        }
        StreamChange::Deleted { key } => {
            w.u8(tag::STREAM_DELETED);
            w.bytes(key);
        }
    }
}

fn end_tag(end: End) -> u8 {
    match end {
        End::Left => 0,
        End::Right => 1,
    }
}

fn change_kind_tag(kind: ChangeKind) -> u8 {
    match kind {
        ChangeKind::Set => 0,
        ChangeKind::Del => 1,
        ChangeKind::Expire => 2,
    }
}

const JOB_STATES: [JobState; 8] = JobState::ALL;

fn job_state_tag(state: JobState) -> u8 {
    JOB_STATES.iter().position(|s| *s == state).expect("every state is listed") as u8
}

/// Reads one record: its LSN and what it says.
pub fn decode(payload: &[u8]) -> Result<(u64, Record), Malformed> {
    let mut r = Reader::new(payload);
    let lsn = r.u64()?;
    let record = match r.u8()? {
        tag::KEY_SET => {
            let target = read_target(&mut r)?;
            let key = r.bytes()?;
            let value = read_value(&mut r)?;
            let (expire_at, revision) = (r.u64()?, r.u64()?);
            Record::KeySet { target, key, value, expire_at, revision, journal: read_journal(&mut r)? }
        }
        tag::KEY_EXPIRE => Record::KeyExpire { target: read_target(&mut r)?, key: r.bytes()?, at: r.u64()? },
        tag::KEY_DEL => Record::KeyDel { target: read_target(&mut r)?, key: r.bytes()?, journal: read_journal(&mut r)? },
        tag::LIST_PUSH => {
            let target = read_target(&mut r)?;
            let key = r.bytes()?;
            let end = read_end(&mut r)?;
            let n = r.u32()? as usize;
            let values = (0..n).map(|_| r.bytes()).collect::<Result<Vec<_>, _>>()?;
            Record::ListPush { target, key, end, values, journal: read_journal(&mut r)? }
        }
        tag::LIST_POP => {
            let target = read_target(&mut r)?;
            let key = r.bytes()?;
            let end = read_end(&mut r)?;
            let count = r.u64()? as usize;
            Record::ListPop { target, key, end, count, journal: read_journal(&mut r)? }
        }
        tag::HASH_SET..=tag::ZSET_REM => {
            let kind = payload[8];
            let (target, key) = (read_target(&mut r)?, r.bytes()?);
            let n = r.u32()? as usize;
            let list = |r: &mut Reader<'_>| (0..n).map(|_| r.bytes()).collect::<Result<Vec<_>, _>>();
            let delta = match kind {
                tag::HASH_SET => Delta::HashSet((0..n).map(|_| Ok((r.bytes()?, r.bytes()?))).collect::<Result<_, Malformed>>()?),
                tag::HASH_DEL => Delta::HashDel(list(&mut r)?),
                tag::SET_ADD => Delta::SetAdd(list(&mut r)?),
                tag::SET_REM => Delta::SetRem(list(&mut r)?),
                tag::ZSET_ADD => Delta::ZAdd((0..n).map(|_| Ok((f64::from_bits(r.u64()?), r.bytes()?))).collect::<Result<_, Malformed>>()?),
                _ => Delta::ZRem(list(&mut r)?),
            };
            Record::Aggregate { target, key, delta, journal: read_journal(&mut r)? }
        }
        tag::XSTREAM => {
            let target = read_target(&mut r)?;
            let key = r.bytes()?;
            let change = xstream::read_effect(&mut r)?;
            Record::XStream { target, key, change, journal: read_journal(&mut r)? }
        }
        tag::FLUSH => Record::Flush(r.opt_u64()?.map(|d| d as usize)),
        tag::SWAP_DB => Record::SwapDb(r.u64()? as usize, r.u64()? as usize),
        tag::SCOPE_SEQ => Record::ScopeSeq { scope: r.bytes()?, seq: r.u64()? },
        tag::JOURNAL => {
            let (scope, key) = (r.bytes()?, r.bytes()?);
            let journal = read_journal(&mut r)?.ok_or(Malformed("journal record without an entry"))?;
            Record::Journal { scope, key, journal }
        }
        tag::JOB => {
            let (job, payload_recorded) = read_job(&mut r)?;
            Record::Job { job: Box::new(job), payload_recorded }
        }
        tag::JOB_CHUNK => Record::JobChunk { id: r.bytes()?, offset: r.u64()?, data: r.bytes()?, at_ms: r.u64()? },
        tag::JOB_GONE => Record::JobGone { id: r.bytes()? },
        tag::QUEUE => Record::Queue { name: r.bytes()?, config: QueueConfig { concurrency: r.u64()? as usize, paused: false } },
        tag::QUEUE_CONFIG => Record::Queue { name: r.bytes()?, config: QueueConfig { concurrency: r.u64()? as usize, paused: r.bool()? } },
        tag::ITEM => {
            let (scope, board) = (r.bytes()?, r.bytes()?);
            let place = match r.u8()? {
                0 => Place::Board,
                1 => Place::Dead,
                _ => return Err(Malformed("bad item place")),
            };
            Record::Item { scope, board, item: Box::new(read_item(&mut r)?), place }
        }
        tag::ITEM_GONE => Record::ItemGone { scope: r.bytes()?, board: r.bytes()?, id: r.bytes()? },
        tag::BOARD => {
            let (scope, board) = (r.bytes()?, r.bytes()?);
            let max_len = r.u64()? as usize;
            let overflow = match r.u8()? {
                0 => Overflow::DropOldest,
                1 => Overflow::RejectNew,
                _ => return Err(Malformed("bad overflow policy")),
            };
            Record::Board { scope, board, config: BoardConfig { max_len, overflow, max_leases: r.u32()? } }
        }
        tag::MAIL_SENT => {
            Record::MailSent { dest: r.bytes()?, topic: r.bytes()?, id: r.u64()?, payload: r.bytes()?, idempotency: r.opt_bytes()? }
        }
        tag::MAIL_RECEIVED => Record::MailReceived { dest: r.bytes()?, topic: r.bytes()?, id: r.u64()? },
        tag::MAIL_KEY => Record::MailKey { dest: r.bytes()?, key: r.bytes()?, id: r.u64()? },
        tag::MAIL_REQUESTED => Record::MailRequested { id: r.u64()? },
        tag::MAIL_CONFIG => Record::MailConfig { dest: r.bytes()?, max_len: r.u64()? as usize },
        tag::STREAM_CREATED => {
            Record::StreamCreated { key: r.bytes()?, epoch: r.u64()?, retention: read_retention(&mut r)?, next: r.u64()? }
        }
        tag::STREAM_APPENDED => Record::StreamAppended { key: r.bytes()?, offset: r.u64()?, data: r.bytes()?, at_ms: r.u64()? },
        tag::STREAM_CLOSED => Record::StreamClosed { key: r.bytes()? },
        tag::STREAM_CONFIGURED => Record::StreamConfigured { key: r.bytes()?, retention: read_retention(&mut r)? },
        tag::STREAM_DELETED => Record::StreamDeleted { key: r.bytes()? },
        tag::COUNTERS => Record::Counters(Counters {
            job_seq: r.u64()?,
            job_token: r.u64()?,
            item_seq: r.u64()?,
            item_token: r.u64()?,
            mail_id: r.u64()?,
        }),
        tag::SEM_HELD => Record::SemHeld { name: r.bytes()?, permits: r.u32()?, token: r.u64()?, expires_ms: r.u64()? },
        tag::SEM_DROPPED => Record::SemDropped { name: r.bytes()?, token: r.u64()? },
        tag::SEM_FENCE => Record::SemFence(r.u64()?),
        tag::SCHEMA => {
            let kind = *SCHEMA_KINDS.get(r.u8()? as usize).ok_or(Malformed("bad schema kind"))?;
            Record::Schema { target: (kind, r.bytes()?, r.bytes()?), schema: r.opt_bytes()? }
        }
        tag::LIBRARIES => {
            let n = r.u32()?;
            Record::Libraries((0..n).map(|_| r.bytes()).collect::<Result<_, _>>()?)
        }
        _ => return Err(Malformed("unknown record kind")),
    };
    if !r.is_empty() {
        return Err(Malformed("record longer than its kind"));
    }
    Ok((lsn, record))
}

fn read_target(r: &mut Reader<'_>) -> Result<Target, Malformed> {
    match r.u8()? {
        0 => Ok(Target::Db(r.u64()? as usize)),
        1 => Ok(Target::Scope(r.bytes()?)),
        _ => Err(Malformed("bad key target")),
    }
}

fn read_end(r: &mut Reader<'_>) -> Result<End, Malformed> {
    match r.u8()? {
        0 => Ok(End::Left),
        1 => Ok(End::Right),
        _ => Err(Malformed("bad list end")),
    }
}

fn read_journal(r: &mut Reader<'_>) -> Result<Option<Journal>, Malformed> {
    if !r.bool()? {
        return Ok(None);
    }
    let seq = r.u64()?;
    let kind = match r.u8()? {
        0 => ChangeKind::Set,
        1 => ChangeKind::Del,
        2 => ChangeKind::Expire,
        _ => return Err(Malformed("bad journal kind")),
    };
    Ok(Some(Journal { seq, kind, revision: r.u64()?, value: r.opt_bytes()? }))
}

fn read_value(r: &mut Reader<'_>) -> Result<Value, Malformed> {
    match r.u8()? {
        value_tag::STR => Ok(Value::string(&r.bytes()?)),
        value_tag::LIST => {
            let n = r.u32()? as usize;
            let list = (0..n).map(|_| r.bytes()).collect::<Result<std::collections::VecDeque<_>, _>>()?;
            Ok(Value::List(Box::new(list)))
        }
        // Rebuilt element by element, so each gets the encoding Redis gives a loaded value of its
        // size (as loading an RDB file does).
        value_tag::HASH => {
            let mut h = Hash::default();
            for _ in 0..r.u32()? {
                h.set(&r.bytes()?, &r.bytes()?);
            }
            Ok(Value::Hash(Box::new(h)))
        }
        value_tag::SET => {
            let mut s = Set::default();
            for _ in 0..r.u32()? {
                s.add(&r.bytes()?);
            }
            Ok(Value::Set(Box::new(s)))
        }
        value_tag::ZSET => {
            let n = r.u32()? as usize;
            let entries = (0..n).map(|_| Ok((f64::from_bits(r.u64()?), r.bytes()?))).collect::<Result<Vec<_>, Malformed>>()?;
            let longest = entries.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
            let mut z = Zset::for_size(n, longest);
            for (score, member) in &entries {
                z.set(member, *score);
            }
            Ok(Value::Zset(Box::new(z)))
        }
        value_tag::XSTREAM => Ok(Value::XStream(Box::new(xstream::read_value(r)?))),
        _ => Err(Malformed("unknown value type")),
    }
}

fn read_retention(r: &mut Reader<'_>) -> Result<Retention, Malformed> {
    Ok(Retention { max_len: r.u64()? as usize, max_age_ms: r.u64()? })
}

fn read_job(r: &mut Reader<'_>) -> Result<(Job, bool), Malformed> {
    let (id, queue, payload) = (r.bytes()?, r.bytes()?, r.opt_bytes()?);
    let payload_recorded = payload.is_some();
    let payload = payload.unwrap_or_default();
    let priority = r.i64()?;
    let max_attempts = r.u32()?;
    let kind = match r.u8()? {
        0 => BackoffKind::Fixed,
        1 => BackoffKind::Exponential,
        _ => return Err(Malformed("bad backoff")),
    };
    let backoff = Backoff { kind, base_ms: r.u64()?, jitter: r.bool()? };
    let (lease_ms, result_ttl_ms) = (r.u64()?, r.u64()?);
    let state = *JOB_STATES.get(r.u8()? as usize).ok_or(Malformed("bad job state"))?;
    let attempt = r.u32()?;
    let seq = r.u64()?;
    let lease = match (r.opt_u64()?, r.opt_u64()?) {
        (Some(token), Some(expires_ms)) => Some(JobLease { token, expires_ms }),
        _ => None,
    };
    let (progress, result, last_error) = (r.opt_bytes()?, r.opt_bytes()?, r.opt_bytes()?);
    let created_ms = r.u64()?;
    let (started_ms, finished_ms, run_at_ms) = (r.opt_u64()?, r.opt_u64()?, r.opt_u64()?);
    let (epoch, next, closed) = (r.u64()?, r.u64()?, r.bool()?);
    let chunks = StreamLog::restored(epoch, read_retention(r)?, next, closed);
    let job = Job {
        id,
        queue,
        payload,
        priority,
        max_attempts,
        backoff,
        lease_ms,
        result_ttl_ms,
        state,
        attempt,
        seq,
        lease,
        progress,
        result,
        last_error,
        created_ms,
        started_ms,
        finished_ms,
        run_at_ms,
        timer_at: None,
        chunks,
    };
    Ok((job, payload_recorded))
}

fn read_item(r: &mut Reader<'_>) -> Result<Item, Malformed> {
    let (id, seq, raw) = (r.bytes()?, r.u64()?, r.bytes()?);
    let published_ms = r.u64()?;
    let expires_ms = r.opt_u64()?;
    let lease = match (r.opt_u64()?, r.opt_u64()?) {
        (Some(token), Some(expires_ms)) => Some(ItemLease { token, expires_ms }),
        _ => None,
    };
    let failed_leases = r.u32()?;
    Ok(Item { id, seq, raw, published_ms, expires_ms, lease, failed_leases })
}
