//! A sorted set's members and scores, in Redis's two encodings.
//!
//! Small sets are a [`Pack`] of (member, score) pairs kept in (score, member) order (Redis's listpack);
//! past 128 members, or once a member longer than 64 bytes arrives, the set becomes a [`Tree`] for
//! good: a [`Dict`] from member to score (ZSCORE, ZADD's lookup: O(1)) beside a [`RankTree`] of
//! (score, member) (ranges by score, lex and rank: O(log n) to find the start, then O(1) a member).
//! OBJECT ENCODING reports `listpack` / `skiplist`, the names Redis uses for the same thresholds
//! (`zset-max-listpack-entries`, `zset-max-listpack-value`).
//!
//! Every range is computed the same way on both encodings: find the ranks where it starts and ends
//! with [`Zset::position`], then visit the ranks in between.

use std::cmp::Ordering;

use super::pack::Pack;
use super::rank_tree::RankTree;
use crate::engine::dict::{Dict, Slot};
use crate::engine::small_bytes::SmallBytes;

pub const MAX_PACK_ENTRIES: usize = 128;
pub const MAX_PACK_VALUE: usize = 64;

/// Redis orders by score, then by member bytes; scores are never NaN (commands refuse a NaN result).
pub fn order(a_score: f64, a_member: &[u8], b_score: f64, b_member: &[u8]) -> Ordering {
    a_score.partial_cmp(&b_score).unwrap_or(Ordering::Equal).then_with(|| a_member.cmp(b_member))
}

/// An item of the tree: 40 bytes, the member inline when it has at most 30 bytes.
#[derive(Clone)]
pub struct Scored {
    pub score: f64,
    pub member: SmallBytes,
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        order(self.score, self.member.as_slice(), other.score, other.member.as_slice())
    }
}

/// The large encoding: both views of the same members.
#[derive(Clone, Default)]
pub struct Tree {
    scores: Dict<f64>,
    order: RankTree<Scored>,
}

#[derive(Clone)]
pub enum Zset {
    Pack(Pack),
    Tree(Box<Tree>),
}

impl Default for Zset {
    fn default() -> Self {
        Zset::Pack(Pack::default())
    }
}

fn score_of(bytes: &[u8]) -> f64 {
    f64::from_le_bytes(bytes.try_into().expect("8-byte score"))
}

fn probe<'a>(score: f64, member: &'a [u8]) -> impl Fn(&Scored) -> Ordering + 'a {
    move |x| order(x.score, x.member.as_slice(), score, member)
}

impl Zset {
    /// An empty set in the encoding Redis picks for a result of `len` members whose longest has
    /// `longest` bytes (ZUNIONSTORE and friends, `zsetConvertToListpackIfNeeded`).
    pub fn for_size(len: usize, longest: usize) -> Zset {
        if len > MAX_PACK_ENTRIES || longest > MAX_PACK_VALUE { Zset::Tree(Box::default()) } else { Zset::default() }
    }

    pub fn len(&self) -> usize {
        match self {
            Zset::Pack(p) => p.len(),
            Zset::Tree(t) => t.order.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Zset::Pack(_) => "listpack",
            Zset::Tree(_) => "skiplist",
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Zset::Pack(p) => p.find(member).map(|pair| score_of(pair.second)),
            Zset::Tree(t) => t.scores.get(member).copied(),
        }
    }

    fn convert(&mut self) {
        if let Zset::Pack(p) = self {
            let mut tree = Tree::default();
            for pair in p.scan() {
                let score = score_of(pair.second);
                tree.scores.insert_new(pair.first, score);
                tree.order.insert(Scored { score, member: SmallBytes::new(pair.first) });
            }
            *self = Zset::Tree(Box::new(tree));
        }
    }

    /// ZADD's step for one member, with one lookup of it: `decide` gets the member's current score
    /// (`None`: absent) and answers the score it should have (`None`: leave it as it is). Returns
    /// the score it had.
    pub fn upsert<E>(&mut self, member: &[u8], decide: impl FnOnce(Option<f64>) -> Result<Option<f64>, E>) -> Result<Option<f64>, E> {
        if let Zset::Tree(t) = self {
            let Tree { scores, order } = &mut **t;
            return Ok(match scores.slot(member) {
                Slot::Occupied(score) => {
                    let old = *score;
                    if let Some(new) = decide(Some(old))?
                        && new != old
                    {
                        *score = new;
                        order.remove(probe(old, member));
                        order.insert(Scored { score: new, member: SmallBytes::new(member) });
                    }
                    Some(old)
                }
                Slot::Vacant(vacant) => {
                    if let Some(new) = decide(None)? {
                        vacant.insert(member, new);
                        order.insert(Scored { score: new, member: SmallBytes::new(member) });
                    }
                    None
                }
            });
        }
        let old = self.score(member);
        if let Some(new) = decide(old)?
            && Some(new) != old
        {
            self.set(member, new);
        }
        Ok(old)
    }

    /// Gives `member` this score (adding it if new); returns the score it had.
    pub fn set(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let old = self.score(member);
        if old == Some(score) {
            return old;
        }
        if old.is_none() && matches!(self, Zset::Pack(p) if p.len() >= MAX_PACK_ENTRIES || member.len() > MAX_PACK_VALUE) {
            self.convert();
        }
        match self {
            Zset::Pack(p) => {
                if let Some(pair) = p.find(member) {
                    let at = pair.at;
                    p.remove(at);
                }
                // Redis writes a packed score as text, where -0 becomes 0.
                let score = if score == 0.0 { 0.0 } else { score };
                let at =
                    p.scan().find(|q| order(score_of(q.second), q.first, score, member) == Ordering::Greater).map_or(p.end(), |q| q.at);
                p.insert(at, member, &score.to_le_bytes());
            }
            Zset::Tree(t) => {
                if let Some(old) = old {
                    t.order.remove(probe(old, member));
                    *t.scores.get_mut(member).expect("present") = score;
                } else {
                    t.scores.insert_new(member, score);
                }
                t.order.insert(Scored { score, member: SmallBytes::new(member) });
            }
        }
        old
    }

