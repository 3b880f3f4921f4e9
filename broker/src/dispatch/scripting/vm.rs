//! One Lua 5.1 state as Redis builds it for scripts: the libraries Redis loads, the `redis` table, the
//! sandbox (`prelude.lua`), the instruction hook that notices slow and killed scripts, and the call
//! of user code under Redis's error handler.
//!
//! `redis.call` reaches dispatch through [`Running`], the call in progress, which the native function
//! finds through a thread-local pointer: the script runs synchronously on the thread that set it, so
//! the pointer is valid for exactly the span of [`Vm::call`].

use std::cell::Cell;
use std::sync::Arc;

use bytes::Bytes;
use herald_protocol::{CommandError, Reply, Request};
use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, Variadic, VmState};

use super::convert::{self, error_table};
use super::monitor::Monitor;
use crate::dispatch::Cx;

/// What a script may do, from its shebang flags and the command that runs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// No shebang: Redis 6 compatibility (may write, no flag checks).
    pub legacy: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
    pub allow_stale: bool,
    pub no_cluster: bool,
    pub allow_cross_slot: bool,
}

impl Flags {
    /// Sets the flag named `name` (shebang `flags=` or `register_function`'s `flags`).
    pub fn set(&mut self, name: &[u8]) -> bool {
        match name {
            b"no-writes" => self.no_writes = true,
            b"allow-oom" => self.allow_oom = true,
            b"allow-stale" => self.allow_stale = true,
            b"no-cluster" => self.no_cluster = true,
            b"allow-cross-slot-keys" => self.allow_cross_slot = true,
            _ => return false,
        }
        true
    }

    /// The names FUNCTION LIST shows.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        for (on, name) in [
            (self.no_writes, "no-writes"),
            (self.allow_oom, "allow-oom"),
            (self.allow_stale, "allow-stale"),
            (self.no_cluster, "no-cluster"),
            (self.allow_cross_slot, "allow-cross-slot-keys"),
        ] {
            if on {
                names.push(name);
            }
        }
        names
    }
}

/// The call in progress: what `redis.call` runs commands against and under which rules.
pub struct Running<'r, 'a> {
    pub cx: &'r mut Cx<'a>,
    /// EVAL_RO / FCALL_RO, or a `no-writes` script: write commands are refused.
    pub read_only: bool,
    /// `redis.setresp`: how command replies are given to the script.
    pub resp: u8,
    /// Runs one command for the script (dispatch's per-command path).
    pub call: fn(&mut Running<'_, '_>, &Request) -> Reply,
    /// A panic of a command the script called (`call.rs`), resumed once the script's Lua call returns.
    pub panic: Option<Box<dyn std::any::Any + Send>>,
}

thread_local! {
    static RUNNING: Cell<*mut ()> = const { Cell::new(std::ptr::null_mut()) };
}

/// Clears the thread's running call when the call ends, however it ends.
struct Current;

impl Current {
    fn set(run: &mut Running<'_, '_>) -> Current {
        RUNNING.with(|r| r.set(run as *mut Running<'_, '_> as *mut ()));
        Current
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        RUNNING.with(|r| r.set(std::ptr::null_mut()));
    }
}

/// The running call, for the native functions. `None` outside a call (while a library loads).
pub(super) fn with_running<R>(f: impl FnOnce(&mut Running<'_, '_>) -> R) -> Option<R> {
    let ptr = RUNNING.with(|r| r.get());
    if ptr.is_null() {
        return None;
    }
    // SAFETY: set by `Vm::call` from a `&mut Running` that outlives the Lua call this native runs
    // inside, on this same thread, and cleared before that borrow ends; natives do not nest.
    let run = unsafe { &mut *(ptr as *mut Running<'static, 'static>) };
    Some(f(run))
}

