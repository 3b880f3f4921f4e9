//! `redis.call` and `redis.pcall` as Lua C functions, as Redis has them: the arguments are read off
//! the Lua stack, the command runs through dispatch ([`super::Running::call`]) and its reply is pushed
//! back with the C API (`redisProtocolToLuaType`).
//!
//! WHY raw C functions and not mlua closures: a script's `redis.call` is most of its cost, and mlua's
//! callback machinery (a reference per argument, `Variadic<Value>`, a protected push per string, the
//! trampoline that raised the error table) cost more instructions per EVALSHA than the command itself
//! (docs/benchmarks.md, EVALSHA).
//!
//! Lua reports errors (out of memory, `lua_error`) with `longjmp`, which skips Rust destructors. So
//! no frame here holds a value with a destructor across a Lua call that may raise: the arguments are
//! read with calls that never raise, and the reply is held in a `ManuallyDrop` while it is pushed
//! (an error then leaks it instead of skipping its destructor).

use std::cell::Cell;
use std::ffi::{c_char, c_int};
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::Bytes;
use herald_protocol::number::format_double;
use herald_protocol::{CommandError, Reply, Request};
use mlua::ffi;

use super::convert;
use super::vm::with_running;

/// What a call produced, before it is pushed.
enum Answer {
    Reply(Reply, u8),
    /// An error of the call itself (bad arguments), as Redis words it.
    Fail(&'static str),
    /// The command panicked: the panic is kept in [`super::Running`] and resumed once the script's
    /// Lua call has returned; the script is ended with an error.
    Panicked,
}

/// `redis.call`: the command's reply, or its error table raised.
pub unsafe extern "C-unwind" fn redis_call(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with a valid state (see `call`).
    unsafe { call(state, true) }
}

/// `redis.pcall`: the command's reply, or its error table returned.
pub unsafe extern "C-unwind" fn redis_pcall(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as `redis_call`.
    unsafe { call(state, false) }
}

/// Runs the command the stack names and leaves one value: its reply, or an error table (raised when
/// `raise`). Nothing with a destructor lives in this frame (`answer` is `ManuallyDrop`).
unsafe fn call(state: *mut ffi::lua_State, raise: bool) -> c_int {
    // SAFETY: `state` is the calling Lua state; every push below has the room `lua_checkstack` made.
    unsafe {
        let mut answer = ManuallyDrop::new(run(state));
        if ffi::lua_checkstack(state, 4) == 0 {
            ManuallyDrop::drop(&mut answer);
            return ffi::luaL_error(state, c"reached lua stack limit".as_ptr());
        }
        let failed = match &*answer {
            Answer::Reply(Reply::Error(e), _) => {
                push_error(state, e);
                true
            }
            Answer::Reply(reply, resp) => {
                push_reply(state, reply, *resp);
                false
            }
            Answer::Fail(msg) => {
                push_error_text(state, msg.as_bytes());
                true
            }
            Answer::Panicked => {
                ffi::lua_pushlstring(state, c"ERR the command panicked".as_ptr(), 24);
                ffi::lua_error(state)
            }
        };
        ManuallyDrop::drop(&mut answer);
        if failed && raise {
            ffi::lua_error(state);
        }
        1
    }
}

thread_local! {
    /// The argument list of the last call, emptied, for the next (one allocation fewer per call).
    static PARTS: Cell<Vec<Bytes>> = const { Cell::new(Vec::new()) };
}

/// The arguments as a request, the command run, its reply. Calls no Lua function that may raise.
fn run(state: *mut ffi::lua_State) -> Answer {
    let mut parts = PARTS.take();
    parts.clear();
    let answer = match arguments(state, &mut parts) {
        Err(msg) => Answer::Fail(msg),
        Ok(()) => {
            let request = Request::new(parts);
            let answer = with_running(|run| {
                let resp = run.resp;
                match catch_unwind(AssertUnwindSafe(|| (run.call)(run, &request))) {
                    Ok(reply) => Answer::Reply(reply, resp),
                    Err(panic) => {
                        run.panic = Some(panic);
                        Answer::Panicked
                    }
                }
            });
            parts = request.into_parts();
            parts.clear();
            answer.unwrap_or(Answer::Fail("redis.call is not available here"))
        }
    };
    PARTS.set(parts);
    answer
}

/// The call's arguments: strings as they are, numbers as Lua prints them ([`convert::number_arg`]).
fn arguments(state: *mut ffi::lua_State, parts: &mut Vec<Bytes>) -> Result<(), &'static str> {
    // SAFETY: reads the arguments of the running C function; `lua_tolstring` is only called on
    // strings (no conversion, no allocation) and `lua_tonumber` on numbers: neither raises.
    unsafe {
        let n = ffi::lua_gettop(state);
        if n == 0 {
            return Err("Please specify at least one argument for this redis lib call");
        }
        parts.reserve(n as usize);
        for i in 1..=n {
            match ffi::lua_type(state, i) {
                ffi::LUA_TSTRING => {
                    let mut len = 0;
                    let ptr = ffi::lua_tolstring(state, i, &mut len);
                    parts.push(Bytes::copy_from_slice(std::slice::from_raw_parts(ptr.cast::<u8>(), len)));
                }
                ffi::LUA_TNUMBER => parts.push(convert::number_arg(ffi::lua_tonumber(state, i))),
                _ => return Err("Lua redis lib command arguments must be strings or integers"),
            }
        }
        Ok(())
    }
}

