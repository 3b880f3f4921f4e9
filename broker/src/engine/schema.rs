//! Schemas (SCHEMA.*): a JSON Schema attached to a board, a job queue, a mailbox topic or a
//! blackboard scope; every publish, submit, send or set there must validate, or it is refused with
//! `SCHEMA <json-pointer>: <reason>` and nothing is stored (the seeds' type shield, `Bulletin[T]`).
//!
//! Schemas are compiled once, when set (by the `jsonschema` crate, without network access: a schema's
//! `$ref`s must resolve within it). The other engines know nothing of them: dispatch checks a write
//! here before handing it to its engine, under the same lock, so the check and the write are one
//! step.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::Error;
use super::change::{Change, ChangeSink};

/// The `[schemas]` section of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaSettings {
    /// Most schemas attached at once.
    pub max_schemas: usize,
}

/// What a schema is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SchemaKind {
    /// A bulletin board (in a scope): BL.PUBLISH items.
    Board,
    /// A job queue: JOB.SUBMIT payloads.
    Queue,
    /// A mailbox topic (in every mailbox): MSG.SEND and MSG.REQUEST payloads.
    Topic,
    /// A named blackboard scope: BB.SET values.
    Scope,
}

impl SchemaKind {
    pub fn name(self) -> &'static str {
        match self {
            SchemaKind::Board => "board",
            SchemaKind::Queue => "queue",
            SchemaKind::Topic => "topic",
            SchemaKind::Scope => "scope",
        }
    }
}

/// A schema's target: its kind, the scope (boards only; empty otherwise) and the name.
pub type Target = (SchemaKind, Bytes, Bytes);

struct Schema {
    text: Bytes,
    validator: jsonschema::Validator,
}

pub struct Schemas {
    schemas: HashMap<Target, Schema>,
    settings: SchemaSettings,
    sink: Arc<dyn ChangeSink>,
}

/// Compiles a schema's text.
fn compile(text: &[u8]) -> Result<jsonschema::Validator, Error> {
    let json: serde_json::Value = serde_json::from_slice(text).map_err(|e| Error::new(format!("ERR the schema is not JSON: {e}")))?;
    jsonschema::validator_for(&json).map_err(|e| {
        let at = e.instance_path().as_str().to_owned();
        let at = if at.is_empty() { String::new() } else { format!(" (at {at})") };
        Error::new(format!("ERR invalid JSON Schema: {e}{at}"))
    })
}

impl Schemas {
    pub fn new(settings: SchemaSettings, sink: Arc<dyn ChangeSink>) -> Self {
        Schemas { schemas: HashMap::new(), settings, sink }
    }

    /// SCHEMA.SET: attaches (or replaces) the schema of `target`. The global blackboard scope is
    /// refused: it is the Redis keyspace, whose plain commands (SET, APPEND, ...) no schema could guard.
    pub fn set(&mut self, target: Target, text: &[u8]) -> Result<(), Error> {
        if target.0 == SchemaKind::Scope && target.2.is_empty() {
            return Err(Error::fixed(
                "ERR the global scope \"\" is the Redis keyspace, which plain commands write around a schema: attach it to a named scope",
            ));
        }
        let validator = compile(text)?;
        if !self.schemas.contains_key(&target) && self.schemas.len() >= self.settings.max_schemas {
            return Err(Error::fixed("FULL too many schemas (schemas.max_schemas)"));
        }
        let text = Bytes::copy_from_slice(text);
        self.emit(&target, Some(&text));
        self.schemas.insert(own(target), Schema { text, validator });
        Ok(())
    }

    pub fn get(&self, target: &Target) -> Option<Bytes> {
        self.schemas.get(target).map(|s| s.text.clone())
    }

    /// SCHEMA.DEL: whether there was one.
    pub fn del(&mut self, target: &Target) -> bool {
        let gone = self.schemas.remove(target).is_some();
        if gone {
            self.emit(target, None);
        }
        gone
    }

    /// The one place a schema change is produced.
    fn emit(&self, (kind, scope, name): &Target, schema: Option<&[u8]>) {
        self.sink.emit(&Change::Schema { kind: *kind, scope, name, schema });
    }

