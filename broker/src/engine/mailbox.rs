//! Mailboxes (MSG.*): messages to a destination on a topic, each consumed exactly once, FIFO per
//! destination and topic; the DBOS `send` / `recv` model across processes, and request/reply on top.
//!
//! A message sent without a topic (the empty topic) is seen only by receivers that ask for no topic,
//! as in DBOS. Sends may carry an idempotency key: a repeated key for the same destination returns
//! the first send's id instead of delivering twice. Those keys are remembered in a bounded window
//! (oldest forgotten first), and every mailbox is bounded in length (its own MAXLEN, or the
//! configured default); a sender may wait for room, woken as messages are received.
//!
//! A request (MSG.REQUEST) is a message that carries a reply address; the broker keeps the request
//! pending until its deadline. A reply (MSG.REPLY) before then is handed to the requester; after it
//! (or a second reply) it is dropped and counted. A request still in a mailbox when its deadline
//! passed is dropped when a receiver reaches it (nobody would get the answer).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::engine::Error;
use bytes::Bytes;

use super::change::{Change, ChangeSink, MailChange};
use super::listing::{ListArgs, Page, select};
use super::schedule::Schedule;
use super::wait::{Ready, WaitKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxSettings {
    /// Most messages waiting in one mailbox (all topics), unless MSG.CONFIG sets a smaller MAXLEN.
    pub max_messages: usize,
    /// Most idempotency keys remembered (across all mailboxes).
    pub idempotency_keys: usize,
    /// Most requests waiting for their reply at once (across all mailboxes).
    pub max_pending_requests: usize,
}

#[derive(Debug)]
struct Message {
    id: u64,
    payload: Bytes,
    /// A request: its id is its reply address.
    request: bool,
}

#[derive(Debug, Default)]
struct Mailbox {
    topics: HashMap<Bytes, VecDeque<Message>>,
    len: usize,
    /// MSG.CONFIG MAXLEN (0: the configured default). A configured mailbox is kept while empty.
    max_len: usize,
}

/// A request waiting for its reply.
#[derive(Debug)]
struct Pending {
    deadline: u64,
    reply: Option<Bytes>,
}

/// What a receiver gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Message(Bytes),
    /// A request: answer it with MSG.REPLY `reply_to`.
    Request {
        payload: Bytes,
        reply_to: u64,
    },
}

/// Where a request stands, for its requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Waiting,
    Replied(Bytes),
    /// The deadline passed without a reply.
    TimedOut,
}

/// Counters INFO reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MailStats {
    /// Replies that came after their request's deadline (or a second reply), dropped.
    pub replies_dropped: u64,
    /// Requests dropped unread because their deadline had passed.
    pub requests_expired: u64,
}

/// One destination as MSG.DESTS lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestSummary {
    pub dest: Bytes,
    /// Messages waiting, all topics together.
    pub length: usize,
    /// Its bound (MSG.CONFIG MAXLEN, or the configured default).
    pub max_len: usize,
    /// Each topic with messages waiting, by name (`""` is the topicless one).
    pub topics: Vec<(Bytes, usize)>,
}

pub struct Mailboxes {
    boxes: HashMap<Bytes, Mailbox>,
    settings: MailboxSettings,
    next_id: u64,
    idempotency: HashMap<(Bytes, Bytes), u64>,
    idempotency_order: VecDeque<(Bytes, Bytes)>,
    pending: HashMap<u64, Pending>,
    deadlines: Schedule<u64>,
    pub stats: MailStats,
    ready: Ready,
    sink: Arc<dyn ChangeSink>,
}

/// The wait key of receivers blocked on (destination, topic).
pub fn wait_key(dest: &[u8], topic: &[u8]) -> WaitKey {
    WaitKey::joined("mailbox", dest, topic)
}

/// Where senders wait for room in a full mailbox.
pub fn room_wait_key(dest: &[u8]) -> WaitKey {
    WaitKey::Named { domain: "mailroom", name: Bytes::copy_from_slice(dest) }
}

/// Where a requester waits for its reply.
pub fn reply_wait_key(request: u64) -> WaitKey {
    WaitKey::Named { domain: "reply", name: Bytes::from(request.to_string()) }
}

impl Mailboxes {
    pub fn new(settings: MailboxSettings, sink: Arc<dyn ChangeSink>) -> Self {
        Mailboxes {
            boxes: HashMap::new(),
            settings,
            next_id: 0,
            idempotency: HashMap::new(),
            idempotency_order: VecDeque::new(),
            pending: HashMap::new(),
            deadlines: Schedule::default(),
            stats: MailStats::default(),
            ready: Ready::default(),
            sink,
        }
    }

