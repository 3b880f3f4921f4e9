//! Set operations with Redis 7.0's semantics and notifications (`s` class: `sadd`, `srem`, `spop`,
//! `sinterstore`, `sunionstore`, `sdiffstore`). A set emptied by SREM, SPOP or SMOVE is deleted
//! (`del`), as in Redis.

use bytes::Bytes;

use super::aggregate::{ElementScan, sample};
use super::{Keyspace, notify};
use crate::engine::Error;
use crate::engine::change::KeyEffect;
use crate::engine::collections::Set;

/// SUNION or SDIFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    Union,
    Diff,
}

impl Keyspace {
    /// The sets at `keys` for an algebra command: a missing key is `None`; every key is type-checked
    /// first, as Redis does, so WRONGTYPE wins over an empty result.
    fn sets_of(&mut self, db: usize, keys: &[Bytes], now: u64) -> Result<Vec<Option<&Set>>, Error> {
        for key in keys {
            self.view::<Set>(db, key, now)?;
        }
        Ok(keys.iter().map(|k| self.peek::<Set>(db, k, now).expect("checked")).collect())
    }

    /// SADD: how many members were new.
    pub fn sadd(&mut self, db: usize, key: &[u8], members: &[Bytes], now: u64) -> Result<usize, Error> {
        let added = self.update(db, key, now, true, |s: &mut Set| Ok(members.iter().filter(|m| s.add(m)).count()))?.unwrap_or(0);
        if added > 0 {
            self.delta(db, key, notify::SET, "sadd", KeyEffect::SetAdd { members });
        }
        Ok(added)
    }

    /// SREM: how many members were there.
    pub fn srem(&mut self, db: usize, key: &[u8], members: &[Bytes], now: u64) -> Result<usize, Error> {
        self.remove_elements((db, key, now), members, (notify::SET, "srem"), |members| KeyEffect::SetRem { members }, Set::remove)
    }

    pub fn scard(&mut self, db: usize, key: &[u8], now: u64) -> Result<usize, Error> {
        Ok(self.view::<Set>(db, key, now)?.map_or(0, Set::len))
    }

    pub fn sismember(&mut self, db: usize, key: &[u8], member: &[u8], now: u64) -> Result<bool, Error> {
        Ok(self.view::<Set>(db, key, now)?.is_some_and(|s| s.contains(member)))
    }

    pub fn smismember(&mut self, db: usize, key: &[u8], members: &[Bytes], now: u64) -> Result<Vec<bool>, Error> {
        let set = self.view::<Set>(db, key, now)?;
        Ok(members.iter().map(|m| set.is_some_and(|s| s.contains(m))).collect())
    }

    /// SMEMBERS: an intset in ascending order, a table in its order.
    pub fn smembers(&mut self, db: usize, key: &[u8], now: u64) -> Result<Vec<Bytes>, Error> {
        Ok(self.view::<Set>(db, key, now)?.map(Set::members).unwrap_or_default())
    }

    /// SPOP: up to `count` random members removed (`None`: SPOP without a count, at most one).
    /// `Ok(None)` for a missing key. Popping the whole set answers it in its order and deletes it.
    pub fn spop(
        &mut self,
        db: usize,
        key: &[u8],
        count: usize,
        now: u64,
        rand: &mut impl FnMut() -> u64,
    ) -> Result<Option<Vec<Bytes>>, Error> {
        let Some(set) = self.peek::<Set>(db, key, now)? else { return Ok(None) };
        if count == 0 {
            return Ok(Some(Vec::new()));
        }
        let whole = count >= set.len();
        let popped = self
            .update(db, key, now, false, |s: &mut Set| {
                Ok(if whole { std::mem::take(s).members() } else { (0..count).filter_map(|_| s.pop(rand)).collect() })
            })?
            .expect("present");
        self.delta(db, key, notify::SET, "spop", KeyEffect::SetRem { members: &popped });
        self.drop_if_empty::<Set>(db, key);
        Ok(Some(popped))
    }

    /// SRANDMEMBER with a count: `Ok(None)` for a missing key. A positive count gives distinct
    /// members (the whole set, in its order, when it covers the set); a negative one may repeat.
    pub fn srandmember(
        &mut self,
        db: usize,
        key: &[u8],
        count: i64,
        now: u64,
        rand: &mut impl FnMut() -> u64,
    ) -> Result<Option<Vec<Bytes>>, Error> {
        let Some(set) = self.view::<Set>(db, key, now)? else { return Ok(None) };
        let draw = |mut rand: &mut dyn FnMut() -> u64| set.random(&mut rand).expect("not empty");
        Ok(Some(sample(count, set.len(), rand, || set.members(), draw, Bytes::clone)))
    }

    /// SRANDMEMBER without a count.
    pub fn srandmember_one(&mut self, db: usize, key: &[u8], now: u64, rand: &mut impl FnMut() -> u64) -> Result<Option<Bytes>, Error> {
        Ok(self.view::<Set>(db, key, now)?.and_then(|s| s.random(rand)))
    }

    /// SMOVE: whether the member moved (or, with the same key twice, is there).
    pub fn smove(&mut self, db: usize, source: &[u8], destination: &[u8], member: &Bytes, now: u64) -> Result<bool, Error> {
        if self.peek::<Set>(db, source, now)?.is_none() {
            return Ok(false);
        }
        self.peek::<Set>(db, destination, now)?;
        if source == destination {
            return Ok(self.peek::<Set>(db, source, now)?.is_some_and(|s| s.contains(member)));
        }
        if !self.update(db, source, now, false, |s: &mut Set| Ok(s.remove(member)))?.unwrap_or(false) {
            return Ok(false);
        }
        let moved = std::slice::from_ref(member);
        self.delta(db, source, notify::SET, "srem", KeyEffect::SetRem { members: moved });
        self.drop_if_empty::<Set>(db, source);
        if self.update(db, destination, now, true, |s: &mut Set| Ok(s.add(member)))? == Some(true) {
            self.delta(db, destination, notify::SET, "sadd", KeyEffect::SetAdd { members: moved });
        }
        Ok(true)
    }