pub struct Vm {
    pub lua: Lua,
    /// [`entry`] as a C closure over Redis's error handler and the raw globals (where KEYS and ARGV
    /// are set for each call).
    entry: Function,
    /// `run(f)` from the prelude: xpcall under Redis's error handler (a library's load).
    runner: Function,
    /// The functions VM's switch between the load-time and the run-time globals.
    pub set_loading: Option<Function>,
    pub monitor: Arc<Monitor>,
    /// EVAL calls so far: every [`FRESH_EVERY`]th gets new KEYS and ARGV tables (see [`entry`]).
    calls: std::cell::Cell<u32>,
}

// SAFETY: mlua's state is built without its `send` feature (its handles are reference counted without
// atomics and take no lock), which is sound here because every `Vm` lives behind a `Mutex` in
// `Scripting` and all of its handles (functions cached in `Scripts`, tables) stay inside that same
// mutex-guarded value: no two threads ever touch the state or a handle to it at once.
unsafe impl Send for Vm {}

/// How often (VM instructions) the hook checks the time and SCRIPT KILL, as Redis does.
const HOOK_EVERY: u32 = 100_000;

/// EVAL's KEYS and ARGV tables are reused between calls up to this many entries (a bigger call gets
/// tables of its own), and replaced anyway every [`FRESH_EVERY`] calls: a script that grew one and
/// emptied it again leaves a large empty array part that each emptying would walk.
const REUSE_UP_TO: usize = 32;
const FRESH_EVERY: u32 = 1024;

