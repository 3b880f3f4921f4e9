//! Schema commands, and the check every guarded write passes before its engine stores it.

use herald_protocol::Reply;
use herald_protocol::command::{self, SchemaCommand, SchemaTarget};

use super::{Cx, Outcome};
use crate::engine::schema::{SchemaKind, Target};

fn kind(k: command::SchemaKind) -> SchemaKind {
    match k {
        command::SchemaKind::Board => SchemaKind::Board,
        command::SchemaKind::Queue => SchemaKind::Queue,
        command::SchemaKind::Topic => SchemaKind::Topic,
        command::SchemaKind::Scope => SchemaKind::Scope,
    }
}

/// A command's schema target as the engine's (the Redis engine's too).
pub fn target(t: SchemaTarget) -> Target {
    (kind(t.kind), t.scope, t.name)
}

pub fn execute(cmd: SchemaCommand, cx: &mut Cx<'_>) -> Outcome {
    // The Redis engine keeps the schemas in Redis, each node a compiled replica (`remote/schema.rs`).
    if let Some(remote) = &cx.broker.remote {
        return crate::remote::schema::execute(remote, cmd);
    }
    let schemas = &mut cx.state().schemas;
    match cmd {
        SchemaCommand::Set { target: t, schema } => schemas.set(target(t), &schema).map(|_| Reply::ok()).into(),
        SchemaCommand::Get(t) => schemas.get(&target(t)).map_or(Reply::Nil, Reply::Bulk).into(),
        SchemaCommand::Del(t) => Reply::Int(i64::from(schemas.del(&target(t)))).into(),
    }
}
