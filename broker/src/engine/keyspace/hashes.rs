//! Hash operations with Redis 7.0's semantics and notifications (`h` class: `hset`, `hdel`,
//! `hincrby`, `hincrbyfloat`). A hash emptied by HDEL is deleted (`del`), as in Redis.

use bytes::Bytes;
use herald_protocol::long_double::{self, LongDouble};
use herald_protocol::number::parse_i64;

use super::aggregate::{ElementScan, sample};
use super::{Keyspace, notify};
use crate::engine::Error;
use crate::engine::change::KeyEffect;
use crate::engine::collections::Hash;

fn copy(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

/// HRANDFIELD's answer before shaping: pairs, values kept even when not asked for.
pub type Pairs = Vec<(Bytes, Bytes)>;

impl Keyspace {
    /// HSET / HMSET: the number of fields that were new.
    pub fn hset(&mut self, db: usize, key: &[u8], pairs: &[(Bytes, Bytes)], now: u64) -> Result<usize, Error> {
        let added = self.update(db, key, now, true, |h: &mut Hash| Ok(pairs.iter().filter(|(f, v)| h.set(f, v)).count()))?;
        self.delta(db, key, notify::HASH, "hset", KeyEffect::HashSet { fields: pairs });
        Ok(added.unwrap_or(0))
    }

    /// HSETNX: whether the field was set (it was absent).
    pub fn hsetnx(&mut self, db: usize, key: &[u8], field: &Bytes, value: &Bytes, now: u64) -> Result<bool, Error> {
        let set = self.update(db, key, now, true, |h: &mut Hash| Ok(h.get(field).is_none() && h.set(field, value)))?;
        if set == Some(true) {
            self.delta(db, key, notify::HASH, "hset", KeyEffect::HashSet { fields: &[(field.clone(), value.clone())] });
        }
        Ok(set == Some(true))
    }

    pub fn hget(&mut self, db: usize, key: &[u8], field: &[u8], now: u64) -> Result<Option<Bytes>, Error> {
        Ok(self.view::<Hash>(db, key, now)?.and_then(|h| h.get(field)).map(copy))
    }

    pub fn hmget(&mut self, db: usize, key: &[u8], fields: &[Bytes], now: u64) -> Result<Vec<Option<Bytes>>, Error> {
        let hash = self.view::<Hash>(db, key, now)?;
        Ok(fields.iter().map(|f| hash.and_then(|h| h.get(f)).map(copy)).collect())
    }

    /// HDEL: how many of the fields existed.
    pub fn hdel(&mut self, db: usize, key: &[u8], fields: &[Bytes], now: u64) -> Result<usize, Error> {
        self.remove_elements((db, key, now), fields, (notify::HASH, "hdel"), |fields| KeyEffect::HashDel { fields }, Hash::remove)
    }

    pub fn hlen(&mut self, db: usize, key: &[u8], now: u64) -> Result<usize, Error> {
        Ok(self.view::<Hash>(db, key, now)?.map_or(0, Hash::len))
    }

    pub fn hstrlen(&mut self, db: usize, key: &[u8], field: &[u8], now: u64) -> Result<usize, Error> {
        Ok(self.view::<Hash>(db, key, now)?.and_then(|h| h.get(field)).map_or(0, <[u8]>::len))
    }

    pub fn hexists(&mut self, db: usize, key: &[u8], field: &[u8], now: u64) -> Result<bool, Error> {
        Ok(self.view::<Hash>(db, key, now)?.is_some_and(|h| h.get(field).is_some()))
    }

    /// HINCRBY: the new value. The stored value must be a canonical integer.
    pub fn hincrby(&mut self, db: usize, key: &[u8], field: &Bytes, by: i64, now: u64) -> Result<i64, Error> {
        let next = self
            .update(db, key, now, true, |h: &mut Hash| {
                let current = match h.get(field) {
                    Some(v) => parse_i64(v).ok_or(Error::fixed("ERR hash value is not an integer"))?,
                    None => 0,
                };
                let next = current.checked_add(by).ok_or(Error::fixed("ERR increment or decrement would overflow"))?;
                h.set(field, next.to_string().as_bytes());
                Ok(next)
            })?
            .expect("created");
        let fields = [(field.clone(), Bytes::from(next.to_string()))];
        self.delta(db, key, notify::HASH, "hincrby", KeyEffect::HashSet { fields: &fields });
        Ok(next)
    }

    /// HINCRBYFLOAT: the new value as Redis prints it (`long double`, as INCRBYFLOAT).
    pub fn hincrbyfloat(&mut self, db: usize, key: &[u8], field: &Bytes, by: LongDouble, now: u64) -> Result<Bytes, Error> {
        let text = self
            .update(db, key, now, true, |h: &mut Hash| {
                let current = match h.get(field) {
                    Some(v) => long_double::parse(v).ok_or(Error::fixed("ERR hash value is not a float"))?,
                    None => LongDouble::ZERO,
                };
                let next = current.checked_add(by).ok_or(Error::fixed("ERR increment would produce NaN or Infinity"))?;
                let text = Bytes::from(next.human());
                h.set(field, &text);
                Ok(text)
            })?
            .expect("created");
        let fields = [(field.clone(), text.clone())];
        self.delta(db, key, notify::HASH, "hincrbyfloat", KeyEffect::HashSet { fields: &fields });
        Ok(text)
    }

    /// HGETALL: every (field, value), in the hash's order.
    pub fn hgetall(&mut self, db: usize, key: &[u8], now: u64) -> Result<Pairs, Error> {
        let mut out = Vec::new();
        if let Some(h) = self.view::<Hash>(db, key, now)? {
            out.reserve(h.len());
            h.for_each(|f, v| out.push((copy(f), copy(v))));
        }
        Ok(out)
    }

    /// HRANDFIELD with a count: `Ok(None)` for a missing key. A positive count gives distinct fields
    /// (all of them, in the hash's order, when it covers the hash); a negative one may repeat.
    pub fn hrandfield(
        &mut self,
        db: usize,
        key: &[u8],
        count: i64,
        now: u64,
        rand: &mut impl FnMut() -> u64,
    ) -> Result<Option<Pairs>, Error> {
        let Some(h) = self.view::<Hash>(db, key, now)? else { return Ok(None) };
        let all = || {
            let mut all = Vec::with_capacity(h.len());
            h.for_each(|f, v| all.push((copy(f), copy(v))));
            all
        };
        let draw = |mut rand: &mut dyn FnMut() -> u64| h.random(&mut rand).map(|(f, v)| (copy(f), copy(v))).expect("not empty");
        Ok(Some(sample(count, h.len(), rand, all, draw, |(f, _)| f.clone())))
    }

    /// HRANDFIELD without a count: one random field.
    pub fn hrandfield_one(&mut self, db: usize, key: &[u8], now: u64, rand: &mut impl FnMut() -> u64) -> Result<Option<Bytes>, Error> {
        Ok(self.view::<Hash>(db, key, now)?.and_then(|h| h.random(rand)).map(|(f, _)| copy(f)))
    }

    /// HSCAN: the next cursor and the (field, value) pairs found.
    pub fn hscan(&mut self, db: usize, key: &[u8], scan: &ElementScan, now: u64) -> Result<(u64, Pairs), Error> {
        let Some(h) = self.peek::<Hash>(db, key, now)? else { return Ok((0, Vec::new())) };
        let (cursor, mut pairs) = scan.collect(|c, out| h.scan(c, |f, v| out.push((copy(f), copy(v)))));
        pairs.retain(|(f, _)| scan.matches(f));
        Ok((cursor, pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::keyspace::test_support::keyspace;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn set_get_delete_and_the_empty_hash_goes() {
        let mut ks = keyspace();
        assert_eq!(ks.hset(0, b"h", &[(b("a"), b("1")), (b("b"), b("2")), (b("a"), b("3"))], 0).unwrap(), 2);
        assert_eq!(ks.hget(0, b"h", b"a", 0).unwrap(), Some(b("3")));
        assert!(!ks.hsetnx(0, b"h", &b("a"), &b("x"), 0).unwrap());
        assert_eq!(ks.hgetall(0, b"h", 0).unwrap(), vec![(b("a"), b("3")), (b("b"), b("2"))]);
        assert_eq!(ks.hdel(0, b"h", &[b("a"), b("zz")], 0).unwrap(), 1);
        assert_eq!(ks.hdel(0, b"h", &[b("b")], 0).unwrap(), 1);
        assert_eq!(ks.type_of(0, b"h", 0), "none");
        ks.mset(0, &[(b("s"), b("v"))], false, 0);
        assert_eq!(ks.hset(0, b"s", &[(b("a"), b("1"))], 0), Err(Error::wrong_type()));
    }

    #[test]
    fn increments() {
        let mut ks = keyspace();
        assert_eq!(ks.hincrby(0, b"h", &b("n"), 5, 0).unwrap(), 5);
        assert_eq!(ks.hincrby(0, b"h", &b("n"), i64::MAX, 0), Err(Error::fixed("ERR increment or decrement would overflow")));
        let f = |t: &str| long_double::parse(t.as_bytes()).unwrap();
        assert_eq!(&ks.hincrbyfloat(0, b"h", &b("n"), f("0.1"), 0).unwrap()[..], b"5.1");
        assert_eq!(ks.hincrby(0, b"h", &b("n"), 1, 0), Err(Error::fixed("ERR hash value is not an integer")));
    }

    #[test]
    fn random_fields_with_counts() {
        let mut ks = keyspace();
        let pairs: Vec<_> = (0..10).map(|i| (b(&format!("f{i}")), b("v"))).collect();
        ks.hset(0, b"h", &pairs, 0).unwrap();
        let mut x = 9u64;
        let mut rand = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        assert_eq!(ks.hrandfield(0, b"h", 20, 0, &mut rand).unwrap().unwrap(), pairs, "all, in order");
        assert_eq!(ks.hrandfield(0, b"h", -20, 0, &mut rand).unwrap().unwrap().len(), 20);
        let some = ks.hrandfield(0, b"h", 4, 0, &mut rand).unwrap().unwrap();
        assert_eq!(some.iter().map(|p| &p.0).collect::<std::collections::HashSet<_>>().len(), 4);
        assert_eq!(ks.hrandfield(0, b"nokey", 4, 0, &mut rand).unwrap(), None);
    }
}