    /// Removes a member; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match self {
            Zset::Pack(p) => {
                let pair = p.find(member)?;
                let (at, score) = (pair.at, score_of(pair.second));
                p.remove(at);
                Some(score)
            }
            Zset::Tree(t) => {
                let score = t.scores.remove(member)?;
                t.order.remove(probe(score, member));
                Some(score)
            }
        }
    }

    /// The 0-based rank of a member, ascending.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match self {
            Zset::Pack(p) => p.scan().position(|q| q.first == member),
            Zset::Tree(t) => {
                let score = *t.scores.get(member)?;
                t.order.rank(probe(score, member))
            }
        }
    }

    /// How many members come before the first for which `below(score, member)` is false; `below` must
    /// hold for a prefix of the order (e.g. `score < min`).
    pub fn position(&self, below: impl Fn(f64, &[u8]) -> bool) -> usize {
        match self {
            Zset::Pack(p) => p.scan().take_while(|q| below(score_of(q.second), q.first)).count(),
            Zset::Tree(t) => t.order.position(|x| below(x.score, x.member.as_slice())),
        }
    }

    /// Calls `f(member, score)` on the members at ranks `from..to`, ascending, or descending from
    /// `to - 1` when `rev`.
    pub fn visit(&self, from: usize, to: usize, rev: bool, mut f: impl FnMut(&[u8], f64)) {
        let to = to.min(self.len());
        if from >= to {
            return;
        }
        match self {
            Zset::Pack(p) if rev => p.iter().rev().skip(self.len() - to).take(to - from).for_each(|q| f(q.first, score_of(q.second))),
            Zset::Pack(p) => p.scan().skip(from).take(to - from).for_each(|q| f(q.first, score_of(q.second))),
            Zset::Tree(t) => t.order.visit(from, to, rev, |x| f(x.member.as_slice(), x.score)),
        }
    }

    /// The member and score at a rank.
    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        match self {
            Zset::Pack(p) => p.scan().nth(rank).map(|q| (q.first, score_of(q.second))),
            Zset::Tree(t) => t.order.get(rank).map(|x| (x.member.as_slice(), x.score)),
        }
    }

    /// Every (member, score) in order.
    pub fn for_each(&self, f: impl FnMut(&[u8], f64)) {
        self.visit(0, self.len(), false, f);
    }

    /// One ZSCAN step: a packed set answers everything at once with cursor 0, as Redis does; a tree
    /// is scanned through its member table.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], f64)) -> u64 {
        match self {
            Zset::Pack(_) => {
                self.for_each(f);
                0
            }
            Zset::Tree(t) => t.scores.scan(cursor, |k, v| f(k, *v)),
        }
    }

    /// What the members cost the allocator beyond the `Zset` itself (MEMORY USAGE), sampled: the
    /// member table and the order tree each hold a copy of a member too long to sit inline.
    pub fn memory(&self, samples: usize) -> usize {
        use crate::engine::memory::chunk;
        match self {
            Zset::Pack(p) => p.memory(),
            Zset::Tree(t) => {
                chunk(std::mem::size_of::<Tree>())
                    + t.scores.memory(samples, |_| 0)
                    + t.order.memory(samples, |s| chunk(s.member.heap_bytes()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(z: &Zset) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        z.for_each(|m, s| out.push((String::from_utf8_lossy(m).into_owned(), s)));
        out
    }

    fn check_both(build: impl Fn(&mut Zset)) {
        let mut small = Zset::default();
        build(&mut small);
        let mut big = Zset::Tree(Box::default());
        build(&mut big);
        assert_eq!(members(&small), members(&big));
        for rank in 0..small.len() {
            let (m, _) = small.get(rank).unwrap();
            assert_eq!(small.rank(m), Some(rank));
            assert_eq!(big.rank(m), Some(rank));
        }
        let below = |s: f64, _: &[u8]| s < 2.0;
        assert_eq!(small.position(below), big.position(below));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        small.visit(1, 3, true, |m, _| a.push(m.to_vec()));
        big.visit(1, 3, true, |m, _| b.push(m.to_vec()));
        assert_eq!(a, b);
    }

    #[test]
    fn both_encodings_agree() {
        check_both(|z| {
            z.set(b"c", 2.0);
            z.set(b"a", 2.0);
            z.set(b"b", 1.0);
            z.set(b"d", -0.0);
            z.set(b"e", f64::INFINITY);
            assert_eq!(z.set(b"b", 3.0), Some(1.0));
            assert_eq!(z.remove(b"d"), Some(-0.0));
            assert_eq!(z.remove(b"zz"), None);
        });
        let mut z = Zset::default();
        for i in 0..MAX_PACK_ENTRIES {
            z.set(format!("m{i:03}").as_bytes(), i as f64);
        }
        assert_eq!(z.encoding(), "listpack");
        z.set(b"m000", 1000.0);
        assert_eq!(z.encoding(), "listpack", "an update is no insertion");
        z.set(b"new", 0.5);
        assert_eq!((z.encoding(), z.len()), ("skiplist", 129));
        assert_eq!(z.get(0).unwrap().0, b"new");
        assert_eq!(z.get(128).unwrap().0, b"m000");
        assert_eq!(Zset::for_size(3, 65).encoding(), "skiplist");
    }
}
