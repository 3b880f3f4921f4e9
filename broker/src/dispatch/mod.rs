//! Dispatch: from a decoded [`Request`] to the [`Outcome`] its connection sends.
//!
//! This is the one path every request takes, whatever transport it came on: lookup and arity, the
//! permission check, RESP2 subscribed-mode rules, MULTI queueing, then the single `match` over
//! [`Command`] that calls into the engines. No bytes and no sockets here.

mod acl;
mod bits;
pub mod blackboard;
mod block;
pub(crate) mod bulletin;
mod conn;
mod dump;
mod elements;
mod hashes;
mod info;
mod info_domains;
pub(crate) mod jobs;
mod keys;
mod later;
pub mod listing;
mod lists;
pub(crate) mod mailbox;
pub mod memory;
mod observe;
mod persistence;
mod pubsub;
pub(crate) mod schema;
pub mod scripting;
pub(crate) mod semaphore;
mod server;
pub mod session;
mod sets;
mod sort;
pub(crate) mod streams;
mod strings;
mod xstream;
mod zsets;

use std::sync::MutexGuard;

use herald_protocol::command::{self, Command, CommandSpec, Found, flags};
use herald_protocol::{CommandError, Reply, Request};

use crate::broker::Broker;
use crate::state::State;

/// What a connection does with a handled request.
#[derive(Debug)]
pub enum Outcome {
    Reply(Reply),
    /// Several replies in order (SUBSCRIBE to N channels confirms each).
    Replies(Vec<Reply>),
    /// Send the reply, then close the connection (QUIT).
    Close(Reply),
    /// Wait, then send what the wait produces (blocking commands).
    Block(Blocked),
    /// The reply comes later, in order, and the connection goes on with the next request meanwhile
    /// (a plain command forwarded to the backing Redis; see [`forwards_plainly`]).
    Later(Later),
    /// Wait for the first (its reply is dropped), then send these (SUBSCRIBE on the Redis engine
    /// confirms once the node's pub-sub connection to Redis follows the channels).
    RepliesAfter(Blocked, Vec<Reply>),
    /// CLIENT PAUSE holds this request: wait for the pause to end (`Broker::pause`), then hand it to
    /// [`handle`] again.
    Paused(Request),
    /// The Redis engine's quota check asks Redis about this request first (a tenant at its bound,
    /// `remote/quota.rs`): wait for it, then send its refusal or hand the request to [`handle`] again,
    /// cleared ([`cleared`]).
    Recheck(Request, Recheck),
}

pub use block::Blocked;
pub use later::{Later, Recheck};
pub use session::Session;

impl From<Reply> for Outcome {
    fn from(r: Reply) -> Self {
        Outcome::Reply(r)
    }
}

impl From<CommandError> for Outcome {
    fn from(e: CommandError) -> Self {
        Outcome::Reply(Reply::Error(e))
    }
}

/// An engine's refusal is the command's error reply, text unchanged.
impl From<crate::engine::Error> for Outcome {
    fn from(e: crate::engine::Error) -> Self {
        Outcome::Reply(Reply::Error(refused(e)))
    }
}

/// An engine's refusal as the protocol's error.
pub fn refused(e: crate::engine::Error) -> CommandError {
    CommandError(e.into_text())
}

impl From<crate::engine::Error> for CommandError {
    fn from(e: crate::engine::Error) -> Self {
        refused(e)
    }
}

impl From<Result<Reply, crate::engine::Error>> for Outcome {
    fn from(r: Result<Reply, crate::engine::Error>) -> Self {
        Outcome::Reply(r.unwrap_or_else(|e| Reply::Error(refused(e))))
    }
}

impl From<Result<Reply, CommandError>> for Outcome {
    fn from(r: Result<Reply, CommandError>) -> Self {
        Outcome::Reply(r.into())
    }
}

/// Everything a command executes against. The state lock is taken on first use and held until the
/// context is dropped, so a whole EXEC runs under one acquisition; commands that never touch an engine
/// (PING, PUBLISH, CLIENT ...) never take it.
pub struct Cx<'a> {
    pub broker: &'a Broker,
    pub session: &'a mut Session,
    guard: Option<MutexGuard<'a, State>>,
    /// The log's LSN when the lock was taken: a command that changed stored data moves it on.
    lsn_at_lock: u64,
    now: Option<u64>,
    /// Inside EXEC: blocking commands answer at once instead of waiting.
    pub in_exec: bool,
    /// Inside a script: its `redis.call`s are not SLOWLOG or LATENCY samples, and MONITOR shows them
    /// as `lua`'s.
    pub in_script: bool,
    /// Set by [`run`] when a script call goes to the script thread (its last run was slow): the
    /// request, which that thread accounts for once the script ran (`observe::offloaded`).
    pub offload: Option<(Found, Request)>,
}

