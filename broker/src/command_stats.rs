//! INFO `commandstats`, `errorstats` and `total_error_replies`: per-command calls, time, rejections and
//! failures, and error replies counted by their code, as Redis 7.0 keeps them.
//!
//! The counters of a command sit in arrays indexed by the command table's dense index (which
//! `command::lookup` hands out with the spec, `Found::index`). Calls and time, counted on every command,
//! are kept per thread: each thread that counts gets a slot of its own (an array allocated at its first
//! count) and is that slot's only writer, so counting a call is a load and a store of each counter. Two
//! shared atomic adds cost two `lock`-prefixed instructions per command, tens of cycles each on the
//! request path (`bench/locked.py`, docs/benchmarks.md). Threads past [`SLOTS`] share one more slot,
//! counted with atomic adds. Readers sum the slots. Rejections and failures, rarer, are shared atomics;
//! errors take a small lock for their per-code map.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use herald_protocol::command::{self, Found};

/// Redis stops tracking new error codes past this many (and says so with one `ERRORSTATS_DISABLED`).
const MAX_ERROR_CODES: usize = 128;

/// How many threads get a slot of their own (the io threads, the script and timer threads); any
/// thread after them counts in the shared slot `SLOTS`.
const SLOTS: usize = 16;

/// Slots handed out so far, process-wide: a thread's slot is the same in every `CommandStats` (tests run
/// several brokers in one process), so each slot still has one writer.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's slot, assigned at its first count (`usize::MAX` until then).
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The slot of the calling thread.
#[inline]
fn own_slot() -> usize {
    crate::thread_slot::own(&SLOT, &NEXT_SLOT, SLOTS)
}

/// A command's calls and time, in one slot.
#[derive(Default)]
struct Timed {
    calls: AtomicU64,
    /// Time spent running, in nanoseconds (INFO shows microseconds).
    nanos: AtomicU64,
}

#[derive(Default)]
struct Outcomes {
    /// Refused before running (arity, authentication, subscribed mode, a pause's MISCONF...).
    rejected: AtomicU64,
    /// Ran and answered an error.
    failed: AtomicU64,
}

pub struct CommandStats {
    /// Calls and time per slot, each slot allocated when its thread first counts.
    slots: [OnceLock<Box<[Timed]>>; SLOTS + 1],
    /// The sums CONFIG RESETSTAT found (slots are written by their threads alone, so a reset is not a
    /// store of zero into them): what INFO shows is the sum less these.
    reset_at: Box<[Timed]>,
    outcomes: Box<[Outcomes]>,
    errors: Mutex<HashMap<String, u64>>,
    total_errors: AtomicU64,
}

fn counters<T: Default>() -> Box<[T]> {
    (0..command::spec_count()).map(|_| T::default()).collect()
}

impl Default for CommandStats {
    fn default() -> Self {
        CommandStats {
            slots: std::array::from_fn(|_| OnceLock::new()),
            reset_at: counters(),
            outcomes: counters(),
            errors: Mutex::default(),
            total_errors: AtomicU64::new(0),
        }
    }
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

impl CommandStats {
    /// A command ran for `nanos`; `error` is its error reply's text, if it answered one.
    #[inline]
    pub fn called(&self, found: Found, nanos: u64, error: Option<&str>) {
        self.count(found, 1, nanos);
        if let Some(text) = error {
            add(&self.outcomes[found.index].failed, 1);
            self.error(text);
        }
    }

    /// More time for a command counted already (a script that ran on the script thread).
    pub fn add_time(&self, found: Found, nanos: u64) {
        self.count(found, 0, nanos);
    }

    #[inline]
    fn count(&self, found: Found, calls: u64, nanos: u64) {
        let slot = own_slot();
        let c = &self.slots[slot].get_or_init(counters)[found.index];
        if slot < SLOTS {
            // This thread is the slot's only writer.
            c.calls.store(get(&c.calls) + calls, Ordering::Relaxed);
            c.nanos.store(get(&c.nanos) + nanos, Ordering::Relaxed);
        } else {
            add(&c.calls, calls);
            add(&c.nanos, nanos);
        }
    }

    /// A command's calls and time since the start (or the last reset).
    fn timed(&self, index: usize) -> (u64, u64) {
        let (mut calls, mut nanos) = (0u64, 0u64);
        for slot in self.slots.iter().filter_map(OnceLock::get) {
            calls = calls.wrapping_add(get(&slot[index].calls));
            nanos = nanos.wrapping_add(get(&slot[index].nanos));
        }
        let at = &self.reset_at[index];
        // Saturating: a reset made while this was summed may have moved the base past the sum.
        (calls.saturating_sub(get(&at.calls)), nanos.saturating_sub(get(&at.nanos)))
    }

