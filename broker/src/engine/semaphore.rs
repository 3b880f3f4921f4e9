//! Semaphores (SEM.*): named counting semaphores whose permits are held under leases, each holder
//! identified by a fencing token. A one-permit semaphore is a lock.
//!
//! An acquire names the semaphore's size (`permits`) and takes one permit if fewer than that many are
//! held, under a lease; its token comes from one counter that only grows (across every semaphore and
//! across restarts), so a later holder always has a larger token than an earlier one: a resource that
//! remembers the largest token it has seen can refuse a holder whose lease ran out (Kleppmann's
//! fencing). A lease that runs out frees its permit at its deadline, from the timer, and that token is
//! refused from then on (`LEASE ...`), as is a released one. Waiters for a permit are served in the
//! order they blocked (the blocking registry above re-runs their acquires when a permit frees).
//!
//! A semaphore nobody holds is forgotten; only the token counter is kept.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;

use super::Error;
use super::change::{Change, ChangeSink, SemChange};
use super::schedule::Schedule;
use super::wait::{Ready, WaitKey};

/// The `[semaphores]` section of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemaphoreSettings {
    /// Most semaphores held at once (a semaphore nobody holds takes no room).
    pub max_semaphores: usize,
    /// Largest size (`permits`) an acquire may name.
    pub max_permits: u32,
    /// Lease of an acquire without LEASE, in milliseconds.
    pub default_lease_ms: u64,
}

#[derive(Debug, Default)]
struct Semaphore {
    /// The size the last acquire named.
    permits: u32,
    /// Holders by token, with their lease's end (unix ms).
    holders: BTreeMap<u64, u64>,
}

/// What SEM.INFO reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemInfo {
    pub permits: u32,
    /// (token, lease end) of every holder, oldest token first.
    pub holders: Vec<(u64, u64)>,
    /// The last token handed out (by any semaphore): the next one is larger.
    pub fence: u64,
}

/// A permit held: its fencing token and lease end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permit {
    pub token: u64,
    pub expires_ms: u64,
}

pub struct Semaphores {
    sems: HashMap<Bytes, Semaphore>,
    /// Lease ends: (semaphore, token).
    timers: Schedule<(Bytes, u64)>,
    settings: SemaphoreSettings,
    last_token: u64,
    ready: Ready,
    sink: Arc<dyn ChangeSink>,
}

/// Where acquirers of a semaphore wait.
pub fn wait_key(name: &[u8]) -> WaitKey {
    WaitKey::Named { domain: "sem", name: Bytes::copy_from_slice(name) }
}

fn not_held() -> Error {
    Error::fixed("LEASE the permit is not held with this token (its lease ran out, it was released, or it never was)")
}

impl Semaphores {
    pub fn new(settings: SemaphoreSettings, sink: Arc<dyn ChangeSink>) -> Self {
        Semaphores { sems: HashMap::new(), timers: Schedule::default(), settings, last_token: 0, ready: Ready::default(), sink }
    }

    /// The keys this engine's changes made ready since the state last collected them.
    pub fn ready_mut(&mut self) -> &mut Ready {
        &mut self.ready
    }

    pub fn take_scheduled(&mut self) -> Option<u64> {
        self.timers.take_scheduled()
    }

    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.next()
    }

    /// The one place a semaphore change is produced.
    fn emit(&self, change: SemChange<'_>) {
        self.sink.emit(&Change::Sem(change));
    }

    /// The map's own copy of a semaphore's name (a command's arguments are views into its
    /// connection's read buffer, which a timer entry must not keep alive).
    fn stored_name(&self, name: &[u8]) -> Bytes {
        self.sems.get_key_value(name).map_or_else(|| Bytes::copy_from_slice(name), |(k, _)| k.clone())
    }

    fn lease(&self, lease_ms: Option<u64>) -> u64 {
        lease_ms.unwrap_or(self.settings.default_lease_ms).max(1)
    }

    /// SEM.ACQUIRE: one of `permits` permits under a lease, or `None` while `permits` are held.
    pub fn acquire(&mut self, name: &Bytes, permits: u32, lease_ms: Option<u64>, now: u64) -> Result<Option<Permit>, Error> {
        if permits == 0 || permits > self.settings.max_permits {
            return Err(Error::new(format!("ERR permits must be between 1 and {} (semaphores.max_permits)", self.settings.max_permits)));
        }
        if !self.sems.contains_key(name) && self.sems.len() >= self.settings.max_semaphores {
            return Err(Error::fixed("FULL too many semaphores held (semaphores.max_semaphores)"));
        }
        let expires_ms = now.saturating_add(self.lease(lease_ms));
        let name = self.stored_name(name);
        let sem = self.sems.entry(name.clone()).or_default();
        sem.permits = permits;
        if sem.holders.len() >= permits as usize {
            return Ok(None);
        }
        self.last_token += 1;
        let token = self.last_token;
        sem.holders.insert(token, expires_ms);
        self.timers.add(expires_ms, (name.clone(), token));
        self.emit(SemChange::Held { name: &name, permits, token, expires_ms });
        Ok(Some(Permit { token, expires_ms }))
    }

    /// SEM.EXTEND: the lease of a held permit ends `ms` from now; the new end.
    pub fn extend(&mut self, name: &Bytes, token: u64, ms: u64, now: u64) -> Result<u64, Error> {
        let sem = self.sems.get_mut(name).ok_or_else(not_held)?;
        let end = sem.holders.get_mut(&token).ok_or_else(not_held)?;
        let old = std::mem::replace(end, now.saturating_add(ms.max(1)));
        let (expires_ms, permits) = (*end, sem.permits);
        let name = self.stored_name(name);
        self.timers.remove(old, (name.clone(), token));
        self.timers.add(expires_ms, (name.clone(), token));
        self.emit(SemChange::Held { name: &name, permits, token, expires_ms });
        Ok(expires_ms)
    }

    /// SEM.RELEASE: gives a held permit back.
    pub fn release(&mut self, name: &Bytes, token: u64) -> Result<(), Error> {
        let end = self.sems.get(name).and_then(|s| s.holders.get(&token)).copied().ok_or_else(not_held)?;
        self.timers.remove(end, (name.clone(), token));
        self.drop_holder(name, token, false);
        Ok(())
    }

    /// A permit is free again: the holder goes, waiters may acquire, a semaphore nobody holds is
    /// forgotten.
    fn drop_holder(&mut self, name: &Bytes, token: u64, expired: bool) {
        let Some(sem) = self.sems.get_mut(name) else { return };
        if sem.holders.remove(&token).is_none() {
            return;
        }
        if sem.holders.is_empty() {
            self.sems.remove(name);
        }
        self.emit(SemChange::Dropped { name, token, expired });
        self.ready.push(wait_key(name));
    }

    pub fn info(&self, name: &[u8]) -> SemInfo {
        let sem = self.sems.get(name);
        SemInfo {
            permits: sem.map_or(0, |s| s.permits),
            holders: sem.map(|s| s.holders.iter().map(|(t, e)| (*t, *e)).collect()).unwrap_or_default(),
            fence: self.last_token,
        }
    }

    /// Frees the permits whose lease ended by `now` (at most `budget`); how many.
    pub fn run_due(&mut self, now: u64, budget: usize) -> usize {
        let mut ran = 0;
        while ran < budget {
            let Some((_, (name, token))) = self.timers.pop_due(now) else { break };
            ran += 1;
            self.drop_holder(&name, token, true);
        }
        ran
    }
}

