//! A connection's life: open, the read loop, batches of requests, blocked commands, deadlines, end.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use herald_protocol::{Reply, Request};
use tokio::time::Instant;

use super::in_flight::InFlight;
use super::{Credentials, End, Profile, Undecodable, Wire};
use crate::broker::Broker;
use crate::clients::ClientHandle;
use crate::dispatch::{self, Blocked, Outcome, Session};
use crate::doorbell::Doorbell;
use crate::pubsub::Outbox;

/// How long the goodbye (what is still owed, then the wire's close) may take before the socket is
/// simply dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

pub(super) struct Conn<W: Wire> {
    pub(super) wire: W,
    pub(super) broker: Arc<Broker>,
    pub(super) client: Arc<ClientHandle>,
    pub(super) session: Session,
    /// Replies and pushes waiting for the next flush.
    pub(super) out: BytesMut,
    pub(super) profile: Profile,
    /// How much input may wait behind a blocked command (`client_query_buffer_limit`).
    backlog_limit: usize,
    opened: Instant,
    /// When input last arrived (the instant of the last batch).
    heard: Instant,
    next_heartbeat: Option<Instant>,
    /// The last batch queued publications for the fan-out thread: read no more while it is behind.
    fed_fanout: bool,
    /// Forwarded requests whose replies are still to come (the Redis engine; `in_flight.rs`).
    pub(super) in_flight: InFlight<W::Tag>,
}

/// The deadlines a connection may have, in the order they are checked when they pass together.
#[derive(Debug, Default)]
struct Deadlines {
    auth: Option<Instant>,
    /// The session's token expires (`Session::token_expiry`).
    token: Option<Instant>,
    idle: Option<Instant>,
    heartbeat: Option<Instant>,
}

impl Deadlines {
    fn next(&self) -> Option<Instant> {
        [self.auth, self.token, self.idle, self.heartbeat].into_iter().flatten().min()
    }
}

/// How many forwarded requests a connection may have in flight (`engine.max_in_flight`; none embedded).
fn broker_max_in_flight(broker: &Broker) -> usize {
    broker.remote.as_ref().map_or(0, |remote| remote.max_in_flight)
}

impl<W: Wire> Conn<W> {
    /// Registers the client and its session.
    pub(super) fn open(wire: W, broker: Arc<Broker>, peer: std::net::SocketAddr, local: std::net::SocketAddr) -> Self {
        let settings = broker.settings();
        let outbox = Arc::new(Outbox::new(W::ENCODING, settings.outbox));
        let client = broker.clients.register(W::TRANSPORT, peer, local, outbox);
        // Registered before looking: a shutdown that began earlier rang every client but this one.
        if broker.shutdown.is_cancelled() {
            client.outbox.doorbell().ring(Doorbell::SHUTDOWN);
        }
        let session = Session::new(client.clone(), !broker.requires_auth(), W::ENCODING);
        let profile = wire.profile();
        let in_flight = InFlight::new(broker_max_in_flight(&broker));
        let now = Instant::now();
        Conn {
            wire,
            broker,
            client,
            session,
            out: BytesMut::new(),
            profile,
            backlog_limit: settings.client_query_buffer_limit,
            opened: now,
            heard: now,
            next_heartbeat: profile.heartbeat.map(|every| now + every),
            fed_fanout: false,
            in_flight,
        }
    }

    /// Serves the connection until it ends, then says goodbye and leaves nothing behind.
    pub(super) async fn serve(mut self, credentials: Option<Credentials>) {
        let end = match self.authenticate(credentials).await {
            Ok(()) => self.run().await,
            Err(end) => end,
        };
        self.finish(end).await;
    }

    /// Credentials given as the connection opened go through `AUTH` (or `AUTH.TOKEN`), so they mean exactly what they
    /// mean over RESP.
    async fn authenticate(&mut self, credentials: Option<Credentials>) -> Result<(), End> {
        let Some(credentials) = credentials else { return Ok(()) };
        let reply = match dispatch::handle(credentials.request(), &mut self.session, &self.broker) {
            // A throttled address: the answer comes at its slot.
            Outcome::Block(delayed) => delayed.wait(&self.broker).await,
            Outcome::Reply(reply) => reply,
            _ => Reply::ok(),
        };
        match reply {
            Reply::Error(e) => Err(End::AuthFailed(e)),
            _ => Ok(()),
        }
    }

