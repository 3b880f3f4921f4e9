//! Semaphores on the Redis engine: SEM.ACQUIRE / EXTEND / RELEASE / INFO across nodes.
//!
//! Each semaphore lives under one hash tag (`herald:sem:{<name>}:...`: its holders, a sorted set of
//! token -> lease end, and its size and token counter), and each operation is one Lua script on that slot
//! (`lua/sem.lua`) on Redis's clock: it frees the permits whose lease ended first, so a holder whose node
//! died loses its permit at its lease's end for whoever asks next, and a lapsed token is refused with
//! the embedded engine's `-LEASE`. A freed permit publishes a wake-up (`wake.rs`) for the blocked
//! acquirers of every node. Lease ends are also registered in `herald:sem:due` (`due.rs`) and swept
//! by every node, so waiters are woken at a lease's end even if nobody touches the semaphore.
//!
//! Fencing tokens count per semaphore (its `fence`, kept after the last holder left), not across every
//! semaphore as on one node: a counter shared by all semaphores would be a key outside their hash tags.
//! What fencing needs holds: a later holder of a semaphore has a larger token than every earlier one.
//! A move from one node (`import_work.rs`) leaves the node's last token in `herald:sem:floor`; a
//! semaphore's tokens start above it (the node read it once, before its first acquire), so a semaphore
//! the node had and forgot (nobody held it at the move) still hands out tokens beyond its old ones.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use herald_protocol::command::SemCommand;
use herald_protocol::{CommandError, Reply};
use redis::Value;

use super::Remote;
use super::due::Registry;
use super::scripted::{self, Script};
use super::value::failed;
use crate::dispatch::Outcome;
use crate::dispatch::semaphore::info_reply;
use crate::engine::semaphore::{SemInfo, SemaphoreSettings};

/// The semaphore script, the settings it is run with, the registry of lease ends, and the token floor.
pub struct Semaphores {
    pub(super) script: Script,
    settings: SemaphoreSettings,
    due: Registry,
    /// `herald:sem:floor` as read before this node's first acquire: every semaphore's tokens start above it.
    floor: tokio::sync::OnceCell<String>,
}

impl Semaphores {
    pub fn new(settings: SemaphoreSettings) -> Semaphores {
        let floor = tokio::sync::OnceCell::new();
        Semaphores { script: Script::new(include_str!("lua/sem.lua")), settings, due: Registry::new(DUE), floor }
    }
}

/// The registry of semaphores with a holder (lease ends), for the sweep.
pub(super) const DUE: &str = "herald:sem:due";

/// The token floor a move from one node leaves: the node's last fencing token (`import_work.rs`).
pub(super) const FLOOR: &str = "herald:sem:floor";

/// A semaphore's key: `holders`, `meta` or the waiter marker `waiting`.
pub(super) fn key(name: &[u8], suffix: &[u8]) -> Vec<u8> {
    [b"herald:sem:{".as_slice(), name, b"}:", suffix].concat()
}

/// Largest lease: Redis's deadlines are milliseconds in a Lua number (a double), exact below 2^53.
const MAX_MS: u64 = (1 << 52) - 1;

fn wake_name(name: &[u8]) -> Bytes {
    Bytes::from([b"sem:".as_slice(), name].concat())
}

/// An invocation of the semaphore script on `name`.
fn call(remote: &Remote, name: &[u8], args: &[&[u8]]) -> redis::Cmd {
    let mut cmd = scripted::evalsha(&remote.semaphores.script, &[key(name, b"holders"), key(name, b"meta"), key(name, b"waiting")]);
    cmd.arg(super::wake::channel(&wake_name(name)));
    for a in args {
        cmd.arg(*a);
    }
    cmd
}

const SCRIPT: scripted::Pick = |r| &r.semaphores.script;

async fn invoke(remote: &Remote, name: &[u8], args: &[&[u8]]) -> redis::RedisResult<Value> {
    scripted::evaluate(remote, &remote.semaphores.script, &call(remote, name, args)).await
}

fn int(v: &Value) -> u64 {
    match v {
        Value::Int(n) => *n as u64,
        Value::BulkString(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).unwrap_or(0),
        _ => 0,
    }
}

/// SEM.INFO's figures from the script's `{permits, fence, {token, end, ...}}`, oldest token first.
fn info(v: Value) -> SemInfo {
    let Value::Array(f) = v else { return SemInfo { permits: 0, holders: Vec::new(), fence: 0 } };
    let mut holders: Vec<(u64, u64)> = match f.get(2) {
        Some(Value::Array(flat)) => flat.chunks(2).map(|p| (int(&p[0]), p.get(1).map_or(0, int))).collect(),
        _ => Vec::new(),
    };
    holders.sort_unstable();
    SemInfo { permits: f.first().map_or(0, int) as u32, holders, fence: f.get(1).map_or(0, int) }
}

