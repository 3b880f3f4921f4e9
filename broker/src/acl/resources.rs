//! The names ACL key patterns are matched against, for every command: Redis keys where Redis has
//! them, and for Herald's domains the name of the thing a command touches (docs/security.md):
//!
//! - anything inside a named **scope** (blackboard keys, bulletin boards, board schemas) is named by
//!   its scope, so `~tenant-a:*` covers scopes `tenant-a:...` and all they hold;
//! - outside a scope (scope `""`): blackboard keys by their key (they are database 0's keys), boards
//!   by the board's name;
//! - queues, mailboxes (the destination), `STREAM.*` logs, semaphores and the other schemas by their
//!   own name; a job (by id) by its queue.

use bytes::Bytes;
use herald_protocol::command::{
    BbCommand, BulletinCommand, Command, CommandSpec, Group, JobCommand, MailboxCommand, SchemaCommand, SchemaKind, SemCommand,
};

use super::user::{READ, WRITE};
use crate::engine::jobs::Jobs;

/// A resource a command touches and the access it needs.
pub type Resource = (Bytes, u8);

fn scoped(scope: &Bytes, name: &Bytes) -> Bytes {
    if scope.is_empty() { name.clone() } else { scope.clone() }
}

/// Whether a command's resources come from [`herald_resources`] rather than its key positions (a
/// blackboard command's positional key is a key *inside* its scope, for instance).
#[inline]
pub fn named_by_parse(spec: &CommandSpec) -> bool {
    matches!(spec.group, Group::Blackboard | Group::Bulletin | Group::Jobs | Group::Mailbox | Group::Semaphore | Group::Schema)
}

/// Herald commands' resources, from the parsed command; `None` for commands whose keys are positional
/// (Redis's commands and `STREAM.*`: the command table's key positions say where they are).
/// `jobs` finds the queue of a job named by id (only consulted for such commands).
pub fn herald_resources(cmd: &Command, jobs: &mut dyn FnMut(&[u8]) -> Option<Bytes>) -> Option<Vec<Resource>> {
    let mut out = Vec::new();
    match cmd {
        Command::Blackboard(c) => blackboard(c, &mut out),
        Command::Bulletin(c) => bulletin(c, &mut out),
        Command::Jobs(c) => job(c, jobs, &mut out),
        Command::Mailbox(c) => match c {
            MailboxCommand::Send { dest, .. } => out.push((dest.clone(), WRITE)),
            MailboxCommand::Recv { dest, .. } | MailboxCommand::Request { dest, .. } => out.push((dest.clone(), READ | WRITE)),
            MailboxCommand::Len { dest, .. } => out.push((dest.clone(), READ)),
            MailboxCommand::Config { dest, .. } => out.push((dest.clone(), WRITE)),
            // The reply address is handed to whoever received the request (which needed the mailbox).
            MailboxCommand::Reply { .. } => {}
            // Listings name what exists, as KEYS does: governed by the command's permission alone.
            MailboxCommand::Dests(_) => {}
        },
        Command::Sem(c) => match c {
            SemCommand::Acquire { name, .. } | SemCommand::Extend { name, .. } | SemCommand::Release { name, .. } => {
                out.push((name.clone(), READ | WRITE))
            }
            SemCommand::Info(name) => out.push((name.clone(), READ)),
        },
        Command::Schema(c) => {
            let (target, access) = match c {
                SchemaCommand::Set { target, .. } => (target, WRITE),
                SchemaCommand::Get(target) => (target, READ),
                SchemaCommand::Del(target) => (target, WRITE),
            };
            let name = match target.kind {
                SchemaKind::Board => scoped(&target.scope, &target.name),
                SchemaKind::Queue | SchemaKind::Topic | SchemaKind::Scope => target.name.clone(),
            };
            out.push((name, access));
        }
        _ => return None,
    }
    Some(out)
}

fn blackboard(c: &BbCommand, out: &mut Vec<Resource>) {
    let (scope, keys, access): (&Bytes, Vec<&Bytes>, u8) = match c {
        BbCommand::Set { scope, key, .. } => (scope, vec![key], WRITE),
        BbCommand::Get { scope, key }
        | BbCommand::Has { scope, key }
        | BbCommand::Wait { scope, key, .. }
        | BbCommand::Memory { scope, key, .. } => (scope, vec![key], READ),
        BbCommand::Del { scope, keys } => (scope, keys.iter().collect(), WRITE),
        BbCommand::Watch { scope, keys } => (scope, keys.iter().collect(), READ),
        // Whole-scope operations name the scope itself (`""` for database 0, which a pattern
        // like `tenant-a:*` does not match).
        BbCommand::Keys { scope, .. } | BbCommand::Stats(scope) | BbCommand::GetAll { scope, .. } | BbCommand::Changes { scope, .. } => {
            (scope, Vec::new(), READ)
        }
        BbCommand::Clear(scope) => (scope, Vec::new(), WRITE),
        // Listings name what exists, as KEYS does: governed by the command's permission alone.
        BbCommand::Scopes(_) => return,
    };
    if scope.is_empty() && !keys.is_empty() {
        out.extend(keys.into_iter().map(|k| (k.clone(), access)));
    } else {
        out.push((scope.clone(), access));
    }
}

fn bulletin(c: &BulletinCommand, out: &mut Vec<Resource>) {
    use BulletinCommand::*;
    let (scope, board, access) = match c {
        Publish { scope, board, .. } => (scope, board, WRITE),
        Retrieve { scope, board, .. } | Extend { scope, board, .. } | Release { scope, board, .. } => (scope, board, READ | WRITE),
        All { scope, board, .. } | Get { scope, board, .. } | Len { scope, board } | Dead { scope, board } => (scope, board, READ),
        Remove { scope, board, .. } | Config { scope, board, .. } | Redrive { scope, board, .. } => (scope, board, WRITE),
        // Listings name what exists, as KEYS does: governed by the command's permission alone.
        Boards(_) => return,
    };
    out.push((scoped(scope, board), access));
}

fn job(c: &JobCommand, queue_of: &mut dyn FnMut(&[u8]) -> Option<Bytes>, out: &mut Vec<Resource>) {
    use JobCommand::*;
    let mut by_id = |id: &Bytes, access: u8, out: &mut Vec<Resource>| {
        // A job that does not exist names nothing: the command answers as it would for anyone.
        if let Some(queue) = queue_of(id) {
            out.push((queue, access));
        }
    };
    match c {
        Submit(args) => out.push((args.queue.clone(), WRITE)),
        Claim { queues, complete, .. } => {
            out.extend(queues.iter().map(|q| (q.clone(), READ | WRITE)));
            if let Some(done) = complete {
                by_id(&done.id, WRITE, out);
            }
        }
        Heartbeat { id, .. } | Progress { id, .. } | Chunk { id, .. } | Complete { id, .. } | Fail { id, .. } | Cancel(id) | Retry(id) => {
            by_id(id, WRITE, out)
        }
        Status(id) | Result { id, .. } | Read { id, .. } => by_id(id, READ, out),
        List { queue, .. } | Stats(queue) | Dead(queue) | Join { queue, .. } => out.push((queue.clone(), READ)),
        Concurrency { queue, .. } | Pause { queue, .. } => out.push((queue.clone(), WRITE)),
        // Listings name what exists, as KEYS does: governed by the command's permission alone.
        Queues(_) => {}
    }
}

/// The queue of a job, for [`herald_resources`].
pub fn job_queue(jobs: &Jobs, id: &[u8]) -> Option<Bytes> {
    jobs.job(id).map(|j| j.queue.clone())
}
