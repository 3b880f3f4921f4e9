//! A counting wrapper around the system allocator, so INFO's `used_memory` is measured, not guessed.
//!
//! Redis reports what its allocator hands out: the *usable* size of every allocation (jemalloc's size
//! class, or `malloc_usable_size` under libc), not the bytes the code asked for. Counting
//! `layout.size()` would under-report small allocations badly (a 1-byte request costs a 32-byte chunk
//! under glibc), and the ratio against Redis and `mem_fragmentation_ratio` would both be flattering
//! lies. So each allocation is counted as the chunk the allocator really gave: `malloc_usable_size`
//! plus glibc's per-chunk header word (its size field; the previous-size field overlaps the previous
//! chunk's tail). The cost is one call into libc per allocation and per free (it reads the chunk's
//! size field, which the allocator has just touched) and a load and a store of the thread's counter.
//!
//! The count is kept per thread, as commandstats' calls are (`command_stats.rs`): each thread that
//! allocates gets a slot of its own, at its first allocation, and is its only writer, so counting is a
//! plain load and store instead of a `lock`-prefixed add (tens of cycles and a pipeline barrier, two per
//! request on the request path: `bench/locked.py`, docs/benchmarks.md). A slot may go below zero (a
//! thread frees what another allocated); the sum of the slots is the total. Threads past [`SLOTS`]
//! share one more slot, counted with atomic adds. Readers sum the slots.
//!
//! The peak (`used_memory_peak`) is taken when read and whenever a thread's own count has grown by
//! [`PEAK_STEP`] since its last look: a peak that lasts less than that between two reads may be missed
//! by up to that much per thread. Redis samples its peak too (after each command and in its cron).
//!
//! [`chunk`] is the same rule as arithmetic, for estimates of structures that are not allocated yet or
//! that are too big to walk (MEMORY USAGE's sampling, `engine/memory.rs`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

pub struct CountingAllocator;

/// How many threads get a slot of their own; any thread after them counts in the shared slot `SLOTS`.
const SLOTS: usize = 64;

/// A thread's count of allocated bytes, alone on its cache line so that threads do not share lines.
#[repr(align(64))]
struct Slot(AtomicIsize);

static COUNTS: [Slot; SLOTS + 1] = [const { Slot(AtomicIsize::new(0)) }; SLOTS + 1];

/// Slots handed out so far.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

/// The highest total seen (INFO's `used_memory_peak`); see the module's note on when it is taken.
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// How much a thread's count grows between its looks at the total for the peak.
const PEAK_STEP: isize = 64 * 1024;

thread_local! {
    /// This thread's slot, assigned at its first allocation (`usize::MAX` until then). Constant and
    /// without a destructor, so reading it never allocates and works while the thread is ending.
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
    /// This thread's count at which it next looks at the total for the peak.
    static PEAK_AT: Cell<isize> = const { Cell::new(0) };
}

/// The slot of the calling thread.
#[inline]
fn own_slot() -> usize {
    crate::thread_slot::own(&SLOT, &NEXT_SLOT, SLOTS)
}

/// Adds `delta` bytes (negative for a free) to the calling thread's count.
#[inline]
fn count(delta: isize) {
    let slot = own_slot();
    let counter = &COUNTS[slot].0;
    let now = if slot < SLOTS {
        // The thread is the slot's only writer: no read-modify-write needed.
        let now = counter.load(Ordering::Relaxed).wrapping_add(delta);
        counter.store(now, Ordering::Relaxed);
        now
    } else {
        counter.fetch_add(delta, Ordering::Relaxed).wrapping_add(delta)
    };
    if delta > 0 {
        PEAK_AT.with(|at| {
            if now >= at.get() {
                at.set(now.saturating_add(PEAK_STEP));
                peak_bytes();
            }
        });
    }
}

/// glibc's chunk header that belongs to an allocation (`SIZE_SZ`).
const HEADER: usize = std::mem::size_of::<usize>();

unsafe extern "C" {
    fn malloc_usable_size(ptr: *mut c_void) -> usize;
    fn malloc_trim(pad: usize) -> i32;
}

/// The bytes the allocation at `p` occupies in the heap.
///
/// # Safety
/// `p` must be a live allocation of the system allocator.
unsafe fn footprint(p: *mut u8) -> usize {
    // SAFETY: the caller guarantees `p` is live and came from the system allocator.
    unsafe { malloc_usable_size(p.cast()) + HEADER }
}

