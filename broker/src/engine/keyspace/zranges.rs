//! Sorted-set ranges: by rank, by score (`inf`, exclusive `(` bounds) and by member (`[`, `(`, `-`,
//! `+`), forwards or reversed, with LIMIT; and what reads, removes or stores them (ZRANGE and its older
//! forms, ZCOUNT, ZLEXCOUNT, ZREMRANGEBY*, ZRANGESTORE).
//!
//! Every range becomes a span of ranks `[lo, hi)` found with two position searches (O(log n) on the
//! large encoding), so counting is O(log n) and reading is O(log n + m), as in Redis.

use bytes::Bytes;

use super::{Keyspace, notify};
use crate::engine::Error;
use crate::engine::change::KeyEffect;
use crate::engine::collections::Zset;

/// One end of a score range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreBound {
    pub value: f64,
    pub exclusive: bool,
}

/// One end of a lexicographic range: `-`, `+`, `[member` or `(member`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound {
    Min,
    Max,
    Inclusive(Bytes),
    Exclusive(Bytes),
}

/// What a range selects.
#[derive(Debug, Clone, PartialEq)]
pub enum RangeBy {
    /// Ranks `start..=stop`, negative counting from the end (of the reversed order when `rev`).
    Rank(i64, i64),
    Score {
        min: ScoreBound,
        max: ScoreBound,
    },
    Lex {
        min: LexBound,
        max: LexBound,
    },
}

/// A ZRANGE: what, which way, and LIMIT offset count (score and lex ranges only; a negative count
/// means all, a negative offset nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct ZRange {
    pub by: RangeBy,
    pub rev: bool,
    pub limit: Option<(i64, i64)>,
}

/// Where a range with this bound starts (as its minimum: the members below it) or ends (as its
/// maximum: the members up to it).
fn score_position(z: &Zset, bound: ScoreBound, as_max: bool) -> usize {
    let ScoreBound { value, exclusive } = bound;
    // Below a minimum: < value (<= when exclusive). Up to a maximum: <= value (< when exclusive).
    match (as_max, exclusive) {
        (false, false) | (true, true) => z.position(|s, _| s < value),
        (false, true) | (true, false) => z.position(|s, _| s <= value),
    }
}

fn lex_position(z: &Zset, bound: &LexBound, as_max: bool) -> usize {
    if as_max { z.position(|_, m| before_max(m, bound)) } else { z.position(|_, m| !after_min(m, bound)) }
}

/// Whether `member` is at or after a lex range's minimum.
fn after_min(member: &[u8], min: &LexBound) -> bool {
    match min {
        LexBound::Min => true,
        LexBound::Max => false,
        LexBound::Inclusive(b) => member >= &b[..],
        LexBound::Exclusive(b) => member > &b[..],
    }
}

/// Whether `member` is at or before a lex range's maximum.
fn before_max(member: &[u8], max: &LexBound) -> bool {
    match max {
        LexBound::Min => false,
        LexBound::Max => true,
        LexBound::Inclusive(b) => member <= &b[..],
        LexBound::Exclusive(b) => member < &b[..],
    }
}

/// A lex range's ranks. Lex ranges assume equal scores; with mixed ones Redis's answer is unspecified
/// but partly predictable, and we give the predictable part: nothing unless the last member is at or
/// after the minimum and the first at or before the maximum (`zslIsInLexRange`), and on the packed
/// encoding the run a linear walk finds: from the first member at or after the minimum on, or when
/// `rev` from the last at or before the maximum back.
fn lex_span(z: &Zset, min: &LexBound, max: &LexBound, rev: bool) -> (usize, usize) {
    fn key(b: &LexBound) -> (u8, &[u8]) {
        match b {
            LexBound::Min => (0, b""),
            LexBound::Inclusive(m) | LexBound::Exclusive(m) => (1, m),
            LexBound::Max => (2, b""),
        }
    }
    let exclusive = |b: &LexBound| !matches!(b, LexBound::Inclusive(_));
    let (lo_key, hi_key) = (key(min), key(max));
    if lo_key > hi_key || (lo_key == hi_key && (exclusive(min) || exclusive(max))) {
        return (0, 0);
    }
    let (Some((first, _)), Some((last, _))) = (z.get(0), z.get(z.len().saturating_sub(1))) else { return (0, 0) };
    if !after_min(last, min) || !before_max(first, max) {
        return (0, 0);
    }
    match z {
        Zset::Pack(_) => {
            let mut members = Vec::with_capacity(z.len());
            z.for_each(|m, _| members.push(m.to_vec()));
            if rev {
                // From the last member at or before the maximum, back while at or after the minimum.
                let Some(top) = members.iter().rposition(|m| before_max(m, max)).filter(|i| after_min(&members[*i], min)) else {
                    return (0, 0);
                };
                (members[..top].iter().rposition(|m| !after_min(m, min)).map_or(0, |i| i + 1), top + 1)
            } else {
                let Some(first) = members.iter().position(|m| after_min(m, min)).filter(|i| before_max(&members[*i], max)) else {
                    return (0, 0);
                };
                (first, members[first..].iter().position(|m| !before_max(m, max)).map_or(members.len(), |i| first + i))
            }
        }
        Zset::Tree(_) => (lex_position(z, min, false), lex_position(z, max, true)),
    }
}

