//! Putting the boards back from persistence, and reading them out for a snapshot. Each record
//! restores an item whole (free, leased or dead) or takes one away; the timers of leases and TTLs
//! are rebuilt once at the end by [`Bulletin::finish_restore`].

use bytes::Bytes;

use super::Bulletin;
use super::board::{Board, BoardConfig, Item};

impl Bulletin {
    fn restore_board_mut(&mut self, scope: &Bytes, board: &Bytes) -> &mut Board {
        let (max_len, max_leases) = (self.settings.default_max_len, self.settings.default_max_leases);
        self.boards.entry((scope.clone(), board.clone())).or_insert_with(|| Board::new(max_len, max_leases))
    }

    /// An item as recorded: on its board (free, or leased when it carries a lease), or dead.
    pub fn restore_item(&mut self, scope: &Bytes, board: &Bytes, item: Item, dead: bool) {
        self.next_seq = self.next_seq.max(item.seq);
        if let Some(lease) = item.lease {
            self.next_token = self.next_token.max(lease.token);
        }
        let b = self.restore_board_mut(scope, board);
        if let Some(seq) = b.seq_of(&item.id) {
            b.take(seq);
        }
        b.dead.retain(|d| d.id != item.id);
        if dead {
            b.dead.push_back(item);
            return;
        }
        let (seq, leased) = (item.seq, item.lease.is_some());
        b.insert(item);
        if leased {
            b.available.remove(&seq);
        }
    }

    pub fn restore_gone(&mut self, scope: &Bytes, board: &Bytes, id: &[u8]) {
        let b = self.restore_board_mut(scope, board);
        if let Some(seq) = b.seq_of(id) {
            b.take(seq);
        }
        b.dead.retain(|d| d.id != id);
    }

    pub fn restore_config(&mut self, scope: &Bytes, board: &Bytes, config: BoardConfig) {
        let b = self.restore_board_mut(scope, board);
        b.max_len = config.max_len;
        b.overflow = config.overflow;
        b.max_leases = config.max_leases;
    }

    /// Counters that must not go backwards: item sequence (ids) and lease token.
    pub fn restore_counters(&mut self, seq: u64, token: u64) {
        self.next_seq = self.next_seq.max(seq);
        self.next_token = self.next_token.max(token);
    }

    pub fn counters(&self) -> (u64, u64) {
        (self.next_seq, self.next_token)
    }

    /// Rebuilds the timers of leases and TTLs; one that ran out while the broker was down is due at
    /// once. Retrievers may find items on every board.
    pub fn finish_restore(&mut self) {
        let mut due = Vec::new();
        for ((scope, board), b) in &self.boards {
            for item in b.items.values() {
                if let Some(lease) = item.lease {
                    due.push((lease.expires_ms, scope.clone(), board.clone(), item.seq));
                } else if let Some(at) = item.expires_ms {
                    due.push((at, scope.clone(), board.clone(), item.seq));
                }
            }
        }
        for (at, scope, board, seq) in due {
            self.timer(at, &scope, &board, seq);
        }
        let keys: Vec<_> = self.boards.keys().cloned().collect();
        for (scope, board) in keys {
            self.ready.push(super::wait_key(&scope, &board));
        }
    }

    /// Every board by (scope, name), for a snapshot.
    pub fn board_names(&self) -> Vec<(Bytes, Bytes)> {
        self.boards.keys().cloned().collect()
    }

    /// A board's settings, items and dead letters, for a snapshot.
    pub fn board_image(&self, scope: &Bytes, board: &Bytes, mut f: impl FnMut(&Item, bool)) -> Option<BoardConfig> {
        let b = self.boards.get(&(scope.clone(), board.clone()))?;
        b.items.values().for_each(|i| f(i, false));
        b.dead.iter().for_each(|i| f(i, true));
        Some(b.config())
    }
}
