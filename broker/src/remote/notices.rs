//! Following the blackboard's changes on the Redis engine: every node receives every scope's change
//! notices (through the pub-sub bridge), in order, and
//!
//! - turns each into the typed change the embedded engine would emit (`Change::Key` with its
//!   `Journaled` part) for the node's consumers, so watch events reach its subscribers on every wire;
//! - wakes the node's `BB.WAIT`s on that key;
//! - notices a gap (a sequence number skipped, or the pub-sub connection re-established) and catches up
//!   from the scope's log by sequence number, so no change is skipped silently;
//! - remembers each scope's next deadline and sweeps the scope when it is due (`bb_sweep.lua`), so
//!   expiry events fire on time whether or not anyone writes to the scope.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use redis::Value;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::Remote;
use super::blackboard::{self, invoke};
use super::bridge::Listener;
use crate::engine::change::{Change, Journaled, KeyChange, KeyEffect};
use crate::engine::keyspace::ChangeKind;
use crate::events::Events;

/// One log entry: `"<event>:<seq>:<revision>:<deadline>:<key length>:<has value>:" key value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<'a> {
    pub kind: ChangeKind,
    pub seq: u64,
    pub revision: u64,
    /// Unix ms (0: none): the key's deadline after a `set`.
    pub deadline: u64,
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}

/// The header of a notice the scripts write: `:`-terminated fields, then a name of a stated length
/// and, when a field said so, the data after it (the name and data may hold `:`).
pub struct Header<'a>(&'a [u8]);

impl<'a> Header<'a> {
    pub fn new(text: &'a [u8]) -> Self {
        Header(text)
    }

    pub fn field(&mut self) -> Option<&'a [u8]> {
        let at = self.0.iter().position(|&c| c == b':')?;
        let f = &self.0[..at];
        self.0 = &self.0[at + 1..];
        Some(f)
    }

    /// A field of decimal digits (what the scripts write), read without going through `str`.
    pub fn num(&mut self) -> Option<u64> {
        let field = self.field()?;
        if field.is_empty() {
            return None;
        }
        field.iter().try_fold(0u64, |n, &d| if d.is_ascii_digit() { n.checked_mul(10)?.checked_add(u64::from(d - b'0')) } else { None })
    }

    /// The last part: the name of `len` bytes, and the data after it when `has_data`.
    pub fn name_and_data(self, len: usize, has_data: bool) -> Option<(&'a [u8], Option<&'a [u8]>)> {
        let name = self.0.get(..len)?;
        Some((name, has_data.then(|| &self.0[len..])))
    }
}

