//! Blocking commands, Redis's way: a client that must wait (BLPOP on an empty list, BB.WAIT for a key
//! that does not exist yet, a JOB.CLAIM on an empty queue...) leaves an *attempt* here, keyed by what
//! it waits on. When an engine signals one of those keys ready, the attempts re-run under the state
//! lock in the order their clients blocked; the first that succeeds gets its reply handed over at
//! once, inside the same critical section as the change that satisfied it. So a consumed item goes to
//! exactly one waiter, FIFO, and no other client can slip in between.

use std::collections::{HashMap, VecDeque};

use herald_protocol::Reply;
use tokio::sync::oneshot;

use super::State;
pub use crate::engine::wait::WaitKey;

/// Re-runs the blocked command against the current state: `Some(reply)` when it can complete now.
pub type Attempt = Box<dyn FnMut(&mut State, u64) -> Option<Reply> + Send>;

struct Blocker {
    /// The blocked connection's client id (CLIENT UNBLOCK names it).
    client: u64,
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
    /// The key whose waiters are being served while an attempt re-runs, so an attempt can take from
    /// that key, as Redis serves a blocked client from the key that became ready (BZPOPMIN on several
    /// keys pops from the one signalled first, not from the first of its keys).
    pub serving: Option<WaitKey>,
}

fn domain_of(keys: &[WaitKey]) -> Option<&'static str> {
    keys.iter().find_map(WaitKey::domain)
}

impl Blocking {
    /// Registers a waiter for client `client`; its reply arrives on the receiver.
    pub fn block(&mut self, client: u64, keys: Vec<WaitKey>, attempt: Attempt) -> (u64, oneshot::Receiver<Reply>) {
        self.next_id += 1;
        let id = self.next_id;
        for key in &keys {
            self.queues.entry(key.clone()).or_default().push_back(id);
        }
        if let Some(domain) = domain_of(&keys) {
            *self.per_domain.entry(domain).or_default() += 1;
        }
        let (tx, rx) = oneshot::channel();
        self.blockers.insert(id, Blocker { client, keys, attempt, tx });
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

    /// CLIENT UNBLOCK: ends client `client`'s wait as if it timed out (the receiver closes: the
    /// connection answers its timeout reply), or with `error`. False if the client is not blocked.
    pub fn unblock(&mut self, client: u64, error: Option<Reply>) -> bool {
        let Some(id) = self.blockers.iter().find(|(_, b)| b.client == client).map(|(id, _)| *id) else { return false };
        let blocker = self.blockers.remove(&id).expect("found");
        self.forget(id, &blocker.keys);
        if let Some(reply) = error {
            let _ = blocker.tx.send(reply);
        }
        true
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

impl Blocking {
    /// Serves waiters on every key signalled ready, until no attempt makes further progress: the
    /// attempts run in the order their clients blocked, each against `state` as the previous one left
    /// it. `state.collect_ready()` brings in the keys the engines named since (an attempt may itself
    /// make other keys ready: BLMOVE pushes to its target); `state.exhausted(key)` says when a key has
    /// nothing left for anyone, so the rest of its waiters need not re-run in this pass.
    pub(super) fn serve(state: &mut State, now: u64) {
        state.collect_ready();
        while !state.blocking.ready.is_empty() {
            let key = state.blocking.ready.remove(0);
            let ids: Vec<u64> = state.blocking.queues.get(&key).map(|q| q.iter().copied().collect()).unwrap_or_default();
            for id in ids {
                if state.exhausted(&key) {
                    break;
                }
                let Some(mut blocker) = state.blocking.blockers.remove(&id) else { continue };
                if blocker.tx.is_closed() {
                    state.blocking.forget(id, &blocker.keys);
                    continue;
                }
                state.blocking.serving = Some(key.clone());
                let outcome = (blocker.attempt)(state, now);
                state.blocking.serving = None;
                match outcome {
                    Some(reply) => {
                        state.blocking.forget(id, &blocker.keys);
                        let _ = blocker.tx.send(reply);
                    }
                    None => {
                        state.blocking.blockers.insert(id, blocker);
                    }
                }
                state.collect_ready();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn signal_only_matters_when_someone_waits() {
        let mut b = Blocking::default();
        let k = WaitKey::Named { domain: "test", name: Bytes::from_static(b"k") };
        b.signal(k.clone());
        assert!(b.ready.is_empty());
        let (id, _rx) = b.block(7, vec![k.clone()], Box::new(|_, _| None));
        b.signal(k.clone());
        b.signal(k.clone());
        assert_eq!(b.ready.len(), 1);
        assert!(b.cancel(id));
        assert!(!b.cancel(id));
        assert!(!b.has_waiters(&k));
    }

    #[test]
    fn unblock_ends_one_clients_wait() {
        let mut b = Blocking::default();
        let k = WaitKey::Named { domain: "test", name: Bytes::from_static(b"k") };
        let (_, mut timed_out) = b.block(7, vec![k.clone()], Box::new(|_, _| None));
        let (_, mut failed) = b.block(8, vec![k.clone()], Box::new(|_, _| None));
        assert!(!b.unblock(9, None));
        assert!(b.unblock(7, None));
        assert!(timed_out.try_recv().is_err(), "closed without a reply: the connection answers its timeout reply");
        assert!(b.unblock(8, Some(Reply::Int(1))));
        assert_eq!(failed.try_recv().ok(), Some(Reply::Int(1)));
        assert!(b.is_empty() && !b.has_waiters(&k));
    }
}
