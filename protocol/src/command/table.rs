//! The registry of every domain's command table, and case-insensitive lookup by name.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

use super::CommandSpec;

/// Every domain table. A new domain adds its `SPECS` here and its variant to `Command`. A `static`, not a
/// `const`: every spec then has one address, which [`spec_index`] relies on (each use of a `const` may
/// make its own copy of the tables).
static TABLES: &[&[CommandSpec]] = &[
    super::conn::SPECS,
    super::keys::SPECS,
    super::strings::SPECS,
    super::bits::SPECS,
    super::pubsub::SPECS,
    super::lists::SPECS,
    super::hashes::SPECS,
    super::sets::SPECS,
    super::sort::SPECS,
    super::dump::SPECS,
    super::zsets::SPECS,
    super::streams::SPECS,
    super::mailbox::SPECS,
    super::persistence::SPECS,
    super::blackboard::SPECS,
    super::jobs::SPECS,
    super::bulletin::SPECS,
    super::semaphore::SPECS,
    super::schema::SPECS,
    super::xstream::SPECS,
    super::scripting::SPECS,
    super::acl::SPECS,
    super::memory::SPECS,
];

/// FNV-1a: command names are short, fixed and not chosen by an attacker who could aim collisions at a
/// table this size, so the lookup every request makes need not pay for SipHash.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type ByName = HashMap<&'static [u8], &'static CommandSpec, BuildHasherDefault<Fnv>>;

static BY_NAME: LazyLock<ByName> = LazyLock::new(|| {
    let mut map = ByName::default();
    for spec in all_specs() {
        let previous = map.insert(spec.name.as_bytes(), spec);
        assert!(previous.is_none(), "command {} is defined twice", spec.name);
    }
    map
});

/// Every spec, subcommands included, in one order: a spec's position here is its [`spec_index`]. The
/// top-level tables come first, then each subcommand table, so every table is one contiguous run.
static INDEXED: LazyLock<Vec<&'static CommandSpec>> =
    LazyLock::new(|| all_specs().chain(all_specs().flat_map(|s| s.subcommands.iter())).collect());

/// The address ranges of the tables (domain tables and subcommand tables), sorted, each with the index
/// of its first spec: a spec's index from its address, without hashing.
static RANGES: LazyLock<Vec<(usize, usize, usize)>> = LazyLock::new(|| {
    let mut tables: Vec<&'static [CommandSpec]> = TABLES.to_vec();
    tables.extend(all_specs().map(|s| s.subcommands).filter(|t| !t.is_empty()));
    let mut ranges: Vec<(usize, usize, usize)> = tables
        .iter()
        .map(|t| {
            let first = INDEXED.iter().position(|s| std::ptr::eq(*s, &t[0])).expect("indexed");
            (t.as_ptr() as usize, t.as_ptr() as usize + std::mem::size_of_val(*t), first)
        })
        .collect();
    ranges.sort_unstable();
    ranges
});

/// How many specs there are, subcommands included (the size of a per-command array).
pub fn spec_count() -> usize {
    INDEXED.len()
}

/// Every spec, subcommands included, in [`spec_index`] order.
pub fn indexed_specs() -> &'static [&'static CommandSpec] {
    &INDEXED
}

/// A dense index for a spec from the tables (0..[`spec_count`]), for per-command counters.
///
/// Pipelines repeat one command, so the last spec looked up on this thread is remembered: the usual
/// case costs a thread-local read instead of the search over the tables' address ranges.
#[inline]
pub fn spec_index(spec: &'static CommandSpec) -> usize {
    thread_local! {
        static LAST: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
    }
    let at = spec as *const CommandSpec as usize;
    let (last_at, last_index) = LAST.get();
    if last_at == at {
        return last_index;
    }
    let index = search_index(spec, at);
    LAST.set((at, index));
    index
}

fn search_index(spec: &'static CommandSpec, at: usize) -> usize {
    let ranges = &*RANGES;
    let i = ranges.partition_point(|r| r.0 <= at).saturating_sub(1);
    let (start, end, first) = ranges[i];
    if (start..end).contains(&at) {
        first + (at - start) / std::mem::size_of::<CommandSpec>()
    } else {
        // A spec that is not one of the tables' own (a copy): found by name, never a wrong counter.
        INDEXED.iter().position(|s| s.name == spec.name).expect("every spec has a name in the tables")
    }
}

/// Top-level commands (subcommands are reached through their container).
pub fn all_specs() -> impl Iterator<Item = &'static CommandSpec> {
    TABLES.iter().flat_map(|t| t.iter())
}

/// Looks a top-level command up by name, ignoring ASCII case, without allocating.
pub fn find(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut lower = [0u8; 32];
    if name.len() > lower.len() {
        return None;
    }
    let lower = &mut lower[..name.len()];
    for (dst, src) in lower.iter_mut().zip(name) {
        *dst = src.to_ascii_lowercase();
    }
    BY_NAME.get(&*lower).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_is_well_formed() {
        for spec in all_specs() {
            assert_eq!(spec.name, spec.name.to_ascii_lowercase(), "{}", spec.name);
            assert!(spec.arity != 0, "{}", spec.name);
            assert!(!spec.summary.is_empty(), "{}", spec.name);
            for sub in spec.subcommands {
                assert!(sub.name.starts_with(&format!("{}|", spec.name)), "{}", sub.name);
                assert!(sub.arity.abs() >= 2, "{}", sub.name);
            }
        }
        assert!(find(b"GeT").is_some());
        for (i, spec) in indexed_specs().iter().enumerate() {
            assert_eq!(spec_index(spec), i, "{}", spec.name);
        }
        assert!(find(b"nope").is_none());
    }
}
