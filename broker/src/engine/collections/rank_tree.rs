//! An order-statistic B+tree: the score-ordered half of a large sorted set.
//!
//! Why this rather than Redis's skiplist: a sorted set needs ordered access by key (ZRANGEBYSCORE,
//! ZRANGEBYLEX, ZRANK) and by position (ZRANGE by rank), both in O(log n). A skiplist gets the second
//! from per-level spans at a pointer and a span per level per node (Redis: 40 to 64 bytes a node) and a
//! cache miss per step; a B+tree with a count per child gets it from the counts, keeps up to
//! [`MAX`] items side by side in one allocation, and needs no unsafe code. Items live in the leaves
//! only; an inner node holds, per child, a lower bound of its items (`min`, used to route) and how many
//! items it holds (`count`, used to find a rank). A removal may leave a `min` below its child's least
//! item: routing stays correct, because every item of child `i` is still below child `i + 1`'s `min`.

use std::cmp::Ordering;
use std::mem;

/// Most entries (items, or children) per node.
pub const MAX: usize = 64;
/// Below this many entries a node borrows from, or merges with, a sibling.
const MIN: usize = MAX / 3;

#[derive(Clone)]
pub struct RankTree<T> {
    root: Node<T>,
    len: usize,
}

#[derive(Clone)]
enum Node<T> {
    Leaf(Vec<T>),
    Inner(Vec<Branch<T>>),
}

#[derive(Clone)]
struct Branch<T> {
    /// At most the least item below (exactly it when the branch was made).
    min: T,
    /// Items below.
    count: usize,
    node: Node<T>,
}

impl<T> Default for RankTree<T> {
    fn default() -> Self {
        RankTree { root: Node::Leaf(Vec::new()), len: 0 }
    }
}

/// Room for one more entry: capacity doubles up to [`MAX`], so a full node is one exact allocation.
fn reserve_one<E>(entries: &mut Vec<E>) {
    if entries.len() == entries.capacity() {
        let want = (entries.capacity() * 2).clamp(4, MAX.max(entries.len() + 1));
        entries.reserve_exact(want - entries.len());
    }
}

impl<T: Ord + Clone> Node<T> {
    fn len(&self) -> usize {
        match self {
            Node::Leaf(items) => items.len(),
            Node::Inner(branches) => branches.len(),
        }
    }

    /// The least item's key (the node is never empty when asked).
    fn first_key(&self) -> T {
        match self {
            Node::Leaf(items) => items[0].clone(),
            Node::Inner(branches) => branches[0].min.clone(),
        }
    }

    fn branch(self) -> Branch<T> {
        let count = match &self {
            Node::Leaf(items) => items.len(),
            Node::Inner(branches) => branches.iter().map(|b| b.count).sum(),
        };
        Branch { min: self.first_key(), count, node: self }
    }

    /// Inserts an item known to be absent; a node that overflowed returns its new right sibling.
    fn insert(&mut self, item: T) -> Option<Node<T>> {
        match self {
            Node::Leaf(items) => {
                let pos = items.partition_point(|x| *x < item);
                if items.len() < MAX {
                    reserve_one(items);
                    items.insert(pos, item);
                    return None;
                }
                // Split before inserting, so a node never holds more than MAX. Appends (rising
                // scores) and prepends leave the old leaf full rather than two half-empty ones.
                let at = if pos == items.len() {
                    pos
                } else if pos == 0 {
                    0
                } else {
                    items.len() / 2
                };
                let mut right = Vec::with_capacity((items.len() - at + 1).max(4));
                right.extend(items.drain(at..));
                // At 0 the whole old leaf moved right and the new item alone stays left.
                if pos < at || at == 0 {
                    reserve_one(items);
                    items.insert(pos, item);
                } else {
                    right.insert(pos - at, item);
                }
                Some(Node::Leaf(right))
            }
            Node::Inner(branches) => {
                let j = route(branches, &item);
                let branch = &mut branches[j];
                if item < branch.min {
                    branch.min = item.clone();
                }
                branch.count += 1;
                let sibling = branch.node.insert(item)?;
                let sibling = sibling.branch();
                branch.count -= sibling.count;
                branches.insert(j + 1, sibling);
                if branches.len() <= MAX {
                    return None;
                }
                let right = branches.split_off(branches.len() / 2);
                Some(Node::Inner(right))
            }
        }
    }