/// Runs a semaphore command on the Redis engine: one script answered later (`scripted.rs`; `later`: the
/// session is in order with the domain connection; a lease end registered for the sweep after it), or a
/// task the connection waits for when it may wait (SEM.ACQUIRE BLOCK).
pub fn execute(remote: &Arc<Remote>, cmd: SemCommand, later: bool) -> Outcome {
    if let SemCommand::Acquire { permits, .. } = &cmd {
        let max = remote.semaphores.settings.max_permits;
        if *permits == 0 || *permits > max {
            return CommandError::new(format!("ERR permits must be between 1 and {max} (semaphores.max_permits)")).into();
        }
    }
    match cmd {
        SemCommand::Acquire { name, permits, lease_ms, block: None } if remote.semaphores.floor.initialized() => {
            let floor = remote.semaphores.floor.get().map_or("0", String::as_str);
            let (permits, lease) = (permits.to_string(), lease_of(remote, lease_ms));
            let call = call(remote, &name, &[b"acquire", permits.as_bytes(), lease.as_bytes(), b"0", floor.as_bytes()]);
            scripted::run_then(remote, later, SCRIPT, call, move |r, v| async move { acquired(&r, &name, v).await.unwrap_or(Reply::Nil) })
        }
        SemCommand::Extend { name, token, ms } => {
            let (token, ms) = (token.to_string(), ms.clamp(1, MAX_MS).to_string());
            let call = call(remote, &name, &[b"extend", token.as_bytes(), ms.as_bytes()]);
            scripted::run_then(remote, later, SCRIPT, call, move |r, v| async move {
                match v {
                    Ok(v) => {
                        register(&r, &name, int(&v)).await;
                        Reply::Int(int(&v) as i64)
                    }
                    Err(e) => failed(&e),
                }
            })
        }
        SemCommand::Release { name, token } => {
            let token = token.to_string();
            let call = call(remote, &name, &[b"release", token.as_bytes()]);
            scripted::run(remote, later, SCRIPT, call, |_, v| v.map_or_else(|e| failed(&e), |_| Reply::ok()))
        }
        SemCommand::Info(name) => scripted::run(remote, later, SCRIPT, call(remote, &name, &[b"info"]), |_, v| {
            v.map_or_else(|e| failed(&e), |v| info_reply(info(v)))
        }),
        // A blocking acquire, or the node's first: the floor is read first if it is not known yet.
        SemCommand::Acquire { name, permits, lease_ms, block } => scripted::task(remote, move |remote, mut tx| async move {
            let (permits, lease, mark) = (permits.to_string(), lease_of(&remote, lease_ms), super::wake::mark_ms(&remote, block.is_some()));
            let r = &remote;
            let floor = match r.semaphores.floor.get_or_try_init(|| read_floor(r)).await {
                Ok(floor) => floor,
                Err(e) => {
                    let _ = tx.send(failed(&e));
                    return;
                }
            };
            let attempt = || async {
                let args: [&[u8]; 5] = [b"acquire", permits.as_bytes(), lease.as_bytes(), mark.as_bytes(), floor.as_bytes()];
                acquired(r, &name, invoke(r, &name, &args).await).await
            };
            let reply = super::wake::maybe(r, &wake_name(&name), block.map(|b| b.duration()), &mut tx, attempt).await;
            let _ = tx.send(reply.unwrap_or(Reply::Nil));
        }),
    }
}

/// Whether a SEM.ACQUIRE may join the requests in flight (`scripted::pipelines`): once the node knows the
/// floor, as [`execute`] then answers it later; the node's first acquire is a task that reads it first.
pub fn pipelines(remote: &Remote) -> bool {
    remote.semaphores.floor.initialized()
}

/// `herald:sem:floor` (`"0"` when no move left one).
async fn read_floor(remote: &Remote) -> redis::RedisResult<String> {
    let floor: Option<u64> = redis::cmd("GET").arg(FLOOR).query_async(&mut remote.pool.shared(scripted::DOMAIN)).await?;
    Ok(floor.unwrap_or(0).to_string())
}

/// An acquire's lease in milliseconds (the default when none was given), as the script's argument.
fn lease_of(remote: &Remote, lease_ms: Option<u64>) -> String {
    lease_ms.unwrap_or(remote.semaphores.settings.default_lease_ms).clamp(1, MAX_MS).to_string()
}

/// SEM.ACQUIRE's reply from the script's (the lease end registered for the sweep); `None`: no permits now.
async fn acquired(r: &Remote, name: &[u8], v: redis::RedisResult<Value>) -> Option<Reply> {
    match v {
        Ok(Value::Array(held)) if held.len() == 2 => {
            register(r, name, int(&held[1])).await;
            Some(Reply::Int(int(&held[0]) as i64))
        }
        Ok(_) => None,
        Err(e) => Some(failed(&e)),
    }
}

/// Registers a lease end for the sweep. A failure here costs only latency: the lease still ends for the
/// next script on the semaphore, and blocked acquirers re-try every `engine.wait_poll_ms` anyway.
async fn register(remote: &Remote, name: &[u8], at: u64) {
    let _ = remote.semaphores.due.register(remote, name, at).await;
}

/// How often each node looks for semaphores with a lease end due.
const SWEEP_EVERY: Duration = Duration::from_millis(50);
/// Semaphores one sweep visits at most (the next tick takes the rest).
const SWEEP_BATCH: usize = 100;

/// Starts the node's periodic sweep of lease ends; it ends with `stop`. Every node runs one: a sweep is
/// idempotent (a lease one node freed, the next finds gone).
pub fn start_sweep(remote: &Arc<Remote>, stop: tokio_util::sync::CancellationToken) {
    super::due::every(remote, SWEEP_EVERY, stop, |remote| async move { sweep(&remote).await });
}

async fn sweep(remote: &Remote) {
    let registry = &remote.semaphores.due;
    let Ok(due) = registry.due(remote, super::notices::now_ms(), SWEEP_BATCH).await else { return };
    for (name, seen) in due {
        if let Ok(next) = invoke(remote, &name, &[b"sweep"]).await {
            let _ = registry.settle(remote, &name, seen, int(&next)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_orders_holders_by_token() {
        let flat = |items: &[&str]| Value::Array(items.iter().map(|s| Value::BulkString(s.as_bytes().to_vec())).collect());
        let v = Value::Array(vec![Value::Int(3), Value::Int(12), flat(&["12", "900", "9", "1000"])]);
        assert_eq!(info(v), SemInfo { permits: 3, holders: vec![(9, 1000), (12, 900)], fence: 12 });
        assert_eq!(info(Value::Nil).permits, 0);
    }
}