impl<'a> Cx<'a> {
    pub fn new(broker: &'a Broker, session: &'a mut Session) -> Self {
        Cx { broker, session, guard: None, lsn_at_lock: 0, now: None, in_exec: false, in_script: false, offload: None }
    }

    pub fn state(&mut self) -> &mut State {
        let broker = self.broker;
        if self.guard.is_none() {
            let mut guard = broker.lock();
            guard.keyspace.no_touch = self.session.no_touch;
            if let Some(p) = &broker.persist {
                p.begin_batch();
                self.lsn_at_lock = p.lsn();
            }
            self.guard = Some(guard);
        }
        self.guard.as_mut().expect("locked")
    }

    /// The command's time: read once, so every part of a command (or of an EXEC) sees one instant.
    pub fn now(&mut self) -> u64 {
        let clock = self.broker.clock;
        let batch = self.session.batch_time;
        *self.now.get_or_insert_with(|| batch.map(|(ms, _)| ms).unwrap_or_else(|| clock.now_ms()))
    }

    pub fn db(&self) -> usize {
        self.session.db()
    }
}

impl Drop for Cx<'_> {
    fn drop(&mut self) {
        // Before the lock goes: serve clients this command unblocked, and wake the timer if the
        // command scheduled something earlier than it sleeps towards.
        if self.guard.is_some() {
            let now = self.now();
            let state = self.guard.as_mut().expect("checked");
            let next = state.settle(now);
            self.broker.schedule(next);
            // Still under the lock: records past `lsn_at_lock` are this command's (and those of the
            // clients it unblocked): its reply waits for them to be as durable as the policy says.
            if let Some(p) = &self.broker.persist {
                p.end_batch();
                let lsn = p.lsn();
                if lsn != self.lsn_at_lock {
                    self.session.commit_lsn = lsn;
                }
            }
        }
    }
}

/// Handles one request from a session.
pub fn handle(mut req: Request, session: &mut Session, broker: &Broker) -> Outcome {
    let found = match command::lookup_known(&req) {
        Ok(found) => found,
        Err((e, found)) => return reject(found, e, session, broker),
    };
    let spec = found.spec;
    // The usual request meets none of the refusals `screen` makes: its session is authenticated as a
    // user who may do anything, is not in RESP2's subscribed mode, and no pause, running script, log
    // failure or memory limit is in force. A session flag, the ACL epoch and one word of the broker
    // say so; only otherwise are the checks made one by one, in Redis's order.
    let open = session.authenticated && session.user.is_open(&broker.acl);
    // A restricted user's check comes first (Redis's order) and alone: the other refusals are only
    // looked at when the broker word or the session says one may apply.
    if !open
        && !acl::plainly_allowed(found, &req, session)
        && let Err(e) = authorize(found, &req, session, broker)
    {
        return reject(Some(found), e, session, broker);
    }
    if broker.alerts.any() || session.in_subscribed_mode() {
        match screen(found, session, broker) {
            Ok(()) => {}
            Err(Screened::Refused(e)) => return reject(Some(found), e, session, broker),
            Err(Screened::Paused) => return Outcome::Paused(req),
        }
    }
    let now_ms = session.batch_time.map_or_else(|| broker.clock.now_ms(), |(ms, _)| ms);
    session.note_command(spec, now_ms);
    // The Redis engine: one check here for the embedded engine (docs/scale-out.md).
    if let Some(remote) = &broker.remote {
        match crate::remote::route(remote, spec, req, session) {
            crate::remote::Routed::Local(back) => req = back,
            crate::remote::Routed::Done(outcome) => {
                broker.commands.called(found, 0, None);
                return outcome;
            }
            crate::remote::Routed::Refused(e) => return reject(Some(found), e, session, broker),
            crate::remote::Routed::Recheck(req, check) => return Outcome::Recheck(req, check),
        }
    }
    if session.in_multi() && !spec.has(flags::TX_CONTROL) {
        if spec.has(flags::NO_MULTI) {
            return reject(Some(found), CommandError::fixed("ERR Command not allowed inside a transaction"), session, broker);
        }
        let parsed = command::parse(spec, &req);
        if !open
            && let Ok(cmd) = &parsed
            && let Err(e) = acl::gate_parsed(found, cmd, session, broker)
        {
            return reject(Some(found), e, session, broker);
        }
        if broker.quotas.is_some()
            && let Ok(cmd) = &parsed
            && let Err(e) = quota(found, &req, cmd, session.db(), broker, &broker.lock())
        {
            return reject(Some(found), e, session, broker);
        }
        session.queue((found, req, parsed));
        return Reply::status("QUEUED").into();
    }
    let parsed = command::parse(spec, &req);
    if !open
        && let Ok(cmd) = &parsed
        && let Err(e) = acl::gate_parsed(found, cmd, session, broker)
    {
        return reject(Some(found), e, session, broker);
    }
    if broker.quotas.is_some()
        && let Ok(cmd) = &parsed
        && let Err(e) = quota(found, &req, cmd, session.db(), broker, &broker.lock())
    {
        return reject(Some(found), e, session, broker);
    }
    let mut cx = Cx::new(broker, session);
    run(found, &req, parsed, &mut cx)
}