    /// Checks a write to `(kind, scope, name)`: `Ok` without a schema, else the payload must be JSON
    /// that validates. The refusal names the first failing place as a JSON pointer.
    pub fn check(&self, kind: SchemaKind, scope: &[u8], name: &[u8], payload: &[u8]) -> Result<(), Error> {
        if self.schemas.is_empty() {
            return Ok(());
        }
        let target = (kind, Bytes::copy_from_slice(scope), Bytes::copy_from_slice(name));
        let Some(schema) = self.schemas.get(&target) else { return Ok(()) };
        let json: serde_json::Value =
            serde_json::from_slice(payload).map_err(|e| Error::new(format!("SCHEMA : the {} is not JSON: {e}", payload_name(kind))))?;
        schema.validator.validate(&json).map_err(|e| Error::new(format!("SCHEMA {}: {}", e.instance_path().as_str(), e.masked())))
    }
}

/// A target whose names are copies (a command's arguments are views into its connection's buffer).
fn own((kind, scope, name): Target) -> Target {
    (kind, Bytes::copy_from_slice(&scope), Bytes::copy_from_slice(&name))
}

fn payload_name(kind: SchemaKind) -> &'static str {
    match kind {
        SchemaKind::Board => "item",
        SchemaKind::Queue => "payload",
        SchemaKind::Topic => "message",
        SchemaKind::Scope => "value",
    }
}

/// Putting schemas back from persistence, and reading them out for a snapshot.
impl Schemas {
    /// A schema as recorded (`None`: removed). One that no longer compiles is an error for the
    /// caller to report.
    pub fn restore(&mut self, target: Target, text: Option<Bytes>) -> Result<(), Error> {
        match text {
            Some(text) => {
                let validator = compile(&text)?;
                self.schemas.insert(target, Schema { text, validator });
            }
            None => {
                self.schemas.remove(&target);
            }
        }
        Ok(())
    }

    pub fn image(&self, mut f: impl FnMut(&Target, &Bytes)) {
        for (target, schema) in &self.schemas {
            f(target, &schema.text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemas() -> Schemas {
        Schemas::new(SchemaSettings { max_schemas: 2 }, Arc::new(crate::engine::change::Discard))
    }

    fn t(kind: SchemaKind, name: &str) -> Target {
        (kind, Bytes::new(), Bytes::copy_from_slice(name.as_bytes()))
    }

    #[test]
    fn writes_must_validate_and_name_the_failing_place() {
        let mut s = schemas();
        assert!(s.check(SchemaKind::Queue, b"", b"q", b"not json").is_ok(), "no schema: anything goes");
        let schema = br#"{"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}"#;
        s.set(t(SchemaKind::Queue, "q"), schema).unwrap();
        assert!(s.check(SchemaKind::Queue, b"", b"q", br#"{"n": 1}"#).is_ok());
        assert!(s.check(SchemaKind::Queue, b"", b"other", br#"{"n": "x"}"#).is_ok());
        assert!(s.check(SchemaKind::Topic, b"", b"q", br#"{"n": "x"}"#).is_ok(), "kinds are separate");
        assert_eq!(
            s.check(SchemaKind::Queue, b"", b"q", br#"{"n": "x"}"#).unwrap_err().text(),
            r#"SCHEMA /n: value is not of type "integer""#
        );
        let root = s.check(SchemaKind::Queue, b"", b"q", b"[]").unwrap_err();
        assert_eq!(root.text(), r#"SCHEMA : value is not of type "object""#);
        assert!(s.check(SchemaKind::Queue, b"", b"q", b"{").unwrap_err().text().starts_with("SCHEMA : the payload is not JSON"));
        assert_eq!(s.get(&t(SchemaKind::Queue, "q")).as_deref(), Some(&schema[..]));
        assert!(s.del(&t(SchemaKind::Queue, "q")));
        assert!(!s.del(&t(SchemaKind::Queue, "q")));
        assert!(s.check(SchemaKind::Queue, b"", b"q", b"[]").is_ok());
    }

    #[test]
    fn bad_schemas_and_bounds() {
        let mut s = schemas();
        assert!(s.set(t(SchemaKind::Board, "b"), b"{").unwrap_err().text().starts_with("ERR the schema is not JSON"));
        assert!(s.set(t(SchemaKind::Board, "b"), br#"{"type": 12}"#).unwrap_err().text().starts_with("ERR invalid JSON Schema"));
        assert!(s.set(t(SchemaKind::Board, "b"), br#"{"$ref": "http://example.com/s.json"}"#).is_err(), "no network");
        assert!(s.set(t(SchemaKind::Scope, ""), b"{}").is_err(), "the global scope is the keyspace");
        s.set(t(SchemaKind::Board, "a"), b"{}").unwrap();
        s.set(t(SchemaKind::Board, "b"), b"{}").unwrap();
        s.set(t(SchemaKind::Board, "b"), b"true").unwrap();
        assert_eq!(s.set(t(SchemaKind::Board, "c"), b"{}").unwrap_err().code(), "FULL");
    }
}