impl<'a> Entry<'a> {
    pub fn parse(text: &'a [u8]) -> Option<Entry<'a>> {
        let mut h = Header::new(text);
        let kind = match h.field()? {
            b"set" => ChangeKind::Set,
            b"del" => ChangeKind::Del,
            b"expire" => ChangeKind::Expire,
            _ => return None,
        };
        let (seq, revision, deadline) = (h.num()?, h.num()?, h.num()?);
        let key_len = h.num()? as usize;
        let has_value = h.field()? == b"1";
        let (key, value) = h.name_and_data(key_len, has_value)?;
        Some(Entry { kind, seq, revision, deadline, key, value })
    }
}

/// The `BB.WAIT`s of this node, by (scope, key): each waits on a `Notify` that a change to the key rings.
#[derive(Default)]
pub struct Waiters {
    map: Mutex<HashMap<(Bytes, Bytes), Weak<Notify>>>,
}

impl Waiters {
    /// The key's doorbell; the caller holds it while it waits.
    pub fn interest(&self, scope: &Bytes, key: &Bytes) -> Arc<Notify> {
        let mut map = self.map.lock().expect("waiters");
        if let Some(n) = map.get(&(scope.clone(), key.clone())).and_then(Weak::upgrade) {
            return n;
        }
        // Entries whose waiters all left are dropped now and then, so the map stays as big as the waits.
        if map.len() >= 1024 && map.len().is_power_of_two() {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let n = Arc::new(Notify::new());
        map.insert((scope.clone(), key.clone()), Arc::downgrade(&n));
        n
    }

    /// Wakes every waiter (after a gap in the notices: any of them may have missed its own).
    pub(super) fn ring_all(&self) {
        let mut map = self.map.lock().expect("waiters");
        map.retain(|_, w| match w.upgrade() {
            Some(n) => {
                n.notify_waiters();
                true
            }
            None => false,
        });
    }

    /// Wakes `n` waits on (scope, key), first come first served (one per job that became claimable,
    /// not every blocked worker for each); a permit is kept if nobody waits.
    pub(super) fn ring_some(&self, scope: &[u8], key: &[u8], n: usize) {
        let map = self.map.lock().expect("waiters");
        if let Some(bell) = map.get(&(Bytes::copy_from_slice(scope), Bytes::copy_from_slice(key))).and_then(Weak::upgrade) {
            // Past a few thousand every blocked worker is woken anyway; a permit is kept for the next.
            for _ in 0..n.min(4096) {
                bell.notify_one();
            }
        }
    }

    /// Whether anyone on this node waits on (scope, key) now.
    pub(super) fn has(&self, scope: &[u8], key: &[u8]) -> bool {
        let map = self.map.lock().expect("waiters");
        map.get(&(Bytes::copy_from_slice(scope), Bytes::copy_from_slice(key))).is_some_and(|w| w.strong_count() > 0)
    }

    pub(super) fn ring(&self, scope: &[u8], key: &[u8]) {
        let mut map = self.map.lock().expect("waiters");
        // Nobody waits on this node: every change notice comes here, so no key is built for nothing.
        if map.is_empty() {
            return;
        }
        let id = (Bytes::copy_from_slice(scope), Bytes::copy_from_slice(key));
        match map.get(&id).map(Weak::upgrade) {
            Some(Some(n)) => n.notify_waiters(),
            Some(None) => {
                map.remove(&id);
            }
            None => {}
        }
    }
}

/// A change notice for the follower task, in the order the bridge received it.
struct Notice {
    scope: Bytes,
    entry: Bytes,
}

/// The bridge's listener: hands notices to the follower task in order, through a queue bounded by
/// `engine.notice_backlog`. A notice that finds the queue full is dropped and the follower told there
/// is a gap, as after a reconnect: it catches up from the logs, so a slow follower costs latency, not
/// changes.
pub struct Inbox {
    queue: mpsc::Sender<Notice>,
    /// Wake-up notices (`wake.rs`) ring here at once: they carry no data and need no order.
    wakes: Arc<super::wake::Wakes>,
    gap: Arc<AtomicBool>,
    /// Wakes the follower for a gap when nothing is queued.
    bell: Arc<Notify>,
}

impl Inbox {
    fn gap(&self) {
        self.gap.store(true, Ordering::Release);
        self.bell.notify_one();
    }
}

impl Listener for Inbox {
    fn message(&self, channel: &Bytes, payload: &Bytes) {
        if let Some(name) = super::wake::name_of(channel) {
            self.wakes.ring(name);
        } else if let Some(scope) = blackboard::scope_of(channel) {
            let notice = Notice { scope: channel.slice_ref(scope), entry: payload.clone() };
            if self.queue.try_send(notice).is_err() {
                self.gap();
            }
        }
    }

