//! Sorted-set operations with Redis 7.0's semantics and notifications (`z` class: `zadd`, `zincr`,
//! `zrem`, `zpopmin`, `zpopmax`, `zremrangeby*`, `zunionstore`, `zinterstore`, `zdiffstore`,
//! `zrangestore`). A sorted set emptied by a removal is deleted (`del`), as in Redis; a new one wakes
//! clients blocked in BZPOPMIN / BZPOPMAX / BZMPOP. Ranges are in `zranges.rs`.

use std::collections::HashMap;

use bytes::Bytes;
use herald_protocol::number::{format_double, format_double_compact};

use super::aggregate::{ElementScan, sample};
use super::{Keyspace, notify};
use crate::engine::Error;
use crate::engine::change::KeyEffect;
use crate::engine::collections::{Set, Zset};

/// ZADD's options (validated for conflicts by the caller).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ZaddFlags {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub ch: bool,
    pub incr: bool,
}

/// What ZADD answers: a count, or with INCR the member's new score (`None`: nothing was done).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zadded {
    Count(usize),
    Score(Option<f64>),
}

/// ZUNION / ZINTER / ZDIFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZOp {
    Union,
    Inter,
    Diff,
}

/// How ZUNION / ZINTER combine a member's scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aggregate {
    #[default]
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// Redis's `zunionInterAggregate`: a sum of opposite infinities is 0, not NaN.
    fn apply(self, target: &mut f64, value: f64) {
        match self {
            Aggregate::Sum => {
                *target += value;
                if target.is_nan() {
                    *target = 0.0;
                }
            }
            Aggregate::Min => *target = if value < *target { value } else { *target },
            Aggregate::Max => *target = if value > *target { value } else { *target },
        }
    }
}

/// An input of the set algebra: a sorted set, or a plain set whose members all score 1.
#[derive(Clone, Copy)]
enum Source<'a> {
    Zset(&'a Zset),
    Set(&'a Set),
    Missing,
}

impl Source<'_> {
    fn len(&self) -> usize {
        match self {
            Source::Zset(z) => z.len(),
            Source::Set(s) => s.len(),
            Source::Missing => 0,
        }
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Source::Zset(z) => z.score(member),
            Source::Set(s) => s.contains(member).then_some(1.0),
            Source::Missing => None,
        }
    }

    fn for_each(&self, mut f: impl FnMut(&[u8], f64)) {
        match self {
            Source::Zset(z) => z.for_each(f),
            Source::Set(s) => s.for_each(|m| f(m, 1.0)),
            Source::Missing => {}
        }
    }
}

/// A sorted set built from (member, score) pairs, in the encoding Redis gives such a result.
fn build(pairs: impl IntoIterator<Item = (Bytes, f64)>) -> Zset {
    let pairs: Vec<(Bytes, f64)> = pairs.into_iter().collect();
    let longest = pairs.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
    let mut z = Zset::for_size(pairs.len(), longest);
    for (m, s) in &pairs {
        z.set(m, *s);
    }
    z
}