/// After an [`Outcome::Recheck`]: the quota check's refusal, counted as a request refused before it ran;
/// or, when the request may go, the session marked so that the check lets it through when it is handed to
/// [`handle`] again.
pub fn cleared(req: &Request, checked: Result<bool, Reply>, session: &mut Session, broker: &Broker) -> Option<Outcome> {
    match checked {
        Err(Reply::Error(e)) => Some(reject(command::lookup_known(req).ok(), e, session, broker)),
        Err(reply) => Some(reply.into()),
        Ok(creates) => {
            session.quota_cleared = Some(creates);
            None
        }
    }
}

/// Per-tenant quotas (`quota.rs`): a request that would create past a tenant's bound is refused.
/// Checked under its own lock, just before the command runs: requests running at the same moment on
/// other io threads may each pass, so a bound may be overshot by as many (docs/security.md).
#[cold]
fn quota(found: Found, req: &Request, cmd: &Command, db: usize, broker: &Broker, state: &State) -> Result<(), CommandError> {
    broker.quotas.as_ref().map_or(Ok(()), |q| q.check(found.spec, req, cmd, db, state))
}

/// Why [`screen`] stopped a request.
enum Screened {
    Refused(CommandError),
    /// CLIENT PAUSE holds it.
    Paused,
}

/// The checks a request meets before it runs, after authentication and permissions ([`authorize`]),
/// in Redis's order: RESP2's subscribed mode, CLIENT PAUSE, a running script (BUSY), a failing log
/// (MISCONF), maxmemory (OOM). Only called when one of them may apply (see [`handle`]).
#[cold]
fn screen(found: Found, session: &mut Session, broker: &Broker) -> Result<(), Screened> {
    let spec = found.spec;
    if session.in_subscribed_mode() && !spec.has(flags::SUBSCRIBED_OK) {
        return Err(Screened::Refused(CommandError::new(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        ))));
    }
    if broker.pause.is_on() && broker.pause.holds(spec, session.queued_writes()) {
        return Err(Screened::Paused);
    }
    // While a script runs: wait for it, up to the busy threshold, then answer -BUSY.
    broker.scripting.monitor.gate(spec.has(flags::ALLOW_BUSY)).map_err(Screened::Refused)?;
    persistence_ok(spec, broker).map_err(Screened::Refused)?;
    if spec.has(flags::DENYOOM) && broker.over_maxmemory() {
        return Err(Screened::Refused(CommandError::fixed("OOM command not allowed when used memory > 'maxmemory'.")));
    }
    Ok(())
}

/// A request refused before it runs: counted (the command's `rejected_calls`, the error's code), and
/// an open transaction is flagged to abort, as Redis's `rejectCommand` does.
fn reject(found: Option<Found>, e: CommandError, session: &mut Session, broker: &Broker) -> Outcome {
    session.flag_transaction();
    broker.commands.rejected(found, &e.0);
    e.into()
}

