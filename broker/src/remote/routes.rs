//! Where each command goes on the Redis engine: to the backing Redis as it is, answered by the node, run
//! by the node's Redis-engine implementation of a Herald domain, or refused. Decided once per command
//! spec when the engine starts (a table indexed like INFO commandstats), so a request pays one load.

use herald_protocol::Request;
use herald_protocol::command::{CommandSpec, Group, flags, indexed_specs, spec_index};

/// What the node does with a command on the Redis engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Sent to Redis on the shared multiplexed connection; Redis's reply is the reply.
    Forward,
    /// Sent to Redis on a dedicated connection, because Redis may hold the reply (BLPOP, XREAD BLOCK).
    ForwardBlocking,
    /// Answered by the node: connection and server commands, subscriptions (bridged), transactions.
    Local,
    /// A Herald domain the node runs on Redis itself (`remote/blackboard.rs`, `remote/jobs.rs`).
    Domain,
    /// Not available on the Redis engine: refused with a `-ERR ... not supported by the redis engine`.
    Unsupported,
}

/// The route of every command spec, by [`spec_index`].
pub struct Routes(Vec<Route>);

impl Routes {
    pub fn new() -> Self {
        Routes(indexed_specs().iter().map(|s| route_of(s)).collect())
    }

    /// The route of `spec` for this request: XREAD / XREADGROUP block only with BLOCK.
    pub fn of(&self, spec: &'static CommandSpec, req: &Request) -> Route {
        match self.0.get(spec_index(spec)).copied().unwrap_or(Route::Local) {
            Route::ForwardBlocking if spec.name.starts_with("xread") && !crate::dispatch::blocks(req) => Route::Forward,
            route => route,
        }
    }
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

fn route_of(spec: &CommandSpec) -> Route {
    let data = || if spec.has(flags::BLOCKING) { Route::ForwardBlocking } else { Route::Forward };
    match spec.group {
        // Redis's own data types and scripts: Redis answers, so its semantics are exact.
        Group::Generic | Group::String | Group::List | Group::Hash | Group::Set | Group::SortedSet | Group::Bitmap | Group::Scripting => {
            data()
        }
        // Redis Streams are Redis's; Herald's STREAM.* log runs on Redis too (`remote/stream.rs`).
        Group::Stream if spec.name.starts_with('x') => data(),
        Group::Stream => Route::Domain,
        Group::Server => match spec.name {
            "dbsize" | "flushall" | "flushdb" | "swapdb" => Route::Forward,
            _ => Route::Local,
        },
        Group::PubSub => match spec.name {
            // SPUBLISH travels as a PUBLISH on the shard channel's carrier (`bridge::shard_publish`);
            // SSUBSCRIBE is the node's, bridged like SUBSCRIBE.
            "publish" | "spublish" => Route::Forward,
            _ => Route::Local,
        },
        // WATCH / UNWATCH run on the session's pinned connection (`watch.rs`), BB.WATCH is checked
        // against the scope's change log at EXEC (`bb_watch.rs`); WATCH inside MULTI is the node's own
        // error.
        Group::Transactions | Group::Connection => Route::Local,
        Group::Blackboard => match spec.name {
            "bb.set" | "bb.get" | "bb.has" | "bb.del" | "bb.wait" | "bb.changes" | "bb.keys" | "bb.getall" | "bb.clear" | "bb.scopes"
            | "bb.stats" | "bb.memory" => Route::Domain,
            _ => Route::Unsupported,
        },
        // Boards and mailboxes run on Redis (`remote/bulletin.rs`, `remote/mailbox.rs`), their listings
        // SCANs over one key per board and destination (`remote/listing.rs`).
        Group::Bulletin | Group::Mailbox => Route::Domain,
        // Jobs on Redis (`remote/jobs.rs`), JOB.QUEUES a SCAN over the queues' keys (`remote/listing.rs`).
        Group::Jobs => Route::Domain,
        // Semaphores and schemas on Redis (`remote/semaphore.rs`, `remote/schema.rs`).
        Group::Semaphore | Group::Schema => Route::Domain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn req(parts: &[&'static str]) -> Request {
        Request::new(parts.iter().map(|p| Bytes::from_static(p.as_bytes())).collect())
    }

    fn route(parts: &[&'static str]) -> Route {
        let r = req(parts);
        let spec = herald_protocol::command::lookup(&r).expect("known").spec;
        Routes::new().of(spec, &r)
    }

    #[test]
    fn data_commands_go_to_redis_and_connection_commands_stay() {
        assert_eq!(route(&["GET", "k"]), Route::Forward);
        assert_eq!(route(&["ZADD", "z", "1", "a"]), Route::Forward);
        assert_eq!(route(&["XADD", "s", "*", "f", "v"]), Route::Forward);
        assert_eq!(route(&["EVAL", "return 1", "0"]), Route::Forward);
        assert_eq!(route(&["PUBLISH", "c", "m"]), Route::Forward);
        assert_eq!(route(&["SPUBLISH", "c", "m"]), Route::Forward);
        assert_eq!(route(&["SSUBSCRIBE", "c"]), Route::Local);
        assert_eq!(route(&["PING"]), Route::Local);
        assert_eq!(route(&["SUBSCRIBE", "c"]), Route::Local);
        assert_eq!(route(&["INFO"]), Route::Local);
        assert_eq!(route(&["BB.WATCH", "s", "k"]), Route::Local);
        assert_eq!(route(&["JOB.SUBMIT", "q", "p"]), Route::Domain);
        assert_eq!(route(&["JOB.QUEUES", "0"]), Route::Domain);
        assert_eq!(route(&["SEM.ACQUIRE", "s", "1"]), Route::Domain);
        assert_eq!(route(&["SCHEMA.GET", "board", "b"]), Route::Domain);
        assert_eq!(route(&["BB.MEMORY", "s", "k"]), Route::Domain);
        assert_eq!(route(&["BB.SET", "s", "k", "v"]), Route::Domain);
        assert_eq!(route(&["BB.STATS", "s"]), Route::Domain);
        assert_eq!(route(&["BL.PUBLISH", "b", "1"]), Route::Domain);
        assert_eq!(route(&["BL.BOARDS", "0"]), Route::Domain);
        assert_eq!(route(&["MSG.RECV", "d", "t"]), Route::Domain);
        assert_eq!(route(&["MSG.DESTS", "0"]), Route::Domain);
        assert_eq!(route(&["STREAM.READ", "s"]), Route::Domain);
        assert_eq!(route(&["STREAM.LIST", "0"]), Route::Domain);
    }

    #[test]
    fn blocking_commands_get_their_own_connection() {
        assert_eq!(route(&["BLPOP", "l", "0"]), Route::ForwardBlocking);
        assert_eq!(route(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]), Route::ForwardBlocking);
        assert_eq!(route(&["XREAD", "STREAMS", "s", "0"]), Route::Forward);
    }
}
