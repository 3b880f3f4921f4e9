//! Bulletin boards (BL.*): JSON items posted to boards, retrieved by field filters, optionally locked
//! under a lease so two workers never hold the same item; released, removed (acked), expired or
//! dead-lettered, with events for each. Boards live in scopes (`""` by default), like the seeds'
//! `Bulletin[T](scope=...)`.
//!
//! Retrieve-and-lock is one step under the state lock. A lease that runs out returns its item to the
//! board on time (the timer), counting a failed lease; after `MAXLEASES` of those the item moves to the
//! board's dead letters. Blocked retrievers wake on a publish, a release or a lease returning.

mod board;
pub mod filter;
mod restore;

use std::collections::HashMap;
use std::sync::Arc;

use crate::engine::Error;
use bytes::Bytes;

use board::Board;
pub use board::{BoardConfig, Item, Lease, Overflow};
use filter::Compiled;

use super::change::{Change, ChangeSink, ItemChange, ItemEvent};
use super::listing::{ListArgs, Page, select};
use super::schedule::Schedule;
use super::wait::{Ready, WaitKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulletinSettings {
    pub max_boards: usize,
    /// Items per board unless BL.CONFIG sets MAXLEN (0: unbounded).
    pub default_max_len: usize,
    /// Failed leases before dead letter unless BL.CONFIG sets MAXLEASES (0: never).
    pub default_max_leases: u32,
    /// Dead-letter items kept per board.
    pub max_dead: usize,
}

/// An item as replies show it.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemView {
    pub id: Bytes,
    pub item: Bytes,
    pub published_ms: u64,
    pub failed_leases: u32,
    pub lease: Option<Lease>,
}

impl From<&Item> for ItemView {
    fn from(i: &Item) -> Self {
        ItemView { id: i.id.clone(), item: i.raw.clone(), published_ms: i.published_ms, failed_leases: i.failed_leases, lease: i.lease }
    }
}

type BoardKey = (Bytes, Bytes);

/// One board as BL.BOARDS lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardSummary {
    pub scope: Bytes,
    pub board: Bytes,
    pub items: usize,
    /// Items held under a lease now.
    pub leased: usize,
    pub dead: usize,
    pub config: BoardConfig,
}

pub struct Bulletin {
    boards: HashMap<BoardKey, Board>,
    /// (scope, board, item seq) of lease ends and TTLs, checked against the item when due.
    timers: Schedule<(Bytes, Bytes, u64)>,
    settings: BulletinSettings,
    next_seq: u64,
    next_token: u64,
    sink: Arc<dyn ChangeSink>,
    ready: Ready,
}

/// Where retrievers of a board wait.
pub fn wait_key(scope: &[u8], board: &[u8]) -> WaitKey {
    WaitKey::joined("board", scope, board)
}

/// Where publishers wait for room on a full board.
pub fn room_wait_key(scope: &[u8], board: &[u8]) -> WaitKey {
    WaitKey::joined("boardroom", scope, board)
}

fn lease_error() -> Error {
    Error::fixed("LEASE the item is not locked with this token (the lease ended or was never this one)")
}

fn no_item() -> Error {
    Error::fixed("NOITEM no such item")
}

impl Bulletin {
    pub fn new(settings: BulletinSettings, sink: Arc<dyn ChangeSink>) -> Self {
        Bulletin {
            boards: HashMap::new(),
            timers: Schedule::default(),
            settings,
            next_seq: 0,
            next_token: 0,
            sink,
            ready: Ready::default(),
        }
    }

    /// The keys this engine's changes made ready since the state last collected them.
    pub fn ready_mut(&mut self) -> &mut Ready {
        &mut self.ready
    }