/// Runs a parsed command (or answers its parse error, which Redis reports from inside the command) and
/// accounts for it: INFO commandstats (every command, EXEC's and scripts' included), SLOWLOG and the
/// latency monitor (not a script's own calls, as in Redis), MONITOR. One duration, measured here with
/// the cheap counter of `ticks.rs`, serves all three; `req` is the request as it came, for SLOWLOG's
/// and MONITOR's copies of its arguments.
pub fn run(found: Found, req: &Request, parsed: Result<Command, CommandError>, cx: &mut Cx<'_>) -> Outcome {
    let broker = cx.broker;
    let monitored = broker.monitors.active();
    if observe::script_call(found) {
        // Shown before the script's own commands (Redis 7.0 feeds EVAL as it starts).
        if monitored {
            observe::feed_monitors(req, cx);
        }
        // Inside EXEC every script runs inline (the transaction holds the lock).
        if let Ok(Command::Script(call)) = &parsed
            && !cx.in_exec
            && !broker.scripting.runs_inline(call)
        {
            cx.offload = Some((found, req.clone()));
        }
    }
    let started = crate::ticks::now();
    let outcome = match parsed {
        Ok(cmd) => execute(cmd, cx),
        Err(e) => e.into(),
    };
    let took = crate::ticks::nanos_since(started);
    let error = match &outcome {
        Outcome::Reply(Reply::Error(e)) => Some(&*e.0),
        _ => None,
    };
    broker.commands.called(found, took, error);
    // A command that waits (blocked, or a script handed to the script thread) is not sampled now:
    // Redis logs a blocked command's time when it is served; the script thread logs the script's.
    if !cx.in_script && !matches!(outcome, Outcome::Block(_)) {
        observe::sample(found, req, took / 1000, cx.session, broker);
    }
    if monitored && observe::shown_after(found) {
        observe::feed_monitors(req, cx);
    }
    outcome
}

/// A write is refused while the log cannot be written.
fn persistence_ok(spec: &CommandSpec, broker: &Broker) -> Result<(), CommandError> {
    match broker.persist.as_ref().and_then(|p| p.failure()) {
        Some(why) if spec.has(flags::WRITE) => Err(CommandError::new(format!("MISCONF Errors writing to the AOF file: {why}"))),
        _ => Ok(()),
    }
}

/// One command called by a script (`redis.call`): the same lookup, permission check and `execute`
/// as [`handle`], with Redis's rules for scripts (no `noscript` commands, no writes from read-only
/// scripts, nothing blocks) and its error texts. Runs inside the script's `Cx`, under its lock.
pub fn from_script(run: &mut scripting::Running<'_, '_>, req: &Request) -> Reply {
    let found = match command::lookup(req) {
        Ok(found) => found,
        Err(e) if e.0.starts_with("ERR wrong number of arguments") => {
            return Reply::error("ERR Wrong number of args calling Redis command from script");
        }
        Err(_) => return Reply::error("ERR Unknown Redis command called from script"),
    };
    let spec = found.spec;
    if spec.has(flags::NOSCRIPT) {
        return Reply::error("ERR This Redis command is not allowed from script");
    }
    let open = run.cx.session.authenticated && run.cx.session.user.is_open(&run.cx.broker.acl);
    if !open && let Err(e) = authorize(found, req, run.cx.session, run.cx.broker) {
        return Reply::Error(e);
    }
    if spec.has(flags::WRITE) {
        if run.read_only {
            return Reply::error("ERR Write commands are not allowed from read-only scripts.");
        }
        if let Err(e) = persistence_ok(spec, run.cx.broker) {
            return Reply::Error(e);
        }
    }
    if (spec.name == "xread" || spec.name == "xreadgroup") && blocks(req) {
        return Reply::Error(CommandError::new(format!("ERR {} command is not allowed with BLOCK option from scripts", spec.name)));
    }
    let cmd = match command::parse(spec, req) {
        Ok(cmd) => cmd,
        Err(e) => return Reply::Error(e),
    };
    if !open && let Err(e) = acl::gate_parsed(found, &cmd, run.cx.session, run.cx.broker) {
        return Reply::Error(e);
    }
    let (db, broker) = (run.cx.session.db(), run.cx.broker);
    if broker.quotas.is_some()
        && let Err(e) = quota(found, req, &cmd, db, broker, run.cx.state())
    {
        return Reply::Error(e);
    }
    if spec.has(flags::WRITE) {
        // From now on the script cannot be killed (its writes could not be undone).
        run.cx.broker.scripting.monitor.note_write();
    }
    // Counted in INFO commandstats like any command, as Redis counts a script's calls.
    match self::run(found, req, Ok(cmd), run.cx) {
        Outcome::Reply(r) | Outcome::Close(r) => r,
        Outcome::Replies(rs) => Reply::Array(rs),
        Outcome::Block(_) | Outcome::RepliesAfter(..) | Outcome::Later(_) => unreachable!("nothing blocks inside a script"),
        Outcome::Paused(_) | Outcome::Recheck(..) => unreachable!("only handle() holds a request for CLIENT PAUSE or a quota check"),
    }
}