    /// A command refused before it ran, with this error.
    pub fn rejected(&self, found: Option<Found>, error: &str) {
        if let Some(found) = found {
            add(&self.outcomes[found.index].rejected, 1);
        }
        self.error(error);
    }

    /// An error reply: counted in total and by its code (the first word).
    pub fn error(&self, text: &str) {
        add(&self.total_errors, 1);
        let code = text.split(' ').next().unwrap_or(text);
        let mut errors = self.errors.lock().expect("errorstats");
        if let Some(n) = errors.get_mut(code) {
            *n += 1;
        } else if errors.len() < MAX_ERROR_CODES {
            errors.insert(code.to_string(), 1);
        } else {
            *errors.entry("ERRORSTATS_DISABLED".to_string()).or_default() += 1;
        }
    }

    /// INFO's `total_commands_processed`: every call counted above (Redis counts both in `call()`),
    /// summed when asked instead of a second counter bumped per command.
    pub fn total_calls(&self) -> u64 {
        (0..self.outcomes.len()).map(|index| self.timed(index).0).sum()
    }

    pub fn total_error_replies(&self) -> u64 {
        self.total_errors.load(Ordering::Relaxed)
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for index in 0..self.outcomes.len() {
            let (calls, nanos) = self.timed(index);
            let at = &self.reset_at[index];
            at.calls.store(get(&at.calls) + calls, Ordering::Relaxed);
            at.nanos.store(get(&at.nanos) + nanos, Ordering::Relaxed);
            let c = &self.outcomes[index];
            for n in [&c.rejected, &c.failed] {
                n.store(0, Ordering::Relaxed);
            }
        }
        self.errors.lock().expect("errorstats").clear();
        self.total_errors.store(0, Ordering::Relaxed);
    }

    /// INFO commandstats: a line per command that was called or refused.
    pub fn render_commands(&self, out: &mut String) {
        out.push_str("# Commandstats\r\n");
        for (index, (spec, c)) in command::indexed_specs().iter().zip(self.outcomes.iter()).enumerate() {
            let (calls, nanos) = self.timed(index);
            let (usec, rejected, failed) = (nanos / 1000, get(&c.rejected), get(&c.failed));
            if calls == 0 && rejected == 0 && failed == 0 {
                continue;
            }
            let per_call = if calls == 0 { 0.0 } else { usec as f64 / calls as f64 };
            let _ = write!(
                out,
                "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}\r\n",
                spec.name
            );
        }
    }

    /// INFO errorstats: a line per error code.
    pub fn render_errors(&self, out: &mut String) {
        out.push_str("# Errorstats\r\n");
        let errors = self.errors.lock().expect("errorstats");
        let mut codes: Vec<_> = errors.iter().collect();
        codes.sort();
        for (code, n) in codes {
            let _ = write!(out, "errorstat_{code}:count={n}\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_calls_failures_rejections_and_error_codes() {
        let stats = CommandStats::default();
        let get = command::lookup(&herald_protocol::Request::from_strs(&["get", "k"])).expect("get");
        stats.called(get, 3_000, None);
        stats.called(get, 4_000, Some("WRONGTYPE Operation against a key"));
        stats.rejected(Some(get), "ERR wrong number of arguments for 'get' command");
        stats.rejected(None, "ERR unknown command 'x'");
        let mut out = String::new();
        stats.render_commands(&mut out);
        assert!(out.contains("cmdstat_get:calls=2,usec=7,usec_per_call=3.50,rejected_calls=1,failed_calls=1\r\n"), "{out}");
        let mut out = String::new();
        stats.render_errors(&mut out);
        assert_eq!(out, "# Errorstats\r\nerrorstat_ERR:count=2\r\nerrorstat_WRONGTYPE:count=1\r\n");
        assert_eq!(stats.total_error_replies(), 3);
        stats.reset();
        let mut out = String::new();
        stats.render_commands(&mut out);
        assert_eq!(out, "# Commandstats\r\n");
    }

    #[test]
    fn counts_from_more_threads_than_slots_all_show() {
        let stats = CommandStats::default();
        let get = command::lookup(&herald_protocol::Request::from_strs(&["get", "k"])).expect("get");
        std::thread::scope(|scope| {
            for _ in 0..2 * SLOTS + 3 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        stats.called(get, 1_000, None);
                    }
                });
            }
        });
        let calls = (2 * SLOTS as u64 + 3) * 1000;
        assert_eq!(stats.total_calls(), calls);
        let mut out = String::new();
        stats.render_commands(&mut out);
        assert!(out.contains(&format!("cmdstat_get:calls={calls},usec={calls},usec_per_call=1.00,")), "{out}");
        stats.reset();
        assert_eq!(stats.total_calls(), 0);
        stats.called(get, 2_000, None);
        let mut out = String::new();
        stats.render_commands(&mut out);
        assert!(out.contains("cmdstat_get:calls=1,usec=2,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\n"), "{out}");
    }
}
