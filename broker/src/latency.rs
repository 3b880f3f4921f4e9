//! Command latency per command family, as fixed-bucket histograms of atomics (exported at `/metrics`).
//!
//! What is measured: from the clock reading a connection takes when a batch of requests arrived
//! (`Connection::stamp`, which it needs anyway for command time) to the moment that batch's replies are
//! encoded. That is the time a pipelined request waits inside the broker before its reply can leave,
//! so every command of a batch is observed with the batch's duration. It costs one more clock reading
//! per batch (not per command) and a few relaxed atomic adds per family present in the batch, which
//! keeps it within the 2% CPU budget at `-P 16` (docs/benchmarks.md). Time a blocking command spends
//! waiting for data is not included: the batch is stamped again once it is served.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use herald_protocol::command::Group;

/// Families, one histogram each.
pub const FAMILIES: usize = Group::ALL.len();

/// Upper bounds of the buckets, in microseconds (the last, `+Inf`, is implicit).
pub const BOUNDS_US: [u64; 14] = [10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 250_000, 1_000_000];

/// One family's histogram: per-bucket counts (not cumulative; `/metrics` accumulates when it renders),
/// the sum of observed durations in nanoseconds.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_ns: AtomicU64,
}

/// A consistent-enough copy of one histogram: cumulative bucket counts, the total count, the sum.
pub struct Snapshot {
    pub cumulative: [u64; BOUNDS_US.len() + 1],
    pub sum_seconds: f64,
}

impl Snapshot {
    pub fn count(&self) -> u64 {
        self.cumulative[BOUNDS_US.len()]
    }
}

impl Histogram {
    fn observe(&self, elapsed: Duration, times: u64) {
        let us = elapsed.as_micros() as u64;
        let bucket = BOUNDS_US.iter().position(|&b| us <= b).unwrap_or(BOUNDS_US.len());
        self.buckets[bucket].fetch_add(times, Ordering::Relaxed);
        self.sum_ns.fetch_add(elapsed.as_nanos() as u64 * times, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut cumulative = [0; BOUNDS_US.len() + 1];
        let mut total = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            total += b.load(Ordering::Relaxed);
            cumulative[i] = total;
        }
        Snapshot { cumulative, sum_seconds: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9 }
    }

    fn reset(&self) {
        for b in &self.buckets {
            b.store(0, Ordering::Relaxed);
        }
        self.sum_ns.store(0, Ordering::Relaxed);
    }
}

/// The histograms of every family.
#[derive(Default)]
pub struct Latency {
    families: [Histogram; FAMILIES],
}

/// Commands of each family handled in the batch under way; kept by the session, drained per batch.
pub type BatchCounts = [u32; FAMILIES];

impl Latency {
    /// Records a finished batch: each family's commands observed with the batch's duration. Clears
    /// `counts` for the next batch.
    pub fn record(&self, counts: &mut BatchCounts, elapsed: Duration) {
        for (family, n) in counts.iter_mut().enumerate() {
            if *n > 0 {
                self.families[family].observe(elapsed, u64::from(*n));
                *n = 0;
            }
        }
    }

    pub fn family(&self, group: Group) -> &Histogram {
        &self.families[group as usize]
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        self.families.iter().for_each(Histogram::reset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_land_in_their_bucket_per_family() {
        let latency = Latency::default();
        let mut counts: BatchCounts = [0; FAMILIES];
        counts[Group::String as usize] = 3;
        counts[Group::Jobs as usize] = 1;
        latency.record(&mut counts, Duration::from_micros(40));
        assert_eq!(counts, [0; FAMILIES]);
        let s = latency.family(Group::String).snapshot();
        assert_eq!((s.cumulative[1], s.cumulative[2], s.count()), (0, 3, 3));
        assert!((s.sum_seconds - 120e-6).abs() < 1e-9);
        latency.record(&mut [0; FAMILIES].map(|_: u32| 1), Duration::from_secs(5));
        let s = latency.family(Group::Jobs).snapshot();
        assert_eq!((s.cumulative[BOUNDS_US.len() - 1], s.count()), (1, 2));
        latency.reset();
        assert_eq!(latency.family(Group::Jobs).snapshot().count(), 0);
    }
}