    /// Removes the item `probe` finds (`probe(x)` orders `x` against the target).
    fn remove(&mut self, probe: &impl Fn(&T) -> Ordering) -> Option<T> {
        match self {
            Node::Leaf(items) => items.binary_search_by(probe).ok().map(|pos| items.remove(pos)),
            Node::Inner(branches) => {
                let j = branches.partition_point(|b| probe(&b.min) != Ordering::Greater).saturating_sub(1);
                let removed = branches[j].node.remove(probe)?;
                branches[j].count -= 1;
                if branches[j].node.len() < MIN && branches.len() > 1 {
                    rebalance(branches, j);
                }
                Some(removed)
            }
        }
    }

    fn position(&self, below: &impl Fn(&T) -> bool) -> usize {
        match self {
            Node::Leaf(items) => items.partition_point(below),
            Node::Inner(branches) => {
                let j = branches.partition_point(|b| below(&b.min)).saturating_sub(1);
                branches[..j].iter().map(|b| b.count).sum::<usize>() + branches[j].node.position(below)
            }
        }
    }

    fn get(&self, mut rank: usize) -> Option<&T> {
        match self {
            Node::Leaf(items) => items.get(rank),
            Node::Inner(branches) => {
                for b in branches {
                    if rank < b.count {
                        return b.node.get(rank);
                    }
                    rank -= b.count;
                }
                None
            }
        }
    }

    /// Calls `f` on the items at ranks `from..to` of this subtree, ascending or descending.
    fn visit(&self, from: usize, to: usize, rev: bool, f: &mut impl FnMut(&T)) {
        match self {
            Node::Leaf(items) => {
                let slice = &items[from..to];
                if rev {
                    slice.iter().rev().for_each(f);
                } else {
                    slice.iter().for_each(f);
                }
            }
            Node::Inner(branches) => {
                let mut spans = Vec::with_capacity(branches.len());
                let mut start = 0;
                for b in branches {
                    let end = start + b.count;
                    if end > from && start < to {
                        spans.push((b, from.max(start) - start, to.min(end) - start));
                    }
                    start = end;
                }
                if rev {
                    spans.reverse();
                }
                for (b, a, z) in spans {
                    b.node.visit(a, z, rev, f);
                }
            }
        }
    }
}

/// The child whose items may include `item`: the last whose lower bound is not above it.
fn route<T: Ord>(branches: &[Branch<T>], item: &T) -> usize {
    branches.partition_point(|b| b.min <= *item).saturating_sub(1)
}

/// Child `j` fell below [`MIN`]: merge it with a neighbour when both fit in one node, otherwise share
/// the neighbour's entries evenly.
fn rebalance<T: Ord + Clone>(branches: &mut Vec<Branch<T>>, j: usize) {
    let l = if j + 1 < branches.len() { j } else { j - 1 };
    let (left, right) = branches.split_at_mut(l + 1);
    let (left, right) = (&mut left[l], &mut right[0]);
    let total = left.node.len() + right.node.len();
    match (&mut left.node, &mut right.node) {
        (Node::Leaf(a), Node::Leaf(b)) if total <= MAX => a.append(b),
        (Node::Inner(a), Node::Inner(b)) if total <= MAX => a.append(b),
        (Node::Leaf(a), Node::Leaf(b)) => {
            let moved = share(a, b);
            left.count = (left.count as isize + moved) as usize;
            right.count = (right.count as isize - moved) as usize;
        }
        (Node::Inner(a), Node::Inner(b)) => {
            let before = a.iter().map(|x| x.count).sum::<usize>();
            share(a, b);
            let after = a.iter().map(|x| x.count).sum::<usize>();
            left.count = after;
            right.count = right.count + before - after;
        }
        _ => unreachable!("siblings are at the same depth"),
    }
    if total <= MAX {
        let merged = branches.remove(l + 1);
        branches[l].count += merged.count;
    } else {
        branches[l + 1].min = branches[l + 1].node.first_key();
    }
}

