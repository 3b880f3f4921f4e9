//! Per-connection state that commands read and change: database, encoding, auth, transaction,
//! subscriptions. Transport-neutral: the connection core (`server/conn`) owns one per connection and
//! hands it to [`super::handle`] with every request; only dispatch changes it.
//!
//! What CLIENT LIST shows of it (database, MULTI, subscription counts) is published to the client's
//! registry entry by [`Session::publish`], the one place that copies it, whenever one of the methods
//! below changes it; those fields are private so nothing can change them without publishing.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use herald_protocol::command::{Command, CommandSpec, Found, ReplyMode};
use herald_protocol::{CommandError, Encoding, Protocol, Request};

use crate::clients::ClientHandle;
use crate::engine::keyspace::WatchHandle;
use crate::pubsub::Subscriber;

/// A queued MULTI command: parsed at queue time, its parse error (if any) reported by EXEC; the
/// request itself is kept (SLOWLOG and MONITOR show its arguments, and EXEC checks it again when the
/// ACL changed meanwhile).
pub type Queued = (Found, Request, Result<Command, CommandError>);

#[derive(Debug, Default)]
pub struct Multi {
    pub queue: Vec<Queued>,
    /// On the Redis engine: the requests EXEC sends to Redis as one `MULTI ... EXEC`, as they came.
    pub forwarded: Vec<(&'static CommandSpec, herald_protocol::Request)>,
    /// A command was refused while queueing: EXEC will answer EXECABORT.
    pub failed: bool,
    /// The ACL's epoch at MULTI: when it moved by EXEC, every queued command is checked again.
    pub acl_epoch: u64,
}

#[derive(Debug, Default)]
pub struct Subscriptions {
    pub channels: HashSet<Bytes>,
    pub patterns: HashSet<Bytes>,
    pub shard_channels: HashSet<Bytes>,
}

impl Subscriptions {
    /// The count Redis reports in (p)subscribe confirmations: channels plus patterns.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.is_empty() && self.shard_channels.is_empty()
    }
}

pub struct Session {
    pub client: Arc<ClientHandle>,
    db: usize,
    encoding: Encoding,
    pub authenticated: bool,
    /// The ACL user commands run as (the `default` user until AUTH says otherwise).
    pub user: crate::acl::SessionUser,
    /// When the token the session authenticated with expires (unix ms): the connection ends then
    /// unless a fresh token arrives first (`AUTH.TOKEN`). `None` for password and default sessions.
    pub token_expiry: Option<u64>,
    multi: Option<Multi>,
    pub watch: WatchHandle,
    /// On the Redis engine, while the session WATCHes keys: its own Redis connection, which WATCH and
    /// the EXEC that ends it must share (`remote/watch.rs`).
    pub pinned: Option<crate::remote::Pinned>,
    /// On Redis Cluster: the cluster's master generation when the session first sent something or
    /// last WAITed; a WAIT after the masters changed (a failover) cannot vouch for earlier writes
    /// (`remote/cluster.rs`, `fence`).
    pub masters_seen: Option<u64>,
    /// Changed by the pub-sub commands, which then call [`Session::publish`].
    pub subscriptions: Subscriptions,
    /// The time of the batch of requests being handled (unix ms, instant), set by the connection
    /// once per read so pipelined commands do not each read the clock. `None`: read it per command.
    pub batch_time: Option<(u64, tokio::time::Instant)>,
    /// The persistence log's LSN this session's replies wait for (see `Persistence::commit`).
    pub commit_lsn: u64,
    /// The last command noted in the client's info, so a run of the same command takes no lock.
    last_command: Option<&'static CommandSpec>,
    /// Commands of each family in the batch under way, for the latency histograms (`latency.rs`).
    pub batch_families: crate::latency::BatchCounts,
    /// CLIENT REPLY: whether replies are sent (pushes always are, as Redis 7.0 sends subscribe
    /// confirmations and messages to a client whose replies are off).
    pub reply_mode: ReplyMode,
    /// The reply to the request being handled is not sent (replies off, or skipped). Set by
    /// [`Session::begin_request`] and by CLIENT REPLY itself; read by the connection.
    pub muted: bool,
    /// CLIENT NO-TOUCH: this client's reads leave keys' access times (OBJECT IDLETIME) alone.
    pub no_touch: bool,
    /// The Redis engine's quota check asked Redis about the request being handed to dispatch again and
    /// let it through, saying whether it creates (`remote/quota.rs`); taken by that check.
    pub quota_cleared: Option<bool>,
}

impl Session {
    pub fn new(client: Arc<ClientHandle>, authenticated: bool, encoding: Encoding) -> Self {
        Session {
            client,
            db: 0,
            encoding,
            authenticated,
            user: crate::acl::SessionUser::default(),
            token_expiry: None,
            multi: None,
            watch: WatchHandle::new(),
            pinned: None,
            masters_seen: None,
            subscriptions: Subscriptions::default(),
            batch_time: None,
            commit_lsn: 0,
            last_command: None,
            batch_families: [0; crate::latency::FAMILIES],
            reply_mode: ReplyMode::On,
            muted: false,
            no_touch: false,
            quota_cleared: None,
        }
    }

