//! List operations, with Redis 7's semantics and notifications. A list that becomes empty is deleted,
//! as in Redis; creating a list signals blocked poppers (BLPOP and friends).

use std::collections::VecDeque;

use crate::engine::Error;
use crate::engine::change::End;
use bytes::Bytes;

use super::{Keyspace, Ttl, Value, notify};

/// Copies an argument out of the request buffer, so a stored element does not pin the whole read.
fn own(b: &Bytes) -> Bytes {
    Bytes::copy_from_slice(b)
}

fn list_of(value: &Value) -> Result<&VecDeque<Bytes>, Error> {
    match value {
        Value::List(l) => Ok(l),
        _ => Err(Error::wrong_type()),
    }
}

fn list_of_mut(value: &mut Value) -> Result<&mut VecDeque<Bytes>, Error> {
    match value {
        Value::List(l) => Ok(l),
        _ => Err(Error::wrong_type()),
    }
}

/// Redis's index normalisation for LRANGE / LTRIM: the inclusive range, or `None` when empty.
fn clamp_range(len: usize, start: i64, stop: i64) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let stop = if stop < 0 { len + stop } else { stop.min(len - 1) };
    if start > stop || start >= len { None } else { Some((start as usize, stop as usize)) }
}

fn parse_index(raw: &[u8]) -> Result<i64, Error> {
    herald_protocol::number::parse_i64(raw).ok_or(Error::not_integer())
}

fn index_of(len: usize, index: i64) -> Option<usize> {
    let i = if index < 0 { len as i64 + index } else { index };
    (0..len as i64).contains(&i).then_some(i as usize)
}

fn push_event(end: End) -> &'static str {
    match end {
        End::Left => "lpush",
        End::Right => "rpush",
    }
}

fn pop_event(end: End) -> &'static str {
    match end {
        End::Left => "lpop",
        End::Right => "rpop",
    }
}

/// LPOS's RANK (non-zero), COUNT (0: all) and MAXLEN (0: the whole list).
#[derive(Debug, Clone, Copy)]
pub struct PosOptions {
    pub rank: i64,
    pub count: usize,
    pub max_len: usize,
}

impl Keyspace {
    /// The live list at `key`: `Ok(None)` when absent, WRONGTYPE when another type.
    fn list(&mut self, db: usize, key: &[u8], now: u64) -> Result<Option<&VecDeque<Bytes>>, Error> {
        match self.read(db, key, now) {
            Some(entry) => list_of(&entry.value).map(Some),
            None => Ok(None),
        }
    }

    /// Applies `f` to the live list at `key` (bumping its revision), deleting the key if it ends
    /// empty. `Ok(None)` when the key is absent.
    fn with_list<T>(&mut self, db: usize, key: &[u8], now: u64, f: impl FnOnce(&mut VecDeque<Bytes>) -> T) -> Result<Option<T>, Error> {
        let Some(entry) = self.live_mut(db, key, now) else { return Ok(None) };
        let list = list_of_mut(&mut entry.value)?;
        let out = f(list);
        entry.revision += 1;
        let empty = list.is_empty();
        if empty {
            self.dbs[db].remove(key);
        }
        Ok(Some(out))
    }

    fn delete_if_emptied(&mut self, db: usize, key: &[u8], now: u64) {
        if !self.exists(db, key, now) {
            self.removed(db, key, notify::GENERIC, "del", None);
        }
    }

    /// LPUSH / RPUSH (and the X forms): the length after, or 0 when X found no list.
    pub fn push(&mut self, db: usize, key: &[u8], end: End, elements: &[Bytes], only_existing: bool, now: u64) -> Result<usize, Error> {
        let pushed = self.with_list(db, key, now, |list| {
            for e in elements {
                match end {
                    End::Left => list.push_front(own(e)),
                    End::Right => list.push_back(own(e)),
                }
            }
            list.len()
        })?;
        let len = match pushed {
            Some(len) => len,
            None if only_existing => return Ok(0),
            None => {
                let mut list = VecDeque::with_capacity(elements.len());
                for e in elements {
                    match end {
                        End::Left => list.push_front(own(e)),
                        End::Right => list.push_back(own(e)),
                    }
                }
                let len = list.len();
                self.store(db, key, Value::List(Box::new(list)), Ttl::Clear, now);
                self.signal_ready(db, key);
                len
            }
        };
        self.pushed(db, key, end, elements, push_event(end));
        Ok(len)
    }

    /// LPOP / RPOP: up to `count` elements, `Ok(None)` when the key is absent.
    pub fn pop(&mut self, db: usize, key: &[u8], end: End, count: usize, now: u64) -> Result<Option<Vec<Bytes>>, Error> {
        let popped = self.with_list(db, key, now, |list| {
            let n = count.min(list.len());
            (0..n)
                .filter_map(|_| match end {
                    End::Left => list.pop_front(),
                    End::Right => list.pop_back(),
                })
                .collect::<Vec<_>>()
        })?;
        if let Some(items) = &popped
            && !items.is_empty()
        {
            self.popped(db, key, end, items.len(), pop_event(end));
            self.delete_if_emptied(db, key, now);
        }
        Ok(popped)
    }