/// The ascending ranks `[lo, hi)` a score or lex range covers (`hi <= lo`: none), read forwards or
/// (`rev`) backwards.
fn span(z: &Zset, by: &RangeBy, rev: bool) -> (usize, usize) {
    match by {
        RangeBy::Rank(start, stop) => {
            let len = z.len() as i64;
            let start = if *start < 0 { (len + start).max(0) } else { *start };
            let stop = if *stop < 0 { len + stop } else { (*stop).min(len - 1) };
            if start > stop || start >= len { (0, 0) } else { (start as usize, stop as usize + 1) }
        }
        RangeBy::Score { min, max } => (score_position(z, *min, false), score_position(z, *max, true)),
        RangeBy::Lex { min, max } => lex_span(z, min, max, rev),
    }
}

/// The ascending ranks a ZRANGE visits, after reversal and LIMIT; `rev` says which way to read them.
fn ranks(z: &Zset, range: &ZRange) -> (usize, usize) {
    let (lo, hi) = match (&range.by, range.rev) {
        // A reversed rank range counts from the end: rank r of the reversed order is len - 1 - r.
        (RangeBy::Rank(..), true) => {
            let (a, b) = span(z, &range.by, false);
            if a >= b { (0, 0) } else { (z.len() - b, z.len() - a) }
        }
        (by, rev) => span(z, by, rev),
    };
    if lo >= hi {
        return (0, 0);
    }
    let Some((offset, count)) = range.limit.filter(|_| !matches!(range.by, RangeBy::Rank(..))) else { return (lo, hi) };
    let Ok(offset) = usize::try_from(offset) else { return (0, 0) };
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    if offset >= hi - lo {
        return (0, 0);
    }
    if range.rev {
        let top = hi - offset;
        (top.saturating_sub(count).max(lo), top)
    } else {
        let from = lo + offset;
        (from, from.saturating_add(count).min(hi))
    }
}

/// The members and scores a ZRANGE selects, in the order it answers them.
pub(super) fn select(z: &Zset, range: &ZRange) -> Vec<(Bytes, f64)> {
    let (from, to) = ranks(z, range);
    let mut out = Vec::with_capacity(to.saturating_sub(from));
    z.visit(from, to, range.rev, |m, s| out.push((Bytes::copy_from_slice(m), s)));
    out
}

impl Keyspace {
    /// ZRANGE and the older forms: members with their scores.
    pub fn zrange(&mut self, db: usize, key: &[u8], range: &ZRange, now: u64) -> Result<Vec<(Bytes, f64)>, Error> {
        Ok(self.view::<Zset>(db, key, now)?.map(|z| select(z, range)).unwrap_or_default())
    }

    /// ZCOUNT / ZLEXCOUNT: how many members a score or lex range covers.
    pub fn zcount(&mut self, db: usize, key: &[u8], by: &RangeBy, now: u64) -> Result<usize, Error> {
        Ok(self.view::<Zset>(db, key, now)?.map_or(0, |z| {
            let (lo, hi) = span(z, by, false);
            hi.saturating_sub(lo)
        }))
    }

    /// ZRANGESTORE: stores the selected members at `destination` (deleting it when none), announcing
    /// `zrangestore`; how many.
    pub fn zrangestore(&mut self, db: usize, destination: &[u8], source: &[u8], range: &ZRange, now: u64) -> Result<usize, Error> {
        let selected = self.zrange(db, source, range, now)?;
        let longest = selected.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
        let mut result = Zset::for_size(selected.len(), longest);
        for (m, s) in &selected {
            result.set(m, *s);
        }
        Ok(self.zstore(db, destination, result, "zrangestore", now))
    }

