//! Per-tenant quotas (`[[quotas]]`, docs/security.md): a tenant is a glob pattern over the names ACL key
//! patterns are matched against (`acl/resources.rs`: Redis keys, blackboard scopes, boards, queues,
//! streams), and a quota bounds how many keys, bulletin items, jobs and `STREAM.*` logs its names may
//! hold. A request that would create one more of them while the tenant is at its bound is refused with
//! `-QUOTA`; everything else goes on (reads, deletes, updates of what exists), so a tenant at its quota
//! frees room the usual way.
//!
//! Counting: keys of the numbered databases are tallied per pattern by the key table itself (`Db`'s
//! tally, kept as keys come and go); a blackboard scope's keys are its database's size; items, jobs and
//! streams are summed from the engines' own listings when a creating request needs them, which costs a
//! pass over that engine's boards, queues or streams only for tenants with quotas.
//!
//! The Redis engine counts in Redis instead (`remote/quota.rs`); what a command may create
//! ([`candidates`]) and the refusal ([`refusal`]) are shared, so both engines refuse the same requests
//! with the same text.

use bytes::Bytes;
use herald_protocol::command::{BbCommand, BulletinCommand, Command, CommandSpec, Group, JobCommand, flags};
use herald_protocol::{CommandError, Request};

use crate::config::QuotaSettings;
use crate::engine::glob::glob_match;
use crate::engine::listing::ListArgs;
use crate::state::State;

/// What a quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Keys,
    Items,
    Jobs,
    Streams,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Keys, Kind::Items, Kind::Jobs, Kind::Streams];

    fn name(self) -> &'static str {
        match self {
            Kind::Keys => "keys",
            Kind::Items => "items",
            Kind::Jobs => "jobs",
            Kind::Streams => "streams",
        }
    }
}

struct Rule {
    pattern: Bytes,
    /// By [`Kind`], 0 for no bound.
    limits: [u64; 4],
}

pub struct Quotas {
    rules: Vec<Rule>,
}

impl Quotas {
    /// The configured quotas; `None` when there are none (the request path then pays one check).
    pub fn new(settings: &[QuotaSettings]) -> Option<Quotas> {
        let rules: Vec<Rule> = settings
            .iter()
            .map(|q| Rule { pattern: Bytes::from(q.pattern.clone()), limits: [q.keys, q.items, q.jobs, q.streams] })
            .filter(|r| r.limits.iter().any(|l| *l > 0))
            .collect();
        (!rules.is_empty()).then_some(Quotas { rules })
    }

    /// The patterns, in rule order: what the key tables tally (`Keyspace::set_quota_patterns`).
    pub fn patterns(&self) -> Vec<Bytes> {
        self.rules.iter().map(|r| r.pattern.clone()).collect()
    }

    /// Each rule's pattern and bounds (by [`Kind`], 0 for none), in rule order.
    pub fn rules(&self) -> impl Iterator<Item = (&Bytes, [u64; 4])> {
        self.rules.iter().map(|r| (&r.pattern, r.limits))
    }

    /// Refuses `cmd` when it would create a key, item, job or stream for a tenant at its bound. `db` is
    /// the session's database (where its Redis commands' keys live).
    pub fn check(&self, spec: &'static CommandSpec, req: &Request, cmd: &Command, db: usize, state: &State) -> Result<(), CommandError> {
        for (name, kind) in creations(spec, req, cmd, db, state) {
            for (i, rule) in self.rules.iter().enumerate() {
                let limit = rule.limits[kind as usize];
                if limit == 0 || !glob_match(&rule.pattern, &name) {
                    continue;
                }
                if count(kind, i, &rule.pattern, state) as u64 >= limit {
                    return Err(refusal(kind, &rule.pattern, limit));
                }
            }
        }
        Ok(())
    }
}

/// The refusal of a request that would create past a bound: the same text on both engines.
pub fn refusal(kind: Kind, pattern: &[u8], limit: u64) -> CommandError {
    CommandError::new(format!(
        "QUOTA the {} quota of '{}' is reached ({limit}): delete some first",
        kind.name(),
        String::from_utf8_lossy(pattern)
    ))
}

/// Something a command may create, before anyone asked whether it exists.
#[derive(Debug, Clone)]
pub enum Candidate {
    /// A key of the session's database (Redis's commands that may add data).
    Key(Bytes),
    /// A key of a blackboard scope (`BB.SET`).
    ScopeKey { scope: Bytes, key: Bytes },
    /// A bulletin item, named by its board's scope, else the board.
    Item(Bytes),
    /// A job of a queue.
    Job(Bytes),
    /// A `STREAM.*` log.
    Stream(Bytes),
    /// A key a script declares (the Redis engine, which cannot see a script's own calls).
    Declared(Bytes),
}