    /// The first of `keys` holding a non-empty list, popped (BLPOP, LMPOP). WRONGTYPE when a key
    /// before it holds another type.
    pub fn pop_first(&mut self, db: usize, keys: &[Bytes], end: End, count: usize, now: u64) -> Result<Option<(Bytes, Vec<Bytes>)>, Error> {
        for key in keys {
            if let Some(items) = self.pop(db, key, end, count, now)?
                && !items.is_empty()
            {
                return Ok(Some((key.clone(), items)));
            }
        }
        Ok(None)
    }

    pub fn llen(&mut self, db: usize, key: &[u8], now: u64) -> Result<usize, Error> {
        Ok(self.list(db, key, now)?.map_or(0, |l| l.len()))
    }

    pub fn lrange(&mut self, db: usize, key: &[u8], start: i64, stop: i64, now: u64) -> Result<Vec<Bytes>, Error> {
        let Some(list) = self.list(db, key, now)? else { return Ok(Vec::new()) };
        Ok(match clamp_range(list.len(), start, stop) {
            Some((a, b)) => list.range(a..=b).cloned().collect(),
            None => Vec::new(),
        })
    }

    /// LINDEX: `Ok(None)` for a missing key or an index out of range. The index text is parsed only
    /// once the key is known to exist, as Redis does.
    pub fn lindex(&mut self, db: usize, key: &[u8], index: &[u8], now: u64) -> Result<Option<Bytes>, Error> {
        let Some(list) = self.list(db, key, now)? else { return Ok(None) };
        let index = parse_index(index)?;
        Ok(index_of(list.len(), index).map(|i| list[i].clone()))
    }

    /// LSET: like LINDEX, the key is looked up ("no such key", WRONGTYPE) before the index is parsed.
    pub fn lset(&mut self, db: usize, key: &[u8], index: &[u8], element: &Bytes, now: u64) -> Result<(), Error> {
        let Some(list) = self.list(db, key, now)? else { return Err(Error::no_such_key()) };
        let index = parse_index(index)?;
        let i = index_of(list.len(), index).ok_or(Error::fixed("ERR index out of range"))?;
        self.with_list(db, key, now, |list| list[i] = own(element))?;
        self.changed(db, key, notify::LIST, "lset");
        Ok(())
    }

    /// LREM: removes up to |count| matches from the head (count > 0), the tail (< 0) or all (0).
    pub fn lrem(&mut self, db: usize, key: &[u8], count: i64, element: &[u8], now: u64) -> Result<usize, Error> {
        let removed = self
            .with_list(db, key, now, |list| {
                let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
                let mut removed = 0;
                if count >= 0 {
                    let mut i = 0;
                    while i < list.len() && removed < limit {
                        if list[i] == element {
                            list.remove(i);
                            removed += 1;
                        } else {
                            i += 1;
                        }
                    }
                } else {
                    let mut i = list.len();
                    while i > 0 && removed < limit {
                        i -= 1;
                        if list[i] == element {
                            list.remove(i);
                            removed += 1;
                        }
                    }
                }
                removed
            })?
            .unwrap_or(0);
        if removed > 0 {
            self.changed(db, key, notify::LIST, "lrem");
            self.delete_if_emptied(db, key, now);
        }
        Ok(removed)
    }

    pub fn ltrim(&mut self, db: usize, key: &[u8], start: i64, stop: i64, now: u64) -> Result<(), Error> {
        let trimmed = self.with_list(db, key, now, |list| match clamp_range(list.len(), start, stop) {
            Some((a, b)) => {
                list.truncate(b + 1);
                list.drain(..a);
            }
            None => list.clear(),
        })?;
        if trimmed.is_some() {
            self.changed(db, key, notify::LIST, "ltrim");
            self.delete_if_emptied(db, key, now);
        }
        Ok(())
    }

    /// LINSERT: the new length, -1 when the pivot is absent, 0 when the key is.
    pub fn linsert(&mut self, db: usize, key: &[u8], before: bool, pivot: &[u8], element: &Bytes, now: u64) -> Result<i64, Error> {
        let inserted = self.with_list(db, key, now, |list| match list.iter().position(|e| e == pivot) {
            Some(i) => {
                list.insert(if before { i } else { i + 1 }, own(element));
                list.len() as i64
            }
            None => -1,
        })?;
        match inserted {
            None => Ok(0),
            Some(-1) => Ok(-1),
            Some(len) => {
                self.changed(db, key, notify::LIST, "linsert");
                Ok(len)
            }
        }
    }

