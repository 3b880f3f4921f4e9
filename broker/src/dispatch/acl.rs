//! The permission gate every request passes (called from [`super::handle`], whatever the wire), the
//! AUTH / HELLO AUTH credential check, and the ACL commands.

use std::sync::Arc;

use bytes::Bytes;
use herald_protocol::command::{self, AclCommand, Command, CommandSpec, Found};
use herald_protocol::{CommandError, Reply, Request};

use super::{Blocked, Cx, Outcome, Session, server};
use crate::acl::{self, Denied, Reason, User, resources, table, token};
use crate::broker::Broker;

fn context(session: &Session) -> &'static str {
    if session.in_multi() { "multi" } else { "toplevel" }
}

/// Records a refusal in ACL LOG and turns it into the command's error.
fn refuse(denied: Denied, session: &Session, broker: &Broker) -> CommandError {
    broker.acl.record(&denied, context(session), &session.user.name, session.client.describe());
    denied.error()
}

/// The session's user when its permissions must be checked; `None` when it may do anything.
fn restricted(session: &mut Session, broker: &Broker) -> Option<Result<Arc<User>, CommandError>> {
    if session.user.is_open(&broker.acl) {
        return None;
    }
    Some(session.user.cached().cloned().ok_or(deleted()))
}

fn deleted() -> CommandError {
    CommandError::fixed("NOPERM this user has been deleted")
}

/// The usual request of an authenticated restricted user, allowed as it stands: `dispatch::handle` asks
/// this before calling the full gate. The caller has just asked `is_open`, which refreshed the session's
/// user (and its per-command verdicts, `acl/verdict.rs`) when the ACLs changed. The verdicts answer a
/// single-key command with one byte and one word compare; [`acl::plainly_allowed`] the rest.
#[inline(always)]
pub fn plainly_allowed(found: Found, req: &Request, session: &Session) -> bool {
    session.authenticated
        && (session.user.plainly_allows(found.index, req)
            || session.user.cached().is_some_and(|user| acl::plainly_allowed(user, found.spec, acl::shape(found), req)))
}

/// Before parsing: may the session's user run this command on these keys and channels? The user is
/// borrowed from the session (refreshed by `is_open` when the ACLs changed), not cloned, and the
/// command's [`acl::Shape`] is found by its table index.
#[inline]
pub fn gate_request(found: Found, req: &Request, session: &mut Session, broker: &Broker) -> Result<(), CommandError> {
    if session.user.is_open(&broker.acl) {
        return Ok(());
    }
    let session = &*session;
    let Some(user) = session.user.cached() else { return Err(deleted()) };
    let shape = acl::shape(found);
    if acl::plainly_allowed(user, found.spec, shape, req) {
        return Ok(());
    }
    acl::check_command(user, found.spec, shape)
        .and_then(|_| acl::check_request(user, found.spec, shape, req))
        .map_err(|d| refuse(d, session, broker))
}

/// After parsing: Herald's named resources (scopes, boards, queues, jobs, mailboxes, semaphores,
/// schemas), which need the parsed command (options such as `SCOPE s`) or the engines (a job's queue).
/// Only Herald's commands have such resources: for the others this is one test of the spec's group.
#[inline(always)]
pub fn gate_parsed(found: Found, cmd: &Command, session: &mut Session, broker: &Broker) -> Result<(), CommandError> {
    if !resources::named_by_parse(found.spec) {
        return Ok(());
    }
    gate_resources(cmd, session, broker)
}

fn gate_resources(cmd: &Command, session: &mut Session, broker: &Broker) -> Result<(), CommandError> {
    if session.user.is_open(&broker.acl) {
        return Ok(());
    }
    let session = &*session;
    let Some(user) = session.user.cached() else { return Err(deleted()) };
    if user.all_keys {
        return Ok(());
    }
    let mut queue_of = |id: &[u8]| resources::job_queue(&broker.lock().jobs, id);
    match resources::herald_resources(cmd, &mut queue_of) {
        Some(found) => acl::check_resources(user, &found).map_err(|d| refuse(d, session, broker)),
        None => Ok(()),
    }
}

/// AUTH and HELLO AUTH: checks the credentials, switches the session's user, records a failure, and
/// answers at the client address's next slot when it has been failing (`acl/throttle.rs`).
pub fn authenticate(user: Option<&[u8]>, password: &[u8], cx: &mut Cx<'_>) -> Result<(), CommandError> {
    let acl = &cx.broker.acl;
    if user.is_none() && acl.default_user().nopass {
        return Err(CommandError::fixed(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ));
    }
    let name = user.unwrap_or(b"default");
    match acl.authenticate(name, password) {
        Ok(u) => {
            signed_in(u, false, None, cx);
            Ok(())
        }
        Err(e) => {
            let client = &cx.session.client;
            tracing::warn!(target: "herald::auth", id = client.id, addr = %client.addr, transport = client.transport.name(), user = %String::from_utf8_lossy(name), "authentication failed");
            acl.auth_failed(cx.session.client.addr.ip());
            let denied = Denied { reason: Reason::Auth, object: "AUTH".into() };
            acl.record(&denied, context(cx.session), &String::from_utf8_lossy(name), cx.session.client.describe());
            Err(e)
        }
    }
}

