//! MEMORY USAGE's arithmetic: what a structure costs the allocator, in the allocator's own units.
//!
//! Every figure is built from [`chunk`], the same rule the counting allocator (`crate::alloc`) measures
//! INFO's `used_memory` with, so a key's MEMORY USAGE and the growth of `used_memory` when the key is
//! written agree (checked by `broker/tests/memory.rs`). Large collections are sampled as Redis samples
//! them: the first `samples` elements are measured (0: all of them) and their mean is extrapolated to
//! the whole collection; fixed parts (bucket arrays, nodes of order trees) are counted exactly.

use std::mem::size_of;

pub use crate::alloc::chunk;

/// MEMORY USAGE's default sample count (Redis's).
pub const DEFAULT_SAMPLES: usize = 5;

/// The cost of `len` elements measured by `costs` (one figure per element, in order): the first
/// `samples` (0: all) are summed and their mean is extrapolated to `len`.
pub fn sampled(len: usize, samples: usize, costs: impl Iterator<Item = usize>) -> usize {
    let limit = if samples == 0 { usize::MAX } else { samples };
    let (mut n, mut sum) = (0usize, 0usize);
    for cost in costs.take(limit) {
        n += 1;
        sum += cost;
    }
    if n == 0 || n >= len { sum } else { (sum as f64 / n as f64 * len as f64) as usize }
}

/// A `Vec<T>`'s buffer.
pub fn vec<T>(capacity: usize) -> usize {
    chunk(capacity * size_of::<T>())
}

/// One entry of a std `BTreeMap<K, V>` / `BTreeSet<K>` (`V = ()`), its heap parts aside: leaves of up to
/// eleven slots, about two thirds full after random inserts, plus their headers and the internal
/// nodes above them. An estimate: the tree's nodes are not reachable to measure.
pub fn btree_entry<K, V>() -> usize {
    (size_of::<K>() + size_of::<V>()) * 3 / 2 + 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_extrapolates_the_mean() {
        assert_eq!(sampled(3, 0, [1, 2, 3].into_iter()), 6, "all measured: the sum");
        assert_eq!(sampled(100, 2, [10, 30, 1000].into_iter()), 2000, "mean of the first two, times 100");
        assert_eq!(sampled(0, 5, std::iter::empty()), 0);
    }
}