impl Vm {
    /// A fresh state. `functions`: the FUNCTION engine's state, which has `redis.register_function`.
    pub fn new(memory_limit: usize, monitor: Arc<Monitor>, register: Option<NativeFn>) -> mlua::Result<Vm> {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG;
        // SAFETY: the debug library is loaded only for the prelude's error handler, which keeps
        // `debug.getinfo` as an upvalue; the prelude removes `debug` from the globals scripts see.
        let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::new()) };
        super::libs::install(&lua)?;
        let native = lua.create_table()?;
        // SAFETY: `redis_call` / `redis_pcall` keep nothing with a destructor across a Lua call that
        // may raise (see `call.rs`).
        native.raw_set("call", unsafe { lua.create_c_function(super::call::redis_call) }?)?;
        native.raw_set("pcall", unsafe { lua.create_c_function(super::call::redis_pcall) }?)?;
        native.raw_set("error_table", lua.create_function(|lua, msg: mlua::String| error_table(lua, &msg.as_bytes()))?)?;
        native.raw_set("error_message", lua.create_function(|_, v: Value| Ok(error_message(&v)))?)?;
        native.raw_set("version", crate::dispatch::server::REDIS_VERSION)?;
        native.raw_set("version_num", version_num(crate::dispatch::server::REDIS_VERSION))?;
        let raising = lua.create_table()?;
        let natives: [(usize, &str, NativeFn); 5] = [
            (0, "sha1hex", native_sha1hex),
            (1, "log", native_log),
            (2, "setresp", native_setresp),
            (3, "set_repl", native_set_repl),
            (4, "acl_check_cmd", native_acl_check),
        ];
        for (i, name, f) in natives.into_iter().chain(register.map(|f| (5, "register_function", f))) {
            lua.set_named_registry_value(RAISING_KEYS[i].to_str().expect("ascii"), lua.create_function(f)?)?;
            // SAFETY: `TRAMPOLINES[i]` only uses the Lua C API on the stack it is given (see `raising`).
            raising.raw_set(name, unsafe { lua.create_c_function(TRAMPOLINES[i]) }?)?;
        }
        native.raw_set("raising", raising)?;
        let prelude = lua.load(include_str!("prelude.lua")).set_name("=redis").into_function()?;
        let (globals, raw_globals, runner, set_loading): (Table, Table, Function, Option<Function>) =
            prelude.call((native, register.is_some()))?;
        lua.set_globals(globals)?;
        let watch = monitor.clone();
        lua.set_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), move |_, _| match watch.on_hook() {
            true => Err(mlua::Error::runtime("Script killed by user")),
            false => Ok(VmState::Continue),
        })?;
        if memory_limit > 0 {
            lua.set_memory_limit(memory_limit)?;
        }
        let handler: Function = raw_globals.raw_get("__redis__err__handler")?;
        let (keys, argv) = (lua.create_table()?, lua.create_table()?);
        // SAFETY: makes one C closure of the six values `exec_raw` pushed; `entry` only uses the C API
        // on the stack it is given (see there).
        let entry: Function = unsafe {
            lua.exec_raw((handler, raw_globals, "KEYS", "ARGV", keys, argv), |state| mlua::ffi::lua_pushcclosure(state, entry, 6))
        }?;
        Ok(Vm { lua, entry, runner, set_loading, monitor, calls: std::cell::Cell::new(0) })
    }

    /// Compiles a script body (chunk name `@user_script` or `@user_function`, as Redis names them).
    pub fn compile(&self, body: &[u8], chunk: &str) -> Result<Function, String> {
        self.lua.load(body).set_name(chunk).into_function().map_err(|e| match e {
            mlua::Error::SyntaxError { message, .. } => message,
            other => other.to_string(),
        })
    }

    /// Runs `f` with KEYS and ARGV set (EVAL) or passed as arguments (FCALL): the script's reply, or
    /// Redis's error (`... script: NAME, on @user_script:LINE.`). One protected call of [`entry`]
    /// through the C API, as Redis calls a script: mlua's `Function::call` and `exec_raw` each
    /// allocate C closures per call (Lua 5.1 has no light C functions) and wrap every value.
    pub fn call(&self, f: &Function, keys: &[Bytes], args: &[Bytes], as_function: bool, name: &str, run: &mut Running<'_, '_>) -> Reply {
        let fresh = !as_function && {
            let n = self.calls.get().wrapping_add(1);
            self.calls.set(n);
            n.is_multiple_of(FRESH_EVERY)
        };
        let call = Call { keys, args, as_function, fresh };
        let result = {
            let _current = Current::set(run);
            self.lua.exec_raw_lua(|raw| {
                use mlua::ffi;
                // SAFETY: pushes (no allocation: references already held and a light userdata) within
                // the room checked, one protected call, and the stack put back as it was; `call`
                // outlives the protected call that reads it.
                unsafe {
                    let state = raw.state();
                    let top = ffi::lua_gettop(state);
                    if ffi::lua_checkstack(state, 3) == 0 {
                        return Err("stack overflow".to_owned());
                    }
                    raw.push(&self.entry).map_err(|e| root_cause(&e))?;
                    raw.push(f).map_err(|e| root_cause(&e))?;
                    ffi::lua_pushlightuserdata(state, (&call as *const Call<'_>).cast_mut().cast());
                    let result = if ffi::lua_pcall(state, 2, 2, 0) == ffi::LUA_OK {
                        let value = raw.pop_value();
                        (ffi::lua_toboolean(state, -1) != 0, value)
                    } else {
                        (false, raw.pop_value())
                    };
                    ffi::lua_settop(state, top);
                    Ok(result)
                }
            })
        };
        if let Some(panic) = run.panic.take() {
            std::panic::resume_unwind(panic);
        }
        match result {
            Ok((true, value)) => convert::to_reply(&value, run.resp),
            Ok((false, Value::Table(err))) => self.run_error(&err, name),
            Ok((false, other)) => Reply::Error(CommandError::new(format!("ERR Error running script {name}, {:.100}", display(&other)))),
            Err(e) => Reply::Error(CommandError::new(format!("ERR Error running script {name}, {e:.100}"))),
        }
    }

    /// The error reply for a script that raised `err` (a table the error handler built).
    fn run_error(&self, err: &Table, name: &str) -> Reply {
        let mut msg = match err.raw_get::<Value>("err") {
            Ok(Value::String(s)) => s.to_string_lossy(),
            _ => "ERR unknown error".to_owned(),
        };
        if self.monitor.take_killed() {
            msg = format!("ERR Script killed by user with {}...", self.monitor.kill_command());
        }
        if let (Ok(Value::String(source)), Ok(line)) = (err.raw_get::<Value>("source"), err.raw_get::<Value>("line"))
            && let Some(line) = as_int(&line)
        {
            msg = format!("{msg} script: {name}, on {}:{line}.", source.to_string_lossy());
        }
        convert::error_reply(msg.as_bytes())
    }

    /// Runs `f` with no arguments under the error handler (a library's load): the error's message.
    pub fn run_plain(&self, f: &Function) -> Result<(), String> {
        match self.runner.call::<(bool, Value)>(f) {
            Ok((true, _)) => Ok(()),
            Ok((false, Value::Table(err))) => Err(match err.raw_get::<Value>("err") {
                Ok(Value::String(s)) => s.to_string_lossy(),
                _ => "ERR unknown error".to_owned(),
            }),
            Ok((false, other)) => Err(display(&other)),
            Err(e) => Err(root_cause(&e)),
        }
    }
}

/// What [`entry`] is handed, as a light userdata: the call's KEYS and ARGV.
struct Call<'a> {
    keys: &'a [Bytes],
    args: &'a [Bytes],
    /// FCALL: KEYS and ARGV are the function's arguments instead of globals.
    as_function: bool,
    /// EVAL: replace the reused KEYS and ARGV tables by new ones (see [`FRESH_EVERY`]).
    fresh: bool,
}