    /// LPOS: positions of `element`, honouring RANK (direction and skip), COUNT (0 = all) and MAXLEN.
    pub fn lpos(&mut self, db: usize, key: &[u8], element: &[u8], opts: PosOptions, now: u64) -> Result<Vec<usize>, Error> {
        let PosOptions { rank, count, max_len } = opts;
        let Some(list) = self.list(db, key, now)? else { return Ok(Vec::new()) };
        let len = list.len();
        let scan = if max_len == 0 { len } else { max_len.min(len) };
        let mut skip = rank.unsigned_abs() - 1;
        let wanted = if count == 0 { usize::MAX } else { count };
        let mut found = Vec::new();
        for step in 0..scan {
            let i = if rank > 0 { step } else { len - 1 - step };
            if list[i] == element {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                found.push(i);
                if found.len() >= wanted {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// LMOVE: pops from one end of `source`, pushes to an end of `destination`; `Ok(None)` when the
    /// source is empty. The destination's type is checked before anything moves.
    pub fn lmove(&mut self, db: usize, source: &[u8], destination: &[u8], from: End, to: End, now: u64) -> Result<Option<Bytes>, Error> {
        let element = match self.list(db, source, now)? {
            Some(list) if !list.is_empty() => match from {
                End::Left => list.front(),
                End::Right => list.back(),
            }
            .expect("not empty")
            .clone(),
            _ => return Ok(None),
        };
        self.list(db, destination, now)?;
        // Redis's order, which its keyspace notifications show: the destination's push first, then the
        // source's pop (and its `del` if that emptied it). Pushing a copy before popping the original
        // gives the same list when source and destination are one key (a rotation).
        self.push(db, destination, to, std::slice::from_ref(&element), false, now)?;
        self.pop(db, source, from, 1, now)?;
        Ok(Some(element))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::keyspace::test_support::keyspace;

    fn b(items: &[&str]) -> Vec<Bytes> {
        items.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn push_pop_and_empty_lists_vanish() {
        let mut ks = keyspace();
        assert_eq!(ks.push(0, b"l", End::Left, &b(&["a", "b"]), false, 0).unwrap(), 2);
        assert_eq!(ks.push(0, b"l", End::Right, &b(&["c"]), false, 0).unwrap(), 3);
        assert_eq!(ks.lrange(0, b"l", 0, -1, 0).unwrap(), b(&["b", "a", "c"]));
        assert_eq!(ks.pop(0, b"l", End::Right, 10, 0).unwrap().unwrap(), b(&["c", "a", "b"]));
        assert_eq!(ks.llen(0, b"l", 0).unwrap(), 0);
        assert_eq!(ks.type_of(0, b"l", 0), "none");
        assert_eq!(ks.push(0, b"x", End::Left, &b(&["a"]), true, 0).unwrap(), 0, "PUSHX on a missing key");
    }

    #[test]
    fn ranges_positions_and_edits() {
        let mut ks = keyspace();
        ks.push(0, b"l", End::Right, &b(&["a", "b", "c", "b", "d"]), false, 0).unwrap();
        assert_eq!(ks.lrange(0, b"l", -2, 100, 0).unwrap(), b(&["b", "d"]));
        assert_eq!(ks.lrange(0, b"l", 3, 1, 0).unwrap(), b(&[]));
        assert_eq!(ks.lpos(0, b"l", b"b", PosOptions { rank: 1, count: 0, max_len: 0 }, 0).unwrap(), vec![1, 3]);
        assert_eq!(ks.lpos(0, b"l", b"b", PosOptions { rank: -1, count: 1, max_len: 0 }, 0).unwrap(), vec![3]);
        assert_eq!(ks.lpos(0, b"l", b"b", PosOptions { rank: 2, count: 1, max_len: 0 }, 0).unwrap(), vec![3]);
        assert_eq!(
            ks.lpos(0, b"l", b"d", PosOptions { rank: 1, count: 1, max_len: 2 }, 0).unwrap(),
            Vec::<usize>::new(),
            "MAXLEN stops the scan"
        );
        assert_eq!(ks.linsert(0, b"l", true, b"c", &Bytes::from_static(b"x"), 0).unwrap(), 6);
        assert_eq!(ks.lrem(0, b"l", -1, b"b", 0).unwrap(), 1);
        ks.ltrim(0, b"l", 1, -2, 0).unwrap();
        assert_eq!(ks.lrange(0, b"l", 0, -1, 0).unwrap(), b(&["b", "x", "c"]));
        assert_eq!(ks.lset(0, b"l", b"9", &Bytes::from_static(b"z"), 0), Err(Error::fixed("ERR index out of range")));
        assert_eq!(ks.lmove(0, b"l", b"m", End::Left, End::Right, 0).unwrap().as_deref(), Some(&b"b"[..]));
        assert_eq!(ks.lrange(0, b"m", 0, -1, 0).unwrap(), b(&["b"]));
    }
}