    fn reconnected(&self) {
        self.wakes.ring_all();
        self.gap();
    }
}

/// What the node knows of a scope: the last change it rendered, and when the scope next has a
/// deadline due (by its last sweep or the changes it saw; `u64::MAX`: none known).
#[derive(Debug, Clone, Copy)]
struct Followed {
    last: Option<u64>,
    due: u64,
}

struct Follower {
    remote: Arc<Remote>,
    events: Arc<Events>,
    scopes: HashMap<Bytes, Followed>,
}

/// Starts following: returns the bridge's listener; the task ends with `stop`.
pub fn start(remote: &Arc<Remote>, events: Arc<Events>, backlog: usize, stop: CancellationToken) -> Arc<Inbox> {
    let (tx, mut rx) = mpsc::channel(backlog.max(1));
    let inbox =
        Arc::new(Inbox { queue: tx, wakes: remote.wakes.clone(), gap: Arc::new(AtomicBool::new(false)), bell: Arc::new(Notify::new()) });
    let (gap, bell) = (inbox.gap.clone(), inbox.bell.clone());
    let mut follower = Follower { remote: remote.clone(), events, scopes: HashMap::new() };
    tokio::spawn(async move {
        follower.discover().await;
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = bell.notified() => {}
                notice = rx.recv() => match notice {
                    Some(Notice { scope, entry }) => follower.changed(scope, &entry).await,
                    None => return,
                },
                _ = tick.tick() => follower.sweep().await,
            }
            if gap.swap(false, Ordering::AcqRel) {
                follower.catch_up_all().await;
            }
        }
    });
    inbox
}

/// How often the follower looks for scopes with a deadline due.
pub const SWEEP_EVERY: Duration = Duration::from_millis(50);
/// Keys one sweep of one scope expires at most (the next tick takes the rest).
const SWEEP_BATCH: &[u8] = b"1000";
/// Changes one catch-up read takes from a scope's log.
const CATCH_UP_BATCH: usize = 1000;

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The objects (scopes, queues ...) that have a key `<before><object><after>` on Redis, found with
/// SCAN: what a follower sweeps at start, in case no other node runs.
pub async fn objects_with(remote: &Remote, before: &[u8], after: &[u8]) -> Vec<Bytes> {
    let mut conn = remote.pool.shared(super::pool::Target { db: 0, resp3: false });
    let pattern = [before, b"*", after].concat();
    let (mut cursor, mut found) = (0u64, Vec::new());
    loop {
        let page = super::listing::scan_keys(&mut conn, cursor, &pattern, 1000).await;
        let Ok((next, keys)) = page else { return found };
        found.extend(keys.iter().filter_map(|k| k.strip_prefix(before)?.strip_suffix(after)).map(Bytes::copy_from_slice));
        if next == 0 {
            return found;
        }
        cursor = next;
    }
}

impl Follower {
    /// What is known of `scope`, looked up by its bytes (a known scope's name is neither cloned nor
    /// hashed twice: this runs for every change notice of every node).
    fn scope(&mut self, scope: &Bytes) -> &mut Followed {
        if !self.scopes.contains_key(&scope[..]) {
            self.scopes.insert(scope.clone(), Followed { last: None, due: u64::MAX });
        }
        self.scopes.get_mut(&scope[..]).expect("just inserted")
    }

    /// At start: every scope that has deadlines is swept soon (their expiries are this node's to fire
    /// too, in case no other node runs).
    async fn discover(&mut self) {
        for scope in objects_with(&self.remote, b"herald:bb:{", b"}:d").await {
            self.scope(&scope).due = 0;
        }
        // The global scope lives outside the pattern (`blackboard.rs`): swept once too.
        self.scope(&Bytes::new()).due = 0;
    }

    async fn changed(&mut self, scope: Bytes, text: &[u8]) {
        let Some(entry) = Entry::parse(text) else { return };
        match self.scope(&scope).last {
            Some(last) if entry.seq <= last => return,
            Some(last) if entry.seq > last + 1 => {
                self.catch_up(&scope, last).await;
                if self.scope(&scope).last.is_some_and(|last| entry.seq <= last) {
                    return;
                }
            }
            _ => {}
        }
        self.render(&scope, &entry);
    }