    pub fn take_scheduled(&mut self) -> Option<u64> {
        self.timers.take_scheduled()
    }

    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.next()
    }

    fn board_mut(&mut self, scope: &Bytes, board: &Bytes, create: bool) -> Result<Option<&mut Board>, Error> {
        let key = (scope.clone(), board.clone());
        if !self.boards.contains_key(&key) {
            if !create {
                return Ok(None);
            }
            if self.boards.len() >= self.settings.max_boards {
                return Err(Error::fixed("ERR too many boards (bulletin.max_boards)"));
            }
            self.boards.insert(key.clone(), Board::new(self.settings.default_max_len, self.settings.default_max_leases));
        }
        Ok(self.boards.get_mut(&key))
    }

    fn board(&self, scope: &Bytes, board: &Bytes) -> Option<&Board> {
        self.boards.get(&(scope.clone(), board.clone()))
    }

    /// Forgets a lease's deadline (the lease ended another way), so timers hold only live ones.
    fn drop_timer(&mut self, lease: Option<Lease>, scope: &Bytes, board: &Bytes, seq: u64) {
        if let Some(l) = lease {
            self.timers.remove(l.expires_ms, (scope.clone(), board.clone(), seq));
        }
    }

    fn timer(&mut self, at: u64, scope: &Bytes, board: &Bytes, seq: u64) {
        self.timers.add(at, (scope.clone(), board.clone(), seq));
    }

    /// The one place a board change is produced.
    fn emit(&self, scope: &[u8], board: &[u8], item: &Item, event: ItemEvent) {
        self.sink.emit(&Change::Item(ItemChange { scope, board, item, event }));
    }

    /// Whether a publish would be taken now: the board has room, or makes it (drop-oldest).
    pub fn has_room(&self, scope: &Bytes, board: &Bytes) -> bool {
        self.board(scope, board).is_none_or(|b| b.max_len == 0 || b.len() < b.max_len || b.overflow == Overflow::DropOldest)
    }

    /// BL.PUBLISH: the new item's id (sortable by publish order).
    pub fn publish(&mut self, scope: &Bytes, board: &Bytes, raw: &[u8], ttl_ms: Option<u64>, now: u64) -> Result<Bytes, Error> {
        serde_json::from_slice::<serde::de::IgnoredAny>(raw).map_err(|e| Error::new(format!("ERR the item is not valid JSON: {e}")))?;
        self.next_seq += 1;
        let seq = self.next_seq;
        let b = self.board_mut(scope, board, true)?.expect("created");
        let mut dropped = None;
        if b.max_len > 0 && b.len() >= b.max_len {
            match b.overflow {
                Overflow::RejectNew => return Err(Error::fixed("FULL the board is at its MAXLEN")),
                Overflow::DropOldest => {
                    let oldest = *b.items.keys().next().expect("full board has items");
                    dropped = b.take(oldest);
                }
            }
        }
        let id = Bytes::from(format!("{now}-{seq}"));
        let item = Item {
            id: id.clone(),
            seq,
            raw: Bytes::copy_from_slice(raw),
            published_ms: now,
            expires_ms: ttl_ms.map(|t| now + t),
            lease: None,
            failed_leases: 0,
        };
        b.insert(item.clone());
        if let Some(old) = dropped {
            self.emit(scope, board, &old, ItemEvent::Dropped);
        }
        if let Some(at) = item.expires_ms {
            self.timer(at, scope, board, seq);
        }
        self.emit(scope, board, &item, ItemEvent::Published);
        self.ready.push(wait_key(scope, board));
        Ok(id)
    }

    /// BL.RETRIEVE: the first unlocked item matching every filter; with `lock_ms`, locked under a
    /// new lease in the same step.
    pub fn retrieve(&mut self, scope: &Bytes, board: &Bytes, filters: &[Compiled], lock_ms: Option<u64>, now: u64) -> Option<ItemView> {
        let key = (scope.clone(), board.clone());
        let b = self.boards.get_mut(&key)?;
        let matches = |b: &Board, s: &u64| b.items.get(s).is_some_and(|i| filter::all_match(filters, &i.raw));
        let seq = match b.indexed_candidates(filters, true) {
            Some(candidates) => candidates.into_iter().find(|s| matches(b, s))?,
            None => b.available.iter().copied().find(|s| matches(b, s))?,
        };
        let Some(ms) = lock_ms else {
            return b.items.get(&seq).map(ItemView::from);
        };
        self.next_token += 1;
        let lease = Lease { token: self.next_token, expires_ms: now + ms };
        b.available.remove(&seq);
        let item = b.items.get_mut(&seq).expect("available items exist");
        item.lease = Some(lease);
        let view = ItemView::from(&*item);
        self.timer(lease.expires_ms, scope, board, seq);
        if let Some(item) = self.boards.get(&key).and_then(|b| b.items.get(&seq)) {
            self.emit(scope, board, item, ItemEvent::Locked);
        }
        Some(view)
    }

    pub fn all(&mut self, scope: &Bytes, board: &Bytes, filters: &[Compiled], limit: Option<usize>) -> Vec<ItemView> {
        let Some(b) = self.boards.get_mut(&(scope.clone(), board.clone())) else { return Vec::new() };
        let candidates = b.indexed_candidates(filters, false).unwrap_or_else(|| b.items.keys().copied().collect());
        candidates
            .into_iter()
            .filter_map(|s| b.items.get(&s))
            .filter(|i| filter::all_match(filters, &i.raw))
            .take(limit.unwrap_or(usize::MAX))
            .map(ItemView::from)
            .collect()
    }

    pub fn get(&self, scope: &Bytes, board: &Bytes, id: &[u8]) -> Option<ItemView> {
        let b = self.board(scope, board)?;
        b.items.get(&b.seq_of(id)?).map(ItemView::from)
    }

    pub fn len(&self, scope: &Bytes, board: &Bytes) -> usize {
        self.board(scope, board).map_or(0, Board::len)
    }

    /// The locked item `id` under `token`.
    fn leased(&mut self, scope: &Bytes, board: &Bytes, id: &[u8], token: u64) -> Result<&mut Item, Error> {
        let b = self.boards.get_mut(&(scope.clone(), board.clone())).ok_or_else(no_item)?;
        let item = b.item_mut(id).ok_or_else(no_item)?;
        if item.lease.is_none_or(|l| l.token != token) {
            return Err(lease_error());
        }
        Ok(item)
    }

    /// BL.EXTEND: the lease's new expiry.
    pub fn extend(&mut self, scope: &Bytes, board: &Bytes, id: &[u8], token: u64, ms: u64, now: u64) -> Result<u64, Error> {
        let item = self.leased(scope, board, id, token)?;
        let expires = now + ms;
        let old = item.lease.replace(Lease { token, expires_ms: expires });
        let seq = item.seq;
        self.drop_timer(old, scope, board, seq);
        self.timer(expires, scope, board, seq);
        if let Some(item) = self.boards.get(&(scope.clone(), board.clone())).and_then(|b| b.items.get(&seq)) {
            self.emit(scope, board, item, ItemEvent::Extended);
        }
        Ok(expires)
    }

    /// Ends a lease without a remove (release, or expiry): back to the board or dead-lettered. An
    /// item whose TTL ran out while it was leased (its TTL deadline passed without taking it) expires
    /// now instead of coming back; one whose TTL is still ahead gets its deadline again.
    fn end_lease(&mut self, scope: &Bytes, board: &Bytes, seq: u64, event: ItemEvent, now: u64) {
        let max_dead = self.settings.max_dead;
        let Some(b) = self.boards.get_mut(&(scope.clone(), board.clone())) else { return };
        let dead = b.lease_failed(seq, max_dead);
        if !dead && let Some(at) = b.items.get(&seq).and_then(|i| i.expires_ms) {
            if at <= now {
                let item = b.take(seq).expect("present");
                self.emit(scope, board, &item, ItemEvent::Expired);
                self.ready.push(room_wait_key(scope, board));
                return;
            }
            self.timer(at, scope, board, seq);
        }
        let Some(b) = self.boards.get(&(scope.clone(), board.clone())) else { return };
        let item = if dead { b.dead.back().cloned() } else { b.items.get(&seq).cloned() };
        if let Some(item) = item {
            self.emit(scope, board, &item, if dead { ItemEvent::Dead } else { event });
        }
        if dead {
            self.ready.push(room_wait_key(scope, board));
        } else {
            self.ready.push(wait_key(scope, board));
        }
    }

    /// BL.RELEASE: the item goes back to the board (a failed lease is counted).
    pub fn release(&mut self, scope: &Bytes, board: &Bytes, id: &[u8], token: u64, now: u64) -> Result<(), Error> {
        let item = self.leased(scope, board, id, token)?;
        let (seq, lease) = (item.seq, item.lease);
        self.drop_timer(lease, scope, board, seq);
        self.end_lease(scope, board, seq, ItemEvent::Released, now);
        Ok(())
    }

    /// BL.REMOVE (the ack): a locked item only with its token. False if there was no such item.
    pub fn remove(&mut self, scope: &Bytes, board: &Bytes, id: &[u8], token: Option<u64>) -> Result<bool, Error> {
        let Some(b) = self.boards.get_mut(&(scope.clone(), board.clone())) else { return Ok(false) };
        let Some(seq) = b.seq_of(id) else { return Ok(false) };
        let item = &b.items[&seq];
        if let Some(lease) = item.lease {
            if token != Some(lease.token) {
                return Err(lease_error());
            }
        } else if token.is_some() {
            return Err(lease_error());
        }
        let item = b.take(seq).expect("present");
        self.drop_timer(item.lease, scope, board, seq);
        self.emit(scope, board, &item, ItemEvent::Removed);
        self.ready.push(room_wait_key(scope, board));
        Ok(true)
    }

    pub fn configure(
        &mut self,
        scope: &Bytes,
        board: &Bytes,
        max_len: Option<usize>,
        overflow: Option<Overflow>,
        max_leases: Option<u32>,
    ) -> Result<(), Error> {
        let b = self.board_mut(scope, board, true)?.expect("created");
        if let Some(n) = max_len {
            b.max_len = n;
        }
        if let Some(o) = overflow {
            b.overflow = o;
        }
        if let Some(n) = max_leases {
            b.max_leases = n;
        }
        let config = b.config();
        self.sink.emit(&Change::Board { scope, board, config });
        self.ready.push(room_wait_key(scope, board));
        Ok(())
    }

    pub fn dead(&self, scope: &Bytes, board: &Bytes) -> Vec<ItemView> {
        self.board(scope, board).map(|b| b.dead.iter().map(ItemView::from).collect()).unwrap_or_default()
    }

    /// BL.BOARDS: a page of the boards (of one scope, or of all), the pattern matching board names.
    pub fn boards(&self, scope: Option<&[u8]>, args: &ListArgs) -> Page<BoardSummary> {
        let boards = self.boards.iter().filter(|((s, _), _)| scope.is_none_or(|want| s == want));
        select(boards, |((_, name), _)| name, args).map(|((scope, board), b)| BoardSummary {
            scope: scope.clone(),
            board: board.clone(),
            items: b.len(),
            leased: b.len() - b.available.len(),
            dead: b.dead.len(),
            config: b.config(),
        })
    }

    /// BL.REDRIVE: a dead item goes back to its board with a fresh lease count.
    pub fn redrive(&mut self, scope: &Bytes, board: &Bytes, id: &[u8]) -> Result<(), Error> {
        let b = self.boards.get_mut(&(scope.clone(), board.clone())).ok_or_else(no_item)?;
        let at = b.dead.iter().position(|i| i.id == id).ok_or_else(no_item)?;
        let mut item = b.dead.remove(at).expect("found");
        item.failed_leases = 0;
        item.lease = None;
        let seq = item.seq;
        b.insert(item);
        if let Some(item) = self.boards.get(&(scope.clone(), board.clone())).and_then(|b| b.items.get(&seq)) {
            self.emit(scope, board, item, ItemEvent::Redriven);
        }
        self.ready.push(wait_key(scope, board));
        Ok(())
    }

    /// Runs due deadlines: expired leases return their items (or dead-letter them), items past their
    /// TTL go away. At most `budget`; returns how many ran.
    pub fn run_due(&mut self, now: u64, budget: usize) -> usize {
        let mut ran = 0;
        while ran < budget {
            let Some((_, (scope, board, seq))) = self.timers.pop_due(now) else { break };
            ran += 1;
            let Some(b) = self.boards.get_mut(&(scope.clone(), board.clone())) else { continue };
            let Some(item) = b.items.get(&seq) else { continue };
            if item.lease.is_some_and(|l| l.expires_ms <= now) {
                self.end_lease(&scope, &board, seq, ItemEvent::LeaseExpired, now);
            } else if item.expires_ms.is_some_and(|e| e <= now) && item.lease.is_none() {
                let item = b.take(seq).expect("present");
                self.emit(&scope, &board, &item, ItemEvent::Expired);
                self.ready.push(room_wait_key(&scope, &board));
            }
        }
        ran
    }
}

