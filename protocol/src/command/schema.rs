//! Schemas (SCHEMA.*): JSON Schemas attached to boards, job queues, mailbox topics and blackboard
//! scopes.

use bytes::Bytes;

use super::conn::spec;
use super::flags::*;
use super::{Command, CommandSpec, Group, NO_KEYS};
use crate::error::CommandError;
use crate::request::{Args, is_word};

/// What a schema is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaKind {
    Board,
    Queue,
    Topic,
    Scope,
}

/// `kind name [SCOPE s]`: `scope` is a board's scope (empty otherwise).
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaTarget {
    pub kind: SchemaKind,
    pub scope: Bytes,
    pub name: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SchemaCommand {
    Set { target: SchemaTarget, schema: Bytes },
    Get(SchemaTarget),
    Del(SchemaTarget),
}

fn ok(c: SchemaCommand) -> Result<Command, CommandError> {
    Ok(Command::Schema(c))
}

fn kind(raw: &[u8]) -> Result<SchemaKind, CommandError> {
    [("board", SchemaKind::Board), ("queue", SchemaKind::Queue), ("topic", SchemaKind::Topic), ("scope", SchemaKind::Scope)]
        .into_iter()
        .find(|(word, _)| is_word(raw, word))
        .map(|(_, k)| k)
        .ok_or_else(|| {
            CommandError::new(format!("ERR unknown schema kind '{}' (board, queue, topic or scope)", String::from_utf8_lossy(raw)))
        })
}

/// `kind name`, with the schema in between for SET (`with_schema`), then `[SCOPE s]` for boards.
fn parse(mut a: Args, with_schema: bool) -> Result<(SchemaTarget, Option<Bytes>), CommandError> {
    let (kind, name) = (kind(&a.next_bytes()?)?, a.next_bytes()?);
    let schema = if with_schema { Some(a.next_bytes()?) } else { None };
    let mut scope = Bytes::new();
    if a.eat("SCOPE") {
        if kind != SchemaKind::Board {
            return Err(CommandError::fixed("ERR SCOPE applies to boards only (a scope's schema is 'scope <name>')"));
        }
        scope = a.next_bytes()?;
    }
    a.finish()?;
    Ok((SchemaTarget { kind, scope, name }, schema))
}

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!(
        "schema.set",
        -4,
        WRITE | DENYOOM,
        NO_KEYS,
        Schema,
        "0.1.0",
        "Attaches a JSON Schema that every write must validate. SCHEMA.SET board|queue|topic|scope name schema [SCOPE s]",
        |a| {
            let (target, schema) = parse(a, true)?;
            ok(SchemaCommand::Set { target, schema: schema.expect("parsed") })
        }
    ),
    spec!(
        "schema.get",
        -3,
        READONLY | FAST,
        NO_KEYS,
        Schema,
        "0.1.0",
        "The JSON Schema attached, or nil. SCHEMA.GET board|queue|topic|scope name [SCOPE s]",
        |a| ok(SchemaCommand::Get(parse(a, false)?.0))
    ),
    spec!(
        "schema.del",
        -3,
        WRITE,
        NO_KEYS,
        Schema,
        "0.1.0",
        "Removes an attached JSON Schema; 1 if there was one. SCHEMA.DEL board|queue|topic|scope name [SCOPE s]",
        |a| ok(SchemaCommand::Del(parse(a, false)?.0))
    ),
];
