//! CLIENT PAUSE / UNPAUSE: the server-wide pause, as Redis 7.0 keeps it.
//!
//! A pause holds every client's commands (`ALL`) or only those that change data or may be propagated
//! (`WRITE`: write commands, PUBLISH, and an EXEC whose queue holds one) until its end or CLIENT
//! UNPAUSE. A held command is not run at all: the connection waits here and then hands the same request
//! to dispatch again, so it meets whatever the world looks like after the pause (and a new pause, if
//! one began meanwhile). Held clients count in INFO `blocked_clients`, and key expiry waits too, so the
//! data set stays as the pause found it, as Redis guarantees.
//!
//! The hot path reads one atomic: nothing else is touched unless a pause is on.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use herald_protocol::command::{CommandSpec, flags};
use tokio::sync::Notify;
use tokio::time::Instant;

const NONE: u8 = 0;
const WRITE: u8 = 1;
const ALL: u8 = 2;

#[derive(Default)]
pub struct Pause {
    /// The broker's alert word: `PAUSE` is up while `mode` is not `NONE`.
    alerts: crate::alerts::Alerts,
    /// `NONE`, `WRITE` or `ALL`: what dispatch reads per command.
    mode: AtomicU8,
    /// When the pause ends.
    until: Mutex<Option<Instant>>,
    resumed: Notify,
    /// Clients whose command waits for the pause to end.
    waiting: AtomicUsize,
}

impl Pause {
    pub fn new(alerts: crate::alerts::Alerts) -> Self {
        Pause { alerts, ..Default::default() }
    }

    /// CLIENT PAUSE: as in Redis, a pause never gets shorter or weaker while it lasts (an `ALL` pause is
    /// not turned into `WRITE`, a later end is kept).
    pub fn pause(&self, until: Instant, all: bool) {
        let mut end = self.until.lock().expect("pause");
        let now = Instant::now();
        let current = if end.is_some_and(|e| e > now) { self.mode.load(Ordering::Acquire) } else { NONE };
        let mode = current.max(if all { ALL } else { WRITE });
        *end = Some(end.filter(|e| *e > now).map_or(until, |e| e.max(until)));
        self.mode.store(mode, Ordering::Release);
        self.alerts.set(crate::alerts::PAUSE, true);
    }

    /// CLIENT UNPAUSE, or the end of the pause: everyone held goes on.
    pub fn unpause(&self) {
        *self.until.lock().expect("pause") = None;
        self.mode.store(NONE, Ordering::Release);
        self.alerts.set(crate::alerts::PAUSE, false);
        self.resumed.notify_waiters();
    }

    /// Whether any pause is on (including one whose end passed but nobody noticed yet).
    #[inline]
    pub fn is_on(&self) -> bool {
        self.mode.load(Ordering::Relaxed) != NONE
    }

    /// Whether the pause holds a command: every command under `ALL`; under `WRITE` those that write or
    /// may be propagated, and an EXEC whose queue has one (`queued_writes`).
    pub fn holds(&self, spec: &CommandSpec, queued_writes: bool) -> bool {
        let mode = self.mode.load(Ordering::Acquire);
        if mode == NONE || self.ended() {
            return false;
        }
        mode == ALL || spec.has(flags::WRITE | flags::MAY_REPLICATE) || (spec.name == "exec" && queued_writes)
    }

    /// Ends a pause whose time is up; whether it had.
    fn ended(&self) -> bool {
        let over = self.until.lock().expect("pause").is_none_or(|end| end <= Instant::now());
        if over {
            self.unpause();
        }
        over
    }

    /// Waits until the pause is over (its end, or CLIENT UNPAUSE). Counted as a blocked client.
    pub async fn wait(&self) {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _counted = Uncount(&self.waiting);
        loop {
            let resumed = self.resumed.notified();
            tokio::pin!(resumed);
            resumed.as_mut().enable();
            let end = *self.until.lock().expect("pause");
            match end {
                Some(end) if end > Instant::now() && self.is_on() => {
                    tokio::select! {
                        _ = resumed => {}
                        _ = tokio::time::sleep_until(end) => {}
                    }
                }
                _ => {
                    self.ended();
                    return;
                }
            }
        }
    }

    /// Clients held by the pause right now (INFO `blocked_clients` adds them).
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Whether key expiry must wait: Redis neither expires nor evicts keys while clients are paused.
    pub fn freezes_expiry(&self) -> bool {
        self.is_on() && !self.ended()
    }
}

struct Uncount<'a>(&'a AtomicUsize);

impl Drop for Uncount<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec(name: &str) -> &'static CommandSpec {
        herald_protocol::command::find(name.as_bytes()).expect("known command")
    }

    #[tokio::test(start_paused = true)]
    async fn write_pauses_hold_writes_and_publish_and_end_on_time() {
        let p = Pause::default();
        assert!(!p.holds(spec("set"), false));
        p.pause(Instant::now() + Duration::from_secs(10), false);
        assert!(p.holds(spec("set"), false));
        assert!(p.holds(spec("publish"), false));
        assert!(!p.holds(spec("get"), false));
        assert!(!p.holds(spec("exec"), false));
        assert!(p.holds(spec("exec"), true));
        // A shorter, weaker pause changes nothing; a stronger one upgrades.
        p.pause(Instant::now() + Duration::from_secs(1), true);
        assert!(p.holds(spec("get"), false));
        p.pause(Instant::now() + Duration::from_secs(1), false);
        assert!(p.holds(spec("get"), false), "ALL is not weakened to WRITE");
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!p.holds(spec("set"), false));
        assert!(!p.is_on());
    }

    #[tokio::test(start_paused = true)]
    async fn unpause_releases_waiters() {
        let p = std::sync::Arc::new(Pause::default());
        p.pause(Instant::now() + Duration::from_secs(1000), true);
        let waiter = tokio::spawn({
            let p = p.clone();
            async move { p.wait().await }
        });
        while p.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        p.unpause();
        waiter.await.expect("waiter");
        assert_eq!(p.waiting(), 0);
    }
}