/// The session runs as `user` from now on (`detached`: a token's own permissions, until `expiry`).
fn signed_in(user: Arc<User>, detached: bool, expiry: Option<u64>, cx: &mut Cx<'_>) {
    {
        let mut activity = cx.session.client.activity();
        activity.user = Arc::from(user.name.as_str());
        activity.detached_user = detached;
    }
    if detached {
        cx.session.user.set_detached(user);
    } else {
        cx.session.user.set(user);
    }
    cx.session.authenticated = true;
    cx.session.token_expiry = expiry;
}

/// AUTH.TOKEN: checks a signed token (`acl/token.rs`) and switches the session's user to the one it
/// names or describes, until it expires. Failures are recorded and throttled as AUTH's are.
pub fn authenticate_token(token: &[u8], cx: &mut Cx<'_>) -> Result<(), CommandError> {
    let broker = cx.broker;
    let now = cx.now();
    let verdict = std::str::from_utf8(token)
        .map_err(|_| token::Refusal::Invalid("not text".into()))
        .and_then(|t| broker.tokens.verify(t, now, &broker.acl));
    match verdict {
        Ok(grant) => {
            signed_in(grant.user, grant.detached, Some(grant.expires_ms), cx);
            Ok(())
        }
        Err(refusal) => {
            let error = CommandError::new(refusal.message());
            if refusal != token::Refusal::Disabled {
                broker.acl.auth_failed(cx.session.client.addr.ip());
                let denied = Denied { reason: Reason::Auth, object: "AUTH.TOKEN".into() };
                broker.acl.record(&denied, context(cx.session), "token", cx.session.client.describe());
            }
            Err(error)
        }
    }
}

/// The reply to an authentication attempt, held back to the address's slot when it is throttled.
pub fn throttled(reply: Reply, cx: &mut Cx<'_>) -> Outcome {
    if cx.in_exec {
        return reply.into();
    }
    let failed = matches!(&reply, Reply::Error(e) if e.code() == "WRONGPASS");
    match cx.broker.acl.auth_slot(cx.session.client.addr.ip(), failed) {
        Some(at) => Outcome::Block(Blocked::delayed(reply, at)),
        None => reply.into(),
    }
}

/// Ends the connections of users that no longer exist (ACL DELUSER, ACL LOAD), as Redis does, and
/// of subscribers whose channel permissions shrank (their subscriptions may no longer be allowed).
fn disconnect_stale(broker: &Broker, before: &[Arc<User>]) {
    for client in broker.clients.all() {
        let name = client.activity().user.clone();
        let now = broker.acl.get(&name);
        let was = before.iter().find(|u| *u.name == *name);
        let shrank = match (was, &now) {
            (Some(was), Some(now)) => {
                (was.all_channels && !now.all_channels) || was.channels.iter().any(|c| !now.all_channels && !now.channels.contains(c))
            }
            _ => false,
        };
        if client.activity().detached_user {
            continue;
        }
        if now.is_none() || (shrank && client.kind() == "pubsub") {
            client.kill();
        }
    }
}

fn random_hex(bits: u32) -> Result<String, CommandError> {
    use std::io::Read;
    let chars = bits.div_ceil(4) as usize;
    let mut raw = vec![0u8; chars.div_ceil(2)];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut raw))
        .map_err(|e| CommandError::new(format!("ERR no randomness available: {e}")))?;
    let mut hex = acl::user::hex(&raw);
    hex.truncate(chars);
    Ok(hex)
}