    /// SINTER: the members of every set, in the order of the smallest (an intset: ascending).
    /// `limit` (SINTERCARD) stops after that many (0: no limit).
    pub fn sinter(&mut self, db: usize, keys: &[Bytes], limit: usize, now: u64) -> Result<Vec<Bytes>, Error> {
        let sets = self.sets_of(db, keys, now)?;
        let Some(mut sets) = sets.into_iter().collect::<Option<Vec<&Set>>>() else { return Ok(Vec::new()) };
        sets.sort_by_key(|s| s.len());
        let (first, rest) = sets.split_first().expect("at least one key");
        let mut out = Vec::new();
        first.for_each(|m| {
            if (limit == 0 || out.len() < limit) && rest.iter().all(|s| s.contains(m)) {
                out.push(Bytes::copy_from_slice(m));
            }
        });
        Ok(out)
    }

    /// SUNION / SDIFF as a new set (an intset while the members allow).
    pub fn sunion_diff(&mut self, db: usize, keys: &[Bytes], op: SetOp, now: u64) -> Result<Set, Error> {
        let sets = self.sets_of(db, keys, now)?;
        let mut out = Set::default();
        match op {
            SetOp::Union => sets.iter().flatten().for_each(|s| {
                s.for_each(|m| {
                    out.add(m);
                })
            }),
            SetOp::Diff => {
                if let Some(Some(first)) = sets.first() {
                    let rest: Vec<&Set> = sets[1..].iter().flatten().copied().collect();
                    first.for_each(|m| {
                        if !rest.iter().any(|s| s.contains(m)) {
                            out.add(m);
                        }
                    });
                }
            }
        }
        Ok(out)
    }

    /// SINTERSTORE / SUNIONSTORE / SDIFFSTORE: stores `result` at `destination` (deleting it when
    /// empty) and announces `event`; the result's size.
    pub fn sstore(&mut self, db: usize, destination: &[u8], members: Set, event: &'static str, now: u64) -> usize {
        self.store_result(db, destination, members, notify::SET, event, now)
    }

    /// SSCAN: the next cursor and the members found.
    pub fn sscan(&mut self, db: usize, key: &[u8], scan: &ElementScan, now: u64) -> Result<(u64, Vec<Bytes>), Error> {
        let Some(s) = self.peek::<Set>(db, key, now)? else { return Ok((0, Vec::new())) };
        let (cursor, mut members) = scan.collect(|c, out| s.scan(c, |m| out.push(Bytes::copy_from_slice(m))));
        members.retain(|m| scan.matches(m));
        Ok((cursor, members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::keyspace::test_support::keyspace;

    fn b(items: &[&str]) -> Vec<Bytes> {
        items.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    fn rand() -> impl FnMut() -> u64 {
        let mut x = 77u64;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn algebra_and_stores() {
        let mut ks = keyspace();
        ks.sadd(0, b"a", &b(&["3", "1", "2"]), 0).unwrap();
        ks.sadd(0, b"b", &b(&["2", "3", "4"]), 0).unwrap();
        assert_eq!(ks.sinter(0, &b(&["a", "b"]), 0, 0).unwrap(), b(&["2", "3"]));
        assert_eq!(ks.sinter(0, &b(&["a", "b"]), 1, 0).unwrap(), b(&["2"]));
        assert_eq!(ks.sinter(0, &b(&["a", "nokey"]), 0, 0).unwrap(), b(&[]));
        assert_eq!(ks.sunion_diff(0, &b(&["a", "b"]), SetOp::Union, 0).unwrap().members(), b(&["1", "2", "3", "4"]));
        let diff = ks.sunion_diff(0, &b(&["a", "b"]), SetOp::Diff, 0).unwrap();
        assert_eq!(ks.sstore(0, b"d", diff, "sdiffstore", 0), 1);
        assert_eq!(ks.smembers(0, b"d", 0).unwrap(), b(&["1"]));
        ks.mset(0, &[(Bytes::from("s"), Bytes::from("v"))], false, 0);
        assert_eq!(ks.sinter(0, &b(&["nokey", "s"]), 0, 0), Err(Error::wrong_type()));
    }

    #[test]
    fn pops_moves_and_removals_delete_the_empty_set() {
        let mut ks = keyspace();
        ks.sadd(0, b"s", &b(&["a", "b", "c"]), 0).unwrap();
        assert!(ks.smove(0, b"s", b"t", &Bytes::from("a"), 0).unwrap());
        assert!(!ks.smove(0, b"s", b"t", &Bytes::from("a"), 0).unwrap());
        assert_eq!(ks.srem(0, b"s", &b(&["b", "x"]), 0).unwrap(), 1);
        let mut r = rand();
        assert_eq!(ks.spop(0, b"s", 5, 0, &mut r).unwrap(), Some(b(&["c"])));
        assert_eq!(ks.type_of(0, b"s", 0), "none");
        assert_eq!(ks.spop(0, b"s", 1, 0, &mut r).unwrap(), None);
        assert_eq!(ks.srandmember(0, b"t", -3, 0, &mut r).unwrap(), Some(b(&["a", "a", "a"])));
    }
}
