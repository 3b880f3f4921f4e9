//! The typed command model.
//!
//! Every command Herald knows is one [`CommandSpec`] in a domain table (`conn.rs`, `keys.rs`, ...): its
//! name, Redis-style arity, flags, key positions, group, summary and a parse function that turns the
//! arguments into a typed [`Command`]. The table is the single source for lookup, arity errors, COMMAND
//! COUNT / INFO / DOCS, permission families and MULTI's queue-time checks; dispatch in the broker is the
//! single `match` over [`Command`].

mod acl;
mod bits;
mod blackboard;
mod bulletin;
mod conn;
mod dump;
mod elements;
mod hashes;
mod jobs;
mod keys;
mod lists;
mod mailbox;
mod memory;
mod observe;
mod persistence;
mod pubsub;
mod schema;
mod scripting;
mod semaphore;
mod sets;
mod sort;
mod streams;
mod strings;
mod table;
mod xstream;
mod zset_args;
mod zsets;

pub use acl::AclCommand;
pub use bits::{
    BitCommand, BitFieldArgs, BitOp, BitRange, BitUnit, FieldAction, FieldOp, OFFSET_ERROR as BIT_OFFSET_ERROR, Overflow as FieldOverflow,
};
pub use blackboard::{BbCommand, BbIf, BbTtl};
pub use bulletin::{BulletinCommand, Filter, FilterOp, Overflow};
pub use conn::{ClientKillFilter, ConnCommand, HelloArgs, ReplyMode};
pub use dump::{DumpCommand, RestoreArgs};
pub use elements::ElementScan;
pub use hashes::HashCommand;
pub use jobs::{BackoffSpec, CompleteArgs, JobCommand, SubmitArgs};

pub use keys::{ExpireCondition, KeyCommand, ScanArgs};
pub use lists::{End, ListCommand, Timeout};
pub use mailbox::MailboxCommand;
pub use memory::{DEFAULT_SAMPLES as MEMORY_DEFAULT_SAMPLES, MemoryCommand};
pub use observe::ObserveCommand;
pub use persistence::PersistCommand;
pub use pubsub::PubSubCommand;
pub use schema::{SchemaCommand, SchemaKind, SchemaTarget};
pub use scripting::{Invocation, RestorePolicy, ScriptCommand};
pub use semaphore::SemCommand;
pub use sets::{SetAlgebra, SetCommand};
pub use sort::{SortArgs, SortCommand};
pub use streams::{DEFAULT_READ_COUNT, StreamCommand};
pub use strings::{Expiry, LcsOptions, SetArgs, SetCondition, StringCommand};
pub use table::{Fnv, all_specs, find, indexed_specs, spec_count, spec_index};
pub use xstream::{ClaimArgs, ClaimTime, PendingRange, ReadArgs, TrimArgs, TrimStrategy, XStreamCommand};
pub use zsets::{Aggregate, LexBound, PopForm, ScoreBound, ZRangeArgs, ZRangeBy, ZaddArgs, ZsetAlgebra, ZsetCommand, ZsetOpArgs};

use crate::error::CommandError;
use crate::request::{self, Args, Request};

/// A discovery listing's page request (JOB.QUEUES, BL.BOARDS, BB.SCOPES, MSG.DESTS, STREAM.LIST):
/// `cursor [MATCH pattern] [COUNT n]`, as SCAN takes it, plus `SCOPE s` where the listing has scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListArgs {
    pub cursor: u64,
    pub pattern: Option<bytes::Bytes>,
    pub count: usize,
    pub scope: Option<bytes::Bytes>,
}

/// Parses a listing's arguments; `SCOPE` only when `with_scope`. The cursor and COUNT errors are SCAN's.
pub(crate) fn parse_list(mut a: Args, with_scope: bool) -> Result<ListArgs, CommandError> {
    let cursor = keys::parse_cursor(&a.next_bytes()?)?;
    let mut list = ListArgs { cursor, pattern: None, count: 10, scope: None };
    while let Some(opt) = a.next_opt() {
        if a.is_empty() {
            return Err(CommandError::syntax());
        }
        if request::is_word(&opt, "MATCH") {
            list.pattern = Some(a.next_bytes()?);
        } else if request::is_word(&opt, "COUNT") {
            list.count = usize::try_from(a.next_i64()?).ok().filter(|n| *n >= 1).ok_or(CommandError::syntax())?;
        } else if with_scope && request::is_word(&opt, "SCOPE") {
            list.scope = Some(a.next_bytes()?);
        } else {
            return Err(CommandError::syntax());
        }
    }
    Ok(list)
}

