//! Herald's values to Redis's and back: a request as a `redis::Cmd`, a `redis::Value` as a [`Reply`].
//!
//! The node keeps one backing connection per protocol (RESP2 for RESP2 clients, RESP3 for RESP3 and
//! JSON clients), so a reply keeps the shape Redis gave it for the client's protocol. The one thing the
//! `redis` crate does not tell apart is RESP2's null bulk (`$-1`) from its null array (`*-1`): that
//! depends on the command, as Redis decides it, so [`nil_of`] says which one a command answers.

use bytes::Bytes;
use herald_protocol::command::CommandSpec;
use herald_protocol::{CommandError, Reply, Request};
use redis::Value;

/// The request as a Redis command, name and arguments as the client sent them.
pub fn command(req: &Request) -> redis::Cmd {
    let mut cmd = redis::Cmd::new();
    for part in req.parts() {
        cmd.arg(&part[..]);
    }
    cmd
}

/// What Redis's null means for this command in RESP2: a null array for the commands that answer
/// `*-1` (a blocking pop or move that timed out, XREAD with nothing, XRANGE with COUNT 0, LPOP/RPOP
/// with a count on a missing key, LMPOP/ZMPOP with nothing to pop), a null bulk for everything else.
/// Inside EXEC, where nothing blocks, BLMOVE and BRPOPLPUSH answer as LMOVE does: a null bulk.
pub fn nil_of(spec: &CommandSpec, argc: usize, in_exec: bool) -> Reply {
    match spec.name {
        "blmove" | "brpoplpush" if in_exec => Reply::Nil,
        "blpop" | "brpop" | "blmove" | "brpoplpush" | "bzpopmin" | "bzpopmax" | "blmpop" | "bzmpop" | "lmpop" | "zmpop" | "xread"
        | "xreadgroup" | "xrange" | "xrevrange" => Reply::NilArray,
        "lpop" | "rpop" if argc > 2 => Reply::NilArray,
        _ => Reply::Nil,
    }
}

/// Redis's error as the node's error reply: the same code and text.
pub fn error(e: &redis::ServerError) -> CommandError {
    match e.details() {
        Some(detail) => CommandError::new(format!("{} {detail}", e.code())),
        None => CommandError::new(e.code().to_owned()),
    }
}

/// A request that failed: Redis's own error as it is, or a failure to reach Redis (connection refused,
/// lost, timed out) as an error that says so.
pub fn failed(e: &redis::RedisError) -> Reply {
    match (e.kind(), e.code()) {
        // Codes the crate does not know (a script's `FULL`, `LEASE`, a module's own) are "extension" errors.
        (redis::ErrorKind::Server(_) | redis::ErrorKind::Extension, Some(code)) => match e.detail() {
            Some(detail) => Reply::Error(CommandError::new(format!("{code} {detail}"))),
            None => Reply::Error(CommandError::new(code.to_owned())),
        },
        _ => Reply::Error(CommandError::new(format!("ERR redis engine unavailable: {e}"))),
    }
}

/// A Redis reply as Herald's; `nil` is what a top-level null stands for (see [`nil_of`]).
pub fn reply(value: Value, nil: &Reply) -> Reply {
    match value {
        Value::Nil => nil.clone(),
        Value::Int(n) => Reply::Int(n),
        Value::BulkString(b) => Reply::Bulk(Bytes::from(b)),
        Value::Array(items) => Reply::Array(items.into_iter().map(nested).collect()),
        Value::SimpleString(s) => Reply::Status(s.into()),
        Value::Okay => Reply::ok(),
        Value::Map(pairs) => Reply::Map(pairs.into_iter().map(|(k, v)| (nested(k), nested(v))).collect()),
        Value::Attribute { data, .. } => reply(*data, nil),
        Value::Set(items) => Reply::Set(items.into_iter().map(nested).collect()),
        Value::Double(d) => Reply::Double(d),
        Value::Boolean(b) => Reply::Bool(b),
        Value::VerbatimString { text, .. } => Reply::Verbatim(Bytes::from(text)),
        Value::BigNumber(n) => Reply::Bulk(Bytes::from(n)),
        Value::Push { data, .. } => Reply::Push(data.into_iter().map(nested).collect()),
        Value::ServerError(e) => Reply::Error(error(&e)),
        // `redis::Value` is non-exhaustive: a kind a later crate adds is shown as text, never dropped.
        other => Reply::Bulk(Bytes::from(format!("{other:?}"))),
    }
}

/// Inside an aggregate a null is a null bulk (XREAD's and EXEC's elements are handled by their caller).
fn nested(value: Value) -> Reply {
    reply(value, &Reply::Nil)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_shape() {
        let v = Value::Array(vec![Value::BulkString(b"a".to_vec()), Value::Nil, Value::Int(3), Value::Okay]);
        assert_eq!(reply(v, &Reply::NilArray), Reply::Array(vec![Reply::bulk("a"), Reply::Nil, Reply::Int(3), Reply::ok()]));
        assert_eq!(reply(Value::Nil, &Reply::NilArray), Reply::NilArray);
        assert_eq!(reply(Value::Double(1.5), &Reply::Nil), Reply::Double(1.5));
    }
}
