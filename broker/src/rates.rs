//! Per-second rates as Redis computes `instantaneous_ops_per_sec`: every 100 ms (the timer task's tick,
//! as Redis's `serverCron` at hz 10) each counter's increase since the previous sample, divided by the
//! time between them, goes into a ring of 16 samples; the rate INFO reports is their mean. Sampling reads
//! counters that exist anyway, so the request path pays nothing for it.

use std::sync::Mutex;

/// Samples kept per metric (Redis's STATS_METRIC_SAMPLES).
const SAMPLES: usize = 16;
/// Least time between samples (Redis runs the sampler with `run_with_period(100)`).
pub const PERIOD_MS: u64 = 100;

/// The metrics sampled, in [`Counters`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Commands,
    NetInput,
    NetOutput,
    JobsSubmitted,
    JobsCompleted,
    JobsFailed,
}

const METRICS: usize = 6;

/// The counters' current values, one per [`Metric`].
pub type Counters = [u64; METRICS];

#[derive(Debug, Default)]
struct Ring {
    samples: [u64; SAMPLES],
    next: usize,
    last_value: u64,
}

#[derive(Debug, Default)]
struct Inner {
    rings: [Ring; METRICS],
    /// When the last sample was taken (unix ms); 0 before the first.
    last_ms: u64,
}

#[derive(Debug, Default)]
pub struct Rates {
    inner: Mutex<Inner>,
}

impl Rates {
    /// Whether a sample is due at `now_ms` (so the caller reads the counters only then).
    pub fn due(&self, now_ms: u64) -> bool {
        now_ms >= self.lock().last_ms + PERIOD_MS
    }

    /// Records one sample of every counter at `now_ms`.
    pub fn sample(&self, now_ms: u64, counters: Counters) {
        let mut inner = self.lock();
        let first = inner.last_ms == 0;
        let elapsed = now_ms.saturating_sub(inner.last_ms);
        inner.last_ms = now_ms;
        for (ring, value) in inner.rings.iter_mut().zip(counters) {
            // A counter reset (CONFIG RESETSTAT) reads as no increase rather than a huge one.
            let increase = value.saturating_sub(ring.last_value);
            ring.last_value = value;
            if first {
                continue;
            }
            ring.samples[ring.next] = (increase * 1000).checked_div(elapsed).unwrap_or(0);
            ring.next = (ring.next + 1) % SAMPLES;
        }
    }

    /// The metric's rate per second: the mean of its samples.
    pub fn per_sec(&self, metric: Metric) -> u64 {
        let inner = self.lock();
        inner.rings[metric as usize].samples.iter().sum::<u64>() / SAMPLES as u64
    }

    /// CONFIG RESETSTAT: forget every sample (Redis zeroes them too).
    pub fn reset(&self) {
        let mut inner = self.lock();
        for ring in &mut inner.rings {
            ring.samples = [0; SAMPLES];
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(commands: u64) -> Counters {
        [commands, 0, 0, 0, 0, 0]
    }

    #[test]
    fn the_rate_is_the_mean_of_sixteen_samples() {
        let rates = Rates::default();
        rates.sample(1000, counters(0));
        assert_eq!(rates.per_sec(Metric::Commands), 0, "the first sample only sets the baseline");
        // 50 commands per 100 ms = 500/s, for 8 samples: half the ring.
        for i in 1..=8 {
            assert!(rates.due(1000 + i * 100));
            rates.sample(1000 + i * 100, counters(i * 50));
        }
        assert_eq!(rates.per_sec(Metric::Commands), 250);
        for i in 9..=16 {
            rates.sample(1000 + i * 100, counters(i * 50));
        }
        assert_eq!(rates.per_sec(Metric::Commands), 500);
        assert!(!rates.due(1000 + 16 * 100 + 99));
        rates.reset();
        assert_eq!(rates.per_sec(Metric::Commands), 0);
        rates.sample(1000 + 17 * 100, counters(0));
        assert_eq!(rates.per_sec(Metric::Commands), 0, "a reset counter is no negative rate");
    }
}
