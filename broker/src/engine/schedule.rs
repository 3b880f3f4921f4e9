//! An engine's deadlines (leases, delays, TTLs), in time order, and what the timer must be told.
//!
//! Engines add a deadline when they schedule something and remove it when the thing ends another way,
//! so the schedule holds only live deadlines. The earliest deadline added since the timer last asked
//! is remembered, so the timer (which sleeps towards the earliest deadline it knows) can be woken for
//! an earlier one after each command, cheaply.

use std::collections::BTreeSet;

#[derive(Debug)]
pub struct Schedule<K> {
    deadlines: BTreeSet<(u64, K)>,
    scheduled: Option<u64>,
}

impl<K> Default for Schedule<K> {
    fn default() -> Self {
        Schedule { deadlines: BTreeSet::new(), scheduled: None }
    }
}

impl<K: Ord> Schedule<K> {
    pub fn add(&mut self, at: u64, key: K) {
        if self.deadlines.insert((at, key)) {
            self.scheduled = Some(self.scheduled.map_or(at, |s| s.min(at)));
        }
    }

    pub fn remove(&mut self, at: u64, key: K) {
        self.deadlines.remove(&(at, key));
    }

    /// The earliest deadline if it is due at `now`, removed.
    pub fn pop_due(&mut self, now: u64) -> Option<(u64, K)> {
        if self.deadlines.first().is_none_or(|(at, _)| *at > now) {
            return None;
        }
        self.deadlines.pop_first()
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<u64> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// The earliest deadline added since the last call.
    pub fn take_scheduled(&mut self) -> Option<u64> {
        self.scheduled.take()
    }

    pub fn len(&self) -> usize {
        self.deadlines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deadlines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_in_time_order_and_reports_the_earliest_new_deadline() {
        let mut s = Schedule::default();
        s.add(30, "c");
        s.add(10, "a");
        s.add(20, "b");
        assert_eq!(s.take_scheduled(), Some(10));
        assert_eq!(s.take_scheduled(), None);
        s.remove(20, "b");
        assert_eq!(s.pop_due(5), None);
        assert_eq!(s.pop_due(40), Some((10, "a")));
        assert_eq!(s.pop_due(40), Some((30, "c")));
        assert_eq!(s.next(), None);
    }
}