/// Putting semaphores back from persistence, and reading them out for a snapshot.
impl Semaphores {
    /// A holder as recorded (acquired or extended). Its lease's timer is set at the end, by
    /// [`Semaphores::finish_restore`]; one that ended while the broker was down is due at once.
    pub fn restore_held(&mut self, name: &Bytes, permits: u32, token: u64, expires_ms: u64) {
        self.last_token = self.last_token.max(token);
        let sem = self.sems.entry(name.clone()).or_default();
        sem.permits = permits;
        sem.holders.insert(token, expires_ms);
    }

    pub fn restore_dropped(&mut self, name: &[u8], token: u64) {
        self.last_token = self.last_token.max(token);
        if let Some(sem) = self.sems.get_mut(name) {
            sem.holders.remove(&token);
            if sem.holders.is_empty() {
                self.sems.remove(name);
            }
        }
    }

    /// The token counter must never go backwards.
    pub fn restore_fence(&mut self, last_token: u64) {
        self.last_token = self.last_token.max(last_token);
    }

    pub fn fence(&self) -> u64 {
        self.last_token
    }

    pub fn finish_restore(&mut self) {
        for (name, sem) in &self.sems {
            for (token, end) in &sem.holders {
                self.timers.add(*end, (name.clone(), *token));
            }
        }
    }

    /// Every semaphore and its holders (permits, token, lease end), for a snapshot.
    pub fn image(&self, mut holder: impl FnMut(&Bytes, u32, u64, u64)) {
        for (name, sem) in &self.sems {
            for (token, end) in &sem.holders {
                holder(name, sem.permits, *token, *end);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sems() -> Semaphores {
        let settings = SemaphoreSettings { max_semaphores: 2, max_permits: 10, default_lease_ms: 1000 };
        Semaphores::new(settings, Arc::new(crate::engine::change::Discard))
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn permits_tokens_grow_and_leases_run_out_on_time() {
        let mut s = sems();
        let lock = b("lock");
        let first = s.acquire(&lock, 1, Some(100), 0).unwrap().unwrap();
        assert_eq!(s.acquire(&lock, 1, None, 0).unwrap(), None, "a one-permit semaphore is a lock");
        assert_eq!(s.next_deadline(), Some(100));
        assert_eq!(s.extend(&lock, first.token, 200, 50).unwrap(), 250);
        assert_eq!(s.run_due(249, 10), 0);
        assert_eq!(s.run_due(250, 10), 1, "the lease ends at its deadline");
        assert_eq!(s.release(&lock, first.token), Err(not_held()), "a lapsed token is refused");
        assert_eq!(s.extend(&lock, first.token, 10, 260), Err(not_held()));
        let second = s.acquire(&lock, 1, None, 300).unwrap().unwrap();
        assert!(second.token > first.token, "fencing tokens only grow");
        assert_eq!(second.expires_ms, 1300, "the default lease");
        s.release(&lock, second.token).unwrap();
        assert_eq!(s.release(&lock, second.token), Err(not_held()));
        assert_eq!(s.info(b"lock").holders, vec![]);
    }

    #[test]
    fn counting_and_bounds() {
        let mut s = sems();
        let pool = b("pool");
        let held: Vec<Permit> = (0..3).map(|_| s.acquire(&pool, 3, None, 0).unwrap().unwrap()).collect();
        assert_eq!(s.acquire(&pool, 3, None, 0).unwrap(), None);
        assert_eq!(s.info(b"pool").holders.len(), 3);
        s.release(&pool, held[1].token).unwrap();
        assert!(s.acquire(&pool, 3, None, 0).unwrap().is_some());
        assert!(s.acquire(&pool, 0, None, 0).is_err());
        assert!(s.acquire(&pool, 11, None, 0).is_err());
        s.acquire(&b("two"), 1, None, 0).unwrap();
        assert_eq!(s.acquire(&b("three"), 1, None, 0).unwrap_err().code(), "FULL");
    }
}
