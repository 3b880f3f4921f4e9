//! WHERE filters over JSON items: a dotted path, a comparison, a value.
//!
//! Equality compares JSON values (numbers by value, so `1` equals `1.0`); the orderings compare
//! numbers with numbers and strings with strings, and are false across types or when the path is
//! missing (so `WHERE score < 3` never matches an item without a score).
//!
//! Items are kept as their JSON text only; a filter reads the value at its path by walking the text
//! (serde's streaming deserializer), skipping everything off the path without building it.

use std::cmp::Ordering;
use std::fmt;

use bytes::Bytes;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// `WHERE path op value`: `path` is dotted (`params.file`), `value` is JSON text (`3`, `true`,
/// `"x"`) or, if it does not parse as JSON, a plain string.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub path: Bytes,
    pub op: FilterOp,
    pub value: Bytes,
}

/// A filter ready to evaluate: the path split once, the value parsed once.
#[derive(Debug, Clone)]
pub struct Compiled {
    path: Vec<String>,
    op: FilterOp,
    value: Value,
}

pub fn compile(filters: &[Filter]) -> Vec<Compiled> {
    filters
        .iter()
        .map(|f| Compiled {
            path: String::from_utf8_lossy(&f.path).split('.').map(str::to_owned).collect(),
            op: f.op,
            value: serde_json::from_slice(&f.value).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&f.value).into_owned())),
        })
        .collect()
}

/// The value at `path` in the JSON text `item` (an object key per part, or an array index), or
/// `None` if the path leads nowhere (or the text is not JSON). As with a parsed object, the last of
/// repeated keys wins.
fn lookup(item: &[u8], path: &[String]) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(item);
    PathSeed { path }.deserialize(&mut de).ok().flatten()
}

/// Reads the value at `path` from whatever comes next, skipping the rest.
struct PathSeed<'p> {
    path: &'p [String],
}

impl<'de> DeserializeSeed<'de> for PathSeed<'_> {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        if self.path.is_empty() {
            return serde::Deserialize::deserialize(d).map(Some);
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PathSeed<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Value>, A::Error> {
        let mut found = None;
        while let Some(here) = map.next_key_seed(KeyIs(&self.path[0]))? {
            if here {
                found = map.next_value_seed(PathSeed { path: &self.path[1..] })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Value>, A::Error> {
        let wanted = self.path[0].parse::<usize>().ok();
        let (mut found, mut i) = (None, 0);
        loop {
            let more = if Some(i) == wanted {
                seq.next_element_seed(PathSeed { path: &self.path[1..] })?.map(|v| found = v)
            } else {
                seq.next_element::<IgnoredAny>()?.map(|_| ())
            };
            if more.is_none() {
                return Ok(found);
            }
            i += 1;
        }
    }

    fn visit_bool<E>(self, _: bool) -> Result<Option<Value>, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Option<Value>, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Option<Value>, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Option<Value>, E> {
        Ok(None)
    }

    fn visit_str<E>(self, _: &str) -> Result<Option<Value>, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Option<Value>, E> {
        Ok(None)
    }
}

/// An object key, compared with the wanted one without being copied.
struct KeyIs<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// A JSON value as an index key, so values that compare equal (`1` and `1.0`) share a key.
pub fn index_key(value: &Value) -> String {
    match value {
        Value::Number(n) => format!("n:{}", n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => format!("s:{s}"),
        other => format!("j:{other}"),
    }
}

impl Compiled {
    /// For an equality filter: its path and the index key of its value (what an index can serve).
    pub fn equality(&self) -> Option<(&[String], String)> {
        (self.op == FilterOp::Eq).then(|| (self.path.as_slice(), index_key(&self.value)))
    }

    /// The value at `path` in the JSON text `item`.
    pub fn value_at(path: &[String], item: &[u8]) -> Option<Value> {
        lookup(item, path)
    }

    /// Whether the JSON text `item` satisfies this filter.
    pub fn matches(&self, item: &[u8]) -> bool {
        let found = lookup(item, &self.path);
        match self.op {
            FilterOp::Eq => found.is_some_and(|v| equal(&v, &self.value)),
            FilterOp::Ne => !found.is_some_and(|v| equal(&v, &self.value)),
            op => found.and_then(|v| order(&v, &self.value)).is_some_and(|o| match op {
                FilterOp::Lt => o == Ordering::Less,
                FilterOp::Le => o != Ordering::Greater,
                FilterOp::Gt => o == Ordering::Greater,
                FilterOp::Ge => o != Ordering::Less,
                FilterOp::Eq | FilterOp::Ne => unreachable!("handled above"),
            }),
        }
    }
}

/// Whether the JSON text `item` satisfies every filter.
pub fn all_match(filters: &[Compiled], item: &[u8]) -> bool {
    filters.iter().all(|f| f.matches(item))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::json;

    fn text(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn f(path: &str, op: FilterOp, value: &str) -> Compiled {
        compile(&[Filter { path: Bytes::copy_from_slice(path.as_bytes()), op, value: Bytes::copy_from_slice(value.as_bytes()) }]).remove(0)
    }

    #[test]
    fn paths_types_and_orderings() {
        let item = text(json!({"action": "process_data", "params": {"file": "data.csv", "size": 12}, "tags": ["a", "b"]}));
        let item = &item[..];
        assert!(f("action", FilterOp::Eq, "process_data").matches(item), "a bare word is a string");
        assert!(f("action", FilterOp::Eq, "\"process_data\"").matches(item));
        assert!(f("params.file", FilterOp::Eq, "data.csv").matches(item));
        assert!(f("params.size", FilterOp::Eq, "12.0").matches(item));
        assert!(f("params.size", FilterOp::Gt, "3").matches(item));
        assert!(!f("params.size", FilterOp::Lt, "3").matches(item));
        assert!(f("tags.1", FilterOp::Eq, "b").matches(item));
        assert!(f("missing", FilterOp::Ne, "x").matches(item));
        assert!(!f("missing", FilterOp::Lt, "3").matches(item));
        assert!(!f("action", FilterOp::Gt, "3").matches(item), "no ordering across types");
        assert!(f("action", FilterOp::Ge, "process").matches(item));
        assert!(f("params", FilterOp::Eq, r#"{"size": 12, "file": "data.csv"}"#).matches(item), "a whole object");
        assert!(!f("tags.2", FilterOp::Eq, "c").matches(item));
        assert!(!f("action.x", FilterOp::Eq, "c").matches(item), "no path through a string");
        assert!(f("k", FilterOp::Eq, "2").matches(br#"{"k": 1, "k": 2}"#), "the last repeated key wins");
        assert!(f("a\"b", FilterOp::Eq, "1").matches(br#"{"a\"b": 1}"#), "escaped keys");
        assert!(!f("k", FilterOp::Eq, "1").matches(b"{not json"));
    }
}