impl Keyspace {
    /// ZADD and ZINCRBY.
    pub fn zadd(&mut self, db: usize, key: &[u8], flags: ZaddFlags, entries: &[(f64, Bytes)], now: u64) -> Result<Zadded, Error> {
        let mut changed: Vec<(f64, Bytes)> = Vec::new();
        let outcome = self.update(db, key, now, !flags.xx, |z: &mut Zset| {
            let (mut added, mut updated, mut last) = (0, 0, None);
            for (score, member) in entries {
                z.upsert(member, |current| {
                    let new = match current {
                        Some(_) if flags.nx => return Ok(None),
                        Some(current) => {
                            let new = if flags.incr { current + score } else { *score };
                            if new.is_nan() {
                                return Err(Error::fixed("ERR resulting score is not a number (NaN)"));
                            }
                            if (flags.lt && new >= current) || (flags.gt && new <= current) {
                                return Ok(None);
                            }
                            if new != current {
                                updated += 1;
                                changed.push((new, member.clone()));
                            }
                            new
                        }
                        None if flags.xx => return Ok(None),
                        None => {
                            added += 1;
                            changed.push((*score, member.clone()));
                            *score
                        }
                    };
                    last = Some(new);
                    Ok(Some(new))
                })?;
            }
            Ok(if flags.incr { Zadded::Score(last) } else { Zadded::Count(if flags.ch { added + updated } else { added }) })
        })?;
        if !changed.is_empty() {
            let event = if flags.incr { "zincr" } else { "zadd" };
            self.delta(db, key, notify::ZSET, event, KeyEffect::ZAdd { entries: &changed });
        }
        Ok(outcome.unwrap_or(if flags.incr { Zadded::Score(None) } else { Zadded::Count(0) }))
    }

    pub fn zscore(&mut self, db: usize, key: &[u8], member: &[u8], now: u64) -> Result<Option<f64>, Error> {
        Ok(self.view::<Zset>(db, key, now)?.and_then(|z| z.score(member)))
    }

    pub fn zmscore(&mut self, db: usize, key: &[u8], members: &[Bytes], now: u64) -> Result<Vec<Option<f64>>, Error> {
        let z = self.view::<Zset>(db, key, now)?;
        Ok(members.iter().map(|m| z.and_then(|z| z.score(m))).collect())
    }

    pub fn zcard(&mut self, db: usize, key: &[u8], now: u64) -> Result<usize, Error> {
        Ok(self.view::<Zset>(db, key, now)?.map_or(0, Zset::len))
    }

    /// ZRANK / ZREVRANK.
    pub fn zrank(&mut self, db: usize, key: &[u8], member: &[u8], rev: bool, now: u64) -> Result<Option<usize>, Error> {
        Ok(self.view::<Zset>(db, key, now)?.and_then(|z| z.rank(member).map(|r| if rev { z.len() - 1 - r } else { r })))
    }

    /// ZREM: how many members were there.
    pub fn zrem(&mut self, db: usize, key: &[u8], members: &[Bytes], now: u64) -> Result<usize, Error> {
        self.remove_elements(
            (db, key, now),
            members,
            (notify::ZSET, "zrem"),
            |members| KeyEffect::ZRem { members },
            |z: &mut Zset, m| z.remove(m).is_some(),
        )
    }

    /// ZPOPMIN / ZPOPMAX / ZMPOP and the blocking forms: pops up to `count` members (lowest or
    /// highest scores first) from the first of `keys` that exists. WRONGTYPE if that key holds
    /// another type, unless `skip_other_types` (a blocked client woken by a new sorted set, which
    /// Redis serves from keys of its type only).
    pub fn zpop(&mut self, db: usize, keys: &[Bytes], max: bool, count: usize, skip_other_types: bool, now: u64) -> ZpopResult {
        let mut found = None;
        for key in keys {
            match self.peek::<Zset>(db, key, now) {
                Ok(None) => continue,
                Err(_) if skip_other_types => continue,
                Err(e) => return Err(e),
                Ok(Some(_)) => {
                    found = Some(key);
                    break;
                }
            }
        }
        let Some(key) = found else { return Ok(None) };
        if count == 0 {
            return Ok(Some((key.clone(), Vec::new())));
        }
        let popped = self
            .update(db, key, now, false, |z: &mut Zset| {
                let n = count.min(z.len());
                let (from, to) = if max { (z.len() - n, z.len()) } else { (0, n) };
                let mut out = Vec::with_capacity(n);
                z.visit(from, to, max, |m, s| out.push((Bytes::copy_from_slice(m), s)));
                if n == z.len() {
                    *z = Zset::default();
                } else {
                    for (m, _) in &out {
                        z.remove(m);
                    }
                }
                Ok(out)
            })?
            .expect("present");
        let members: Vec<Bytes> = popped.iter().map(|(m, _)| m.clone()).collect();
        self.delta(db, key, notify::ZSET, if max { "zpopmax" } else { "zpopmin" }, KeyEffect::ZRem { members: &members });
        self.drop_if_empty::<Zset>(db, key);
        Ok(Some((key.clone(), popped)))
    }