/// Moves entries between two neighbours so each holds half; returns how many moved left (negative:
/// right).
fn share<E>(a: &mut Vec<E>, b: &mut Vec<E>) -> isize {
    let half = (a.len() + b.len()) / 2;
    if a.len() < half {
        let n = half - a.len();
        a.extend(b.drain(..n));
        n as isize
    } else {
        let n = a.len() - half;
        let tail: Vec<E> = a.drain(half..).collect();
        b.splice(0..0, tail);
        -(n as isize)
    }
}

impl<T: Ord + Clone> RankTree<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Inserts an item the caller knows is absent (a sorted set checks its member map first).
    pub fn insert(&mut self, item: T) {
        if let Some(sibling) = self.root.insert(item) {
            let left = mem::replace(&mut self.root, Node::Leaf(Vec::new()));
            self.root = Node::Inner(vec![left.branch(), sibling.branch()]);
        }
        self.len += 1;
    }

    /// Removes the item `probe` finds: `probe(x)` is how `x` orders against the target (so a caller
    /// can look for a (score, member) without building an item).
    pub fn remove(&mut self, probe: impl Fn(&T) -> Ordering) -> Option<T> {
        let removed = self.root.remove(&probe)?;
        self.len -= 1;
        if let Node::Inner(branches) = &mut self.root
            && branches.len() == 1
        {
            self.root = branches.pop().expect("one branch").node;
        }
        Some(removed)
    }

    /// How many items come before the first for which `below` is false. `below` must hold for a
    /// prefix of the order (`|x| x.score < min`): this is how every range finds its ends.
    pub fn position(&self, below: impl Fn(&T) -> bool) -> usize {
        if self.len == 0 { 0 } else { self.root.position(&below) }
    }

    /// The 0-based rank of the item `probe` finds, if present.
    pub fn rank(&self, probe: impl Fn(&T) -> Ordering) -> Option<usize> {
        let pos = self.position(|x| probe(x) == Ordering::Less);
        self.get(pos).filter(|x| probe(x) == Ordering::Equal).map(|_| pos)
    }

    /// The item at a 0-based rank.
    pub fn get(&self, rank: usize) -> Option<&T> {
        self.root.get(rank)
    }

    /// Calls `f` on the items at ranks `from..to`, in order, or from `to - 1` down to `from` when `rev`.
    pub fn visit(&self, from: usize, to: usize, rev: bool, mut f: impl FnMut(&T)) {
        let to = to.min(self.len);
        if from < to {
            self.root.visit(from, to, rev, &mut f);
        }
    }

    /// What the tree costs the allocator (MEMORY USAGE): every node's array exactly (a node holds up to
    /// [`MAX`] items, so they are few), and `item`'s heap beyond the array for the branches' copies and
    /// for the first `samples` items (0: all), extrapolated.
    pub fn memory(&self, samples: usize, item: impl Fn(&T) -> usize) -> usize {
        use crate::engine::memory::{sampled, vec};
        fn walk<T>(node: &Node<T>, item: &impl Fn(&T) -> usize) -> usize {
            match node {
                Node::Leaf(items) => vec::<T>(items.capacity()),
                Node::Inner(branches) => {
                    vec::<Branch<T>>(branches.capacity()) + branches.iter().map(|b| item(&b.min) + walk(&b.node, item)).sum::<usize>()
                }
            }
        }
        let take = if samples == 0 { self.len } else { samples.min(self.len) };
        let mut costs = Vec::with_capacity(take);
        self.visit(0, take, false, |x| costs.push(item(x)));
        walk(&self.root, &item) + sampled(self.len, samples, costs.into_iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    impl<T: Ord + Clone + std::fmt::Debug> RankTree<T> {
        /// Checks every invariant: counts, order, bounds, fill, equal depth.
        fn check(&self) {
            fn walk<T: Ord + Clone + std::fmt::Debug>(node: &Node<T>, root: bool, out: &mut Vec<T>) -> usize {
                if !root {
                    assert!(node.len() >= 1 && node.len() <= MAX, "fill {}", node.len());
                }
                match node {
                    Node::Leaf(items) => {
                        out.extend(items.iter().cloned());
                        assert!(items.capacity() <= 2 * MAX, "capacity {}", items.capacity());
                        1
                    }
                    Node::Inner(branches) => {
                        let mut depth = None;
                        for (i, b) in branches.iter().enumerate() {
                            let before = out.len();
                            let d = walk(&b.node, false, out);
                            assert_eq!(*depth.get_or_insert(d), d, "uneven depth");
                            assert_eq!(out.len() - before, b.count, "count");
                            assert!(out[before..].iter().all(|x| *x >= b.min), "min bound");
                            if let Some(next) = branches.get(i + 1) {
                                assert!(out[before..].iter().all(|x| *x < next.min), "below the next bound");
                            }
                        }
                        depth.unwrap_or(0) + 1
                    }
                }
            }
            let mut out = Vec::new();
            walk(&self.root, true, &mut out);
            assert_eq!(out.len(), self.len);
            assert!(out.windows(2).all(|w| w[0] < w[1]), "sorted");
        }
    }

    /// A small deterministic random source.
    fn rng(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn agrees_with_a_btreeset_under_random_churn() {
        let mut next = rng(42);
        let mut tree = RankTree::new();
        let mut model = BTreeSet::new();
        for round in 0..40_000 {
            let v = (next() % 3000) as i64;
            if next().is_multiple_of(3) {
                assert_eq!(tree.remove(|x: &i64| x.cmp(&v)).is_some(), model.remove(&v));
            } else if model.insert(v) {
                tree.insert(v);
            }
            if round % 2000 == 0 {
                tree.check();
            }
        }
        tree.check();
        let all: Vec<i64> = model.iter().copied().collect();
        for (rank, v) in all.iter().enumerate() {
            assert_eq!(tree.get(rank), Some(v));
            assert_eq!(tree.rank(|x: &i64| x.cmp(v)), Some(rank));
        }
        assert_eq!(tree.rank(|x: &i64| x.cmp(&-1)), None);
        for bound in [-5, 0, 17, 1500, 2999, 5000] {
            assert_eq!(tree.position(|x| *x < bound), all.partition_point(|x| *x < bound));
        }
        let mut seen = Vec::new();
        tree.visit(10, 50, false, |x| seen.push(*x));
        assert_eq!(seen, all[10..50]);
        seen.clear();
        tree.visit(10, 50, true, |x| seen.push(*x));
        assert_eq!(seen, all[10..50].iter().rev().copied().collect::<Vec<_>>());
        for v in all {
            assert_eq!(tree.remove(|x: &i64| x.cmp(&v)), Some(v));
        }
        assert!(tree.is_empty());
        tree.check();
    }

    #[test]
    fn appends_and_prepends_fill_leaves() {
        let mut tree = RankTree::new();
        for v in 0..10_000i64 {
            tree.insert(v);
        }
        for v in (-10_000..0i64).rev() {
            tree.insert(v);
        }
        tree.check();
        let per_item = tree.memory(0, |_| 0) as f64 / tree.len() as f64;
        assert!(per_item < 10.0, "{per_item} bytes per 8-byte item");
        assert_eq!(tree.get(0), Some(&-10_000));
        assert_eq!(tree.get(19_999), Some(&9_999));
    }
}