impl Candidate {
    /// The name ACL patterns (and so quota patterns) see.
    pub fn name(&self) -> &Bytes {
        match self {
            Candidate::ScopeKey { scope, key } if scope.is_empty() => key,
            Candidate::ScopeKey { scope, .. } => scope,
            Candidate::Key(n) | Candidate::Item(n) | Candidate::Job(n) | Candidate::Stream(n) | Candidate::Declared(n) => n,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Candidate::Key(_) | Candidate::ScopeKey { .. } | Candidate::Declared(_) => Kind::Keys,
            Candidate::Item(_) => Kind::Items,
            Candidate::Job(_) => Kind::Jobs,
            Candidate::Stream(_) => Kind::Streams,
        }
    }
}

/// What `cmd` may create, named as ACL patterns see it: a key (Redis's commands that may add data,
/// BB.SET), an item, a job, a stream (any `STREAM.*` naming one).
pub fn candidates(spec: &'static CommandSpec, req: &Request, cmd: &Command) -> Vec<Candidate> {
    let mut out = Vec::new();
    match cmd {
        Command::Bulletin(BulletinCommand::Publish { scope, board, .. }) => {
            out.push(Candidate::Item(if scope.is_empty() { board.clone() } else { scope.clone() }));
        }
        Command::Jobs(JobCommand::Submit(args)) => out.push(Candidate::Job(args.queue.clone())),
        Command::Blackboard(BbCommand::Set { scope, key, .. }) => out.push(Candidate::ScopeKey { scope: scope.clone(), key: key.clone() }),
        Command::Streams(_) => {
            spec.visit_keys(req, &mut |key| {
                out.push(Candidate::Stream(Bytes::copy_from_slice(key)));
                true
            });
        }
        _ if spec.has(flags::DENYOOM) && redis_data(spec) => {
            spec.visit_keys(req, &mut |key| {
                out.push(Candidate::Key(Bytes::copy_from_slice(key)));
                true
            });
        }
        _ => {}
    }
    out
}

/// What `cmd` would create on the embedded engine: its [`candidates`] not there yet.
fn creations(spec: &'static CommandSpec, req: &Request, cmd: &Command, db: usize, state: &State) -> Vec<(Bytes, Kind)> {
    let new = |c: &Candidate| match c {
        Candidate::Key(key) => state.keyspace.db(db).get(key).is_none(),
        Candidate::ScopeKey { scope, key } if scope.is_empty() => state.keyspace.db(0).get(key).is_none(),
        Candidate::ScopeKey { scope, key } => state.keyspace.scope_table(scope).is_none_or(|d| d.get(key).is_none()),
        Candidate::Stream(key) => state.streams.info(key).is_none(),
        Candidate::Item(_) | Candidate::Job(_) | Candidate::Declared(_) => true,
    };
    candidates(spec, req, cmd).into_iter().filter(new).map(|c| (c.name().clone(), c.kind())).collect()
}

/// Redis's own data commands, whose key positions are keys of the session's database.
pub fn redis_data(spec: &CommandSpec) -> bool {
    matches!(
        spec.group,
        Group::Generic | Group::String | Group::List | Group::Hash | Group::Set | Group::SortedSet | Group::Bitmap | Group::Stream
    )
}

/// How many of `kind` the tenant of the `i`th rule (`pattern`) holds now.
fn count(kind: Kind, i: usize, pattern: &[u8], state: &State) -> usize {
    let all = ListArgs::all();
    match kind {
        Kind::Keys => {
            let scoped: usize = state.keyspace.scope_sizes().filter(|(name, _)| glob_match(pattern, name)).map(|(_, n)| n).sum();
            state.keyspace.tallied(i) + scoped
        }
        Kind::Items => state
            .bulletin
            .boards(None, &all)
            .entries
            .iter()
            .filter(|b| glob_match(pattern, if b.scope.is_empty() { &b.board } else { &b.scope }))
            .map(|b| b.items + b.dead)
            .sum(),
        Kind::Jobs => {
            let mine = ListArgs { pattern: Some(Bytes::copy_from_slice(pattern)), ..ListArgs::all() };
            state.jobs.queues(&mine).entries.iter().map(|q| q.queued + q.delayed + q.running + q.dead).sum()
        }
        Kind::Streams => {
            let mine = ListArgs { pattern: Some(Bytes::copy_from_slice(pattern)), ..ListArgs::all() };
            state.streams.list(&mine).entries.len()
        }
    }
}