    /// ZRANDMEMBER with a count: `Ok(None)` for a missing key. A positive count gives distinct
    /// members (the whole set, highest first, when it covers it); a negative one may repeat.
    pub fn zrandmember(
        &mut self,
        db: usize,
        key: &[u8],
        count: i64,
        now: u64,
        rand: &mut impl FnMut() -> u64,
    ) -> Result<Option<Scored>, Error> {
        let Some(z) = self.view::<Zset>(db, key, now)? else { return Ok(None) };
        let at = |rank: usize| z.get(rank).map(|(m, s)| (Bytes::copy_from_slice(m), s)).expect("in range");
        let len = z.len();
        // A covering count answers the whole set from the highest score down, as Redis 7.0 does.
        let all = || (0..len).rev().map(at).collect();
        let draw = |rand: &mut dyn FnMut() -> u64| at((rand() % len as u64) as usize);
        Ok(Some(sample(count, len, rand, all, draw, |(m, _)| m.clone())))
    }

    /// ZSCAN: the next cursor and the members found with their scores as text, written as Redis 7.0
    /// writes them there: from a packed set as its listpack holds them (`d2string`: integral scores
    /// as integers), from a large one with `%.17g`.
    pub fn zscan(&mut self, db: usize, key: &[u8], scan: &ElementScan, now: u64) -> Result<(u64, Vec<(Bytes, Bytes)>), Error> {
        let Some(z) = self.peek::<Zset>(db, key, now)? else { return Ok((0, Vec::new())) };
        let text = if matches!(z, Zset::Pack(_)) { format_double_compact } else { format_double };
        let (cursor, mut members) = scan.collect(|c, out| z.scan(c, |m, s| out.push((Bytes::copy_from_slice(m), Bytes::from(text(s))))));
        members.retain(|(m, _)| scan.matches(m));
        Ok((cursor, members))
    }

    /// The inputs of ZUNION / ZINTER / ZDIFF / ZINTERCARD: every key is looked up first (sets count
    /// as sorted sets of score 1; another type is WRONGTYPE), as Redis does before reading options.
    pub fn zsources_check(&mut self, db: usize, keys: &[Bytes], now: u64) -> Result<(), Error> {
        for key in keys {
            if let Some(entry) = self.read(db, key, now)
                && !matches!(entry.value, super::Value::Zset(_) | super::Value::Set(_))
            {
                return Err(Error::wrong_type());
            }
        }
        Ok(())
    }