    async fn run(&mut self) -> End {
        let broker = self.broker.clone();
        let client = self.client.clone();
        let doorbell = client.outbox.doorbell();
        // One timer for every deadline, kept for the connection's life and moved only when the next
        // deadline moves.
        let timer = tokio::time::sleep_until(self.opened);
        tokio::pin!(timer);
        let mut armed = None;
        loop {
            if let Err(end) = self.flush().await {
                return end;
            }
            let next = self.deadlines().next();
            if next != armed {
                if let Some(at) = next {
                    timer.as_mut().reset(at);
                }
                armed = next;
            }
            let throttled = self.fed_fanout && broker.hub.fanout_backlogged();
            tokio::select! {
                biased;
                rung = std::future::poll_fn(|cx| doorbell.poll_rung(cx)) => {
                    if let Err(end) = self.answer(rung) {
                        return end;
                    }
                }
                _ = &mut timer, if armed.is_some() => {
                    armed = None;
                    if let Err(end) = self.deadline_passed() {
                        return end;
                    }
                }
                // Publications wait for the fan-out thread to catch up (pubsub/fanout.rs).
                _ = broker.hub.fanout_room(), if throttled => self.fed_fanout = false,
                read = self.wire.read(), if !throttled => match read {
                    Ok(n) => {
                        self.received(n);
                        if let Err(end) = self.batch().await {
                            return end;
                        }
                    }
                    Err(end) => return end,
                },
            }
        }
    }

