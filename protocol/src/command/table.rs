//! The registry of every domain's command table, and case-insensitive lookup by name.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

use super::CommandSpec;

/// Every domain table. A new domain adds its `SPECS` here and its variant to `Command`.
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
    super::observe::SPECS,
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

/// A top-level command in the name map: its spec, its dense index, and the index of its first
/// subcommand (a container's subcommands are one contiguous run in [`indexed_specs`] order).
#[derive(Clone, Copy)]
pub(super) struct Entry {
    pub spec: &'static CommandSpec,
    pub index: u32,
    pub first_sub: u32,
}

type ByName = HashMap<&'static [u8], Entry, BuildHasherDefault<Fnv>>;

/// Every spec, subcommands included, in one order: a spec's position here is its dense index (what
/// `lookup` hands out with it). The top-level tables come first, then each subcommand table, so every
/// table is one contiguous run.
static INDEXED: LazyLock<Vec<&'static CommandSpec>> =
    LazyLock::new(|| all_specs().chain(all_specs().flat_map(|s| s.subcommands.iter())).collect());

static BY_NAME: LazyLock<ByName> = LazyLock::new(|| {
    let top = all_specs().count();
    let mut map = ByName::default();
    let mut first_sub = top;
    for (index, spec) in all_specs().enumerate() {
        let entry = Entry { spec, index: index as u32, first_sub: first_sub as u32 };
        first_sub += spec.subcommands.len();
        let previous = map.insert(spec.name.as_bytes(), entry);
        assert!(previous.is_none(), "command {} is defined twice", spec.name);
    }
    map
});

/// How many specs there are, subcommands included (the size of a per-command array).
pub fn spec_count() -> usize {
    INDEXED.len()
}

/// Every spec, subcommands included, in dense-index order.
pub fn indexed_specs() -> &'static [&'static CommandSpec] {
    &INDEXED
}

/// Every spec's dense index by its full name (`get`, `client|kill`: unique across the tables).
static INDEX_BY_NAME: LazyLock<HashMap<&'static str, usize, BuildHasherDefault<Fnv>>> =
    LazyLock::new(|| INDEXED.iter().enumerate().map(|(i, s)| (s.name, i)).collect());

/// A spec's dense index, for callers that hold a spec without its index (the ACL table, the Redis
/// engine's routes, tests): one hash of its name. `lookup` hands the index out with the spec, which is
/// cheaper still where the caller has it.
pub fn spec_index(spec: &CommandSpec) -> usize {
    *INDEX_BY_NAME.get(spec.name).expect("every spec has a name in the tables")
}

/// Top-level commands (subcommands are reached through their container).
pub fn all_specs() -> impl Iterator<Item = &'static CommandSpec> {
    TABLES.iter().flat_map(|t| t.iter())
}

/// Looks a top-level command up by name, ignoring ASCII case, without allocating.
pub fn find(name: &[u8]) -> Option<&'static CommandSpec> {
    find_entry(name).map(|e| e.spec)
}

/// [`find`], with the spec's dense index and where its subcommands' indexes start.
#[inline]
pub(super) fn find_entry(name: &[u8]) -> Option<Entry> {
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
            let mut parts = spec.name.split('|');
            let entry = find_entry(parts.next().expect("name").as_bytes()).expect("top-level");
            let found = match parts.next() {
                None => entry.index as usize,
                Some(_) => entry.first_sub as usize + entry.spec.subcommands.iter().position(|s| s.name == spec.name).expect("sub"),
            };
            assert_eq!(found, i, "{}", spec.name);
        }
        assert!(find(b"nope").is_none());
    }
}
