//! Lua scripting as Redis 7.0 has it: EVAL / EVALSHA (and `_RO`), SCRIPT, FUNCTION and FCALL.
//!
//! A script runs inside the command that called it, on that connection's thread, with the state lock
//! taken before it starts and held until it ends (one `Cx`, like a whole EXEC), so nothing
//! interleaves, its writes are one group in the log, and blocked clients are served after it. Its
//! `redis.call` goes through [`super::from_script`], the same per-command path as any request
//! (lookup, permission check, parse, the one `execute` match). Other connections learn that a script
//! runs from the [`Monitor`] (no lock of the script's): they wait for it up to `busy-reply-threshold`,
//! then answer `-BUSY`, and SCRIPT KILL / FUNCTION KILL reach it through the instruction hook.
//!
//! Lock order: the state lock, then the scripts' (`eval` or `functions`); nothing takes them the
//! other way round.

mod call;
mod cjson;
mod cmsgpack;
mod convert;
pub mod functions;
mod libs;
pub mod monitor;
mod structs;
mod vm;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use herald_protocol::command::{Found, Invocation, RestorePolicy, ScriptCommand};
use herald_protocol::{CommandError, Reply};
use mlua::Function;

use super::{Cx, Outcome};
use functions::Functions;
use monitor::{Current, Monitor};
use vm::Vm;
pub use vm::{Flags, Running};

/// What scripting holds (see [`Scripting::memory`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct ScriptMemory {
    pub cached_scripts: usize,
    /// Bytes the EVAL VM has allocated.
    pub eval_vm: usize,
    /// Bytes the FUNCTION VM has allocated.
    pub functions_vm: usize,
    pub functions: usize,
    pub libraries: usize,
    /// The libraries' source text.
    pub library_bytes: usize,
}

/// A cached EVAL script.
struct Script {
    func: Function,
    flags: Flags,
    /// Its last run finished within [`INLINE_BUDGET`]: the next runs on the caller's thread.
    fast: bool,
}

/// How long a script's last run may have taken for the next one to run on the connection's own
/// thread. Slower scripts, and any script the first time, run on the script thread, where a long
/// run leaves the connection threads free to answer -BUSY and take SCRIPT KILL.
const INLINE_BUDGET: std::time::Duration = std::time::Duration::from_millis(1);

/// The EVAL side: its VM and the scripts compiled into it, by SHA1 (lowercase hex).
struct Scripts {
    vm: Vm,
    cache: HashMap<[u8; 40], Script, std::hash::BuildHasherDefault<ShaHasher>>,
}

/// A SHA1 is a hash already: its 40 hex digits are folded into a word and mixed once, instead of
/// SipHash over them (every EVALSHA looks its script up).
#[derive(Default)]
struct ShaHasher(u64);

impl std::hash::Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.0 = (self.0 ^ u64::from_le_bytes(chunk.try_into().expect("8 bytes"))).rotate_left(29);
        }
        for b in chunks.remainder() {
            self.0 = (self.0 ^ u64::from(*b)).rotate_left(8);
        }
    }

    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

// SAFETY: as for `Vm`: the cached functions are handles into the VM beside them, and the whole value
// is only reached through its mutex in `Scripting`.
unsafe impl Send for Scripts {}

/// Everything scripting keeps: the two VMs (scripts and functions, as Redis separates them) and the
/// monitor of the running script.
pub struct Scripting {
    eval: Mutex<Scripts>,
    functions: Mutex<Functions>,
    pub monitor: Arc<Monitor>,
    memory_limit: usize,
    /// The script thread's queue, started with the first script that runs there.
    thread: std::sync::OnceLock<Mutex<std::sync::mpsc::Sender<Job>>>,
}

