//! SORT and SORT_RO as Redis 7.0's `sortCommandGeneric` does them: the elements of a list, set or
//! sorted set ordered numerically or lexicographically, by themselves or by the strings (or hash
//! fields, `pattern->field`) that a `BY` pattern names, cut by `LIMIT`, projected through `GET`
//! patterns (`#` is the element itself), and returned or stored as a list.

use std::cmp::Ordering;
use std::collections::VecDeque;

use bytes::Bytes;
use herald_protocol::number::parse_double;

use super::{Keyspace, Ttl, Value, notify};
use crate::engine::Error;

/// What SORT was asked to do.
#[derive(Debug, Clone, Default)]
pub struct SortSpec<'a> {
    pub by: Option<&'a [u8]>,
    /// `LIMIT offset count` (a negative count: to the end).
    pub limit: Option<(i64, i64)>,
    pub get: &'a [Bytes],
    pub desc: bool,
    pub alpha: bool,
    pub store: Option<&'a [u8]>,
}

/// SORT's result: the values to reply with (`None`: a GET pattern that named nothing), or with STORE
/// how many went into the destination list.
#[derive(Debug, PartialEq)]
pub enum Sorted {
    Values(Vec<Option<Bytes>>),
    Stored(usize),
}

/// One element being sorted, with what it sorts by.
struct Item {
    element: Bytes,
    score: f64,
    by: Option<Bytes>,
}

/// A sort weight as Redis reads it with `strtod`: the text up to its first NUL, leading white space
/// allowed, nothing after the number, empty meaning 0; not NaN, not out of range.
fn weight(text: &[u8]) -> Option<f64> {
    // Integers, the common weights, without the general reader.
    if let Some(n) = herald_protocol::number::parse_i64(text) {
        return Some(n as f64);
    }
    let text = &text[..text.iter().position(|b| *b == 0).unwrap_or(text.len())];
    let start = text.iter().position(|b| !matches!(b, b' ' | b'\t'..=b'\r')).unwrap_or(text.len());
    if start == text.len() {
        return (start == 0).then_some(0.0);
    }
    parse_double(&text[start..])
}

/// Bytes compared as C's `memcmp`, then by length (Redis's `compareStringObjects`).
fn binary(a: &[u8], b: &[u8]) -> Ordering {
    a.cmp(b)
}

impl Keyspace {
    /// The string (or, with `->field`, the hash field) that `pattern` names for `element`: the first
    /// `*` replaced by the element; `#` alone is the element itself. Redis's `lookupKeyByPattern`.
    fn by_pattern(&mut self, db: usize, pattern: &[u8], element: &[u8], now: u64) -> Option<Bytes> {
        if pattern == b"#" {
            return Some(Bytes::copy_from_slice(element));
        }
        let star = pattern.iter().position(|b| *b == b'*')?;
        let arrow = pattern[star + 1..].windows(2).position(|w| w == b"->").map(|i| star + 1 + i).filter(|at| at + 2 < pattern.len());
        let key_end = arrow.unwrap_or(pattern.len());
        let mut key = Vec::with_capacity(key_end + element.len());
        key.extend_from_slice(&pattern[..star]);
        key.extend_from_slice(element);
        key.extend_from_slice(&pattern[star + 1..key_end]);
        let entry = self.read(db, &key, now)?;
        match (&entry.value, arrow) {
            (Value::Hash(h), Some(at)) => h.get(&pattern[at + 2..]).map(Bytes::copy_from_slice),
            (Value::Str(s), None) => Some(Bytes::copy_from_slice(s.as_slice())),
            _ => None,
        }
    }