/// Whether an XREAD / XREADGROUP request has a BLOCK option (before its STREAMS keyword).
pub fn blocks(req: &Request) -> bool {
    req.parts()[1..].iter().take_while(|a| !a.eq_ignore_ascii_case(b"STREAMS")).any(|a| a.eq_ignore_ascii_case(b"BLOCK"))
}

/// The permission check point: every command from every transport passes here before it runs
/// (authentication, then the user's ACL: `acl::gate_request`; Herald's named resources are checked
/// once the command is parsed, `acl::gate_parsed`).
#[inline]
fn authorize(found: Found, req: &Request, session: &mut Session, broker: &Broker) -> Result<(), CommandError> {
    if !session.authenticated && !found.spec.has(flags::NO_AUTH) && broker.requires_auth() {
        return Err(CommandError::fixed("NOAUTH Authentication required."));
    }
    acl::gate_request(found, req, session, broker)
}

/// The single match from a command to the code that runs it.
pub fn execute(cmd: Command, cx: &mut Cx<'_>) -> Outcome {
    match cmd {
        Command::Conn(c) => conn::execute(c, cx),
        Command::Keys(c) => keys::execute(c, cx).into(),
        Command::Strings(c) => strings::execute(c, cx).into(),
        Command::Bits(c) => bits::execute(c, cx).into(),
        Command::PubSub(c) => pubsub::execute(c, cx),
        Command::Lists(c) => lists::execute(c, cx),
        Command::Hashes(c) => hashes::execute(c, cx).into(),
        Command::Sets(c) => sets::execute(c, cx).into(),
        Command::Sort(c) => sort::execute(c, cx).into(),
        Command::Dump(c) => dump::execute(c, cx).into(),
        Command::Zsets(c) => zsets::execute(c, cx),
        Command::Streams(c) => streams::execute(c, cx),
        Command::Mailbox(c) => mailbox::execute(c, cx),
        Command::Blackboard(c) => blackboard::execute(c, cx),
        Command::Jobs(c) => jobs::execute(c, cx),
        Command::Bulletin(c) => bulletin::execute(c, cx),
        Command::XStream(c) => xstream::execute(c, cx),
        Command::Persist(c) => persistence::execute(c, cx),
        Command::Sem(c) => semaphore::execute(c, cx),
        Command::Schema(c) => schema::execute(c, cx),
        Command::Script(c) => scripting::execute(c, cx),
        Command::Acl(c) => acl::execute(c, cx),
        Command::Observe(c) => observe::execute(c, cx),
        Command::Memory(c) => memory::execute(c, cx).into(),
    }
}

/// Whether `req` would be sent to the backing Redis as it is and answered [`Outcome::Later`]: only such
/// requests may follow others still in flight on a connection; before anything else runs, the connection
/// waits for their replies, so a command that changes the session (SELECT, MULTI, HELLO, CLIENT REPLY...) or
/// runs elsewhere (a Herald domain's script, a blocking command) sees every earlier request done. Asked only
/// while requests are in flight, which never happens on the embedded engine.
pub fn forwards_plainly(req: &Request, session: &Session, broker: &Broker) -> bool {
    broker.remote.as_ref().is_some_and(|remote| crate::remote::forwards_plainly(remote, req, session))
}

/// Cleans up after a session whose connection ended: subscriptions, watches, registry entry.
pub fn disconnect(session: &mut Session, broker: &Broker) {
    pubsub::unsubscribe_all(session, broker);
    // Only a watching session takes the state lock here: a connection that ends while a long
    // script holds it must not stall its io thread.
    if session.watch.is_watching() {
        broker.lock().keyspace.unwatch(&session.watch);
    }
    broker.monitors.remove(session.id());
    broker.clients.unregister(session.id());
}
