//! INFO `commandstats`, `errorstats` and `total_error_replies`: per-command calls, time, rejections and
//! failures, and error replies counted by their code, as Redis 7.0 keeps them.
//!
//! The counters of a command sit in one array indexed by the command table's dense index (which
//! `command::lookup` hands out with the spec, `Found::index`), so counting a call is an index and two relaxed atomic
//! adds; errors, rarer, take a small lock for their per-code map.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use herald_protocol::command::{self, Found};

/// Redis stops tracking new error codes past this many (and says so with one `ERRORSTATS_DISABLED`).
const MAX_ERROR_CODES: usize = 128;

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    /// Time spent running, in nanoseconds (INFO shows microseconds).
    nanos: AtomicU64,
    /// Refused before running (arity, authentication, subscribed mode, a pause's MISCONF...).
    rejected: AtomicU64,
    /// Ran and answered an error.
    failed: AtomicU64,
}

pub struct CommandStats {
    per_command: Box<[Counters]>,
    errors: Mutex<HashMap<String, u64>>,
    total_errors: AtomicU64,
}

impl Default for CommandStats {
    fn default() -> Self {
        CommandStats {
            per_command: (0..command::spec_count()).map(|_| Counters::default()).collect(),
            errors: Mutex::default(),
            total_errors: AtomicU64::new(0),
        }
    }
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl CommandStats {
    #[inline]
    /// A command ran for `nanos`; `error` is its error reply's text, if it answered one.
    pub fn called(&self, found: Found, nanos: u64, error: Option<&str>) {
        let c = &self.per_command[found.index];
        add(&c.calls, 1);
        add(&c.nanos, nanos);
        if let Some(text) = error {
            add(&c.failed, 1);
            self.error(text);
        }
    }

    /// More time for a command counted already (a script that ran on the script thread).
    pub fn add_time(&self, found: Found, nanos: u64) {
        add(&self.per_command[found.index].nanos, nanos);
    }

    /// A command refused before it ran, with this error.
    pub fn rejected(&self, found: Option<Found>, error: &str) {
        if let Some(found) = found {
            add(&self.per_command[found.index].rejected, 1);
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
        self.per_command.iter().map(|c| c.calls.load(Ordering::Relaxed)).sum()
    }

    pub fn total_error_replies(&self) -> u64 {
        self.total_errors.load(Ordering::Relaxed)
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for c in self.per_command.iter() {
            for n in [&c.calls, &c.nanos, &c.rejected, &c.failed] {
                n.store(0, Ordering::Relaxed);
            }
        }
        self.errors.lock().expect("errorstats").clear();
        self.total_errors.store(0, Ordering::Relaxed);
    }

    /// INFO commandstats: a line per command that was called or refused.
    pub fn render_commands(&self, out: &mut String) {
        out.push_str("# Commandstats\r\n");
        for (spec, c) in command::indexed_specs().iter().zip(self.per_command.iter()) {
            let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
            let (calls, usec, rejected, failed) = (get(&c.calls), get(&c.nanos) / 1000, get(&c.rejected), get(&c.failed));
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
}