/// Everything the gates check, at once: the command, its keys and channels, and (once parsed) Herald's
/// named resources (`queue_of` finds a job's queue). ACL DRYRUN and EXEC's re-check use it.
fn verdict(
    user: &User,
    spec: &'static CommandSpec,
    req: &Request,
    parsed: Option<&Command>,
    queue_of: &mut dyn FnMut(&[u8]) -> Option<Bytes>,
) -> Result<(), Denied> {
    let shape = acl::shape_of(spec);
    acl::check_command(user, spec, shape)?;
    acl::check_request(user, spec, shape, req)?;
    match parsed {
        Some(cmd) if !user.all_keys => match resources::herald_resources(cmd, queue_of) {
            Some(found) => acl::check_resources(user, &found),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// EXEC, when the ACL changed after MULTI: each queued command is checked again with the user's
/// permissions as they are now (Redis 7.0's `execCommand`); a refused one answers NOPERM in its slot,
/// is logged in ACL LOG (context `multi`) and does not run; the others do.
pub fn recheck_queued(
    spec: &'static CommandSpec,
    req: &Request,
    parsed: &Result<Command, CommandError>,
    cx: &mut Cx<'_>,
) -> Result<(), CommandError> {
    let Some(user) = restricted(cx.session, cx.broker) else { return Ok(()) };
    let user = user?;
    // The state lock is held for the whole EXEC: a job's queue is read through it.
    let mut queue_of = |id: &[u8]| resources::job_queue(&cx.state().jobs, id);
    let Err(denied) = verdict(&user, spec, req, parsed.as_ref().ok(), &mut queue_of) else { return Ok(()) };
    cx.broker.acl.record(&denied, "multi", &cx.session.user.name, cx.session.client.describe());
    let reason = match denied.reason {
        Reason::Command => "no permission to execute the command or subcommand",
        Reason::Key => "no permission to touch the specified keys",
        Reason::Channel => "no permission to access one of the channels used as arguments",
        Reason::Auth => "no permission",
    };
    Err(CommandError::new(format!(
        "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}"
    )))
}

fn dry_run(user: &[u8], parts: Vec<Bytes>, broker: &Broker) -> Result<Reply, CommandError> {
    let name = String::from_utf8_lossy(user);
    let user = broker.acl.get(&name).ok_or_else(|| CommandError::new(format!("ERR User '{name}' not found")))?;
    let req = Request::new(parts);
    let spec = match command::lookup(&req) {
        Ok(found) => found.spec,
        Err(e) if e.message().starts_with("unknown command") => {
            return Err(CommandError::new(format!("ERR Command '{}' not found", String::from_utf8_lossy(req.name()))));
        }
        Err(e) => return Err(e),
    };
    let parsed = command::parse(spec, &req).ok();
    let mut queue_of = |id: &[u8]| resources::job_queue(&broker.lock().jobs, id);
    Ok(match verdict(&user, spec, &req, parsed.as_ref(), &mut queue_of) {
        Ok(()) => Reply::ok(),
        Err(d) => Reply::bulk(d.dry_run_text()),
    })
}

fn get_user(name: &[u8], broker: &Broker) -> Reply {
    let Some(u) = broker.acl.get(&String::from_utf8_lossy(name)) else { return Reply::Nil };
    Reply::fields(vec![
        ("flags", Reply::bulks(u.flags())),
        ("passwords", Reply::bulks(u.passwords.iter().map(|p| acl::user::hex(p)))),
        ("commands", Reply::bulk(u.describe_commands())),
        ("keys", Reply::bulk(u.describe_keys())),
        ("channels", Reply::bulk(u.describe_channels())),
        ("selectors", Reply::Array(Vec::new())),
    ])
}

fn category(name: &[u8]) -> Result<Reply, CommandError> {
    let text = String::from_utf8_lossy(name);
    let bit = table::category(&text).ok_or_else(|| CommandError::new(format!("ERR Unknown category '{text}'")))?;
    let t = &*table::TABLE;
    Ok(Reply::bulks(t.specs.iter().zip(&t.categories).filter(|(_, c)| **c & bit != 0).map(|(s, _)| s.name)))
}

const HELP: &[&str] = &[
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
];

pub fn execute(cmd: AclCommand, cx: &mut Cx<'_>) -> Outcome {
    let broker = cx.broker;
    let acl = &broker.acl;
    let result: Result<Reply, CommandError> = match cmd {
        AclCommand::Cat(None) => Ok(Reply::bulks(table::CATEGORIES.iter().copied())),
        AclCommand::Cat(Some(name)) => category(&name),
        AclCommand::DelUser(names) => acl.delete(&names).map(|n| {
            disconnect_stale(broker, &[]);
            Reply::Int(n as i64)
        }),
        AclCommand::DryRun { user, command } => dry_run(&user, command, broker),
        AclCommand::GenPass(bits) => random_hex(bits).map(Reply::bulk),
        AclCommand::GetUser(name) => Ok(get_user(&name, broker)),
        AclCommand::List => Ok(Reply::bulks(acl.lines())),
        AclCommand::Load => {
            let before = acl.all();
            acl.load().map(|_| {
                disconnect_stale(broker, &before);
                Reply::ok()
            })
        }
        .map_err(|e| CommandError::new(format!("ERR {e}"))),
        AclCommand::Save => acl.save().map(|_| Reply::ok()).map_err(|e| CommandError::new(format!("ERR {e}"))),
        AclCommand::Log(count) => Ok(acl.log.lock().expect("acl log").render(count.unwrap_or(10))),
        AclCommand::LogReset => {
            acl.log.lock().expect("acl log").reset();
            Ok(Reply::ok())
        }
        AclCommand::SetUser { user, rules } => {
            let before = acl.all();
            acl.set_user(&user, &rules).map(|_| {
                disconnect_stale(broker, &before);
                Reply::ok()
            })
        }
        AclCommand::Users => Ok(Reply::bulks(acl.names())),
        AclCommand::WhoAmI => Ok(Reply::bulk(cx.session.user.name.to_string())),
        AclCommand::Help => Ok(server::help("ACL", HELP)),
    };
    result.into()
}
