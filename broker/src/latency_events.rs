//! Redis's latency monitor (LATENCY LATEST / HISTORY / RESET / DOCTOR): with
//! `latency-monitor-threshold` set (milliseconds, 0: off), every command that ran at least that long
//! is a sample of the event `command`, or `fast-command` for the commands flagged fast. Each event
//! keeps its last 160 samples, one per second (a second's worst), and its all-time worst.
//!
//! Fed by `dispatch::run` with the duration commandstats already measured; below the threshold a
//! command costs one relaxed load.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use herald_protocol::Reply;

/// Redis's `LATENCY_TS_LEN`.
const SAMPLES: usize = 160;

#[derive(Clone, Copy, Default)]
struct Sample {
    /// Unix seconds; 0: an empty slot.
    time: i64,
    ms: u64,
}

struct Series {
    samples: [Sample; SAMPLES],
    next: usize,
    max: u64,
}

impl Series {
    fn new() -> Self {
        Series { samples: [Sample::default(); SAMPLES], next: 0, max: 0 }
    }

    /// Redis's `latencyAddSample`: a sample in the same second as the previous one only raises it.
    fn add(&mut self, time: i64, ms: u64) {
        let prev = (self.next + SAMPLES - 1) % SAMPLES;
        if self.samples[prev].time == time {
            self.samples[prev].ms = self.samples[prev].ms.max(ms);
            return;
        }
        self.samples[self.next] = Sample { time, ms };
        self.max = self.max.max(ms);
        self.next = (self.next + 1) % SAMPLES;
    }

    fn latest(&self) -> Sample {
        self.samples[(self.next + SAMPLES - 1) % SAMPLES]
    }

    /// Oldest first, empty slots skipped.
    fn in_order(&self) -> impl Iterator<Item = Sample> + '_ {
        (0..SAMPLES).map(|j| self.samples[(self.next + j) % SAMPLES]).filter(|s| s.time != 0)
    }
}

pub struct LatencyEvents {
    /// `latency-monitor-threshold` in milliseconds (0: off).
    threshold_ms: AtomicU64,
    events: Mutex<BTreeMap<&'static str, Series>>,
}

/// What LATENCY DOCTOR's advice depends on besides the samples.
pub struct DoctorContext {
    pub slowlog_threshold_us: i64,
    pub slowlog_max_len: usize,
}

impl LatencyEvents {
    pub fn new(threshold_ms: u64) -> Self {
        LatencyEvents { threshold_ms: AtomicU64::new(threshold_ms), events: Mutex::default() }
    }

