//! Every command and subcommand numbered once, and the ACL categories they belong to.
//!
//! A user's command permissions are a bitmap over these numbers, so the check a request makes is
//! one bit test. The categories are Redis's (derived from each command's flags and group the way
//! Redis assigns them) followed by Herald's own domains.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::LazyLock;

// Command names are short, fixed and not chosen by clients: the command table's FNV hasher serves here too.
use herald_protocol::command::{CommandSpec, Fnv, Group, all_specs, flags, indexed_specs, spec_index};

/// Redis 7.0's categories in `ACL CAT` order, then Herald's.
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
    // Herald's domains. `workflow` gathers what coordinates work between processes (jobs, mailboxes,
    // STREAM.* logs, semaphores); `herald` is every command Redis does not have.
    "blackboard",
    "bulletin",
    "jobs",
    "mailbox",
    "streams",
    "semaphore",
    "schema",
    "workflow",
    "herald",
];

fn cat(name: &str) -> u64 {
    1 << CATEGORIES.iter().position(|c| *c == name).expect("a known category")
}

/// Commands Redis files under `@keyspace` although their group is `server`.
const SERVER_KEYSPACE: &[&str] = &["dbsize", "flushdb", "flushall", "swapdb", "keys", "randomkey", "scan"];

/// The categories of one command, as a bit set over [`CATEGORIES`].
fn categories_of(spec: &CommandSpec) -> u64 {
    let mut set = 0;
    for (flag, name) in [
        (flags::WRITE, "write"),
        (flags::READONLY, "read"),
        (flags::BLOCKING, "blocking"),
        (flags::DANGEROUS, "dangerous"),
        (flags::PUBSUB, "pubsub"),
    ] {
        if spec.has(flag) {
            set |= cat(name);
        }
    }
    if spec.has(flags::ADMIN) {
        set |= cat("admin") | cat("dangerous");
    }
    set |= if spec.has(flags::FAST) { cat("fast") } else { cat("slow") };
    let herald = |domain: &str, workflow: bool| cat(domain) | cat("herald") | if workflow { cat("workflow") } else { 0 };
    set |= match spec.group {
        Group::Generic => cat("keyspace"),
        Group::String => cat("string"),
        Group::List => cat("list"),
        Group::Hash => cat("hash"),
        Group::Set => cat("set"),
        Group::SortedSet => cat("sortedset"),
        Group::PubSub => cat("pubsub"),
        Group::Transactions => cat("transaction"),
        Group::Connection => cat("connection"),
        Group::Server if SERVER_KEYSPACE.contains(&spec.name) => cat("keyspace"),
        Group::Server => 0,
        Group::Stream if spec.name.starts_with("stream.") => herald("streams", true),
        Group::Stream => cat("stream"),
        Group::Blackboard => herald("blackboard", false),
        Group::Bulletin => herald("bulletin", false),
        Group::Jobs => herald("jobs", true),
        Group::Mailbox => herald("mailbox", true),
        Group::Semaphore => herald("semaphore", true),
        Group::Schema => herald("schema", false),
        Group::Bitmap => cat("bitmap"),
        Group::Scripting => cat("scripting"),
    };
    set
}

/// The numbered commands.
pub struct Table {
    /// Top-level commands each followed by its subcommands.
    pub specs: Vec<&'static CommandSpec>,
    /// Each spec's categories, by number.
    pub categories: Vec<u64>,
    /// Number by full name (`get`, `client|kill`). Not by address: the tables are `const`s, and a
    /// const's data may be copied, so one spec can live at several addresses in an optimized build.
    by_name: HashMap<&'static str, usize, BuildHasherDefault<Fnv>>,
    /// The number of each spec's container, for subcommands.
    pub parent: Vec<Option<usize>>,
    /// The number of each spec by its `spec_index`.
    by_index: Vec<usize>,
}

impl Table {
    /// A command's number, through the command table's dense index (`spec_index`: one hash of the
    /// spec's name); every request of a restricted user asks.
    #[inline]
    pub fn id(&self, spec: &'static CommandSpec) -> usize {
        self.by_index[spec_index(spec)]
    }

    /// Looks a command up by its ACL name: `get`, or `client|kill`.
    pub fn by_name(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.specs.iter().position(|s| s.name == lower)
    }

    /// How many commands are numbered; the bit after them is `+@all`'s "and every future command".
    pub fn count(&self) -> usize {
        self.specs.len()
    }

    /// The subcommands of the container numbered `id`.
    pub fn children(&self, id: usize) -> impl Iterator<Item = usize> + '_ {
        self.parent.iter().enumerate().filter(move |(_, p)| **p == Some(id)).map(|(i, _)| i)
    }
}

pub static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let mut t = Table { specs: Vec::new(), categories: Vec::new(), by_name: HashMap::default(), parent: Vec::new(), by_index: Vec::new() };
    let add = |t: &mut Table, spec: &'static CommandSpec, parent: Option<usize>| {
        t.by_name.insert(spec.name, t.specs.len());
        t.specs.push(spec);
        // A container's own bit carries no category: `+@admin` reaches CONFIG SET, not CONFIG itself.
        t.categories.push(if spec.subcommands.is_empty() { categories_of(spec) } else { 0 });
        t.parent.push(parent);
        t.specs.len() - 1
    };
    for spec in all_specs() {
        let id = add(&mut t, spec, None);
        for sub in spec.subcommands {
            add(&mut t, sub, Some(id));
        }
    }
    t.by_index = indexed_specs().iter().map(|s| t.by_name[s.name]).collect();
    t
});

/// A category's bit, by name (case-insensitive).
pub fn category(name: &str) -> Option<u64> {
    CATEGORIES.iter().position(|c| c.eq_ignore_ascii_case(name)).map(|i| 1 << i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_follow_redis() {
        let t = &*TABLE;
        let cats = |name: &str| t.categories[t.by_name(name).unwrap()];
        assert_eq!(cats("get"), cat("read") | cat("string") | cat("fast"));
        assert_ne!(cats("set") & cat("write"), 0);
        assert_ne!(cats("config|set") & cat("admin"), 0);
        assert_ne!(cats("flushall") & cat("dangerous"), 0);
        assert_ne!(cats("blpop") & cat("blocking"), 0);
        assert_ne!(cats("job.claim") & cat("workflow"), 0);
        assert_ne!(cats("bb.set") & cat("blackboard"), 0);
        assert_eq!(cats("xadd") & cat("herald"), 0);
        assert_eq!(t.parent[t.by_name("client|kill").unwrap()], t.by_name("client"));
    }
}
