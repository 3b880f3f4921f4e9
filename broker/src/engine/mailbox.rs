//! Mailboxes (MSG.*): messages to a destination on a topic, each consumed exactly once, FIFO per
//! destination and topic; the DBOS `send` / `recv` model across processes.
//!
//! A message sent without a topic (the empty topic) is seen only by receivers that ask for no topic,
//! as in DBOS. Sends may carry an idempotency key: a repeated key for the same destination returns
//! the first send's id instead of delivering twice. Those keys are remembered in a bounded window
//! (oldest forgotten first), and every mailbox is bounded in length; both bounds come from config.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::engine::Error;
use bytes::Bytes;

use super::change::{Change, ChangeSink, MailChange};
use super::wait::{Ready, WaitKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxSettings {
    /// Most messages waiting in one mailbox (all topics).
    pub max_messages: usize,
    /// Most idempotency keys remembered (across all mailboxes).
    pub idempotency_keys: usize,
}

#[derive(Debug, Default)]
struct Mailbox {
    topics: HashMap<Bytes, VecDeque<(u64, Bytes)>>,
    len: usize,
}

pub struct Mailboxes {
    boxes: HashMap<Bytes, Mailbox>,
    settings: MailboxSettings,
    next_id: u64,
    idempotency: HashMap<(Bytes, Bytes), u64>,
    idempotency_order: VecDeque<(Bytes, Bytes)>,
    ready: Ready,
    sink: Arc<dyn ChangeSink>,
}

/// The wait key of receivers blocked on (destination, topic).
pub fn wait_key(dest: &[u8], topic: &[u8]) -> WaitKey {
    let mut name = Vec::with_capacity(dest.len() + topic.len() + 1);
    name.extend_from_slice(dest);
    name.push(0);
    name.extend_from_slice(topic);
    WaitKey::Named { domain: "mailbox", name: Bytes::from(name) }
}

impl Mailboxes {
    pub fn new(settings: MailboxSettings, sink: Arc<dyn ChangeSink>) -> Self {
        Mailboxes {
            boxes: HashMap::new(),
            settings,
            next_id: 0,
            idempotency: HashMap::new(),
            idempotency_order: VecDeque::new(),
            ready: Ready::default(),
            sink,
        }
    }

    pub fn take_ready(&mut self) -> Vec<WaitKey> {
        self.ready.take()
    }

    /// MSG.SEND: the message id, and whether this call delivered it (false for a repeated
    /// idempotency key).
    pub fn send(&mut self, dest: &Bytes, topic: &Bytes, payload: &[u8], idempotency: Option<&Bytes>) -> Result<(u64, bool), Error> {
        if let Some(key) = idempotency
            && let Some(id) = self.idempotency.get(&(dest.clone(), key.clone()))
        {
            return Ok((*id, false));
        }
        let mailbox = self.boxes.entry(dest.clone()).or_default();
        if mailbox.len >= self.settings.max_messages {
            return Err(Error::fixed("FULL the mailbox holds mailboxes.max_messages messages"));
        }
        self.next_id += 1;
        let id = self.next_id;
        mailbox.topics.entry(topic.clone()).or_default().push_back((id, Bytes::copy_from_slice(payload)));
        mailbox.len += 1;
        if let Some(key) = idempotency {
            self.remember(dest.clone(), key.clone(), id);
        }
        let idempotency = idempotency.map(|k| &k[..]);
        self.sink.emit(&Change::Mail(MailChange::Sent { dest, topic, id, payload, idempotency }));
        self.ready.push(wait_key(dest, topic));
        Ok((id, true))
    }

    fn remember(&mut self, dest: Bytes, key: Bytes, id: u64) {
        if self.settings.idempotency_keys == 0 {
            return;
        }
        while self.idempotency_order.len() >= self.settings.idempotency_keys {
            if let Some(old) = self.idempotency_order.pop_front() {
                self.idempotency.remove(&old);
            }
        }
        self.idempotency.insert((dest.clone(), key.clone()), id);
        self.idempotency_order.push_back((dest, key));
    }

    /// MSG.RECV: the oldest message on (destination, topic), removed.
    pub fn recv(&mut self, dest: &[u8], topic: &[u8]) -> Option<Bytes> {
        let mailbox = self.boxes.get_mut(dest)?;
        let queue = mailbox.topics.get_mut(topic)?;
        let (id, payload) = queue.pop_front()?;
        mailbox.len -= 1;
        self.sink.emit(&Change::Mail(MailChange::Received { dest, topic, id }));
        if queue.is_empty() {
            mailbox.topics.remove(topic);
        }
        if mailbox.len == 0 {
            self.boxes.remove(dest);
        }
        Some(payload)
    }

    /// MSG.LEN: waiting messages on one topic, or on all of them.
    pub fn len(&self, dest: &[u8], topic: Option<&[u8]>) -> usize {
        let Some(mailbox) = self.boxes.get(dest) else { return 0 };
        match topic {
            Some(t) => mailbox.topics.get(t).map_or(0, |q| q.len()),
            None => mailbox.len,
        }
    }
}

/// Putting mailboxes back from persistence, and reading them out for a snapshot.
impl Mailboxes {
    /// A message as recorded (one already there, by id, is skipped).
    pub fn restore_sent(&mut self, dest: &Bytes, topic: &Bytes, id: u64, payload: Bytes, idempotency: Option<Bytes>) {
        self.next_id = self.next_id.max(id);
        if let Some(key) = idempotency {
            self.restore_key(dest, &key, id);
        }
        let mailbox = self.boxes.entry(dest.clone()).or_default();
        let queue = mailbox.topics.entry(topic.clone()).or_default();
        if queue.back().is_some_and(|(last, _)| *last >= id) {
            return;
        }
        queue.push_back((id, payload));
        mailbox.len += 1;
        self.ready.push(wait_key(dest, topic));
    }

    /// A remembered idempotency key and the id it answers.
    pub fn restore_key(&mut self, dest: &Bytes, key: &Bytes, id: u64) {
        if !self.idempotency.contains_key(&(dest.clone(), key.clone())) {
            self.remember(dest.clone(), key.clone(), id);
        }
    }

    /// A message consumed: message `id` leaves (dest, topic).
    pub fn restore_received(&mut self, dest: &[u8], topic: &[u8], id: u64) {
        let Some(mailbox) = self.boxes.get_mut(dest) else { return };
        let Some(queue) = mailbox.topics.get_mut(topic) else { return };
        let before = queue.len();
        queue.retain(|(m, _)| *m != id);
        mailbox.len -= before - queue.len();
        if queue.is_empty() {
            mailbox.topics.remove(topic);
        }
        if mailbox.len == 0 {
            self.boxes.remove(dest);
        }
    }

    pub fn restore_counter(&mut self, id: u64) {
        self.next_id = self.next_id.max(id);
    }

    pub fn counter(&self) -> u64 {
        self.next_id
    }

    /// Every waiting message (dest, topic, id, payload) in order, and every remembered idempotency
    /// key (dest, key, id), for a snapshot.
    pub fn image(&self, mut message: impl FnMut(&Bytes, &Bytes, u64, &Bytes), mut key: impl FnMut(&Bytes, &Bytes, u64)) {
        for (dest, mailbox) in &self.boxes {
            for (topic, queue) in &mailbox.topics {
                for (id, payload) in queue {
                    message(dest, topic, *id, payload);
                }
            }
        }
        for (dest, k) in &self.idempotency_order {
            if let Some(id) = self.idempotency.get(&(dest.clone(), k.clone())) {
                key(dest, k, *id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn mailboxes(max_messages: usize, idempotency_keys: usize) -> Mailboxes {
        Mailboxes::new(MailboxSettings { max_messages, idempotency_keys }, std::sync::Arc::new(crate::engine::change::Discard))
    }

    #[test]
    fn fifo_per_topic_and_topicless_is_separate() {
        let mut m = mailboxes(100, 10);
        m.send(&b("wf"), &b("t"), b"1", None).unwrap();
        m.send(&b("wf"), &b(""), b"plain", None).unwrap();
        m.send(&b("wf"), &b("t"), b"2", None).unwrap();
        assert_eq!(m.len(b"wf", None), 3);
        assert_eq!(m.recv(b"wf", b"t").as_deref(), Some(&b"1"[..]));
        assert_eq!(m.recv(b"wf", b"t").as_deref(), Some(&b"2"[..]));
        assert_eq!(m.recv(b"wf", b"t"), None);
        assert_eq!(m.recv(b"wf", b"").as_deref(), Some(&b"plain"[..]));
        assert_eq!(m.len(b"wf", None), 0);
    }

    #[test]
    fn idempotency_and_bounds() {
        let mut m = mailboxes(2, 1);
        let (id, fresh) = m.send(&b("d"), &b(""), b"x", Some(&b("k1"))).unwrap();
        assert!(fresh);
        assert_eq!(m.send(&b("d"), &b(""), b"x", Some(&b("k1"))).unwrap(), (id, false));
        m.send(&b("d"), &b(""), b"y", Some(&b("k2"))).unwrap();
        assert!(m.send(&b("d"), &b(""), b"z", None).is_err(), "mailbox full");
        m.recv(b"d", b"");
        assert!(m.send(&b("d"), &b(""), b"x", Some(&b("k1"))).unwrap().1, "k1 fell out of the window of 1");
    }
}