    /// ZREMRANGEBYRANK / BYSCORE / BYLEX: how many members were removed.
    pub fn zremrange(&mut self, db: usize, key: &[u8], by: &RangeBy, now: u64) -> Result<usize, Error> {
        let event = match by {
            RangeBy::Rank(..) => "zremrangebyrank",
            RangeBy::Score { .. } => "zremrangebyscore",
            RangeBy::Lex { .. } => "zremrangebylex",
        };
        let Some(z) = self.peek::<Zset>(db, key, now)? else { return Ok(0) };
        let range = ZRange { by: by.clone(), rev: false, limit: None };
        let members: Vec<Bytes> = select(z, &range).into_iter().map(|(m, _)| m).collect();
        if members.is_empty() {
            return Ok(0);
        }
        self.update(db, key, now, false, |z: &mut Zset| {
            if members.len() == z.len() {
                *z = Zset::default();
            } else {
                for m in &members {
                    z.remove(m);
                }
            }
            Ok(())
        })?;
        self.delta(db, key, notify::ZSET, event, KeyEffect::ZRem { members: &members });
        self.drop_if_empty::<Zset>(db, key);
        Ok(members.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zset(n: usize) -> Zset {
        let mut z = Zset::default();
        for i in 0..n {
            z.set(format!("m{i}").as_bytes(), (i / 2) as f64);
        }
        z
    }

    fn names(v: Vec<(Bytes, f64)>) -> Vec<String> {
        v.into_iter().map(|(m, _)| String::from_utf8_lossy(&m).into_owned()).collect()
    }

    fn score(value: f64, exclusive: bool) -> ScoreBound {
        ScoreBound { value, exclusive }
    }

    #[test]
    fn ranges_on_both_encodings() {
        for n in [6, 300] {
            let z = zset(n);
            let by_rank = |a, b, rev| names(select(&z, &ZRange { by: RangeBy::Rank(a, b), rev, limit: None }));
            assert_eq!(by_rank(0, 1, false), ["m0", "m1"]);
            assert_eq!(by_rank(0, 1, true), [format!("m{}", n - 1), format!("m{}", n - 2)]);
            assert_eq!(by_rank(-2, 1000, false).len(), 2);
            assert!(by_rank(3, 1, false).is_empty());
            let by_score = |min, max, rev, limit| names(select(&z, &ZRange { by: RangeBy::Score { min, max }, rev, limit }));
            assert_eq!(by_score(score(1.0, false), score(2.0, false), false, None), ["m2", "m3", "m4", "m5"]);
            assert_eq!(by_score(score(1.0, true), score(2.0, false), false, None), ["m4", "m5"]);
            assert_eq!(by_score(score(1.0, false), score(2.0, true), true, None), ["m3", "m2"]);
            assert_eq!(by_score(score(f64::NEG_INFINITY, false), score(f64::INFINITY, false), false, Some((1, 2))), ["m1", "m2"]);
            assert_eq!(by_score(score(f64::NEG_INFINITY, false), score(2.0, false), true, Some((1, 2))), ["m4", "m3"]);
            assert!(by_score(score(0.0, false), score(9.0, false), false, Some((-1, 2))).is_empty());
            assert_eq!(by_score(score(0.0, false), score(1.0, false), false, Some((1, -1))), ["m1", "m2", "m3"]);
            assert!(by_score(score(2.0, false), score(1.0, false), false, None).is_empty());
            let mut ks = crate::engine::keyspace::test_support::keyspace();
            ks.zadd(0, b"z", Default::default(), &[(0.0, Bytes::from("a")), (0.0, Bytes::from("b")), (0.0, Bytes::from("c"))], 0).unwrap();
            let mut lex = |min: LexBound, max: LexBound| ks.zcount(0, b"z", &RangeBy::Lex { min, max }, 0).unwrap();
            assert_eq!(lex(LexBound::Min, LexBound::Max), 3);
            assert_eq!(lex(LexBound::Exclusive("a".into()), LexBound::Inclusive("c".into())), 2);
            assert_eq!(lex(LexBound::Max, LexBound::Min), 0);
        }
    }
}