#[cfg(test)]
mod tests {
    use super::filter::{Filter, FilterOp};
    use super::*;

    fn bulletin() -> Bulletin {
        let settings = BulletinSettings { max_boards: 10, default_max_len: 0, default_max_leases: 2, max_dead: 10 };
        Bulletin::new(settings, Arc::new(crate::engine::change::Discard))
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn eq(path: &str, value: &str) -> Vec<Compiled> {
        filter::compile(&[Filter { path: b(path), op: FilterOp::Eq, value: b(value) }])
    }

    #[test]
    fn locked_items_are_never_handed_out_twice_and_leases_come_back() {
        let mut bl = bulletin();
        let (s, board) = (b(""), b("tasks"));
        let id = bl.publish(&s, &board, br#"{"status": "pending"}"#, None, 0).unwrap();
        let first = bl.retrieve(&s, &board, &eq("status", "pending"), Some(100), 0).unwrap();
        assert_eq!(first.id, id);
        assert!(bl.retrieve(&s, &board, &[], Some(100), 0).is_none(), "locked");
        assert_eq!(bl.run_due(100, 10), 1);
        let second = bl.retrieve(&s, &board, &[], Some(100), 100).unwrap();
        assert_eq!((second.id.clone(), second.failed_leases), (id.clone(), 1));
        assert_eq!(bl.remove(&s, &board, &id, Some(first.lease.unwrap().token)), Err(lease_error()), "stale token");
        bl.release(&s, &board, &id, second.lease.unwrap().token, 100).unwrap();
        assert_eq!(bl.len(&s, &board), 0, "two failed leases: dead");
        assert_eq!(bl.dead(&s, &board).len(), 1);
        bl.redrive(&s, &board, &id).unwrap();
        let third = bl.retrieve(&s, &board, &[], Some(100), 200).unwrap();
        assert!(bl.remove(&s, &board, &id, Some(third.lease.unwrap().token)).unwrap());
    }

    #[test]
    fn an_item_whose_ttl_ran_out_under_a_lease_expires_when_the_lease_ends() {
        let mut bl = bulletin();
        let (s, board) = (b(""), b("ttl"));
        // Lease runs out after the TTL: the item goes, it does not come back.
        let a = bl.publish(&s, &board, b"1", Some(50), 0).unwrap();
        bl.retrieve(&s, &board, &[], Some(100), 0).unwrap();
        assert_eq!(bl.run_due(50, 10), 1, "the TTL deadline passes under the lease");
        assert!(bl.get(&s, &board, &a).is_some(), "a leased item stays while leased");
        bl.run_due(100, 10);
        assert!(bl.get(&s, &board, &a).is_none(), "expired when its lease ran out");
        assert_eq!(bl.dead(&s, &board).len(), 0);
        // Released after the TTL: gone too.
        let b2 = bl.publish(&s, &board, b"2", Some(50), 100).unwrap();
        let lease = bl.retrieve(&s, &board, &[], Some(1000), 100).unwrap().lease.unwrap();
        bl.run_due(150, 10);
        bl.release(&s, &board, &b2, lease.token, 160).unwrap();
        assert!(bl.get(&s, &board, &b2).is_none(), "expired at its release");
        // Released before the TTL: back on the board, and it still expires on time.
        let c = bl.publish(&s, &board, b"3", Some(500), 200).unwrap();
        let lease = bl.retrieve(&s, &board, &[], Some(1000), 200).unwrap().lease.unwrap();
        bl.release(&s, &board, &c, lease.token, 300).unwrap();
        assert!(bl.get(&s, &board, &c).is_some());
        bl.run_due(700, 10);
        assert!(bl.get(&s, &board, &c).is_none(), "expired at its own TTL");
        assert_eq!(bl.len(&s, &board), 0);
    }

    #[test]
    fn overflow_policies_and_ttl() {
        let mut bl = bulletin();
        let (s, board) = (b("scope"), b("q"));
        bl.configure(&s, &board, Some(2), Some(Overflow::RejectNew), None).unwrap();
        bl.publish(&s, &board, b"1", None, 0).unwrap();
        bl.publish(&s, &board, b"2", None, 0).unwrap();
        assert!(bl.publish(&s, &board, b"3", None, 0).is_err());
        bl.configure(&s, &board, None, Some(Overflow::DropOldest), None).unwrap();
        bl.publish(&s, &board, b"3", None, 0).unwrap();
        let items: Vec<Bytes> = bl.all(&s, &board, &[], None).into_iter().map(|v| v.item).collect();
        assert_eq!(items, vec![b("2"), b("3")]);
        bl.publish(&s, &board, b"4", Some(50), 0).unwrap();
        bl.run_due(50, 10);
        assert_eq!(
            bl.all(&s, &board, &[], None).into_iter().map(|v| v.item).collect::<Vec<_>>(),
            vec![b("3")],
            "4 dropped 2, then expired"
        );
        assert!(bl.publish(&s, &board, b"{not json", None, 0).is_err());
        assert_eq!(bl.len(&b("other"), &board), 0, "scopes isolate boards");
    }

    #[test]
    fn boards_list_items_leases_and_dead_letters() {
        let mut bl = bulletin();
        let (s, other, board) = (b(""), b("team"), b("tasks"));
        let id = bl.publish(&s, &board, b"1", None, 0).unwrap();
        bl.publish(&s, &board, b"2", None, 0).unwrap();
        bl.publish(&other, &b("notes"), b"3", None, 0).unwrap();
        bl.retrieve(&s, &board, &[], Some(100), 0).unwrap();
        let all = bl.boards(None, &ListArgs::all());
        assert_eq!(all.entries.len(), 2);
        let page = bl.boards(Some(b""), &ListArgs { cursor: 0, pattern: Some(b("ta*")), count: 10 });
        let [summary] = &page.entries[..] else { panic!("{page:?}") };
        assert_eq!((summary.items, summary.leased, summary.dead), (2, 1, 0));
        for now in [100, 200] {
            bl.run_due(now, 10);
            let _ = bl.retrieve(&s, &board, &[], Some(100), now);
        }
        bl.run_due(300, 10);
        let summary = &bl.boards(Some(b""), &ListArgs::all()).entries[0];
        assert_eq!(bl.dead(&s, &board)[0].id, id);
        assert_eq!((summary.items, summary.dead), (1, 1));
        assert!(bl.boards(Some(b"team"), &ListArgs { cursor: 0, pattern: Some(b("ta*")), count: 10 }).entries.is_empty());
    }
}
