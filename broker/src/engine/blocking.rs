//! Blocking commands, Redis's way: a client that must wait (BLPOP on an empty list, BB.WAIT for a key
//! that does not exist yet, a JOB.CLAIM on an empty queue...) leaves an *attempt* here, keyed by what
//! it waits on. When an engine signals one of those keys ready, the attempts re-run under the state
//! lock in the order their clients blocked; the first that succeeds gets its reply handed over at
//! once, inside the same critical section as the change that satisfied it. So a consumed item goes to
//! exactly one waiter, FIFO, and no other client can slip in between.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use herald_protocol::Reply;
use tokio::sync::oneshot;

use super::State;

/// What a blocked client waits on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WaitKey {
    /// A key of a numbered database (lists).
    Key { db: usize, key: Bytes },
    /// Anything another engine names: a blackboard key, a job queue, a mailbox, a stream...
    Named { domain: &'static str, name: Bytes },
}

/// Re-runs the blocked command against the current state: `Some(reply)` when it can complete now.
pub type Attempt = Box<dyn FnMut(&mut State, u64) -> Option<Reply> + Send>;

struct Blocker {
    keys: Vec<WaitKey>,
    attempt: Attempt,
    tx: oneshot::Sender<Reply>,
}

#[derive(Default)]
pub struct Blocking {
    queues: HashMap<WaitKey, VecDeque<u64>>,
    blockers: HashMap<u64, Blocker>,
    ready: Vec<WaitKey>,
    next_id: u64,
    /// Waiting clients per named domain, so an engine can skip signalling a domain nobody waits in.
    per_domain: HashMap<&'static str, usize>,
}

fn domain_of(keys: &[WaitKey]) -> Option<&'static str> {
    keys.iter().find_map(|k| match k {
        WaitKey::Named { domain, .. } => Some(*domain),
        WaitKey::Key { .. } => None,
    })
}

impl Blocking {
    /// Registers a waiter; its reply arrives on the receiver.
    pub fn block(&mut self, keys: Vec<WaitKey>, attempt: Attempt) -> (u64, oneshot::Receiver<Reply>) {
        self.next_id += 1;
        let id = self.next_id;
        for key in &keys {
            self.queues.entry(key.clone()).or_default().push_back(id);
        }
        if let Some(domain) = domain_of(&keys) {
            *self.per_domain.entry(domain).or_default() += 1;
        }
        let (tx, rx) = oneshot::channel();
        self.blockers.insert(id, Blocker { keys, attempt, tx });
        (id, rx)
    }

    /// Whether any client waits on a key of `domain`.
    pub fn waiting_in(&self, domain: &str) -> bool {
        self.per_domain.get(domain).is_some_and(|n| *n > 0)
    }

    /// Withdraws a waiter (timeout, disconnect). False if it was already served.
    pub fn cancel(&mut self, id: u64) -> bool {
        match self.blockers.remove(&id) {
            Some(b) => {
                self.forget(id, &b.keys);
                true
            }
            None => false,
        }
    }

    fn forget(&mut self, id: u64, keys: &[WaitKey]) {
        if let Some(domain) = domain_of(keys)
            && let Some(n) = self.per_domain.get_mut(domain)
        {
            *n -= 1;
        }
        for key in keys {
            if let Some(q) = self.queues.get_mut(key) {
                q.retain(|x| *x != id);
                if q.is_empty() {
                    self.queues.remove(key);
                }
            }
        }
    }

    /// Notes that `key` may satisfy waiters. Cheap when nobody waits on it.
    pub fn signal(&mut self, key: WaitKey) {
        if self.queues.contains_key(&key) && !self.ready.contains(&key) {
            self.ready.push(key);
        }
    }

    pub fn has_waiters(&self, key: &WaitKey) -> bool {
        self.queues.contains_key(key)
    }

    /// Clients currently blocked (INFO `blocked_clients`).
    pub fn len(&self) -> usize {
        self.blockers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blockers.is_empty()
    }
}

impl State {
    /// Serves waiters on every key signalled ready, until no attempt makes further progress.
    pub fn serve_blocked(&mut self, now: u64) {
        self.collect_ready();
        while !self.blocking.ready.is_empty() {
            let key = self.blocking.ready.remove(0);
            let ids: Vec<u64> = self.blocking.queues.get(&key).map(|q| q.iter().copied().collect()).unwrap_or_default();
            for id in ids {
                if self.ran_dry(&key) {
                    break;
                }
                let Some(mut blocker) = self.blocking.blockers.remove(&id) else { continue };
                if blocker.tx.is_closed() {
                    self.blocking.forget(id, &blocker.keys);
                    continue;
                }
                match (blocker.attempt)(self, now) {
                    Some(reply) => {
                        self.blocking.forget(id, &blocker.keys);
                        let _ = blocker.tx.send(reply);
                    }
                    None => {
                        self.blocking.blockers.insert(id, blocker);
                    }
                }
                // An attempt may itself have made other keys ready (BLMOVE pushes to its target).
                self.collect_ready();
            }
        }
    }
}

impl State {
    /// Whether `key` has nothing left for its waiters, so the rest of them need not re-run in this
    /// pass: a job queue with no claimable job (as Redis stops serving a list's blocked clients once
    /// the list is empty). Otherwise each submit re-ran the claim of every blocked worker after the
    /// first took the job, all failing. A waiter that could still succeed through another of its
    /// queues is served when that queue's own signal is handled, in that queue's order.
    fn ran_dry(&self, key: &WaitKey) -> bool {
        match key {
            WaitKey::Named { domain, name } if *domain == crate::engine::jobs::QUEUE_DOMAIN => !self.jobs.claimable(name),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_only_matters_when_someone_waits() {
        let mut b = Blocking::default();
        let k = WaitKey::Named { domain: "test", name: Bytes::from_static(b"k") };
        b.signal(k.clone());
        assert!(b.ready.is_empty());
        let (id, _rx) = b.block(vec![k.clone()], Box::new(|_, _| None));
        b.signal(k.clone());
        b.signal(k.clone());
        assert_eq!(b.ready.len(), 1);
        assert!(b.cancel(id));
        assert!(!b.cancel(id));
        assert!(!b.has_waiters(&k));
    }
}