    fn zsources(&self, db: usize, keys: &[Bytes], now: u64) -> Vec<Source<'_>> {
        keys.iter()
            .map(|k| match self.dbs[db].get(k) {
                Some(e) if e.expire_at > now => match &e.value {
                    super::Value::Zset(z) => Source::Zset(z),
                    super::Value::Set(s) => Source::Set(s),
                    _ => Source::Missing,
                },
                _ => Source::Missing,
            })
            .collect()
    }

    /// ZUNION / ZINTER / ZDIFF (after [`Keyspace::zsources_check`]): the result, with `weights` (one
    /// per key, or empty for all 1) and `aggregate` for union and intersection.
    pub fn zsetop(&self, db: usize, keys: &[Bytes], op: ZOp, weights: &[f64], aggregate: Aggregate, now: u64) -> Zset {
        let sources = self.zsources(db, keys, now);
        let weight = |i: usize| weights.get(i).copied().unwrap_or(1.0);
        match op {
            ZOp::Diff => {
                let (first, rest) = sources.split_first().expect("at least one key");
                let mut out = Vec::new();
                first.for_each(|m, s| {
                    if !rest.iter().any(|r| r.score(m).is_some()) {
                        out.push((Bytes::copy_from_slice(m), s));
                    }
                });
                build(out)
            }
            ZOp::Union => {
                let mut order: Vec<usize> = (0..sources.len()).collect();
                order.sort_by_key(|i| sources[*i].len());
                let mut acc: HashMap<Bytes, f64> = HashMap::new();
                for i in order {
                    sources[i].for_each(|m, s| {
                        let mut value = weight(i) * s;
                        if value.is_nan() {
                            value = 0.0;
                        }
                        match acc.get_mut(m) {
                            Some(target) => aggregate.apply(target, value),
                            None => drop(acc.insert(Bytes::copy_from_slice(m), value)),
                        }
                    });
                }
                build(acc)
            }
            ZOp::Inter => build(self.zinter(&sources, &weight, aggregate, 0)),
        }
    }

    fn zinter(&self, sources: &[Source<'_>], weight: &impl Fn(usize) -> f64, aggregate: Aggregate, limit: usize) -> Vec<(Bytes, f64)> {
        let mut order: Vec<usize> = (0..sources.len()).collect();
        order.sort_by_key(|i| sources[*i].len());
        let (first, rest) = order.split_first().expect("at least one key");
        let mut out = Vec::new();
        sources[*first].for_each(|m, s| {
            if limit > 0 && out.len() >= limit {
                return;
            }
            let mut score = weight(*first) * s;
            if score.is_nan() {
                score = 0.0;
            }
            for j in rest {
                match sources[*j].score(m) {
                    Some(v) => aggregate.apply(&mut score, v * weight(*j)),
                    None => return,
                }
            }
            out.push((Bytes::copy_from_slice(m), score));
        });
        out
    }

    /// ZINTERCARD (after [`Keyspace::zsources_check`]): the intersection's size, counting stops at
    /// `limit` (0: no limit).
    pub fn zintercard(&self, db: usize, keys: &[Bytes], limit: usize, now: u64) -> usize {
        let sources = self.zsources(db, keys, now);
        self.zinter(&sources, &|_| 1.0, Aggregate::Sum, limit).len()
    }

    /// The STORE forms: `result` at `destination` (deleted when empty), announced as `event`.
    pub fn zstore(&mut self, db: usize, destination: &[u8], result: Zset, event: &'static str, now: u64) -> usize {
        self.store_result(db, destination, result, notify::ZSET, event, now)
    }
}

/// Members with their scores, in the order a command answers them.
pub type Scored = Vec<(Bytes, f64)>;

