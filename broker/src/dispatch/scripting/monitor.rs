//! The script running right now, as other connections see it: whether one runs, since when, whether
//! it has written (then it cannot be killed), and the kill request SCRIPT KILL / FUNCTION KILL leave
//! for the script's instruction hook. Atomics and a small mutex of its own, never the state lock, so
//! it answers while the script holds that lock.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use herald_protocol::CommandError;

const BUSY_EVAL: &str = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
const BUSY_FUNCTION: &str = "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// What FUNCTION STATS shows of the running script.
#[derive(Debug, Clone)]
pub struct Current {
    pub started: Instant,
    /// EVAL / EVALSHA (SCRIPT KILL) rather than FCALL (FUNCTION KILL).
    pub eval: bool,
    /// The function's name (empty for a script: only FUNCTION STATS shows it).
    pub name: String,
    /// The command that runs it, arguments included (FUNCTION STATS `command`).
    pub command: Vec<bytes::Bytes>,
}

#[derive(Debug)]
pub struct Monitor {
    running: AtomicBool,
    current: Mutex<Option<Current>>,
    ended: Condvar,
    /// Connections waiting in [`Monitor::gate`] (changed under `current`'s lock): `finish` wakes
    /// `ended` only when there are some, as a wake is a system call and most scripts end unwatched.
    waiters: AtomicUsize,
    /// The running script executed a write command.
    dirty: AtomicBool,
    kill: AtomicBool,
    killed: AtomicBool,
    kill_eval: AtomicBool,
    /// `busy-reply-threshold` (`lua-time-limit`), in milliseconds.
    threshold_ms: AtomicU64,
    /// The broker's alert word: `SCRIPT` is up while a script runs.
    alerts: crate::alerts::Alerts,
}

impl Monitor {
    pub fn new(threshold_ms: u64, alerts: crate::alerts::Alerts) -> Self {
        Monitor {
            running: AtomicBool::new(false),
            current: Mutex::new(None),
            ended: Condvar::new(),
            waiters: AtomicUsize::new(0),
            dirty: AtomicBool::new(false),
            kill: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            kill_eval: AtomicBool::new(true),
            threshold_ms: AtomicU64::new(threshold_ms),
            alerts,
        }
    }

    pub fn threshold_ms(&self) -> u64 {
        self.threshold_ms.load(Ordering::Relaxed)
    }

    pub fn set_threshold_ms(&self, ms: u64) {
        self.threshold_ms.store(ms, Ordering::Relaxed);
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Option<Current>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A script starts (its caller holds the state lock from now until [`Monitor::finish`]).
    pub fn start(&self, current: Current) {
        self.dirty.store(false, Ordering::Relaxed);
        self.kill.store(false, Ordering::Relaxed);
        self.killed.store(false, Ordering::Relaxed);
        *self.current() = Some(current);
        self.running.store(true, Ordering::Release);
        self.alerts.set(crate::alerts::SCRIPT, true);
    }

    pub fn finish(&self) {
        *self.current() = None;
        self.running.store(false, Ordering::Release);
        self.alerts.set(crate::alerts::SCRIPT, false);
        // A waiter counted itself under the lock taken just above, so it is seen here.
        if self.waiters.load(Ordering::Acquire) != 0 {
            self.ended.notify_all();
        }
    }

    pub fn note_write(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Whether a script runs now (one atomic load).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// The running script, if any (FUNCTION STATS).
    pub fn running(&self) -> Option<Current> {
        if !self.running.load(Ordering::Acquire) {
            return None;
        }
        self.current().clone()
    }

    /// Called by a connection before a command runs: `Ok` when no script runs, or when it ended
    /// within the busy threshold; Redis's `-BUSY` once the running script has passed it. Commands
    /// flagged `allow_busy` pass at once. One atomic load when no script runs.
    pub fn gate(&self, allow_busy: bool) -> Result<(), CommandError> {
        if !self.running.load(Ordering::Acquire) || allow_busy {
            return Ok(());
        }
        let mut current = self.current();
        self.waiters.fetch_add(1, Ordering::AcqRel);
        let verdict = loop {
            let Some(cur) = &*current else { break Ok(()) };
            let threshold = Duration::from_millis(self.threshold_ms());
            let elapsed = cur.started.elapsed();
            if elapsed >= threshold {
                break Err(CommandError::fixed(if cur.eval { BUSY_EVAL } else { BUSY_FUNCTION }));
            }
            current = self.ended.wait_timeout(current, threshold - elapsed).unwrap_or_else(|p| p.into_inner()).0;
        };
        self.waiters.fetch_sub(1, Ordering::AcqRel);
        verdict
    }

    /// SCRIPT KILL (`eval`) or FUNCTION KILL: asks the running script to stop at its next hook.
    pub fn kill(&self, eval: bool) -> Result<(), CommandError> {
        let current = self.current();
        let Some(cur) = &*current else {
            return Err(CommandError::fixed("NOTBUSY No scripts in execution right now."));
        };
        if self.dirty.load(Ordering::Relaxed) {
            return Err(CommandError::fixed(
                "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
            ));
        }
        if eval && !cur.eval {
            return Err(CommandError::fixed(BUSY_FUNCTION));
        }
        if !eval && cur.eval {
            return Err(CommandError::fixed(BUSY_EVAL));
        }
        self.kill_eval.store(eval, Ordering::Relaxed);
        self.kill.store(true, Ordering::Release);
        Ok(())
    }

    /// The instruction hook: `true` when the script must stop now (it was killed).
    /// Once killed it stays so until the call ends, so a `pcall` in the script cannot swallow it.
    pub fn on_hook(&self) -> bool {
        if self.killed.load(Ordering::Acquire) {
            return true;
        }
        if self.kill.swap(false, Ordering::AcqRel) {
            self.killed.store(true, Ordering::Release);
            return true;
        }
        false
    }

    /// Whether the script that just ended was killed (read once).
    pub fn take_killed(&self) -> bool {
        self.killed.swap(false, Ordering::AcqRel)
    }

    /// The command that killed the last script, for its error message.
    pub fn kill_command(&self) -> &'static str {
        if self.kill_eval.load(Ordering::Relaxed) { "SCRIPT KILL" } else { "FUNCTION KILL" }
    }
}
