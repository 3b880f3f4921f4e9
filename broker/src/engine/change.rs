//! Typed changes: every state change of every engine, as a value.
//!
//! Each engine produces its changes in exactly one place (the keyspace in `Keyspace::record`, jobs in
//! `Jobs::emit`, ...) and hands them to a [`ChangeSink`] as they happen, under the state lock, in the
//! order they happened. Everything that must see what happened reads this one stream, so the readers
//! cannot disagree: keyspace notifications, blackboard watch events, job and board events (rendered
//! by `crate::events`, once per change, outside the engines), and the persistence log, which records
//! them and replays them into the engines on start.
//!
//! A change borrows what it describes (the key's new entry, the job as it now is): emitting costs no
//! allocation, and a sink that cares copies or serialises what it needs before returning.

use bytes::Bytes;

use super::bulletin::{BoardConfig, Item};
use super::jobs::{Job, QueueConfig};
use super::keyspace::Entry;
use super::schema::SchemaKind;
use super::stream::Retention;
use super::xstream::StreamId;

/// Which end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

/// The reader of every change. Called with the state lock held: it must be quick and must not call
/// back into the engines.
pub trait ChangeSink: Send + Sync {
    fn emit(&self, change: &Change<'_>);

    /// Whether anything outside the engines may render changes as events now (someone subscribes to
    /// something). Lets an engine skip work that only serves watchers, such as journaling the global
    /// scope's plain Redis writes.
    fn listening(&self) -> bool;
}

/// A sink that reads nothing: for engines built alone (unit tests, benches).
pub struct Discard;

impl ChangeSink for Discard {
    fn emit(&self, _: &Change<'_>) {}

    fn listening(&self) -> bool {
        false
    }
}

#[derive(Debug)]
pub enum Change<'a> {
    Key(KeyChange<'a>),
    /// FLUSHDB (`Some(db)`) or FLUSHALL (`None`): every key of the database(s) is gone.
    Flush(Option<usize>),
    /// SWAPDB.
    SwapDb(usize, usize),
    Job(JobChange<'a>),
    /// JOB.QUEUE: a queue's settings.
    Queue {
        name: &'a [u8],
        config: QueueConfig,
    },
    Item(ItemChange<'a>),
    /// BL.CONFIG: a board's settings.
    Board {
        scope: &'a [u8],
        board: &'a [u8],
        config: BoardConfig,
    },
    Mail(MailChange<'a>),
    Stream(StreamChange<'a>),
    Sem(SemChange<'a>),
    /// FUNCTION LOAD / DELETE / FLUSH / RESTORE: the source of every Lua library now loaded.
    Libraries(&'a [bytes::Bytes]),
    /// SCHEMA.SET (`Some(text)`) or SCHEMA.DEL (`None`).
    Schema {
        kind: SchemaKind,
        scope: &'a [u8],
        name: &'a [u8],
        schema: Option<&'a [u8]>,
    },
}

/// A key of the keyspace (a numbered database or a blackboard scope) changed, or a notification-only
/// event happened to it (`new`, `keymiss`).
#[derive(Debug)]
pub struct KeyChange<'a> {
    pub db: usize,
    /// Whether `db` is a numbered database (keyspace notifications) rather than a named scope.
    pub numbered: bool,
    /// The blackboard scope's name when `db` is a named scope (database indexes of scopes are not
    /// stable across restarts; names are).
    pub scope: Option<&'a [u8]>,
    pub key: &'a [u8],
    /// Redis's notification class (`engine::keyspace::notify`) and event name.
    pub class: u32,
    pub event: &'static str,
    pub effect: KeyEffect<'a>,
    /// When `db` is a blackboard scope whose journal recorded the change: what watchers see.
    pub journal: Option<Journaled<'a>>,
}

/// What a key change did to the stored data.
#[derive(Debug)]
pub enum KeyEffect<'a> {
    /// Nothing stored changed: the event is a notification only.
    Notice,
    /// The key now holds this entry (value, deadline, revision): writes of strings, and any change
    /// that is cheapest to describe by its result.
    Stored(&'a Entry),
    /// Only the deadline changed (`u64::MAX`: none).
    Deadline(u64),
    /// The key is gone.
    Removed,
    /// Values pushed onto a list (which now exists), in push order.
    Pushed { end: End, values: &'a [Bytes] },
    /// `count` values popped from a list (removed with its last value).
    Popped { end: End, count: usize },
    /// Hash fields now hold these values (HSET, HSETNX, HINCRBY...: the resulting values), applied
    /// in order; the hash exists after it. Idempotent.
    HashSet { fields: &'a [(Bytes, Bytes)] },
    /// Hash fields removed; a hash left empty is removed by a `Removed` change that follows.
    HashDel { fields: &'a [Bytes] },
    /// Members added to a set (some may have been there already); the set exists after it.
    SetAdd { members: &'a [Bytes] },
    /// Members removed from a set (SREM, SPOP, SMOVE's source); an emptied set is removed by a
    /// `Removed` change that follows.
    SetRem { members: &'a [Bytes] },
    /// Sorted-set members now have these scores (ZADD, ZINCRBY: the resulting scores); the set exists
    /// after it. Idempotent.
    ZAdd { entries: &'a [(f64, Bytes)] },
    /// Sorted-set members removed (ZREM, pops, ZREMRANGEBY*); an emptied set is removed by a
    /// `Removed` change that follows.
    ZRem { members: &'a [Bytes] },
    /// A Redis stream changed (see [`XEffect`]).
    XStream(XEffect<'a>),
}

/// What a change did to a Redis stream, described so that a log replays it exactly and, where the
/// operation allows, idempotently: every effect carries its result (the ID an entry got, the delivery
/// times and counts now pending, the counters after), never an instruction to compute one again.
/// `engine::xstream::XStream::apply` is the replay.
#[derive(Debug)]
pub enum XEffect<'a> {
    /// An entry appended with this ID (the stream created first if the key was absent).
    Added {
        id: StreamId,
        fields: &'a [Bytes],
    },
    /// Live entries deleted (XDEL).
    Deleted {
        ids: &'a [StreamId],
    },
    /// Entries trimmed from the front (XTRIM, XADD's MAXLEN/MINID): everything up to `through`, the
    /// last ID of the removed prefix; `removed` live entries went.
    Trimmed {
        through: StreamId,
        removed: u64,
    },
    /// XSETID: the stream's counters after.
    SetId {
        last_id: StreamId,
        entries_added: u64,
        max_deleted: StreamId,
    },
    /// A consumer group created (the stream created empty first if the key was absent: MKSTREAM).
    GroupCreated {
        group: &'a [u8],
        last_id: StreamId,
        entries_read: Option<u64>,
    },
    /// A group's last delivered ID and read counter after XGROUP SETID, XREADGROUP or XCLAIM LASTID.
    GroupSetId {
        group: &'a [u8],
        last_id: StreamId,
        entries_read: Option<u64>,
    },
    GroupDestroyed {
        group: &'a [u8],
    },
    ConsumerCreated {
        group: &'a [u8],
        consumer: &'a [u8],
        seen: u64,
    },
    /// A consumer deleted with its pending entries.
    ConsumerDeleted {
        group: &'a [u8],
        consumer: &'a [u8],
    },
    /// Entries now pending for `consumer` with these delivery times and counts (XREADGROUP, XCLAIM,
    /// XAUTOCLAIM); `seen` is the consumer's last-active time after.
    Delivered {
        group: &'a [u8],
        consumer: &'a [u8],
        seen: u64,
        entries: &'a [Delivery],
    },
    /// Entries no longer pending (XACK; XCLAIM and XAUTOCLAIM dropping IDs deleted from the stream).
    Acked {
        group: &'a [u8],
        ids: &'a [StreamId],
    },
}

/// A pending entry's delivery: its ID, the time (unix ms) and how many times it was delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub id: StreamId,
    pub time: u64,
    pub count: u64,
}

/// A blackboard scope's journal entry for a key change.
#[derive(Debug)]
pub struct Journaled<'a> {
    pub scope: &'a [u8],
    pub seq: u64,
    pub kind: super::keyspace::ChangeKind,
    pub revision: u64,
    /// The new value (`set`) or the last one (`del`, `expire`); `None` if not a string.
    pub value: Option<&'a [u8]>,
}

#[derive(Debug)]
pub struct JobChange<'a> {
    /// The job as it is after the change.
    pub job: &'a Job,
    pub event: JobEvent<'a>,
}

#[derive(Debug)]
pub enum JobEvent<'a> {
    Submitted,
    Claimed,
    Heartbeat,
    Progress,
    Chunk {
        offset: u64,
        data: &'a [u8],
        at_ms: u64,
    },
    Done,
    /// A failed attempt; the job's state says what follows (retry, dead, error).
    Failed,
    Cancelled,
    /// Claimable again: a delay ran out (`retried: false`) or JOB.RETRY (`retried: true`).
    Queued {
        retried: bool,
    },
    /// The lease ran out; the job's state says what follows.
    LeaseExpired,
    /// Gone: its result TTL ran out, or the dead-letter list dropped it.
    Removed,
}

#[derive(Debug)]
pub struct ItemChange<'a> {
    pub scope: &'a [u8],
    pub board: &'a [u8],
    /// The item as it is after the change (as it was, for one that left the board).
    pub item: &'a Item,
    pub event: ItemEvent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemEvent {
    Published,
    /// Removed to make room under drop-oldest.
    Dropped,
    Locked,
    Extended,
    Released,
    LeaseExpired,
    /// Moved to the dead letters after too many failed leases.
    Dead,
    Removed,
    Expired,
    /// Back from the dead letters.
    Redriven,
}

impl ItemEvent {
    /// The event's name on the board's channel.
    pub fn name(self) -> &'static str {
        match self {
            ItemEvent::Published => "publish",
            ItemEvent::Dropped => "dropped",
            ItemEvent::Locked => "lock",
            ItemEvent::Extended => "extend",
            ItemEvent::Released => "release",
            ItemEvent::LeaseExpired => "lease-expired",
            ItemEvent::Dead => "dead",
            ItemEvent::Removed => "remove",
            ItemEvent::Expired => "expire",
            ItemEvent::Redriven => "redrive",
        }
    }
}

#[derive(Debug)]
pub enum MailChange<'a> {
    Sent {
        dest: &'a [u8],
        topic: &'a [u8],
        id: u64,
        payload: &'a [u8],
        idempotency: Option<&'a [u8]>,
    },
    /// The oldest message of (dest, topic) was consumed.
    Received {
        dest: &'a [u8],
        topic: &'a [u8],
        id: u64,
    },
    /// A request (MSG.REQUEST) was put in (dest, topic). Its requester does not outlive the
    /// broker, so only its id matters after a restart (ids never go backwards).
    Requested {
        dest: &'a [u8],
        topic: &'a [u8],
        id: u64,
    },
    /// MSG.CONFIG: the mailbox's MAXLEN (0: the default).
    Configured {
        dest: &'a [u8],
        max_len: usize,
    },
}

#[derive(Debug)]
pub enum SemChange<'a> {
    /// A permit acquired, or its lease extended: `token` holds one of `permits` until `expires_ms`.
    Held { name: &'a [u8], permits: u32, token: u64, expires_ms: u64 },
    /// A permit given back (`expired`: its lease ran out).
    Dropped { name: &'a [u8], token: u64, expired: bool },
}

#[derive(Debug)]
pub enum StreamChange<'a> {
    Created { key: &'a [u8], epoch: u64, retention: Retention },
    Appended { key: &'a [u8], offset: u64, data: &'a [u8], at_ms: u64 },
    Closed { key: &'a [u8] },
    Configured { key: &'a [u8], retention: Retention },
    Deleted { key: &'a [u8] },
}

#[cfg(test)]
pub mod testing {
    //! A sink that remembers what it saw, for engine unit tests.
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    pub struct Recorder(pub Mutex<Vec<String>>);

    impl Recorder {
        pub fn take(&self) -> Vec<String> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
    }

    impl ChangeSink for Recorder {
        fn emit(&self, change: &Change<'_>) {
            let text = match change {
                Change::Key(k) => format!("key {} {} {:?}", String::from_utf8_lossy(k.key), k.event, k.effect),
                Change::Job(j) => format!("job {} {:?}", String::from_utf8_lossy(&j.job.id), j.event),
                Change::Item(i) => format!("item {} {}", String::from_utf8_lossy(&i.item.id), i.event.name()),
                other => format!("{other:?}"),
            };
            self.0.lock().unwrap().push(text);
        }

        fn listening(&self) -> bool {
            true
        }
    }
}