/// A script call handed to the script thread: the command, the caller's session as the script
/// sees it, and where the reply goes.
struct Job {
    cmd: ScriptCommand,
    /// The request that called it, for SLOWLOG and LATENCY once it ran (`observe::offloaded`).
    request: (Found, herald_protocol::Request),
    session: super::Session,
    reply: tokio::sync::oneshot::Sender<Reply>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Scripting {
    /// `memory_limit`: bytes each Lua state may allocate (0: no limit); `busy_ms`: the busy threshold.
    pub fn new(memory_limit: usize, busy_ms: u64, alerts: crate::alerts::Alerts) -> Scripting {
        let monitor = Arc::new(Monitor::new(busy_ms, alerts));
        Scripting {
            eval: Mutex::new(Scripts::new(memory_limit, monitor.clone())),
            functions: Mutex::new(Functions::new(memory_limit, monitor.clone()).expect("the functions VM starts")),
            monitor,
            memory_limit,
            thread: std::sync::OnceLock::new(),
        }
    }

    /// Whether a call runs on the caller's thread: its script (or function) finished quickly last
    /// time (`dispatch::run` asks, and hands the others over through `Cx::offload`).
    pub fn runs_inline(&self, cmd: &ScriptCommand) -> bool {
        match cmd {
            ScriptCommand::Eval(inv) => locked(&self.eval).cache.get(&sha1_hex(&inv.target)).is_some_and(|s| s.fast),
            ScriptCommand::EvalSha(inv) => sha_key(&inv.target).is_some_and(|k| locked(&self.eval).cache.get(&k).is_some_and(|s| s.fast)),
            ScriptCommand::FCall(inv) => locked(&self.functions).function(&inv.target).is_some_and(|f| f.fast.get()),
            _ => true,
        }
    }

    /// Runs the call on the script thread; the connection waits for the reply like a blocked client.
    fn offload(&self, cmd: ScriptCommand, request: (Found, herald_protocol::Request), cx: &mut Cx<'_>) -> Outcome {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = Job { cmd, request, session: cx.session.for_script(), reply };
        let queue = self.thread.get_or_init(|| Mutex::new(start_thread(cx.broker.weak())));
        if locked(queue).send(job).is_err() {
            return CommandError::fixed("ERR the script thread has stopped").into();
        }
        Outcome::Block(super::Blocked::elsewhere(rx, Reply::error("ERR the script thread has stopped")))
    }

    /// What scripting holds, for INFO memory and MEMORY STATS; `None` while a script runs (its VM is
    /// busy, and the caller should not wait for it).
    pub fn memory(&self) -> Option<ScriptMemory> {
        let eval = self.eval.try_lock().ok()?;
        let functions = self.functions.try_lock().ok()?;
        Some(ScriptMemory {
            cached_scripts: eval.cache.len(),
            eval_vm: eval.vm.lua.used_memory(),
            functions_vm: functions.vm.lua.used_memory(),
            functions: functions.function_count(),
            libraries: functions.libraries.len(),
            library_bytes: functions.libraries.values().map(|l| l.code.len()).sum(),
        })
    }

    /// The libraries' sources, for snapshots and FUNCTION DUMP.
    pub fn library_codes(&self) -> Vec<Bytes> {
        locked(&self.functions).codes()
    }

    /// Loads the libraries recovery found (their sources were valid when stored; one that no longer
    /// loads is reported and left out).
    pub fn load_libraries(&self, codes: &[Bytes]) {
        let mut functions = locked(&self.functions);
        for code in codes {
            if let Err(e) = functions.load(code.clone(), true) {
                tracing::error!("persistence: a stored Lua library no longer loads and is dropped: {e}");
            }
        }
    }
}

impl Scripts {
    fn new(memory_limit: usize, monitor: Arc<Monitor>) -> Scripts {
        Scripts { vm: Vm::new(memory_limit, monitor, None).expect("the scripts VM starts"), cache: HashMap::default() }
    }

    /// Compiles `body` into the cache (EVAL, SCRIPT LOAD) unless it is there.
    fn add(&mut self, sha: [u8; 40], body: &[u8]) -> Result<(), CommandError> {
        if self.cache.contains_key(&sha) {
            return Ok(());
        }
        let (flags, code_at) = shebang(body)?;
        let func = self
            .vm
            .compile(&body[code_at..], "@user_script")
            .map_err(|e| CommandError::new(format!("ERR Error compiling script (new function): {e}")))?;
        self.cache.insert(sha, Script { func, flags, fast: false });
        Ok(())
    }
}

/// SHA1 as lowercase hex.
pub fn sha1_hex(data: &[u8]) -> [u8; 40] {
    let digest = sha1_smol::Sha1::from(data).digest().bytes();
    let mut out = [0u8; 40];
    for (i, b) in digest.iter().enumerate() {
        out[i * 2] = b"0123456789abcdef"[usize::from(b >> 4)];
        out[i * 2 + 1] = b"0123456789abcdef"[usize::from(b & 15)];
    }
    out
}

/// The script's flags from a `#!lua flags=...` first line (none: a legacy script), and where the
/// code starts: at the first line's end, so line numbers stay the user's.
fn shebang(body: &[u8]) -> Result<(Flags, usize), CommandError> {
    if !body.starts_with(b"#!") {
        return Ok((Flags { legacy: true, ..Flags::default() }, 0));
    }
    let Some(end) = body.iter().position(|b| *b == b'\n') else {
        return Err(CommandError::fixed("ERR Invalid script shebang"));
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split_whitespace();
    let engine = parts.next().unwrap_or("");
    if engine != "#!lua" {
        return Err(CommandError::new(format!("ERR Unexpected engine in script shebang: {engine}")));
    }
    let mut flags = Flags::default();
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(CommandError::new(format!("ERR Unknown lua shebang option: {part}")));
        };
        for flag in list.split(',').filter(|f| !f.is_empty()) {
            if !flags.set(flag.as_bytes()) {
                return Err(CommandError::new(format!("ERR Unexpected flag in script shebang: {flag}")));
            }
        }
    }
    Ok((flags, end))
}

