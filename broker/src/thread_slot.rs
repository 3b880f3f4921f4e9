//! A slot per thread for counters that each thread writes alone (`command_stats.rs`, `alloc.rs`): a
//! thread that is a slot's only writer counts with a plain load and store instead of a `lock`-prefixed
//! add. Each user keeps its own slot numbers (its own thread-local and counter), so one user's threads
//! do not use up the other's slots.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::LocalKey;

/// The calling thread's slot in `slot`/`next`: given at its first call, `slots` for every thread past the
/// first `slots` ones (the shared slot, counted with atomic adds). `slot` must start at `usize::MAX`, be
/// const-initialized and have no destructor, so that reading it never allocates (the allocator calls
/// this) and works while the thread is ending.
#[inline]
pub fn own(slot: &'static LocalKey<Cell<usize>>, next: &AtomicUsize, slots: usize) -> usize {
    slot.with(|slot| {
        let mine = slot.get();
        if mine != usize::MAX {
            return mine;
        }
        let mine = next.fetch_add(1, Ordering::Relaxed).min(slots);
        slot.set(mine);
        mine
    })
}