/// An allocation's footprint as a count (allocations are far below `isize::MAX`).
#[inline]
fn signed(bytes: usize) -> isize {
    bytes as isize
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            // SAFETY: `p` was just returned by the system allocator.
            count(signed(unsafe { footprint(p) }));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is live until the call below frees it.
        count(-signed(unsafe { footprint(ptr) }));
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) };
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            // SAFETY: `p` was just returned by the system allocator.
            count(signed(unsafe { footprint(p) }));
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` is live until realloc takes it.
        let old = unsafe { footprint(ptr) };
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // SAFETY: `p` was just returned by the system allocator.
            count(signed(unsafe { footprint(p) }) - signed(old));
        }
        p
    }
}

/// What the allocator hands out for a request of `n` bytes (glibc: the request plus its header word,
/// rounded up to 16 bytes, at least 32): the figure [`CountingAllocator`] counts, as arithmetic.
pub const fn chunk(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let c = (n + HEADER + 15) & !15;
    if c < 32 { 32 } else { c }
}

/// Bytes currently allocated through [`CountingAllocator`] (0 if the binary does not install it).
///
/// The sum of the threads' slots. A free counted on one thread while the sum is being read may be seen
/// without the allocation another thread counted just before it: the figure may be short by such a
/// chunk for that moment, never below zero.
pub fn allocated_bytes() -> usize {
    let used = NEXT_SLOT.load(Ordering::Relaxed).min(SLOTS);
    let total = COUNTS[..used].iter().chain([&COUNTS[SLOTS]]).fold(0isize, |sum, slot| sum.wrapping_add(slot.0.load(Ordering::Relaxed)));
    usize::try_from(total).unwrap_or(0)
}

/// The most [`allocated_bytes`] has been since the process started (taken now, and as the module's note
/// says).
pub fn peak_bytes() -> usize {
    let now = allocated_bytes();
    let peak = PEAK.load(Ordering::Relaxed);
    if now > peak {
        PEAK.fetch_max(now, Ordering::Relaxed);
        return now;
    }
    peak
}

static STARTUP: AtomicUsize = AtomicUsize::new(0);

/// Records what the broker holds once it is ready to serve (INFO's `used_memory_startup`): the
/// baseline the dataset and per-key figures are measured from.
pub fn mark_startup() {
    STARTUP.store(allocated_bytes(), Ordering::Relaxed);
}

/// What [`mark_startup`] recorded.
pub fn startup_bytes() -> usize {
    STARTUP.load(Ordering::Relaxed)
}

/// Whether the binary counts its allocations (the `herald` binary does; a test binary may not).
pub fn counting() -> bool {
    allocated_bytes() > 0
}

/// Gives free heap memory back to the operating system (MEMORY PURGE): glibc's `malloc_trim`, the
/// counterpart of the jemalloc purge Redis runs.
pub fn purge() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe { malloc_trim(0) };
}

/// glibc's own view of its heap (`mallinfo2`), for MEMORY STATS' `allocator.*` figures and
/// MEMORY MALLOC-STATS.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct MallInfo {
    /// Bytes obtained from the system with `brk`/`sbrk` (the arenas).
    pub arena: usize,
    /// Free chunks.
    pub ordblks: usize,
    /// Free fastbin chunks.
    pub smblks: usize,
    /// Chunks obtained with `mmap`.
    pub hblks: usize,
    /// Bytes in `mmap`ed chunks.
    pub hblkhd: usize,
    pub usmblks: usize,
    /// Bytes in free fastbin chunks.
    pub fsmblks: usize,
    /// Bytes in chunks in use in the arenas.
    pub uordblks: usize,
    /// Bytes in free chunks in the arenas.
    pub fordblks: usize,
    /// Bytes at the top of the main arena that `malloc_trim` could release.
    pub keepcost: usize,
}

impl MallInfo {
    pub fn read() -> MallInfo {
        unsafe extern "C" {
            fn mallinfo2() -> MallInfo;
        }
        // SAFETY: mallinfo2 returns a struct of ten `size_t`s by value and has no preconditions.
        unsafe { mallinfo2() }
    }

    /// Bytes in chunks in use, as the allocator sees them (arenas and mmap).
    pub fn allocated(&self) -> usize {
        self.uordblks + self.hblkhd
    }

    /// Bytes the allocator holds from the system, free chunks included.
    pub fn active(&self) -> usize {
        self.arena + self.hblkhd
    }
}

/// Resident set size of this process, from `/proc/self/statm`.
pub fn resident_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<usize>().ok()))
        .map(|pages| pages * page_size())
        .unwrap_or(0)
}

fn page_size() -> usize {
    unsafe extern "C" {
        fn sysconf(name: i32) -> i64;
    }
    const SC_PAGESIZE: i32 = 30;
    // SAFETY: sysconf only reads a constant of the system.
    let size = unsafe { sysconf(SC_PAGESIZE) };
    if size > 0 { size as usize } else { 4096 }
}

/// Physical memory of the machine (INFO's `total_system_memory`), from `/proc/meminfo`.
pub fn total_system_memory() -> usize {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("MemTotal:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::chunk;

    #[test]
    fn chunks_follow_glibc_size_classes() {
        assert_eq!(chunk(0), 0);
        assert_eq!(chunk(1), 32);
        assert_eq!(chunk(24), 32);
        assert_eq!(chunk(25), 48);
        assert_eq!(chunk(40), 48);
        assert_eq!(chunk(41), 64);
        assert_eq!(chunk(1000), 1008);
    }

    #[test]
    fn chunk_matches_what_glibc_reports() {
        unsafe extern "C" {
            fn malloc(n: usize) -> *mut std::ffi::c_void;
            fn free(p: *mut std::ffi::c_void);
        }
        for n in [1usize, 7, 24, 25, 100, 1000, 4000] {
            // SAFETY: a plain malloc/free pair of the C allocator.
            unsafe {
                let p = malloc(n);
                // glibc may hand out a free chunk up to one minimum chunk (32 bytes) larger rather
                // than split it, depending on what the process freed before: at least the class.
                let got = super::malloc_usable_size(p) + super::HEADER;
                assert!(got >= chunk(n) && got < chunk(n) + 32, "request of {n} bytes: {got}, class {}", chunk(n));
                free(p);
            }
        }
    }
}