    fn received(&self, bytes: usize) {
        self.broker.stats.net_input_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Answers the doorbell: shutdown, kill and overflow end the connection (in that order), pushes
    /// are moved to the output.
    fn answer(&mut self, rung: u8) -> Result<(), End> {
        if rung & Doorbell::SHUTDOWN != 0 {
            return Err(End::Shutdown);
        }
        if rung & Doorbell::KILL != 0 {
            return Err(self.killed());
        }
        if rung & Doorbell::OVERFLOW != 0 {
            return Err(self.overflowed());
        }
        self.drain_pushes();
        Ok(())
    }

    /// Handles every request that arrived together, and notes whether they fed the fan-out thread.
    async fn batch(&mut self) -> Result<(), End> {
        let queued = self.broker.hub.fanout_queued();
        let handled = self.handle_batch().await;
        self.fed_fanout = self.broker.hub.fanout_queued() != queued;
        handled
    }

    async fn handle_batch(&mut self) -> Result<(), End> {
        self.stamp();
        // A batch whose output filled a write takes no more input: the loop gets to flush, answer the
        // doorbell and let other connections run before this one reads again.
        let mut filled = false;
        loop {
            match self.wire.decode(self.session.authenticated) {
                Ok(Some((tag, request))) => match self.dispatch(request).await? {
                    Outcome::Later(later) => Box::pin(self.send_later(tag, later)).await?,
                    Outcome::Reply(reply) => self.reply(&tag, &reply),
                    Outcome::Replies(replies) => {
                        self.drain_pushes_first();
                        self.wire.encode_replies(&tag, &replies, self.session.encoding(), &mut self.out);
                    }
                    Outcome::Close(reply) => {
                        self.reply(&tag, &reply);
                        return Err(End::Quit);
                    }
                    Outcome::Block(blocked) => {
                        let reply = self.wait_blocked(blocked).await?;
                        self.reply(&tag, &reply);
                        self.stamp();
                    }
                    Outcome::RepliesAfter(blocked, replies) => {
                        // Not `wait_for`: a push that arrives meanwhile (a message on the channel just
                        // subscribed) must follow the confirmations, so the outbox is left alone until
                        // they are encoded. The wait is one round trip to Redis, or none when it is away.
                        self.flush().await?;
                        tokio::select! {
                            _ = blocked.wait(&self.broker) => {}
                            _ = self.broker.shutdown.cancelled() => return Err(End::Shutdown),
                        }
                        self.wire.encode_replies(&tag, &replies, self.session.encoding(), &mut self.out);
                        self.stamp();
                    }
                    Outcome::Paused(_) => unreachable!("dispatch() waits out pauses"),
                },
                // Requests in flight: their replies before reading on (what arrives meanwhile is kept).
                Ok(None) if !self.in_flight.is_empty() => {
                    self.settle().await?;
                    self.stamp();
                }
                Ok(None) => {
                    if filled || !self.read_ahead()? {
                        break;
                    }
                }
                Err(Undecodable::Refused(tag, error)) => {
                    if !self.in_flight.is_empty() {
                        self.settle().await?;
                    }
                    self.broker.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    self.reply(&tag, &Reply::Error(error));
                }
                Err(Undecodable::Local(tag)) => {
                    if !self.in_flight.is_empty() {
                        self.settle().await?;
                    }
                    self.drain_pushes_first();
                    self.wire.encode_local(&tag, &mut self.out);
                }
                Err(Undecodable::Broken(end)) => {
                    if !self.in_flight.is_empty() {
                        self.settle().await?;
                    }
                    self.broker.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    self.drain_pushes_first();
                    self.wire.encode_end(&end, &mut self.out);
                    return Err(end);
                }
            }
            if self.out.len() >= self.profile.flush_at {
                self.flush().await?;
                filled = true;
            }
        }
        self.client.query_buffer.store(self.wire.pending_input(), Ordering::Relaxed);
        self.broker.latency.record(&mut self.session.batch_families, self.heard.elapsed());
        self.refresh_profile();
        Ok(())
    }

    /// Takes the wire's profile again: an HTTP connection that became an event stream drops its
    /// keep-alive timeout and starts heartbeats.
    fn refresh_profile(&mut self) {
        let profile = self.wire.profile();
        if profile != self.profile {
            if profile.heartbeat != self.profile.heartbeat {
                self.next_heartbeat = profile.heartbeat.map(|every| Instant::now() + every);
            }
            self.profile = profile;
        }
    }

    /// Hands a request to dispatch. A request CLIENT PAUSE holds waits here for the pause to end (still
    /// noticing kills, pushes and input, as a blocked command does), then goes to dispatch again.
    ///
    /// With requests in flight (the Redis engine), the request goes in its turn: one that cannot join them
    /// waits for their replies before it runs, and one answered at once (a refusal) goes out after them.
    async fn dispatch(&mut self, request: Request) -> Result<Outcome, End> {
        if !self.in_flight.is_empty() && !dispatch::forwards_plainly(&request, &self.session, &self.broker) {
            self.settle().await?;
            self.stamp();
        }
        self.session.begin_request();
        let mut outcome = dispatch::handle(request, &mut self.session, &self.broker);
        while let Outcome::Paused(request) = outcome {
            let broker = self.broker.clone();
            self.wait_for(broker.pause.wait()).await?;
            self.stamp();
            outcome = dispatch::handle(request, &mut self.session, &self.broker);
        }
        if !self.in_flight.is_empty() && !matches!(outcome, Outcome::Later(_)) {
            self.settle().await?;
        }
        Ok(outcome)
    }

    /// Takes in input that is already there, unless publications should wait for the fan-out thread;
    /// whether there was any.
    fn read_ahead(&mut self) -> Result<bool, End> {
        if self.broker.hub.fanout_backlogged() {
            return Ok(false);
        }
        match self.wire.read_ready() {
            Some(read) => {
                self.received(read?);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// One clock reading for the requests that arrived together.
    fn stamp(&mut self) {
        let at = Instant::now();
        self.heard = at;
        self.session.batch_time = Some((self.broker.clock.ms_at(at), at));
    }

    /// Waits for a blocked command's reply while still noticing a disconnect, a kill or shutdown, and
    /// still delivering pushes. Input that arrives meanwhile is kept (bounded) and handled after the
    /// reply, as Redis does.
    async fn wait_blocked(&mut self, blocked: Blocked) -> Result<Reply, End> {
        let broker = self.broker.clone();
        // CLIENT UNBLOCK finds a wait computed elsewhere through the client (`unblock.rs`).
        let unblockable = blocked.unblocker().cloned();
        let lent = unblockable.is_some();
        if lent {
            self.client.waits_on(unblockable);
        }
        let reply = self.wait_for(blocked.wait(&broker)).await;
        if lent {
            self.client.waits_on(None);
        }
        let reply = reply?;
        // Whatever served this client changed stored data (a pop, a claim): its records are at most
        // the log's newest.
        if let Some(p) = &broker.persist {
            self.session.commit_lsn = p.lsn();
        }
        Ok(reply)
    }

    /// Waits for `wait` (a blocked command's reply, the end of a pause) while still noticing a
    /// disconnect, a kill or shutdown, and still delivering pushes; input that arrives meanwhile is
    /// kept, bounded by `client_query_buffer_limit`.
    pub(super) async fn wait_for<T>(&mut self, wait: impl std::future::Future<Output = T>) -> Result<T, End> {
        self.flush().await?;
        let client = self.client.clone();
        let doorbell = client.outbox.doorbell();
        // A token that expires while the command waits ends the connection then, as it would between
        // commands (the one deadline that matters here: the others are about input, which waiting is not).
        let expiry = self.session.token_expiry.map(|ms| self.broker.clock.instant_at(ms));
        let expired = tokio::time::sleep_until(expiry.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365)));
        tokio::pin!(wait, expired);
        loop {
            tokio::select! {
                biased;
                done = &mut wait => return Ok(done),
                _ = &mut expired, if expiry.is_some() => {
                    self.wire.encode_end(&End::TokenExpired, &mut self.out);
                    return Err(End::TokenExpired);
                }
                rung = std::future::poll_fn(|cx| doorbell.poll_rung(cx)) => {
                    self.answer(rung)?;
                    self.flush().await?;
                }
                read = self.wire.read() => {
                    self.received(read?);
                    if self.wire.pending_input() > self.backlog_limit {
                        return Err(End::Backlog);
                    }
                    self.flush().await?;
                }
            }
        }
    }

    /// Sends a command's reply, unless CLIENT REPLY turned it off (pushes still go).
    fn reply(&mut self, tag: &W::Tag, reply: &Reply) {
        self.drain_pushes_first();
        if !self.session.muted {
            self.wire.encode_reply(tag, reply, self.session.encoding(), &mut self.out);
        }
    }

    /// Pushes already queued go before a reply, so a subscriber sees messages and replies in the order
    /// they happened.
    pub(super) fn drain_pushes_first(&mut self) {
        if !self.session.subscriptions.is_empty() {
            self.drain_pushes();
        }
    }

    #[inline]
    fn deadlines(&self) -> Deadlines {
        let profile = &self.profile;
        let mut idle = profile.idle.map(|idle| self.heard + idle);
        if profile.redis_timeout {
            // Redis's `timeout`: idle clients are closed, except subscribers.
            let secs = self.broker.timeout_secs();
            if secs > 0 && self.session.subscriptions.is_empty() {
                let last = self.broker.clock.instant_at(self.client.last_active_ms());
                idle = Some(last + Duration::from_secs(secs));
            }
        }
        Deadlines {
            auth: profile.auth.filter(|_| !self.session.authenticated).map(|auth| self.opened + auth),
            token: self.session.token_expiry.map(|ms| self.broker.clock.instant_at(ms)),
            idle,
            heartbeat: self.next_heartbeat,
        }
    }

    /// The timer fired: end the connection, or send a heartbeat.
    fn deadline_passed(&mut self) -> Result<(), End> {
        let now = Instant::now();
        let due = self.deadlines();
        if due.auth.is_some_and(|at| at <= now) {
            // The wire's last words (RESP says why before closing; the WebSocket's close frame does).
            self.wire.encode_end(&End::AuthTimeout, &mut self.out);
            return Err(End::AuthTimeout);
        }
        if due.token.is_some_and(|at| at <= now) {
            self.wire.encode_end(&End::TokenExpired, &mut self.out);
            return Err(End::TokenExpired);
        }
        if due.idle.is_some_and(|at| at <= now) {
            return Err(End::Idle);
        }
        if let (Some(at), Some(every)) = (due.heartbeat, self.profile.heartbeat)
            && at <= now
        {
            self.wire.encode_heartbeat(&mut self.out);
            self.next_heartbeat = Some(now + every);
        }
        Ok(())
    }

    /// Logs and counts the end, sends what is still owed (unless the peer is gone or stuck) and the
    /// wire's close, then leaves nothing behind: subscriptions, watches, blocked waits and the
    /// registry entry go with the connection.
    async fn finish(mut self, end: End) {
        end.record(&self.broker, &self.client);
        if end.owes_output() {
            let _ = tokio::time::timeout(CLOSE_GRACE, self.flush()).await;
        }
        let _ = tokio::time::timeout(CLOSE_GRACE, self.wire.close(&end)).await;
        dispatch::disconnect(&mut self.session, &self.broker);
    }
}