unsafe fn push_bytes(state: *mut ffi::lua_State, bytes: &[u8]) {
    // SAFETY: the caller made room for one slot.
    unsafe {
        ffi::lua_pushlstring(state, bytes.as_ptr().cast::<c_char>(), bytes.len());
    }
}

/// `{err = text}` for an error message ([`convert::error_text`]).
unsafe fn push_error_text(state: *mut ffi::lua_State, raw: &[u8]) {
    let text = ManuallyDrop::new(convert::error_text(raw));
    // SAFETY: the caller made room for two slots; `text` leaks if a push raises.
    unsafe {
        ffi::lua_createtable(state, 0, 1);
        push_bytes(state, text.as_bytes());
        ffi::lua_setfield(state, -2, c"err".as_ptr());
        drop(ManuallyDrop::into_inner(text));
    }
}

/// `{err = ...}` for a command's error reply (its text starts with its code).
unsafe fn push_error(state: *mut ffi::lua_State, e: &CommandError) {
    let raw = ManuallyDrop::new(format!("-{}", e.0));
    // SAFETY: as `push_error_text`.
    unsafe {
        push_error_text(state, raw.as_bytes());
        drop(ManuallyDrop::into_inner(raw));
    }
}

/// Pushes `{field = <what push pushes>}`.
unsafe fn push_single(state: *mut ffi::lua_State, field: &std::ffi::CStr, push: impl FnOnce()) {
    // SAFETY: the caller made room for the table and what `push` pushes.
    unsafe {
        ffi::lua_createtable(state, 0, 1);
        push();
        ffi::lua_setfield(state, -2, field.as_ptr());
    }
}

/// Pushes a command's reply as the script sees it (`redisProtocolToLuaType`), in the script's RESP
/// version. Each level of an aggregate makes room for its own slots first.
unsafe fn push_reply(state: *mut ffi::lua_State, reply: &Reply, resp: u8) {
    // SAFETY: the caller made room for 4 slots; aggregates check for 4 more before each element.
    unsafe {
        match reply {
            Reply::Int(i) => ffi::lua_pushnumber(state, *i as ffi::lua_Number),
            Reply::Bulk(b) => push_bytes(state, b),
            Reply::Verbatim(b) if resp == 2 => push_bytes(state, b),
            Reply::Status(s) => push_single(state, c"ok", || push_bytes(state, s.as_bytes())),
            Reply::Error(e) => push_error(state, e),
            Reply::Nil | Reply::NilArray if resp == 2 => ffi::lua_pushboolean(state, 0),
            Reply::Nil | Reply::NilArray => ffi::lua_pushnil(state),
            Reply::Array(items) | Reply::Push(items) => push_array(state, items, resp),
            Reply::Set(items) if resp == 2 => push_array(state, items, resp),
            Reply::Set(items) => push_single(state, c"set", || {
                ffi::lua_createtable(state, 0, items.len() as c_int);
                for item in items {
                    room(state);
                    push_reply(state, item, resp);
                    ffi::lua_pushboolean(state, 1);
                    ffi::lua_rawset(state, -3);
                }
            }),
            Reply::Map(pairs) if resp == 2 => {
                ffi::lua_createtable(state, (pairs.len() * 2) as c_int, 0);
                for (i, (k, v)) in pairs.iter().enumerate() {
                    room(state);
                    push_reply(state, k, resp);
                    ffi::lua_rawseti(state, -2, (2 * i + 1) as ffi::lua_Integer);
                    push_reply(state, v, resp);
                    ffi::lua_rawseti(state, -2, (2 * i + 2) as ffi::lua_Integer);
                }
            }
            Reply::Map(pairs) => push_single(state, c"map", || {
                ffi::lua_createtable(state, 0, pairs.len() as c_int);
                for (k, v) in pairs {
                    room(state);
                    push_reply(state, k, resp);
                    push_reply(state, v, resp);
                    ffi::lua_rawset(state, -3);
                }
            }),
            Reply::Double(d) if resp == 2 => {
                let text = ManuallyDrop::new(format_double(*d));
                push_bytes(state, text.as_bytes());
                drop(ManuallyDrop::into_inner(text));
            }
            Reply::Double(d) => push_single(state, c"double", || ffi::lua_pushnumber(state, *d)),
            Reply::Bool(b) if resp == 2 => ffi::lua_pushnumber(state, f64::from(u8::from(*b))),
            Reply::Bool(b) => ffi::lua_pushboolean(state, c_int::from(*b)),
            Reply::Verbatim(b) => push_single(state, c"verbatim_string", || {
                ffi::lua_createtable(state, 0, 2);
                push_bytes(state, b"txt");
                ffi::lua_setfield(state, -2, c"format".as_ptr());
                push_bytes(state, b);
                ffi::lua_setfield(state, -2, c"string".as_ptr());
            }),
        }
    }
}

unsafe fn push_array(state: *mut ffi::lua_State, items: &[Reply], resp: u8) {
    // SAFETY: as `push_reply`.
    unsafe {
        ffi::lua_createtable(state, items.len() as c_int, 0);
        for (i, item) in items.iter().enumerate() {
            room(state);
            push_reply(state, item, resp);
            ffi::lua_rawseti(state, -2, (i + 1) as ffi::lua_Integer);
        }
    }
}

/// Room for one more level of a nested reply, or the Lua error Redis gives when there is none.
unsafe fn room(state: *mut ffi::lua_State) {
    // SAFETY: `luaL_error` raises from a frame with nothing to drop.
    unsafe {
        if ffi::lua_checkstack(state, 4) == 0 {
            ffi::luaL_error(state, c"reached lua stack limit".as_ptr());
        }
    }
}
