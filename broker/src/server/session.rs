//! Per-connection state that commands read and change: database, protocol, auth, transaction,
//! subscriptions. Transport-neutral: RESP and WebSocket connections each own one.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use herald_protocol::command::{Command, CommandSpec};
use herald_protocol::{CommandError, Protocol};

use super::clients::ClientHandle;
use crate::engine::keyspace::WatchHandle;
use crate::pubsub::{Subscriber, WireFormat};

/// A queued MULTI command: parsed at queue time, its parse error (if any) reported by EXEC.
pub type Queued = (&'static CommandSpec, Result<Command, CommandError>);

#[derive(Debug, Default)]
pub struct Multi {
    pub queue: Vec<Queued>,
    /// A command was refused while queueing: EXEC will answer EXECABORT.
    pub failed: bool,
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
    pub db: usize,
    pub protocol: Protocol,
    pub authenticated: bool,
    pub multi: Option<Multi>,
    pub watch: WatchHandle,
    pub subscriptions: Subscriptions,
    /// JSON sessions render pushes as JSON whatever `protocol` says.
    pub json: bool,
    /// The time of the batch of requests being handled (unix ms, instant), set by the connection
    /// once per read so pipelined commands do not each read the clock. `None`: read it per command.
    pub batch_time: Option<(u64, tokio::time::Instant)>,
    /// The persistence log's LSN this session's replies wait for (see `Persistence::commit`).
    pub commit_lsn: u64,
}

impl Session {
    pub fn new(client: Arc<ClientHandle>, authenticated: bool, json: bool) -> Self {
        Session {
            client,
            db: 0,
            protocol: Protocol::Resp2,
            authenticated,
            multi: None,
            watch: WatchHandle::new(),
            subscriptions: Subscriptions::default(),
            json,
            batch_time: None,
            commit_lsn: 0,
        }
    }

    pub fn id(&self) -> u64 {
        self.client.id
    }

    /// This session as a hub subscriber.
    pub fn subscriber(&self) -> Subscriber {
        Subscriber { client_id: self.client.id, outbox: self.client.outbox.clone() }
    }

    /// RESP2's subscribed mode restricts commands; RESP3 and JSON sessions are never restricted.
    pub fn in_subscribed_mode(&self) -> bool {
        self.protocol == Protocol::Resp2 && !self.json && !self.subscriptions.is_empty()
    }

    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
        if !self.json {
            self.client.outbox.set_format(match protocol {
                Protocol::Resp2 => WireFormat::Resp2,
                Protocol::Resp3 => WireFormat::Resp3,
            });
        }
        self.client.activity().resp = protocol.version();
    }

    pub fn set_db(&mut self, db: usize) {
        self.db = db;
        self.client.activity().db = db;
    }

    /// Marks an open transaction as failed (a queue-time error): EXEC will abort.
    pub fn flag_transaction(&mut self) {
        if let Some(m) = &mut self.multi {
            m.failed = true;
        }
    }

    /// Mirrors subscription counts into the registry for CLIENT LIST.
    pub fn publish_subscription_counts(&self) {
        let mut a = self.client.activity();
        a.channels = self.subscriptions.channels.len();
        a.patterns = self.subscriptions.patterns.len();
        a.shard_channels = self.subscriptions.shard_channels.len();
    }
}
