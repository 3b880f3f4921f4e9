//! Slows password guessing down per client address, without slowing anyone else.
//!
//! After `free_failures` failed AUTHs from one address within the window, every further AUTH from
//! that address (right or wrong, so a fast answer does not betray a right guess) is answered only at
//! the address's next free slot; slots are `delay` apart, doubling per failure up to `max_delay`. The
//! connection waits like a blocked command (its io thread serves everyone else meanwhile), and since
//! slots are per address, opening more connections does not buy more guesses.

use std::collections::HashMap;
use std::net::IpAddr;

use tokio::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct ThrottleSettings {
    pub free_failures: u32,
    pub delay: Duration,
    pub max_delay: Duration,
    pub window: Duration,
    /// Most addresses remembered; past it the stalest are forgotten.
    pub max_addresses: usize,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: Instant,
    /// The earliest time the next AUTH from this address is answered.
    next_slot: Instant,
}

#[derive(Debug)]
pub struct Throttle {
    settings: ThrottleSettings,
    by_addr: HashMap<IpAddr, Record>,
}

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Self {
        Throttle { settings, by_addr: HashMap::new() }
    }

    fn current(&mut self, addr: IpAddr, now: Instant) -> Option<&mut Record> {
        let window = self.settings.window;
        if self.by_addr.get(&addr).is_some_and(|r| now.saturating_duration_since(r.last_failure) > window) {
            self.by_addr.remove(&addr);
        }
        self.by_addr.get_mut(&addr)
    }

    /// When an AUTH from `addr` arriving `now` may be answered (`None`: at once); `failed` says
    /// whether this attempt was itself a failure (already counted by [`Throttle::failed`]). Taking a
    /// slot moves the next one on.
    pub fn answer_at(&mut self, addr: IpAddr, now: Instant, failed: bool) -> Option<Instant> {
        let free = self.settings.free_failures;
        let before = self.current(addr, now)?.failures - u32::from(failed);
        let delay = self.delay_after(before.checked_sub(free)?);
        let record = self.by_addr.get_mut(&addr)?;
        let at = record.next_slot.max(now) + delay;
        record.next_slot = at;
        Some(at)
    }

    fn delay_after(&self, extra_failures: u32) -> Duration {
        let factor = 1u32.checked_shl(extra_failures.min(20)).unwrap_or(u32::MAX);
        self.settings.delay.saturating_mul(factor).min(self.settings.max_delay)
    }

    pub fn failed(&mut self, addr: IpAddr, now: Instant) {
        if self.by_addr.len() >= self.settings.max_addresses && !self.by_addr.contains_key(&addr) {
            let window = self.settings.window;
            self.by_addr.retain(|_, r| now.saturating_duration_since(r.last_failure) <= window);
            if self.by_addr.len() >= self.settings.max_addresses
                && let Some(stalest) = self.by_addr.iter().min_by_key(|(_, r)| r.last_failure).map(|(a, _)| *a)
            {
                self.by_addr.remove(&stalest);
            }
        }
        let record = self.current(addr, now).copied().unwrap_or(Record { failures: 0, last_failure: now, next_slot: now });
        self.by_addr.insert(addr, Record { failures: record.failures.saturating_add(1), last_failure: now, ..record });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ThrottleSettings {
        ThrottleSettings {
            free_failures: 2,
            delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            window: Duration::from_secs(60),
            max_addresses: 2,
        }
    }

    #[test]
    fn slows_one_address_after_free_failures() {
        let mut t = Throttle::new(settings());
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let now = Instant::now();
        for _ in 0..2 {
            t.failed(a, now);
            assert_eq!(t.answer_at(a, now, true), None, "free failures are answered at once");
        }
        // Past them, right (`false`) or wrong, an attempt waits for its slot.
        assert_eq!(t.answer_at(a, now, false), Some(now + Duration::from_millis(100)));
        t.failed(a, now);
        assert_eq!(t.answer_at(a, now, true), Some(now + Duration::from_millis(200)), "slots queue up");
        t.failed(a, now);
        // Three failures before this one: 100ms doubled; then 400ms, capped at 350ms.
        assert_eq!(t.answer_at(a, now, true), Some(now + Duration::from_millis(400)));
        t.failed(a, now);
        assert_eq!(t.answer_at(a, now, true), Some(now + Duration::from_millis(750)));
        assert_eq!(t.answer_at(b, now, false), None, "another address is not slowed");
        let later = now + Duration::from_secs(61);
        assert_eq!(t.answer_at(a, later, false), None, "forgotten after the window");
    }

    #[test]
    fn bounded() {
        let mut t = Throttle::new(settings());
        let now = Instant::now();
        for i in 0..10u8 {
            t.failed(IpAddr::from([10, 0, 0, i]), now + Duration::from_millis(u64::from(i)));
        }
        assert!(t.by_addr.len() <= 2);
    }
}
