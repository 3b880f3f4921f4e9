//! The broker's clock: unix milliseconds derived from tokio's monotonic clock.
//!
//! Expiry deadlines are absolute unix times (EXPIREAT, EXPIRETIME), but reading the wall clock directly
//! would make them untestable and let a system clock step expire everything at once. So the wall time is
//! read once at start and advanced by `tokio::time::Instant`, which tests can pause and advance.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
    base_unix_ms: u64,
}

impl Clock {
    pub fn new() -> Self {
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Clock { base: Instant::now(), base_unix_ms: unix.as_millis() as u64 }
    }

    /// Unix time in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.base_unix_ms + self.base.elapsed().as_millis() as u64
    }

    /// Unix time in milliseconds at `at`.
    pub fn ms_at(&self, at: Instant) -> u64 {
        self.base_unix_ms + at.saturating_duration_since(self.base).as_millis() as u64
    }

    /// Unix time in microseconds (TIME).
    pub fn now_us(&self) -> u64 {
        self.base_unix_ms * 1000 + self.base.elapsed().as_micros() as u64
    }

    /// The instant at which unix time `ms` arrives, for sleeping until a deadline.
    pub fn instant_at(&self, ms: u64) -> Instant {
        self.base + Duration::from_millis(ms.saturating_sub(self.base_unix_ms))
    }

    pub fn started_ms(&self) -> u64 {
        self.base_unix_ms
    }

    pub fn uptime(&self) -> Duration {
        self.base.elapsed()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