/// A parsed command, grouped by the domain that executes it.
/// How long a blocking Herald command waits: `BLOCK ms` / `TIMEOUT ms`, 0 meaning forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitMs(pub u64);

impl WaitMs {
    /// `None` for "wait forever".
    pub fn duration(self) -> Option<std::time::Duration> {
        if self.0 == 0 { None } else { Some(std::time::Duration::from_millis(self.0)) }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Conn(ConnCommand),
    Keys(KeyCommand),
    Strings(StringCommand),
    Bits(BitCommand),
    PubSub(PubSubCommand),
    Lists(ListCommand),
    Hashes(HashCommand),
    Sets(SetCommand),
    Sort(SortCommand),
    Dump(DumpCommand),
    Zsets(ZsetCommand),
    Streams(StreamCommand),
    Mailbox(MailboxCommand),
    Blackboard(BbCommand),
    Jobs(JobCommand),
    Bulletin(BulletinCommand),
    XStream(XStreamCommand),
    Persist(PersistCommand),
    Sem(SemCommand),
    Schema(SchemaCommand),
    Script(ScriptCommand),
    Acl(AclCommand),
    Observe(ObserveCommand),
    Memory(MemoryCommand),
}

macro_rules! into_command {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        $(impl From<$ty> for Command {
            fn from(c: $ty) -> Self {
                Command::$variant(c)
            }
        })*
    };
}
into_command!(
    Conn(ConnCommand),
    Keys(KeyCommand),
    Strings(StringCommand),
    Bits(BitCommand),
    PubSub(PubSubCommand),
    Lists(ListCommand),
    Hashes(HashCommand),
    Sets(SetCommand),
    Sort(SortCommand),
    Dump(DumpCommand),
    Zsets(ZsetCommand),
    Streams(StreamCommand),
    Mailbox(MailboxCommand),
    Blackboard(BbCommand),
    Jobs(JobCommand),
    Bulletin(BulletinCommand),
    Persist(PersistCommand),
    Sem(SemCommand),
    Schema(SchemaCommand),
    Script(ScriptCommand),
    XStream(XStreamCommand),
    Acl(AclCommand),
    Observe(ObserveCommand),
    Memory(MemoryCommand)
);

