//! WHERE filters over JSON items: a dotted path, a comparison, a value.
//!
//! Equality compares JSON values (numbers by value, so `1` equals `1.0`); the orderings compare
//! numbers with numbers and strings with strings, and are false across types or when the path is
//! missing (so `WHERE score < 3` never matches an item without a score).

use std::cmp::Ordering;

use bytes::Bytes;
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

fn lookup<'a>(item: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(item, |v, part| match v {
        Value::Object(map) => map.get(part),
        Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
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

    /// The value at this filter's path in `item`.
    pub fn value_at<'a>(path: &[String], item: &'a Value) -> Option<&'a Value> {
        lookup(item, path)
    }

    pub fn matches(&self, item: &Value) -> bool {
        let found = lookup(item, &self.path);
        match self.op {
            FilterOp::Eq => found.is_some_and(|v| equal(v, &self.value)),
            FilterOp::Ne => !found.is_some_and(|v| equal(v, &self.value)),
            op => found.and_then(|v| order(v, &self.value)).is_some_and(|o| match op {
                FilterOp::Lt => o == Ordering::Less,
                FilterOp::Le => o != Ordering::Greater,
                FilterOp::Gt => o == Ordering::Greater,
                FilterOp::Ge => o != Ordering::Less,
                FilterOp::Eq | FilterOp::Ne => unreachable!("handled above"),
            }),
        }
    }
}

/// Whether `item` satisfies every filter.
pub fn all_match(filters: &[Compiled], item: &Value) -> bool {
    filters.iter().all(|f| f.matches(item))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::json;

    fn f(path: &str, op: FilterOp, value: &str) -> Compiled {
        compile(&[Filter { path: Bytes::copy_from_slice(path.as_bytes()), op, value: Bytes::copy_from_slice(value.as_bytes()) }]).remove(0)
    }

    #[test]
    fn paths_types_and_orderings() {
        let item = json!({"action": "process_data", "params": {"file": "data.csv", "size": 12}, "tags": ["a", "b"]});
        assert!(f("action", FilterOp::Eq, "process_data").matches(&item), "a bare word is a string");
        assert!(f("action", FilterOp::Eq, "\"process_data\"").matches(&item));
        assert!(f("params.file", FilterOp::Eq, "data.csv").matches(&item));
        assert!(f("params.size", FilterOp::Eq, "12.0").matches(&item));
        assert!(f("params.size", FilterOp::Gt, "3").matches(&item));
        assert!(!f("params.size", FilterOp::Lt, "3").matches(&item));
        assert!(f("tags.1", FilterOp::Eq, "b").matches(&item));
        assert!(f("missing", FilterOp::Ne, "x").matches(&item));
        assert!(!f("missing", FilterOp::Lt, "3").matches(&item));
        assert!(!f("action", FilterOp::Gt, "3").matches(&item), "no ordering across types");
        assert!(f("action", FilterOp::Ge, "process").matches(&item));
    }
}