    fn events(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Series>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn threshold_ms(&self) -> u64 {
        self.threshold_ms.load(Ordering::Relaxed)
    }

    pub fn set_threshold_ms(&self, ms: u64) {
        self.threshold_ms.store(ms, Ordering::Relaxed);
    }

    /// Redis's `latencyAddSampleIfNeeded` for a command that ran `micros` (`fast`: flagged fast).
    #[inline]
    pub fn observe(&self, fast: bool, micros: u64, now_s: impl FnOnce() -> i64) {
        let threshold = self.threshold_ms();
        let ms = micros / 1000;
        if threshold != 0 && ms >= threshold {
            self.add(if fast { "fast-command" } else { "command" }, now_s(), ms);
        }
    }

    fn add(&self, event: &'static str, time: i64, ms: u64) {
        self.events().entry(event).or_insert_with(Series::new).add(time, ms);
    }

    /// LATENCY LATEST: each event's latest sample and all-time worst.
    pub fn latest(&self) -> Reply {
        let events = self.events();
        Reply::Array(
            events
                .iter()
                .map(|(name, s)| {
                    let last = s.latest();
                    Reply::Array(vec![Reply::bulk(*name), Reply::Int(last.time), Reply::Int(last.ms as i64), Reply::Int(s.max as i64)])
                })
                .collect(),
        )
    }

    /// LATENCY HISTORY event: its samples, oldest first (event names compare exactly, as in Redis).
    pub fn history(&self, event: &[u8]) -> Reply {
        let events = self.events();
        let Some(series) = events.iter().find(|(name, _)| name.as_bytes() == event).map(|(_, s)| s) else {
            return Reply::Array(Vec::new());
        };
        Reply::Array(series.in_order().map(|s| Reply::Array(vec![Reply::Int(s.time), Reply::Int(s.ms as i64)])).collect())
    }

    /// LATENCY RESET: the named events (ASCII case ignored), or all; how many were reset.
    pub fn reset(&self, names: &[bytes::Bytes]) -> usize {
        let mut events = self.events();
        let before = events.len();
        if names.is_empty() {
            events.clear();
        } else {
            events.retain(|name, _| !names.iter().any(|n| n.eq_ignore_ascii_case(name.as_bytes())));
        }
        before - events.len()
    }

    /// LATENCY DOCTOR: Redis's report for the events Herald records, word for word.
    pub fn doctor(&self, cx: &DoctorContext, now_s: i64) -> String {
        let events = self.events();
        let threshold = self.threshold_ms();
        if events.is_empty() && threshold == 0 {
            return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".into();
        }
        if events.is_empty() {
            return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n".into();
        }
        let mut report =
            String::from("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
        let (mut slowlog_enable, mut slowlog_tune, mut slowlog_inspect, mut scheduler) = (false, false, false, false);
        for (i, (name, series)) in events.iter().enumerate() {
            let samples: Vec<Sample> = series.in_order().collect();
            let n = samples.len() as u64;
            let avg = samples.iter().map(|s| s.ms).sum::<u64>().checked_div(n).unwrap_or(0);
            let mad = samples.iter().map(|s| (avg as i64 - s.ms as i64).unsigned_abs()).sum::<u64>().checked_div(n).unwrap_or(0);
            let oldest = samples.iter().map(|s| s.time).min().unwrap_or(0);
            let period = if n == 0 { 0 } else { (now_s - oldest).max(1) };
            let _ = writeln!(
                report,
                "{}. {name}: {n} latency spikes (average {avg}ms, mean deviation {mad}ms, period {:.2} sec). Worst all time event {}ms.",
                i + 1,
                period as f64 / n as f64,
                series.max
            );
            if *name == "command" {
                if cx.slowlog_threshold_us < 0 || cx.slowlog_max_len == 0 {
                    slowlog_enable = true;
                } else if cx.slowlog_threshold_us as u64 / 1000 > threshold {
                    slowlog_tune = true;
                }
                slowlog_inspect = true;
            } else {
                scheduler = true;
            }
        }
        report.push_str("\nI have a few advices for you:\n\n");
        if slowlog_enable {
            let _ = writeln!(
                report,
                "- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.",
                threshold * 1000
            );
        }
        if slowlog_tune {
            let _ = writeln!(
                report,
                "- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {}'.",
                threshold * 1000
            );
        }
        if slowlog_inspect {
            report.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
        }
        if scheduler {
            report.push_str("- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are using Jemalloc. However this may create fragmentation problems.\n");
        }
        if slowlog_inspect {
            report.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_per_second_and_reset() {
        let l = LatencyEvents::new(0);
        l.observe(false, 50_000, || 100);
        assert!(matches!(l.latest(), Reply::Array(v) if v.is_empty()), "threshold 0 records nothing");
        l.set_threshold_ms(10);
        l.observe(false, 9_999, || 100);
        l.observe(false, 50_000, || 100);
        l.observe(false, 70_000, || 100);
        l.observe(false, 20_000, || 101);
        l.observe(true, 30_000, || 101);
        assert_eq!(
            l.history(b"command"),
            Reply::Array(vec![Reply::Array(vec![Reply::Int(100), Reply::Int(70)]), Reply::Array(vec![Reply::Int(101), Reply::Int(20)])])
        );
        assert_eq!(l.history(b"COMMAND"), Reply::Array(Vec::new()));
        let report = l.doctor(&DoctorContext { slowlog_threshold_us: 10_000, slowlog_max_len: 128 }, 102);
        // The all-time worst is taken when a second's first sample is stored, not when a later sample of
        // the same second raises it: Redis's `latencyAddSample` returns before updating it.
        assert!(
            report.contains(
                "1. command: 2 latency spikes (average 45ms, mean deviation 25ms, period 1.00 sec). Worst all time event 50ms.\n"
            ),
            "{report}"
        );
        assert!(report.contains("2. fast-command: 1 latency spikes"), "{report}");
        assert_eq!(l.reset(&[bytes::Bytes::from_static(b"COMMAND"), bytes::Bytes::from_static(b"nope")]), 1);
        assert_eq!(l.reset(&[]), 1);
        assert!(l.doctor(&DoctorContext { slowlog_threshold_us: 0, slowlog_max_len: 128 }, 0).starts_with("Dave, no latency spike"));
    }
}