/// `entry(f, call)`, a C closure over (Redis's error handler, the raw globals, the strings "KEYS"
/// and "ARGV", kept to spare hashing them per call, and EVAL's KEYS and ARGV tables): fills KEYS and
/// ARGV (set as globals for EVAL, passed as arguments for FCALL), then calls `f` under the error
/// handler as Redis's `luaCallFunction` does, and returns `true` and its first result, or `false` and
/// the error (the handler's table, or Lua's message for a memory error). Nothing in this frame has a
/// destructor, so a memory error's longjmp out of the Lua API is sound here.
///
/// EVAL reuses its two tables, emptied of whatever the last script left in them (entries under any
/// key, a metatable), instead of making two per call as Redis does: allocating, filling and later
/// collecting them was a tenth of a short script's cost. No script can keep a reference to them for
/// the next one (globals and library tables are read-only, `prelude.lua`), so each call sees exactly
/// its own arguments. FCALL's are new tables: a library's functions may keep what they are given.
unsafe extern "C-unwind" fn entry(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    /// Pushes a new table holding `items` as strings at 1..=n.
    unsafe fn push_array(state: *mut ffi::lua_State, items: &[Bytes]) {
        // SAFETY: at most 2 slots (the table, one string) within a C function's LUA_MINSTACK.
        unsafe {
            ffi::lua_createtable(state, items.len() as std::ffi::c_int, 0);
            fill(state, items);
        }
    }
    /// Sets `items` as strings at 1..=n of the table on top of the stack.
    unsafe fn fill(state: *mut ffi::lua_State, items: &[Bytes]) {
        // SAFETY: one slot above the table, within a C function's LUA_MINSTACK.
        unsafe {
            for (i, item) in items.iter().enumerate() {
                ffi::lua_pushlstring(state, item.as_ptr().cast(), item.len());
                ffi::lua_rawseti(state, -2, (i + 1) as ffi::lua_Integer);
            }
        }
    }
    /// Pushes the reused table in upvalue `slot` holding `items` at 1..=n and nothing else, or a new
    /// one (kept for the next call when it is small enough).
    unsafe fn push_reused(state: *mut ffi::lua_State, slot: std::ffi::c_int, items: &[Bytes], fresh: bool) {
        // SAFETY: at most 4 slots above the caller's within a C function's LUA_MINSTACK; `lua_next`
        // walks from nil, so it never meets a missing key, and clearing fields while walking is
        // allowed.
        unsafe {
            let kept = ffi::lua_upvalueindex(slot);
            let mut dirty = fresh || items.len() > REUSE_UP_TO;
            if !dirty && ffi::lua_getmetatable(state, kept) != 0 {
                ffi::lua_pop(state, 1);
                dirty = true;
            }
            if !dirty {
                let mut left = 0;
                ffi::lua_pushnil(state);
                while ffi::lua_next(state, kept) != 0 {
                    ffi::lua_pop(state, 1);
                    ffi::lua_pushvalue(state, -1);
                    ffi::lua_pushnil(state);
                    ffi::lua_rawset(state, kept);
                    left += 1;
                }
                dirty = left > REUSE_UP_TO;
            }
            if dirty {
                push_array(state, items);
                if items.len() <= REUSE_UP_TO {
                    ffi::lua_pushvalue(state, -1);
                    ffi::lua_replace(state, kept);
                }
            } else {
                ffi::lua_pushvalue(state, kept);
                fill(state, items);
            }
        }
    }
    // SAFETY: called by `Vm::call` with (f, a light userdata of a `Call` that outlives this call);
    // at most 8 slots are used, within the LUA_MINSTACK (20) a C function is given.
    unsafe {
        let call = &*(ffi::lua_touserdata(state, 2) as *const Call<'_>);
        ffi::lua_settop(state, 1);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_pushvalue(state, 1);
        let nargs = if call.as_function {
            push_array(state, call.keys);
            push_array(state, call.args);
            2
        } else {
            let globals = ffi::lua_upvalueindex(2);
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(3));
            push_reused(state, 5, call.keys, call.fresh);
            ffi::lua_rawset(state, globals);
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(4));
            push_reused(state, 6, call.args, call.fresh);
            ffi::lua_rawset(state, globals);
            0
        };
        let status = ffi::lua_pcall(state, nargs, 1, 2);
        ffi::lua_pushboolean(state, std::ffi::c_int::from(status == ffi::LUA_OK));
        ffi::lua_insert(state, -2);
        2
    }
}