/// What a pop found: the key popped from and the members with their scores.
pub type ZpopResult = Result<Option<(Bytes, Scored)>, Error>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::keyspace::test_support::keyspace;

    fn e(pairs: &[(f64, &str)]) -> Vec<(f64, Bytes)> {
        pairs.iter().map(|(s, m)| (*s, Bytes::copy_from_slice(m.as_bytes()))).collect()
    }

    fn b(items: &[&str]) -> Vec<Bytes> {
        items.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn zadd_options() {
        let mut ks = keyspace();
        let f = ZaddFlags::default();
        assert_eq!(ks.zadd(0, b"z", f, &e(&[(1.0, "a"), (2.0, "b")]), 0).unwrap(), Zadded::Count(2));
        assert_eq!(ks.zadd(0, b"z", ZaddFlags { ch: true, ..f }, &e(&[(5.0, "a"), (2.0, "b")]), 0).unwrap(), Zadded::Count(1));
        assert_eq!(ks.zadd(0, b"z", ZaddFlags { gt: true, ch: true, ..f }, &e(&[(4.0, "a")]), 0).unwrap(), Zadded::Count(0));
        assert_eq!(ks.zadd(0, b"z", ZaddFlags { incr: true, ..f }, &e(&[(1.5, "a")]), 0).unwrap(), Zadded::Score(Some(6.5)));
        assert_eq!(ks.zadd(0, b"z", ZaddFlags { incr: true, nx: true, ..f }, &e(&[(1.5, "a")]), 0).unwrap(), Zadded::Score(None));
        assert_eq!(ks.zadd(0, b"new", ZaddFlags { xx: true, ..f }, &e(&[(1.0, "a")]), 0).unwrap(), Zadded::Count(0));
        assert_eq!(ks.type_of(0, b"new", 0), "none");
        ks.zadd(0, b"z", f, &e(&[(f64::INFINITY, "i")]), 0).unwrap();
        assert!(ks.zadd(0, b"z", ZaddFlags { incr: true, ..f }, &e(&[(f64::NEG_INFINITY, "i")]), 0).is_err());
        assert_eq!(ks.zrank(0, b"z", b"i", false, 0).unwrap(), Some(2));
        assert_eq!(ks.zrank(0, b"z", b"i", true, 0).unwrap(), Some(0));
    }

    #[test]
    fn pops_and_the_empty_set_goes() {
        let mut ks = keyspace();
        ks.zadd(0, b"z", ZaddFlags::default(), &e(&[(1.0, "a"), (2.0, "b"), (3.0, "c")]), 0).unwrap();
        let (_, top) = ks.zpop(0, &b(&["nokey", "z"]), true, 2, false, 0).unwrap().unwrap();
        assert_eq!(top, vec![(Bytes::from("c"), 3.0), (Bytes::from("b"), 2.0)]);
        ks.zpop(0, &b(&["z"]), false, 5, false, 0).unwrap();
        assert_eq!(ks.type_of(0, b"z", 0), "none");
        ks.mset(0, &[(Bytes::from("s"), Bytes::from("v"))], false, 0);
        assert_eq!(ks.zpop(0, &b(&["s"]), false, 1, false, 0), Err(Error::wrong_type()));
        assert_eq!(ks.zpop(0, &b(&["s"]), false, 1, true, 0), Ok(None));
    }

    #[test]
    fn algebra_with_weights_and_sets() {
        let mut ks = keyspace();
        ks.zadd(0, b"a", ZaddFlags::default(), &e(&[(1.0, "x"), (2.0, "y")]), 0).unwrap();
        ks.zadd(0, b"b", ZaddFlags::default(), &e(&[(10.0, "y"), (f64::INFINITY, "z")]), 0).unwrap();
        ks.sadd(0, b"s", &b(&["y", "w"]), 0).unwrap();
        let keys = b(&["a", "b", "s"]);
        ks.zsources_check(0, &keys, 0).unwrap();
        let members = |z: Zset| {
            let mut out = Vec::new();
            z.for_each(|m, s| out.push((String::from_utf8_lossy(m).into_owned(), s)));
            out
        };
        let union = ks.zsetop(0, &keys, ZOp::Union, &[1.0, 2.0, 0.0], Aggregate::Sum, 0);
        assert_eq!(members(union), [("w".into(), 0.0), ("x".into(), 1.0), ("y".into(), 22.0), ("z".into(), f64::INFINITY)]);
        let inter = ks.zsetop(0, &keys, ZOp::Inter, &[], Aggregate::Max, 0);
        assert_eq!(members(inter), [("y".to_string(), 10.0)]);
        let diff = ks.zsetop(0, &b(&["a", "s"]), ZOp::Diff, &[], Aggregate::Sum, 0);
        assert_eq!(members(diff), [("x".to_string(), 1.0)]);
        assert_eq!(ks.zintercard(0, &b(&["a", "b"]), 0, 0), 1);
        ks.mset(0, &[(Bytes::from("str"), Bytes::from("v"))], false, 0);
        assert_eq!(ks.zsources_check(0, &b(&["nokey", "str"]), 0), Err(Error::wrong_type()));
    }
}
