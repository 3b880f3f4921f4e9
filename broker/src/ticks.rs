//! A cheap monotonic counter for how long a command runs (INFO commandstats, SLOWLOG, LATENCY).
//!
//! Every command is timed, so the two readings around it are on the request path: on x86-64 with an
//! invariant TSC (the CPU flags `constant_tsc` and `nonstop_tsc`, which Linux reports when the counter
//! ticks at one rate in every power state and on every core) a reading is one `rdtsc` instruction
//! instead of a `clock_gettime` call (measured in docs/benchmarks.md). The tick rate is calibrated
//! once per process against `std::time::Instant`. Anywhere else the ticks are nanoseconds from
//! `Instant`, so the figures mean the same everywhere.

use std::sync::OnceLock;
use std::time::Instant;

struct Calibration {
    /// Read the TSC (`false`: nanoseconds since `base`).
    tsc: bool,
    base: Instant,
    /// Nanoseconds per tick, as a 32.32 fixed-point factor.
    ns_per_tick_q32: u64,
}

static CALIBRATION: OnceLock<Calibration> = OnceLock::new();

fn calibration() -> &'static Calibration {
    CALIBRATION.get_or_init(calibrate)
}

/// Calibrates the clock now (the broker does it at start, so no command pays for it).
pub fn init() {
    calibration();
}

#[cfg(target_arch = "x86_64")]
fn invariant_tsc() -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else { return false };
    let flags = info.lines().find(|l| l.starts_with("flags")).unwrap_or("");
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    has("constant_tsc") && has("nonstop_tsc")
}

#[cfg(target_arch = "x86_64")]
fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` has no preconditions on x86-64; it reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

fn calibrate() -> Calibration {
    let base = Instant::now();
    #[cfg(target_arch = "x86_64")]
    if invariant_tsc() {
        let (t0, c0) = (Instant::now(), rdtsc());
        std::thread::sleep(std::time::Duration::from_millis(5));
        let (t1, c1) = (Instant::now(), rdtsc());
        let ns = t1.duration_since(t0).as_nanos() as u64;
        if let Some(ticks) = c1.checked_sub(c0).filter(|t| *t > ns / 16) {
            return Calibration { tsc: true, base, ns_per_tick_q32: ((u128::from(ns) << 32) / u128::from(ticks)) as u64 };
        }
    }
    Calibration { tsc: false, base, ns_per_tick_q32: 1 << 32 }
}

/// A reading of the counter.
#[inline]
pub fn now() -> u64 {
    let c = calibration();
    #[cfg(target_arch = "x86_64")]
    if c.tsc {
        return rdtsc();
    }
    c.base.elapsed().as_nanos() as u64
}

/// Nanoseconds from `start` (a reading of [`now`]) to now.
#[inline]
pub fn nanos_since(start: u64) -> u64 {
    let ticks = now().saturating_sub(start);
    ((u128::from(ticks) * u128::from(calibration().ns_per_tick_q32)) >> 32) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_at_least_the_time_slept() {
        init();
        let start = now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        // A sleep lasts at least what was asked: a calibration off by half would show here.
        assert!(nanos_since(start) >= 10_000_000);
    }
}