/// Turns a command's arguments (name already consumed) into a [`Command`].
pub type ParseFn = fn(Args<'_>) -> Result<Command, CommandError>;

/// Command flags, as COMMAND INFO reports them and dispatch consults them.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const FAST: u32 = 1 << 9;
    /// Allowed before AUTH on a password-protected server.
    pub const NO_AUTH: u32 = 1 << 10;
    /// Refused inside MULTI (the transaction is then aborted).
    pub const NO_MULTI: u32 = 1 << 11;
    /// Allowed while a RESP2 connection is in subscribed mode.
    pub const SUBSCRIBED_OK: u32 = 1 << 12;
    /// Runs at once even inside MULTI (MULTI, EXEC, DISCARD, WATCH, QUIT, RESET).
    pub const TX_CONTROL: u32 = 1 << 13;
    pub const DANGEROUS: u32 = 1 << 14;
    /// Its keys are found from its arguments (`numkeys key ...`), not by position (ZUNION, LMPOP).
    pub const MOVABLE_KEYS: u32 = 1 << 15;
    /// Not a write, but propagated to replicas (PUBLISH): CLIENT PAUSE WRITE holds it too.
    pub const MAY_REPLICATE: u32 = 1 << 16;
    /// Runs even while a slow script holds the server (SCRIPT KILL, AUTH, ...): Redis's `allow_busy`.
    pub const ALLOW_BUSY: u32 = 1 << 17;

    /// Names in COMMAND INFO order.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (NO_MULTI, "no_multi"),
        (MOVABLE_KEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// The family a command belongs to: COMMAND DOCS `group`, and the unit permissions are granted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    Connection,
    Server,
    Generic,
    String,
    Transactions,
    PubSub,
    List,
    Hash,
    Set,
    SortedSet,
    Bitmap,
    Blackboard,
    Bulletin,
    Jobs,
    Mailbox,
    Stream,
    Semaphore,
    Schema,
    Scripting,
}

// `ALL` must list every variant in order (per-family statistics index it by `group as usize`): a new
// variant after the last one fails here until it is added there.
const _: () = {
    let mut i = 0;
    while i < Group::ALL.len() {
        assert!(Group::ALL[i] as usize == i);
        i += 1;
    }
    assert!(Group::ALL.len() == Group::Scripting as usize + 1);
};

impl Group {
    /// Every family, in declaration order (`group as usize` indexes it), for per-family statistics.
    pub const ALL: [Group; 19] = [
        Group::Connection,
        Group::Server,
        Group::Generic,
        Group::String,
        Group::Transactions,
        Group::PubSub,
        Group::List,
        Group::Hash,
        Group::Set,
        Group::SortedSet,
        Group::Bitmap,
        Group::Blackboard,
        Group::Bulletin,
        Group::Jobs,
        Group::Mailbox,
        Group::Stream,
        Group::Semaphore,
        Group::Schema,
        Group::Scripting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Group::Connection => "connection",
            Group::Server => "server",
            Group::Generic => "generic",
            Group::String => "string",
            Group::Transactions => "transactions",
            Group::PubSub => "pubsub",
            Group::List => "list",
            Group::Hash => "hash",
            Group::Set => "set",
            Group::SortedSet => "sorted-set",
            Group::Bitmap => "bitmap",
            Group::Blackboard => "blackboard",
            Group::Bulletin => "bulletin",
            Group::Jobs => "jobs",
            Group::Mailbox => "mailbox",
            Group::Stream => "stream",
            Group::Semaphore => "semaphore",
            Group::Schema => "schema",
            Group::Scripting => "scripting",
        }
    }
}

/// Where a command's key arguments are (Redis's first / last / step; last -1 means "to the end").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPositions {
    pub first: i32,
    pub last: i32,
    pub step: i32,
}

pub const NO_KEYS: KeyPositions = KeyPositions { first: 0, last: 0, step: 0 };

/// Keys at `first..=last` every `step` arguments.
pub const fn keys(first: i32, last: i32, step: i32) -> KeyPositions {
    KeyPositions { first, last, step }
}

/// One command's entry in the table.
#[derive(Debug)]
pub struct CommandSpec {
    /// Lowercase full name: `get`, or `client|kill` for a subcommand.
    pub name: &'static str,
    /// Redis convention, counting the name (and the subcommand): `n` exactly, `-n` at least.
    pub arity: i32,
    pub flags: u32,
    pub keys: KeyPositions,
    pub group: Group,
    pub summary: &'static str,
    pub since: &'static str,
    pub parse: ParseFn,
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// The name as the user would type it: `CLIENT KILL` for `client|kill`.
    pub fn display_name(&self) -> String {
        self.name.replace('|', " ").to_ascii_uppercase()
    }

    fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = i64::from(self.arity);
        if arity >= 0 { argc == arity } else { argc >= -arity }
    }

    /// The key arguments of `req` according to the key positions (for WATCH-like bookkeeping, ACLs),
    /// and for commands with movable keys the `numkeys key [key ...]` that follow.
    pub fn key_args<'r>(&self, req: &'r Request) -> Vec<&'r [u8]> {
        let mut keys = Vec::new();
        self.visit_keys(req, &mut |key| {
            keys.push(key);
            true
        });
        keys
    }

    /// Calls `visit` with each key argument of `req` (as [`CommandSpec::key_args`] lists them, without
    /// collecting them) until it returns `false`; whether every key was visited. The ACL check runs
    /// on every request of a restricted user, so it allocates nothing here.
    pub fn visit_keys<'r>(&self, req: &'r Request, visit: &mut dyn FnMut(&'r [u8]) -> bool) -> bool {
        let k = self.keys;
        let parts = req.parts();
        if k.first > 0 && k.step > 0 {
            let argc = req.len() as i32;
            let last = if k.last < 0 { argc + k.last } else { k.last.min(argc - 1) };
            for i in (k.first..=last).step_by(k.step as usize) {
                if let Some(key) = parts.get(i as usize)
                    && !visit(key)
                {
                    return false;
                }
            }
        }
        if let Some(at) = self.numkeys_at() {
            let n = parts.get(at).and_then(|raw| crate::number::parse_i64(raw)).unwrap_or(0).max(0) as usize;
            if !parts.iter().skip(at + 1).take(n).all(|key| visit(key)) {
                return false;
            }
        }
        if self.name == "sort" {
            return sort::store_key(parts).into_iter().all(visit);
        }
        true
    }

    /// Where a command with movable keys has its `numkeys` argument.
    fn numkeys_at(&self) -> Option<usize> {
        if !self.has(flags::MOVABLE_KEYS) {
            return None;
        }
        Some(match self.name {
            // SORT's movable key is its STORE destination (`sort::store_key`), not counted.
            "sort" | "sort_ro" => return None,
            "bzmpop" | "blmpop" | "zunionstore" | "zinterstore" | "zdiffstore" => 2,
            "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => 2,
            _ => 1,
        })
    }
}

/// A command found in the table: its spec and its dense index among every spec, subcommands included
/// (0..[`spec_count`], the slot of per-command counters), handed out together so that nothing on the
/// request path has to search for the index again.
#[derive(Debug, Clone, Copy)]
pub struct Found {
    pub spec: &'static CommandSpec,
    pub index: usize,
}

impl std::ops::Deref for Found {
    type Target = CommandSpec;

    fn deref(&self) -> &CommandSpec {
        self.spec
    }
}

/// Finds the spec for a request and checks its arity: the checks Redis makes before queueing a command
/// in MULTI (a failure here aborts the transaction with EXECABORT).
pub fn lookup(req: &Request) -> Result<Found, CommandError> {
    lookup_known(req).map_err(|(e, _)| e)
}

/// [`lookup`], with the command a refusal is about when it is known (an arity error: Redis counts it in
/// the command's `rejected_calls`).
#[inline]
pub fn lookup_known(req: &Request) -> Result<Found, (CommandError, Option<Found>)> {
    let parts = req.parts();
    let Some(entry) = table::find_entry(req.name()) else {
        let rest = parts.get(1..).unwrap_or(&[]);
        return Err((CommandError::unknown_command(req.name(), rest), None));
    };
    let found = if entry.spec.subcommands.is_empty() || parts.len() == 1 {
        Found { spec: entry.spec, index: entry.index as usize }
    } else {
        let sub = &parts[1];
        match entry.spec.subcommands.iter().position(|s| sub_name(s).eq_ignore_ascii_case(sub)) {
            Some(i) => Found { spec: &entry.spec.subcommands[i], index: entry.first_sub as usize + i },
            None => {
                let typed = String::from_utf8_lossy(req.name()).into_owned();
                return Err((CommandError::unknown_subcommand(&typed, sub), None));
            }
        }
    };
    if !found.spec.arity_ok(parts.len()) {
        return Err((CommandError::arity(found.spec.name), Some(found)));
    }
    Ok(found)
}

fn sub_name(spec: &CommandSpec) -> &[u8] {
    spec.name.split_once('|').map(|(_, s)| s).unwrap_or(spec.name).as_bytes()
}

/// Parses a request whose spec `lookup` has found: the syntax, integer and option checks, which Redis
/// makes at execution time (inside MULTI they surface in EXEC's reply, not as EXECABORT). The request
/// is only borrowed: the caller keeps it for what follows the command (SLOWLOG, MONITOR).
pub fn parse(spec: &CommandSpec, req: &Request) -> Result<Command, CommandError> {
    let mut args = Args::new(req.parts());
    if spec.name.contains('|') {
        args.skip_subcommand();
    }
    (spec.parse)(args)
}

/// `lookup` then `parse`, for callers that do not queue.
pub fn parse_request(req: Request) -> Result<(&'static CommandSpec, Command), CommandError> {
    let found = lookup(&req)?;
    Ok((found.spec, parse(found.spec, &req)?))
}