    /// The keys this engine's changes made ready since the state last collected them.
    pub fn ready_mut(&mut self) -> &mut Ready {
        &mut self.ready
    }

    pub fn take_scheduled(&mut self) -> Option<u64> {
        self.deadlines.take_scheduled()
    }

    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.next()
    }

    /// A mailbox's bound: its MAXLEN, or the configured default.
    fn bound(&self, dest: &[u8]) -> usize {
        match self.boxes.get(dest) {
            Some(m) if m.max_len > 0 => m.max_len,
            _ => self.settings.max_messages,
        }
    }

    /// Whether a send to `dest` would find room.
    pub fn has_room(&self, dest: &[u8]) -> bool {
        self.boxes.get(dest).map_or(0, |m| m.len) < self.bound(dest)
    }

    /// MSG.SEND: the message id, and whether this call delivered it (false for a repeated
    /// idempotency key).
    pub fn send(&mut self, dest: &Bytes, topic: &Bytes, payload: &[u8], idempotency: Option<&Bytes>) -> Result<(u64, bool), Error> {
        if let Some(key) = idempotency
            && let Some(id) = self.idempotency.get(&(dest.clone(), key.clone()))
        {
            return Ok((*id, false));
        }
        let id = self.deliver(dest, topic, payload, false)?;
        if let Some(key) = idempotency {
            self.remember(dest.clone(), key.clone(), id);
        }
        let idempotency = idempotency.map(|k| &k[..]);
        self.sink.emit(&Change::Mail(MailChange::Sent { dest, topic, id, payload, idempotency }));
        Ok((id, true))
    }

    /// Puts a message in its mailbox (refused when the mailbox is full) and wakes its receivers.
    fn deliver(&mut self, dest: &Bytes, topic: &Bytes, payload: &[u8], request: bool) -> Result<u64, Error> {
        if !self.has_room(dest) {
            return Err(Error::fixed("FULL the mailbox is at its MAXLEN (MSG.CONFIG) or mailboxes.max_messages"));
        }
        self.next_id += 1;
        let id = self.next_id;
        let mailbox = self.boxes.entry(dest.clone()).or_default();
        mailbox.topics.entry(topic.clone()).or_default().push_back(Message { id, payload: Bytes::copy_from_slice(payload), request });
        mailbox.len += 1;
        self.ready.push(wait_key(dest, topic));
        Ok(id)
    }

    /// MSG.REQUEST: sends a request that waits for its reply until `deadline`; its id (the reply
    /// address).
    pub fn request(&mut self, dest: &Bytes, topic: &Bytes, payload: &[u8], deadline: u64) -> Result<u64, Error> {
        if self.pending.len() >= self.settings.max_pending_requests {
            return Err(Error::fixed("FULL too many requests waiting for replies (mailboxes.max_pending_requests)"));
        }
        let id = self.deliver(dest, topic, payload, true)?;
        self.pending.insert(id, Pending { deadline, reply: None });
        self.deadlines.add(deadline, id);
        self.sink.emit(&Change::Mail(MailChange::Requested { dest, topic, id }));
        Ok(id)
    }

    /// MSG.REPLY: hands `payload` to the requester; false (dropped, counted) if the request is no
    /// longer waiting (its deadline passed, it was answered already, or it never was).
    pub fn reply(&mut self, request: u64, payload: &[u8]) -> bool {
        match self.pending.get_mut(&request) {
            Some(p) if p.reply.is_none() => {
                p.reply = Some(Bytes::copy_from_slice(payload));
                self.ready.push(reply_wait_key(request));
                true
            }
            _ => {
                self.stats.replies_dropped += 1;
                false
            }
        }
    }

    /// The requester's view of its request; a reply, once taken, ends it.
    pub fn outcome(&mut self, request: u64) -> Outcome {
        match self.pending.get(&request) {
            None => Outcome::TimedOut,
            Some(Pending { reply: None, .. }) => Outcome::Waiting,
            Some(Pending { deadline, .. }) => {
                let deadline = *deadline;
                self.deadlines.remove(deadline, request);
                let reply = self.pending.remove(&request).and_then(|p| p.reply).unwrap_or_default();
                Outcome::Replied(reply)
            }
        }
    }

    /// Requests whose deadline passed: no longer waiting; their requesters are told. A reply that
    /// arrived but was never taken (the requester went away) counts as dropped.
    pub fn run_due(&mut self, now: u64, budget: usize) -> usize {
        let mut ran = 0;
        while ran < budget {
            let Some((_, id)) = self.deadlines.pop_due(now) else { break };
            ran += 1;
            if self.pending.remove(&id).is_some_and(|p| p.reply.is_some()) {
                self.stats.replies_dropped += 1;
            }
            self.ready.push(reply_wait_key(id));
        }
        ran
    }

    /// Whether a send with this idempotency key would answer at once (the key is remembered).
    pub fn remembers(&self, dest: &Bytes, key: &Bytes) -> bool {
        self.idempotency.contains_key(&(dest.clone(), key.clone()))
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

    /// MSG.RECV: the oldest message on (destination, topic), removed. A request whose deadline
    /// passed is dropped on the way (counted).
    pub fn recv(&mut self, dest: &[u8], topic: &[u8]) -> Option<Received> {
        loop {
            let mailbox = self.boxes.get_mut(dest)?;
            let queue = mailbox.topics.get_mut(topic)?;
            let message = queue.pop_front()?;
            mailbox.len -= 1;
            if queue.is_empty() {
                mailbox.topics.remove(topic);
            }
            if mailbox.len == 0 && mailbox.max_len == 0 {
                self.boxes.remove(dest);
            }
            self.sink.emit(&Change::Mail(MailChange::Received { dest, topic, id: message.id }));
            self.ready.push(room_wait_key(dest));
            if !message.request {
                return Some(Received::Message(message.payload));
            }
            if self.pending.contains_key(&message.id) {
                return Some(Received::Request { payload: message.payload, reply_to: message.id });
            }
            self.stats.requests_expired += 1;
        }
    }

    /// MSG.LEN: waiting messages on one topic, or on all of them.
    pub fn len(&self, dest: &[u8], topic: Option<&[u8]>) -> usize {
        let Some(mailbox) = self.boxes.get(dest) else { return 0 };
        match topic {
            Some(t) => mailbox.topics.get(t).map_or(0, |q| q.len()),
            None => mailbox.len,
        }
    }

    /// MSG.DESTS: a page of the destinations that hold messages or a bound of their own.
    pub fn dests(&self, args: &ListArgs) -> Page<DestSummary> {
        select(self.boxes.iter(), |(name, _)| name, args).map(|(dest, m)| {
            let mut topics: Vec<(Bytes, usize)> =
                m.topics.iter().filter(|(_, q)| !q.is_empty()).map(|(t, q)| (t.clone(), q.len())).collect();
            topics.sort();
            DestSummary { dest: dest.clone(), length: m.len, max_len: self.bound(dest), topics }
        })
    }

    /// MSG.CONFIG dest MAXLEN n: the mailbox's own bound (0: back to the default). Senders waiting
    /// for room may now find it.
    pub fn configure(&mut self, dest: &Bytes, max_len: usize) -> Result<(), Error> {
        if max_len > self.settings.max_messages {
            return Err(Error::new(format!("ERR MAXLEN must be at most mailboxes.max_messages ({})", self.settings.max_messages)));
        }
        self.set_max_len(dest, max_len);
        self.sink.emit(&Change::Mail(MailChange::Configured { dest, max_len }));
        self.ready.push(room_wait_key(dest));
        Ok(())
    }

    fn set_max_len(&mut self, dest: &Bytes, max_len: usize) {
        let mailbox = self.boxes.entry(dest.clone()).or_default();
        mailbox.max_len = max_len;
        if mailbox.len == 0 && max_len == 0 {
            self.boxes.remove(dest);
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
        if queue.back().is_some_and(|last| last.id >= id) {
            return;
        }
        queue.push_back(Message { id, payload, request: false });
        mailbox.len += 1;
        self.ready.push(wait_key(dest, topic));
    }

    /// A mailbox's MAXLEN as configured.
    pub fn restore_config(&mut self, dest: &Bytes, max_len: usize) {
        self.set_max_len(dest, max_len);
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
        queue.retain(|m| m.id != id);
        mailbox.len -= before - queue.len();
        if queue.is_empty() {
            mailbox.topics.remove(topic);
        }
        if mailbox.len == 0 && mailbox.max_len == 0 {
            self.boxes.remove(dest);
        }
    }

    pub fn restore_counter(&mut self, id: u64) {
        self.next_id = self.next_id.max(id);
    }

    pub fn counter(&self) -> u64 {
        self.next_id
    }

    /// Every waiting message (dest, topic, id, payload) in order, every configured MAXLEN
    /// (dest, max_len) and every remembered idempotency key (dest, key, id), for a snapshot.
    /// Requests are left out: their requesters do not outlive the broker.
    pub fn image(
        &self,
        mut message: impl FnMut(&Bytes, &Bytes, u64, &Bytes),
        mut config: impl FnMut(&Bytes, usize),
        mut key: impl FnMut(&Bytes, &Bytes, u64),
    ) {
        for (dest, mailbox) in &self.boxes {
            if mailbox.max_len > 0 {
                config(dest, mailbox.max_len);
            }
            for (topic, queue) in &mailbox.topics {
                for m in queue.iter().filter(|m| !m.request) {
                    message(dest, topic, m.id, &m.payload);
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
        let settings = MailboxSettings { max_messages, idempotency_keys, max_pending_requests: 2 };
        Mailboxes::new(settings, std::sync::Arc::new(crate::engine::change::Discard))
    }

    #[test]
    fn fifo_per_topic_and_topicless_is_separate() {
        let mut m = mailboxes(100, 10);
        m.send(&b("wf"), &b("t"), b"1", None).unwrap();
        m.send(&b("wf"), &b(""), b"plain", None).unwrap();
        m.send(&b("wf"), &b("t"), b"2", None).unwrap();
        assert_eq!(m.len(b"wf", None), 3);
        assert_eq!(m.recv(b"wf", b"t"), Some(Received::Message(b("1"))));
        assert_eq!(m.recv(b"wf", b"t"), Some(Received::Message(b("2"))));
        assert_eq!(m.recv(b"wf", b"t"), None);
        assert_eq!(m.recv(b"wf", b""), Some(Received::Message(b("plain"))));
        assert_eq!(m.len(b"wf", None), 0);
    }

    #[test]
    fn dests_list_lengths_per_topic() {
        let mut m = mailboxes(100, 10);
        m.send(&b("wf"), &b("t"), b"1", None).unwrap();
        m.send(&b("wf"), &b(""), b"plain", None).unwrap();
        m.send(&b("wf"), &b("t"), b"2", None).unwrap();
        m.send(&b("other"), &b("x"), b"3", None).unwrap();
        m.configure(&b("idle"), 5).unwrap();
        let page = m.dests(&ListArgs { cursor: 0, pattern: Some(b("wf")), count: 10 });
        assert_eq!(page.entries, vec![DestSummary { dest: b("wf"), length: 3, max_len: 100, topics: vec![(b(""), 1), (b("t"), 2)] }]);
        let all = m.dests(&ListArgs::all());
        assert_eq!(all.entries.len(), 3, "a configured mailbox is listed while empty");
        assert_eq!(all.entries.iter().find(|d| d.dest == "idle").map(|d| (d.length, d.max_len)), Some((0, 5)));
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
        m.configure(&b("small"), 1).unwrap();
        assert!(m.has_room(b"small"));
        m.send(&b("small"), &b(""), b"x", None).unwrap();
        assert!(!m.has_room(b"small"), "its own MAXLEN");
        assert!(m.configure(&b("small"), 3).is_err(), "at most max_messages");
        m.recv(b"small", b"");
        assert!(m.has_room(b"small"));
        assert_eq!(m.len(b"small", None), 0);
    }

    #[test]
    fn requests_replies_and_deadlines() {
        let mut m = mailboxes(10, 10);
        let id = m.request(&b("svc"), &b("q"), b"2+2", 100).unwrap();
        assert_eq!(m.outcome(id), Outcome::Waiting);
        assert_eq!(m.recv(b"svc", b"q"), Some(Received::Request { payload: b("2+2"), reply_to: id }));
        assert!(m.reply(id, b"4"));
        assert!(!m.reply(id, b"5"), "a second reply is dropped");
        assert_eq!(m.outcome(id), Outcome::Replied(b("4")));
        assert!(!m.reply(id, b"6"), "answered");
        let late = m.request(&b("svc"), &b("q"), b"slow", 200).unwrap();
        assert_eq!(m.run_due(200, 10), 1);
        assert_eq!(m.outcome(late), Outcome::TimedOut);
        assert!(!m.reply(late, b"too late"));
        assert_eq!(m.recv(b"svc", b"q"), None, "an expired request is dropped unread");
        assert_eq!(m.stats, MailStats { replies_dropped: 3, requests_expired: 1 });
        m.request(&b("a"), &b(""), b"", 300).unwrap();
        m.request(&b("a"), &b(""), b"", 300).unwrap();
        assert!(m.request(&b("a"), &b(""), b"", 300).is_err(), "max_pending_requests");
    }
}