const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";
const RO_WITH_WRITE_FLAG: &str = "ERR Can not execute a script with write flag using *_ro command.";

/// The script thread: runs each call it is handed with a `Cx` of its own (the state lock from the
/// script's start to its end) and sends the reply back to the waiting connection.
fn start_thread(broker: std::sync::Weak<crate::broker::Broker>) -> std::sync::mpsc::Sender<Job> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let spawned = std::thread::Builder::new().name("herald-script".into()).spawn(move || {
        while let Ok(mut job) = rx.recv() {
            let Some(broker) = broker.upgrade() else { break };
            let started = crate::ticks::now();
            let reply = {
                let mut cx = Cx::new(&broker, &mut job.session);
                invoke(job.cmd, &mut cx)
            };
            let (found, request) = &job.request;
            super::observe::offloaded(*found, request, crate::ticks::nanos_since(started), &job.session, &broker);
            let _ = job.reply.send(reply);
        }
    });
    if let Err(e) = spawned {
        tracing::error!("cannot start the script thread: {e}");
    }
    tx
}

/// Runs a script call on this thread.
fn invoke(cmd: ScriptCommand, cx: &mut Cx<'_>) -> Reply {
    match cmd {
        ScriptCommand::Eval(inv) => eval(inv, false, cx),
        ScriptCommand::EvalSha(inv) => eval(inv, true, cx),
        ScriptCommand::FCall(inv) => fcall(inv, cx),
        _ => unreachable!("only calls are invoked"),
    }
}

pub fn execute(cmd: ScriptCommand, cx: &mut Cx<'_>) -> Outcome {
    let scripting = &cx.broker.scripting;
    match cmd {
        ScriptCommand::Eval(_) | ScriptCommand::EvalSha(_) | ScriptCommand::FCall(_) => match cx.offload.take() {
            Some(request) => scripting.offload(cmd, request, cx),
            None => invoke(cmd, cx).into(),
        },
        ScriptCommand::ScriptLoad(body) => {
            let sha = sha1_hex(&body);
            match locked(&scripting.eval).add(sha, &body) {
                Ok(()) => Reply::bulk(Bytes::copy_from_slice(&sha)).into(),
                Err(e) => e.into(),
            }
        }
        ScriptCommand::ScriptExists(shas) => {
            let scripts = locked(&scripting.eval);
            let known = |sha: &Bytes| sha_key(sha).is_some_and(|k| scripts.cache.contains_key(&k));
            Reply::Array(shas.iter().map(|s| Reply::Int(i64::from(known(s)))).collect()).into()
        }
        ScriptCommand::ScriptFlush => {
            *locked(&scripting.eval) = Scripts::new(scripting.memory_limit, scripting.monitor.clone());
            Reply::ok().into()
        }
        ScriptCommand::ScriptKill => scripting.monitor.kill(true).map(|()| Reply::ok()).into(),
        ScriptCommand::FunctionKill => scripting.monitor.kill(false).map(|()| Reply::ok()).into(),
        ScriptCommand::ScriptHelp => help(SCRIPT_HELP).into(),
        ScriptCommand::FunctionHelp => help(FUNCTION_HELP).into(),
        ScriptCommand::FunctionStats => function_stats(scripting).into(),
        other => library_command(other, cx).into(),
    }
}

