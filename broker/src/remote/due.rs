//! A registry of objects with a deadline, for the periodic sweep of a domain whose deadlines nobody may
//! touch for a while (a semaphore's lease ends, waking its waiters on other nodes): one sorted set,
//! member the object's name, score its next deadline (unix ms, Redis's clock, as the object's script
//! reported it). The objects' own data lives under their own hash tags, so the registry is written by
//! separate single-key scripts, not inside the object's script; the two scripts here keep it exact
//! across the race between a sweep and a new deadline:
//!
//! - `register` lowers the member's score to the new deadline, or sets it when the score it holds is
//!   already due (a sweep may be taking it right now and would otherwise drop the member after finding
//!   the object without deadlines);
//! - `settle` (after the sweep ran the object's script) sets the object's next deadline, or removes the
//!   member, only if the score is still the one the sweep took; otherwise a registration came in
//!   meanwhile and stays (lowered to the sweep's figure if that is earlier).
//!
//! So a registered deadline is swept at its time, whichever node registered it and whichever sweeps.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use tokio_util::sync::CancellationToken;

use super::Remote;
use super::pool::Target;

/// Runs `sweep` every `period` until `stop`, never two at once (a slow sweep delays the next tick):
/// the periodic sweep every node runs for a domain's deadlines.
pub fn every<F, Fut>(remote: &Arc<Remote>, period: Duration, stop: CancellationToken, sweep: F)
where
    F: Fn(Arc<Remote>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let remote = remote.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => sweep(remote.clone()).await,
            }
        }
    });
}

/// One domain's registry key and its scripts.
pub struct Registry {
    key: &'static str,
    register: redis::Script,
    settle: redis::Script,
}

const REGISTER: &str = r"
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
local at = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if not s or tonumber(s) <= now or at < tonumber(s) then
  redis.call('ZADD', KEYS[1], at, ARGV[1])
end
return 1";

const SETTLE: &str = r"
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
local seen, next = tonumber(ARGV[2]), tonumber(ARGV[3])
if s and tonumber(s) == seen then
  if next == 0 then redis.call('ZREM', KEYS[1], ARGV[1]) else redis.call('ZADD', KEYS[1], next, ARGV[1]) end
elseif next > 0 then
  redis.call('ZADD', KEYS[1], 'LT', next, ARGV[1])
end
return 1";

impl Registry {
    pub fn new(key: &'static str) -> Registry {
        Registry { key, register: redis::Script::new(REGISTER), settle: redis::Script::new(SETTLE) }
    }

    /// `member` has a deadline at `at` (Redis's clock).
    pub async fn register(&self, remote: &Remote, member: &[u8], at: u64) -> redis::RedisResult<()> {
        let mut conn = remote.pool.shared(Target { db: 0, resp3: false });
        let _: Value = self.register.key(self.key).arg(member).arg(at).invoke_async(&mut conn).await?;
        Ok(())
    }

    /// Members due by `now` (at most `limit`), each with the score the sweep took.
    pub async fn due(&self, remote: &Remote, now: u64, limit: usize) -> redis::RedisResult<Vec<(Vec<u8>, u64)>> {
        let mut conn = remote.pool.shared(Target { db: 0, resp3: false });
        redis::cmd("ZRANGEBYSCORE")
            .arg(self.key)
            .arg("-inf")
            .arg(now)
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut conn)
            .await
    }

    /// After sweeping `member` (taken at `seen`): its next deadline, `0` for none.
    pub async fn settle(&self, remote: &Remote, member: &[u8], seen: u64, next: u64) -> redis::RedisResult<()> {
        let mut conn = remote.pool.shared(Target { db: 0, resp3: false });
        let _: Value = self.settle.key(self.key).arg(member).arg(seen).arg(next).invoke_async(&mut conn).await?;
        Ok(())
    }
}