    /// The session a script runs its commands with when it runs on the script thread: this client,
    /// its database, encoding and authentication (what the permission check reads), and nothing of
    /// its transaction or subscriptions.
    pub fn for_script(&self) -> Session {
        let mut session = Session::new(self.client.clone(), self.authenticated, self.encoding);
        session.db = self.db;
        session.batch_time = self.batch_time;
        // A script acts as its caller: `redis.call` may reach only what the caller's user may.
        session.user = self.user.clone();
        session.token_expiry = self.token_expiry;
        session
    }

    pub fn id(&self) -> u64 {
        self.client.id
    }

    pub fn db(&self) -> usize {
        self.db
    }

    /// How replies and pushes to this session are rendered.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// This session as a hub subscriber.
    pub fn subscriber(&self) -> Subscriber {
        Subscriber { client_id: self.client.id, outbox: self.client.outbox.clone() }
    }

    /// RESP2's subscribed mode restricts commands; RESP3 and JSON sessions are never restricted.
    pub fn in_subscribed_mode(&self) -> bool {
        self.encoding == Encoding::Resp2 && !self.subscriptions.is_empty()
    }

    /// HELLO's protocol version: a RESP session's replies and pushes switch to it; a JSON session only
    /// reports it.
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.encoding = self.encoding.after_hello(protocol);
        self.client.outbox.set_format(self.encoding);
        self.client.activity().resp = protocol.version();
    }

    /// The RESP version HELLO negotiated (2 until a HELLO says otherwise).
    pub fn protocol_version(&self) -> i64 {
        self.client.activity().resp
    }

    pub fn set_db(&mut self, db: usize) {
        self.db = db;
        self.publish();
    }

    pub fn in_multi(&self) -> bool {
        self.multi.is_some()
    }

    /// MULTI: starts queueing.
    pub fn begin_multi(&mut self, acl_epoch: u64) {
        self.multi = Some(Multi { acl_epoch, ..Multi::default() });
        self.publish();
    }

    /// Queues a command inside MULTI; `false` when no transaction is open.
    pub fn queue(&mut self, queued: Queued) -> bool {
        let Some(multi) = &mut self.multi else { return false };
        multi.queue.push(queued);
        self.publish();
        true
    }

    /// Queues a request for Redis inside MULTI (the Redis engine); `false` when no transaction is open.
    pub fn queue_forwarded(&mut self, spec: &'static CommandSpec, req: herald_protocol::Request) -> bool {
        let Some(multi) = &mut self.multi else { return false };
        multi.forwarded.push((spec, req));
        self.publish();
        true
    }

    /// Ends the transaction (EXEC, DISCARD, RESET), handing over what it queued.
    pub fn take_multi(&mut self) -> Option<Multi> {
        let multi = self.multi.take();
        if multi.is_some() {
            self.publish();
        }
        multi
    }

    /// Whether the open transaction queued a command that writes or is propagated (CLIENT PAUSE WRITE
    /// holds its EXEC).
    pub fn queued_writes(&self) -> bool {
        use herald_protocol::command::flags;
        self.multi.as_ref().is_some_and(|m| {
            m.queue
                .iter()
                .map(|(found, _, _)| found.spec)
                .chain(m.forwarded.iter().map(|(spec, _)| *spec))
                .any(|spec| spec.has(flags::WRITE | flags::MAY_REPLICATE))
        })
    }

    /// Marks an open transaction as failed (a queue-time error): EXEC will abort.
    pub fn flag_transaction(&mut self) {
        if let Some(m) = &mut self.multi {
            m.failed = true;
        }
    }

    /// A request arrives: whether its reply is sent follows CLIENT REPLY (a skip covers one request).
    #[inline]
    pub fn begin_request(&mut self) {
        self.quota_cleared = None;
        self.muted = self.reply_mode != ReplyMode::On;
        if self.reply_mode == ReplyMode::Skip {
            self.reply_mode = ReplyMode::On;
        }
    }

    /// CLIENT REPLY: OFF and SKIP take effect at once (their own reply is not sent), ON answers OK.
    pub fn set_reply_mode(&mut self, mode: ReplyMode) {
        self.reply_mode = mode;
        self.muted = mode != ReplyMode::On;
    }

    /// Notes the command about to run for CLIENT LIST (`cmd`, `idle`) and the idle timeout. The time
    /// is an atomic store; the name takes the info lock only when it differs from the last one.
    pub fn note_command(&mut self, spec: &'static CommandSpec, now_ms: u64) {
        self.client.touch(now_ms);
        self.batch_families[spec.group as usize] += 1;
        if !self.last_command.is_some_and(|last| std::ptr::eq(last, spec)) {
            self.last_command = Some(spec);
            self.client.activity().last_command = spec.name;
        }
    }

    /// Copies what CLIENT LIST shows of this session into the client's registry entry.
    pub fn publish(&self) {
        let mut info = self.client.activity();
        info.db = self.db;
        info.multi = self.multi.as_ref().map_or(-1, |m| (m.queue.len() + m.forwarded.len()) as i64);
        info.channels = self.subscriptions.channels.len();
        info.patterns = self.subscriptions.patterns.len();
        info.shard_channels = self.subscriptions.shard_channels.len();
    }
}