/// The FUNCTION commands that change or list libraries. A change is stored (and logged) as the
/// whole set of library sources in the state, under the state lock taken first (lock order).
fn library_command(cmd: ScriptCommand, cx: &mut Cx<'_>) -> Result<Reply, CommandError> {
    let broker = cx.broker;
    let state = cx.state();
    let mut functions = locked(&broker.scripting.functions);
    let reply = match cmd {
        ScriptCommand::FunctionLoad { code, replace } => Reply::bulk(functions.load(code, replace)?),
        ScriptCommand::FunctionDelete(name) => {
            if !functions.remove(&String::from_utf8_lossy(&name)) {
                return Err(CommandError::fixed("ERR Library not found"));
            }
            Reply::ok()
        }
        ScriptCommand::FunctionFlush => {
            functions.flush();
            Reply::ok()
        }
        ScriptCommand::FunctionList { pattern, with_code } => return Ok(function_list(&functions, pattern.as_deref(), with_code)),
        ScriptCommand::FunctionDump => return Ok(Reply::bulk(dump::encode(&functions.codes()))),
        ScriptCommand::FunctionRestore { payload, policy } => {
            let codes = dump::decode(&payload).ok_or(CommandError::fixed("ERR DUMP payload version or checksum are wrong"))?;
            restore(&mut functions, codes, policy)?;
            Reply::ok()
        }
        _ => unreachable!("handled by execute"),
    };
    state.set_libraries(functions.codes());
    Ok(reply)
}