/// Registry names of the natives the raising trampolines call.
const RAISING_KEYS: [&std::ffi::CStr; 6] =
    [c"herald.sha1hex", c"herald.log", c"herald.setresp", c"herald.set_repl", c"herald.acl_check_cmd", c"herald.register_function"];

const TRAMPOLINES: [mlua::ffi::lua_CFunction; 6] = [raising::<0>, raising::<1>, raising::<2>, raising::<3>, raising::<4>, raising::<5>];

/// A C function that calls the native registered under `RAISING_KEYS[K]` with its arguments and
/// raises the error table it answers, or returns its result. Being a C function (as Redis's are),
/// a script's `return redis.call(...)` is not a tail call that would hide the script's line from the
/// error handler. Nothing with a destructor lives in this frame, so `lua_error`'s longjmp is sound.
unsafe extern "C-unwind" fn raising<const K: usize>(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    // SAFETY: a C function called by Lua with a valid state; the stack has the call's arguments, and
    // room for the two extra slots is checked.
    unsafe {
        let n = ffi::lua_gettop(state);
        if ffi::lua_checkstack(state, 3) == 0 {
            return ffi::luaL_error(state, c"stack overflow".as_ptr());
        }
        ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, RAISING_KEYS[K].as_ptr());
        ffi::lua_insert(state, 1);
        ffi::lua_call(state, n, 2);
        if ffi::lua_type(state, -1) != ffi::LUA_TNIL {
            ffi::lua_error(state);
        }
        ffi::lua_settop(state, -2);
        1
    }
}

/// The message of an error a native function raised (mlua's wrapped error), as Lua would show a
/// string error: no "runtime error:" prefix, no traceback.
fn error_message(v: &Value) -> String {
    match v {
        Value::Error(e) => root_cause(e),
        Value::String(s) => s.to_string_lossy(),
        other => format!("{other:?}"),
    }
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::Number(n) => Some(*n as i64),
        _ => None,
    }
}

fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string_lossy(),
        _ => "execution failure".to_owned(),
    }
}

/// The message of an error that escaped the error handler (out of memory, an error in the handler).
fn root_cause(e: &mlua::Error) -> String {
    match e {
        mlua::Error::MemoryError(_) => "not enough memory".to_owned(),
        mlua::Error::CallbackError { cause, .. } => root_cause(cause),
        mlua::Error::BadArgument { pos, name, cause, .. } => {
            format!("bad argument #{pos} to '{}' ({})", name.as_deref().unwrap_or("?"), root_cause(cause))
        }
        mlua::Error::RuntimeError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// `7.2.0` as Redis's `REDIS_VERSION_NUM` (0x00MMmmpp).
fn version_num(version: &str) -> i64 {
    version.split('.').take(3).fold(0, |n, part| (n << 8) | part.parse::<i64>().unwrap_or(0))
}

/// A native function's answer: (result, nil) or (nil, error table), raised by the prelude's wrapper.
pub type Native = mlua::Result<(Value, Value)>;

/// A native function as the VM registers it.
pub type NativeFn = fn(&Lua, Variadic<Value>) -> Native;

fn fail(lua: &Lua, msg: &str) -> Native {
    Ok((Value::Nil, Value::Table(error_table(lua, msg.as_bytes())?)))
}

fn native_sha1hex(lua: &Lua, args: Variadic<Value>) -> Native {
    let [arg] = &args[..] else { return fail(lua, "wrong number of arguments") };
    let bytes = convert::arg_bytes(arg).unwrap_or_default();
    Ok((Value::String(lua.create_string(super::sha1_hex(&bytes))?), Value::Nil))
}

fn native_log(lua: &Lua, args: Variadic<Value>) -> Native {
    if args.len() < 2 {
        return fail(lua, "redis.log() requires two arguments or more.");
    }
    let Some(level) = as_int(&args[0]) else { return fail(lua, "First argument must be a number (log level).") };
    if !(0..=3).contains(&level) {
        return fail(lua, "Invalid debug level.");
    }
    let text: Vec<String> =
        args[1..].iter().map(|v| convert::arg_bytes(v).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()).collect();
    let text = text.join(" ");
    match level {
        3 => tracing::warn!(target: "herald::script", "{text}"),
        2 => tracing::info!(target: "herald::script", "{text}"),
        1 => tracing::debug!(target: "herald::script", "{text}"),
        _ => tracing::trace!(target: "herald::script", "{text}"),
    }
    Ok((Value::Nil, Value::Nil))
}

fn native_setresp(lua: &Lua, args: Variadic<Value>) -> Native {
    let [arg] = &args[..] else { return fail(lua, "redis.setresp() requires one argument.") };
    let resp = as_int(arg).unwrap_or(0);
    if resp != 2 && resp != 3 {
        return fail(lua, "RESP version must be 2 or 3.");
    }
    with_running(|run| run.resp = resp as u8);
    Ok((Value::Nil, Value::Nil))
}

fn native_set_repl(lua: &Lua, args: Variadic<Value>) -> Native {
    let [arg] = &args[..] else { return fail(lua, "redis.set_repl() requires one argument.") };
    match as_int(arg) {
        Some(0..=3) => Ok((Value::Nil, Value::Nil)),
        _ => fail(lua, "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE."),
    }
}

fn native_acl_check(lua: &Lua, args: Variadic<Value>) -> Native {
    let mut parts = Vec::with_capacity(args.len());
    for arg in args.iter() {
        match convert::arg_bytes(arg) {
            Some(b) => parts.push(b),
            None => return fail(lua, "Lua redis lib command arguments must be strings or integers"),
        }
    }
    if parts.is_empty() || herald_protocol::command::lookup(&Request::new(parts)).is_err() {
        return fail(lua, "Invalid command passed to redis.acl_check_cmd()");
    }
    Ok((Value::Boolean(true), Value::Nil))
}
