//! The timer task: runs every engine's deadlines (key expiry, and later leases and delays) on time.
//!
//! It sleeps until the earliest deadline any engine holds. A command that schedules something earlier
//! wakes it through `Broker::schedule`. Work is done in bounded batches with the lock released between
//! them, so a million keys expiring in the same millisecond never stall other clients for long.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::broker::Broker;

/// Most deadlines handled per lock acquisition.
const BATCH: usize = 1000;
/// How soon to try again while a script holds the state lock.
const SCRIPT_RETRY_MS: u64 = 5;
/// Longest sleep, so slow housekeeping (incremental rehash of idle tables) still happens.
const IDLE_TICK: Duration = Duration::from_millis(100);

pub async fn run(broker: Arc<Broker>) {
    loop {
        let next = loop {
            match run_batch(&broker) {
                Some(next) => break next,
                None => tokio::task::yield_now().await,
            }
        };
        broker.timer_armed.store(next.unwrap_or(u64::MAX), Ordering::Release);
        let idle = tokio::time::Instant::now() + IDLE_TICK;
        let wake = next.map(|d| broker.clock.instant_at(d).min(idle)).unwrap_or(idle);
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = broker.timer.notified() => {}
            _ = broker.shutdown.cancelled() => return,
        }
    }
}

/// One batch under the lock. `None` means the batch was full and more may be due; otherwise the next
/// deadline to sleep towards.
fn run_batch(broker: &Broker) -> Option<Option<u64>> {
    let now = broker.clock.now_ms();
    // A running script holds the lock for as long as it runs; this task shares its thread with the
    // accept loops, so it tries again shortly instead of waiting (deadlines run late, as in Redis).
    let Some(mut state) = broker.try_lock() else {
        return Some(Some(now + SCRIPT_RETRY_MS));
    };
    // Nothing expires while clients are paused (CLIENT PAUSE), as in Redis: the timer looks again at
    // its next tick.
    if broker.pause.freezes_expiry() {
        state.settle(now);
        return Some(None);
    }
    if state.run_due(now, BATCH) >= BATCH {
        state.settle(now);
        return None;
    }
    state.settle(now);
    state.housekeeping();
    if broker.rates.due(now) {
        let jobs = state.jobs.totals();
        let stat = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let s = &broker.stats;
        let counters = [
            broker.commands.total_calls(),
            stat(&s.net_input_bytes),
            stat(&s.net_output_bytes),
            jobs.submitted,
            jobs.completed,
            jobs.failed,
        ];
        broker.rates.sample(now, counters);
    }
    Some(state.next_deadline())
}