/// FUNCTION RESTORE: all of the payload's libraries or none.
fn restore(functions: &mut Functions, codes: Vec<Bytes>, policy: RestorePolicy) -> Result<(), CommandError> {
    let before = functions.codes();
    if policy == RestorePolicy::Flush {
        functions.flush();
    }
    for code in codes {
        if let Err(e) = functions.load(code, policy == RestorePolicy::Replace) {
            functions.flush();
            for code in before {
                let _ = functions.load(code, true);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn function_list(functions: &Functions, pattern: Option<&[u8]>, with_code: bool) -> Reply {
    let mut libs = Vec::new();
    for lib in functions.libraries.values() {
        if let Some(p) = pattern
            && !crate::engine::glob::glob_match(p, lib.name.as_bytes())
        {
            continue;
        }
        let funcs = lib
            .functions
            .iter()
            .map(|(name, f)| {
                Reply::fields(vec![
                    ("name", Reply::bulk(name.clone())),
                    ("description", Reply::bulk_or_nil(f.description.clone())),
                    ("flags", Reply::Set(f.flags.names().into_iter().map(Reply::text).collect())),
                ])
            })
            .collect();
        let mut fields =
            vec![("library_name", Reply::bulk(lib.name.clone())), ("engine", Reply::text("LUA")), ("functions", Reply::Array(funcs))];
        if with_code {
            fields.push(("library_code", Reply::Bulk(lib.code.clone())));
        }
        libs.push(Reply::fields(fields));
    }
    Reply::Array(libs)
}

fn function_stats(scripting: &Scripting) -> Result<Reply, CommandError> {
    let running = match scripting.monitor.running() {
        Some(cur) if cur.eval => {
            return Err(CommandError::fixed("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."));
        }
        Some(cur) => Reply::fields(vec![
            ("name", Reply::bulk(cur.name.clone())),
            ("command", Reply::bulks(cur.command.clone())),
            ("duration_ms", Reply::Int(cur.started.elapsed().as_millis() as i64)),
        ]),
        None => Reply::Nil,
    };
    let (libraries, functions) = {
        let f = locked(&scripting.functions);
        (f.libraries.len() as i64, f.function_count() as i64)
    };
    let lua = Reply::fields(vec![("libraries_count", Reply::Int(libraries)), ("functions_count", Reply::Int(functions))]);
    Ok(Reply::fields(vec![("running_script", running), ("engines", Reply::Map(vec![(Reply::text("LUA"), lua)]))]))
}

/// A SHA1 argument as a cache key (case-insensitive, as Redis compares them).
fn sha_key(sha: &[u8]) -> Option<[u8; 40]> {
    let key: [u8; 40] = sha.try_into().ok()?;
    Some(key.map(|b| b.to_ascii_lowercase()))
}

fn eval(inv: Invocation, by_sha: bool, cx: &mut Cx<'_>) -> Reply {
    // The state lock first (lock order), and held until the command ends: the script is atomic.
    cx.state();
    let broker = cx.broker;
    let mut scripts = locked(&broker.scripting.eval);
    let sha = if by_sha {
        match sha_key(&inv.target) {
            Some(k) if scripts.cache.contains_key(&k) => k,
            _ => return Reply::Error(CommandError::fixed(NOSCRIPT)),
        }
    } else {
        let sha = sha1_hex(&inv.target);
        if let Err(e) = scripts.add(sha, &inv.target) {
            return Reply::Error(e);
        }
        sha
    };
    let script = &scripts.cache[&sha];
    if inv.read_only && !script.flags.legacy && !script.flags.no_writes {
        return Reply::Error(CommandError::fixed(RO_WITH_WRITE_FLAG));
    }
    let name = std::str::from_utf8(&sha).expect("hex");
    let started = std::time::Instant::now();
    // No name: FUNCTION STATS, which shows it, answers BUSY while a script (not a function) runs.
    let current = Current { started, eval: true, name: String::new(), command: Vec::new() };
    let reply = run(&scripts.vm, &script.func, &inv, false, name, inv.read_only || script.flags.no_writes, current, cx);
    let fast = started.elapsed() < INLINE_BUDGET;
    if script.fast != fast
        && let Some(s) = scripts.cache.get_mut(&sha)
    {
        s.fast = fast;
    }
    reply
}

fn fcall(inv: Invocation, cx: &mut Cx<'_>) -> Reply {
    cx.state();
    let broker = cx.broker;
    let functions = locked(&broker.scripting.functions);
    let Some(f) = functions.function(&inv.target) else {
        return Reply::Error(CommandError::fixed("ERR Function not found"));
    };
    if let Some(e) = inv.numkeys_error {
        return Reply::Error(e);
    }
    if inv.read_only && !f.flags.no_writes {
        return Reply::Error(CommandError::fixed(RO_WITH_WRITE_FLAG));
    }
    let name = String::from_utf8_lossy(&inv.target).into_owned();
    let verb = if inv.read_only { "fcall_ro" } else { "fcall" };
    let mut command = vec![Bytes::from_static(verb.as_bytes()), inv.target.clone(), Bytes::from(inv.keys.len().to_string())];
    command.extend(inv.keys.iter().cloned());
    command.extend(inv.args.iter().cloned());
    let started = std::time::Instant::now();
    let current = Current { started, eval: false, name: name.clone(), command };
    let reply = run(&functions.vm, &f.func, &inv, true, &name, inv.read_only || f.flags.no_writes, current, cx);
    f.fast.set(started.elapsed() < INLINE_BUDGET);
    reply
}

/// Ends the monitor's record of the script however the call ends.
struct Finish<'m>(&'m Monitor);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.finish();
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    vm: &Vm,
    f: &Function,
    inv: &Invocation,
    as_function: bool,
    name: &str,
    read_only: bool,
    current: Current,
    cx: &mut Cx<'_>,
) -> Reply {
    let monitor = &cx.broker.scripting.monitor;
    monitor.start(current);
    let _finish = Finish(monitor);
    let db = cx.db();
    let (in_exec, in_script) = (cx.in_exec, cx.in_script);
    cx.in_exec = true;
    cx.in_script = true;
    let mut running = Running { cx, read_only, resp: 2, call: super::from_script, panic: None };
    let reply = vm.call(f, &inv.keys, &inv.args, as_function, name, &mut running);
    cx.in_exec = in_exec;
    cx.in_script = in_script;
    // SELECT inside a script changes the script's database only (Redis 7).
    if cx.db() != db {
        cx.session.set_db(db);
    }
    reply
}

fn help(lines: &[&'static str]) -> Reply {
    Reply::Array(lines.iter().map(|l| Reply::Status(std::borrow::Cow::Borrowed(l))).collect())
}

const SCRIPT_HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];

const FUNCTION_HELP: &[&str] = &[
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
];

/// FUNCTION DUMP's payload: a version byte, each library's source length-prefixed, and a CRC32 of
/// all before it (Herald's own format: Redis's is an RDB fragment).
mod dump {
    use bytes::Bytes;

    const VERSION: u8 = 1;

    pub fn encode(codes: &[Bytes]) -> Vec<u8> {
        let mut out = vec![VERSION];
        for code in codes {
            out.extend_from_slice(&(code.len() as u32).to_le_bytes());
            out.extend_from_slice(code);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(payload: &[u8]) -> Option<Vec<Bytes>> {
        let (body, crc) = payload.split_at_checked(payload.len().checked_sub(4)?)?;
        if body.first() != Some(&VERSION) || crc32fast::hash(body).to_le_bytes() != crc {
            return None;
        }
        let mut rest = &body[1..];
        let mut codes = Vec::new();
        while !rest.is_empty() {
            let (len, tail) = rest.split_at_checked(4)?;
            let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
            let (code, tail) = tail.split_at_checked(len)?;
            codes.push(Bytes::copy_from_slice(code));
            rest = tail;
        }
        Some(codes)
    }
}
