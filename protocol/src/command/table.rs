//! The registry of every domain's command table, and case-insensitive lookup by name.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

use super::CommandSpec;

/// Every domain table. A new domain adds its `SPECS` here and its variant to `Command`.
const TABLES: &[&[CommandSpec]] = &[
    super::conn::SPECS,
    super::keys::SPECS,
    super::strings::SPECS,
    super::pubsub::SPECS,
    super::lists::SPECS,
    super::hashes::SPECS,
    super::sets::SPECS,
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
    super::acl::SPECS,
];

/// FNV-1a: command names are short, fixed and not chosen by an attacker who could aim collisions at a
/// table this size, so the lookup every request makes need not pay for SipHash.
#[derive(Default)]
struct Fnv(u64);

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
        assert!(find(b"nope").is_none());
    }
}
