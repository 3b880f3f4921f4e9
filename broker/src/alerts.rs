//! One word the request path reads to learn that nothing unusual is in force: no CLIENT PAUSE, no
//! running script, no failing log, no `maxmemory`. Each of those keeps its own state where it lives
//! (`pause.rs`, the script monitor, `persist/`, the broker's `maxmemory`) and also raises or clears
//! its bit here, so `dispatch::handle` makes one relaxed load instead of a check per condition and
//! only looks at each one when the word says something is on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// CLIENT PAUSE is on (`pause.rs`).
pub const PAUSE: u32 = 1 << 0;
/// A script runs (`dispatch/scripting/monitor.rs`): other clients may have to wait or get -BUSY.
pub const SCRIPT: u32 = 1 << 1;
/// The log cannot be written: writes get -MISCONF.
pub const LOG_FAILED: u32 = 1 << 2;
/// `maxmemory` is set: `denyoom` commands must look at memory in use.
pub const MAXMEMORY: u32 = 1 << 3;

/// A cheap clone shared by the broker and the parts that raise its bits.
#[derive(Debug, Clone, Default)]
pub struct Alerts(Arc<AtomicU32>);

impl Alerts {
    /// Whether any condition is on (one relaxed load: the owners' own state is what is then read).
    #[inline]
    pub fn any(&self) -> bool {
        self.0.load(Ordering::Relaxed) != 0
    }

    pub fn set(&self, bit: u32, on: bool) {
        if on {
            self.0.fetch_or(bit, Ordering::Release);
        } else {
            self.0.fetch_and(!bit, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_independent() {
        let alerts = Alerts::default();
        assert!(!alerts.any());
        alerts.set(PAUSE, true);
        alerts.set(SCRIPT, true);
        alerts.set(PAUSE, false);
        assert!(alerts.any());
        alerts.clone().set(SCRIPT, false);
        assert!(!alerts.any());
    }
}