    /// Renders the changes of `scope` after `since` from its log (a gap in the notices).
    async fn catch_up(&mut self, scope: &Bytes, mut since: u64) {
        loop {
            let args = [since.to_string(), CATCH_UP_BATCH.to_string()];
            let read = invoke(&self.remote, &self.remote.scripts.changes, scope, &[args[0].as_bytes(), args[1].as_bytes()]).await;
            let Ok(Value::Array(mut items)) = read else { return };
            if items.len() != 2 {
                return;
            }
            let entries = match items.pop() {
                Some(Value::Array(e)) => e,
                // "lost": the log no longer reaches back; watchers see the jump in `seq` and re-read.
                Some(Value::Int(oldest)) => {
                    since = (oldest as u64).saturating_sub(1);
                    self.scope(scope).last = Some(since);
                    continue;
                }
                _ => return,
            };
            if entries.is_empty() {
                return;
            }
            for e in &entries {
                if let Value::BulkString(b) = e
                    && let Some(entry) = Entry::parse(b)
                {
                    self.render(scope, &entry);
                    since = entry.seq;
                }
            }
            if entries.len() < CATCH_UP_BATCH {
                return;
            }
        }
    }

    async fn catch_up_all(&mut self) {
        let known: Vec<(Bytes, Option<u64>)> = self.scopes.iter().map(|(s, f)| (s.clone(), f.last)).collect();
        for (scope, last) in known {
            if let Some(last) = last {
                self.catch_up(&scope, last).await;
            }
            // Deadlines may have passed unseen too.
            self.scope(&scope).due = 0;
        }
    }

    fn render(&mut self, scope: &Bytes, entry: &Entry<'_>) {
        let followed = self.scope(scope);
        followed.last = Some(entry.seq);
        if entry.deadline > 0 {
            followed.due = followed.due.min(entry.deadline);
        }
        self.remote.waiters.ring(scope, entry.key);
        let change = Change::Key(KeyChange {
            db: 0,
            numbered: false,
            scope: Some(scope),
            key: entry.key,
            class: 0,
            event: entry.kind.name(),
            effect: KeyEffect::Notice,
            journal: Some(Journaled { scope, seq: entry.seq, kind: entry.kind, revision: entry.revision, value: entry.value }),
        });
        self.events.observe(&change);
    }

    /// Sweeps every scope whose deadline is due by this node's clock; the script decides by Redis's.
    async fn sweep(&mut self) {
        let now = now_ms();
        let due: Vec<Bytes> = self.scopes.iter().filter(|(_, f)| f.due <= now).map(|(s, _)| s.clone()).collect();
        for scope in due {
            let next = match invoke(&self.remote, &self.remote.scripts.sweep, &scope, &[SWEEP_BATCH]).await {
                Ok(Value::Int(0)) => u64::MAX,
                // Not before the next tick: clocks of nodes and Redis differ by a little.
                Ok(Value::Int(n)) => (n as u64).max(now + SWEEP_EVERY.as_millis() as u64),
                _ => now + 1000,
            };
            self.scope(&scope).due = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_binary_keys_and_values() {
        let text = b"set:7:3:0:3:1:a:bv:al\xff";
        let e = Entry::parse(text).unwrap();
        assert_eq!(
            (e.kind, e.seq, e.revision, e.deadline, e.key, e.value),
            (ChangeKind::Set, 7, 3, 0, &b"a:b"[..], Some(&b"v:al\xff"[..]))
        );
        let e = Entry::parse(b"del:8:3:0:1:0:k").unwrap();
        assert_eq!((e.kind, e.key, e.value), (ChangeKind::Del, &b"k"[..], None));
        assert!(Entry::parse(b"set:x").is_none());
        assert!(Entry::parse(b"set:7:3:0::1:k").is_none());
        assert!(Entry::parse(b"set:+7:3:0:1:1:k").is_none());
        assert!(Entry::parse(b"set:99999999999999999999:3:0:1:1:k").is_none());
    }
}