    /// SORT / SORT_RO (`spec.store` is `None` for SORT_RO).
    pub fn sort(&mut self, db: usize, key: &[u8], spec: &SortSpec<'_>, now: u64) -> Result<Sorted, Error> {
        let mut by = spec.by;
        let mut alpha = spec.alpha;
        // BY a pattern without `*` means "do not sort".
        let mut dont_sort = by.is_some_and(|p| !p.contains(&b'*'));
        let (mut elements, native_order) = match self.read(db, key, now) {
            None => (Vec::new(), true),
            Some(entry) => match &entry.value {
                Value::List(l) => (l.iter().cloned().collect(), true),
                Value::Set(s) => {
                    let mut members = Vec::with_capacity(s.len());
                    s.for_each(|m| members.push(Bytes::copy_from_slice(m)));
                    (members, false)
                }
                Value::Zset(z) => {
                    let mut members = Vec::with_capacity(z.len());
                    z.for_each(|m, _| members.push(Bytes::copy_from_slice(m)));
                    (members, true)
                }
                _ => return Err(Error::wrong_type()),
            },
        };
        // A set's order is its table's: stored, it is sorted instead so the result is reproducible.
        if dont_sort && !native_order && spec.store.is_some() {
            dont_sort = false;
            alpha = true;
            by = None;
        }
        let len = elements.len() as i64;
        let (start, count) = spec.limit.unwrap_or((0, -1));
        let mut start = start.max(0);
        let mut end = if count < 0 { len - 1 } else { start.saturating_add(count) - 1 };
        if start >= len {
            start = len - 1;
            end = len - 2;
        }
        end = end.min(len - 1);
        if dont_sort && native_order && spec.desc {
            elements.reverse();
        }
        let mut failed = false;
        let mut items: Vec<Item> = Vec::with_capacity(elements.len());
        for element in elements {
            let mut item = Item { element, score: 0.0, by: None };
            match (dont_sort, by, alpha) {
                (true, ..) | (false, None, true) => {}
                (false, None, false) => match weight(&item.element) {
                    Some(score) => item.score = score,
                    None => failed = true,
                },
                (false, Some(pattern), _) => match self.by_pattern(db, pattern, &item.element, now) {
                    Some(value) if alpha => item.by = Some(value),
                    Some(value) => match weight(&value) {
                        Some(score) => item.score = score,
                        None => failed = true,
                    },
                    None => {}
                },
            }
            items.push(item);
        }
        if !dont_sort {
            let by_pattern = by.is_some();
            items.sort_by(|a, b| {
                let order = if !alpha {
                    a.score.partial_cmp(&b.score).unwrap_or(Ordering::Equal).then_with(|| binary(&a.element, &b.element))
                } else if by_pattern {
                    match (&a.by, &b.by) {
                        (Some(x), Some(y)) => binary(x, y),
                        (x, y) => x.is_some().cmp(&y.is_some()),
                    }
                } else {
                    binary(&a.element, &b.element)
                };
                if spec.desc { order.reverse() } else { order }
            });
        }
        if failed {
            return Err(Error::fixed("ERR One or more scores can't be converted into double"));
        }
        let chosen = if end >= start { &items[start as usize..=end as usize] } else { &[][..] };
        let mut values = Vec::with_capacity(chosen.len() * spec.get.len().max(1));
        for item in chosen {
            if spec.get.is_empty() {
                values.push(Some(item.element.clone()));
            }
            for pattern in spec.get {
                values.push(self.by_pattern(db, pattern, &item.element, now));
            }
        }
        let Some(dest) = spec.store else { return Ok(Sorted::Values(values)) };
        let stored = values.len();
        if stored == 0 {
            self.delete(db, dest, now);
        } else {
            let list: VecDeque<Bytes> = values.into_iter().map(Option::unwrap_or_default).collect();
            self.store(db, dest, Value::List(Box::new(list)), Ttl::Clear, now);
            self.changed(db, dest, notify::LIST, "sortstore");
        }
        Ok(Sorted::Stored(stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::change::End;
    use crate::engine::keyspace::test_support::keyspace;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn values(sorted: Sorted) -> Vec<String> {
        match sorted {
            Sorted::Values(v) => v.into_iter().map(|v| v.map_or("nil".into(), |v| String::from_utf8_lossy(&v).into_owned())).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn numeric_alpha_by_and_get() {
        let mut ks = keyspace();
        ks.push(0, b"l", End::Right, &[b("3"), b("10"), b("2")], false, 0).unwrap();
        assert_eq!(values(ks.sort(0, b"l", &SortSpec::default(), 0).unwrap()), ["2", "3", "10"]);
        assert_eq!(values(ks.sort(0, b"l", &SortSpec { alpha: true, ..Default::default() }, 0).unwrap()), ["10", "2", "3"]);
        ks.mset(0, &[(b("w_2"), b("1")), (b("w_3"), b("0")), (b("o_3"), b("three"))], false, 0);
        let get = [b("#"), b("o_*")];
        let spec = SortSpec { by: Some(b"w_*"), get: &get, desc: true, ..Default::default() };
        assert_eq!(values(ks.sort(0, b"l", &spec, 0).unwrap()), ["2", "nil", "3", "three", "10", "nil"]);
        let spec = SortSpec { by: Some(b"nosort"), limit: Some((1, 1)), ..Default::default() };
        assert_eq!(values(ks.sort(0, b"l", &spec, 0).unwrap()), ["10"]);
        ks.push(0, b"bad", End::Right, &[b("x")], false, 0).unwrap();
        assert!(ks.sort(0, b"bad", &SortSpec::default(), 0).is_err());
    }

    #[test]
    fn weights_read_as_strtod() {
        assert_eq!(weight(b" 1.5"), Some(1.5));
        assert_eq!(weight(b""), Some(0.0));
        assert_eq!(weight(b"1\0junk"), Some(1.0));
        assert_eq!(weight(b"1 "), None);
        assert_eq!(weight(b"nan"), None);
        assert_eq!(weight(b"1e400"), None);
        assert_eq!(weight(b"-inf"), Some(f64::NEG_INFINITY));
    }
}
