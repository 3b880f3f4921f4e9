//! Scripting commands: EVAL and EVALSHA (and their read-only forms), SCRIPT, FUNCTION and FCALL, with
//! Redis 7.0's syntax and argument errors. What a script does is the broker's business; this file only
//! turns the arguments into a typed [`ScriptCommand`].

use bytes::Bytes;

use super::conn::spec;
use super::flags::*;
use super::{Command, CommandSpec, Group, NO_KEYS};
use crate::error::CommandError;
use crate::request::{Args, is_word};

/// The script or function, its keys and its arguments (`numkeys key [key ...] arg [arg ...]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The script's text (EVAL), its SHA1 (EVALSHA) or the function's name (FCALL).
    pub target: Bytes,
    pub keys: Vec<Bytes>,
    pub args: Vec<Bytes>,
    /// The `_RO` form: the script may not write.
    pub read_only: bool,
    /// FCALL's bad `numkeys`, reported only once the function is found (Redis's order).
    pub numkeys_error: Option<CommandError>,
}

/// SCRIPT FLUSH / FUNCTION FLUSH: `ASYNC` and `SYNC` behave the same here (nothing is freed lazily).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePolicy {
    Append,
    Replace,
    Flush,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ScriptCommand {
    Eval(Invocation),
    EvalSha(Invocation),
    FCall(Invocation),
    ScriptLoad(Bytes),
    ScriptExists(Vec<Bytes>),
    ScriptFlush,
    ScriptKill,
    ScriptHelp,
    FunctionLoad { code: Bytes, replace: bool },
    FunctionList { pattern: Option<Bytes>, with_code: bool },
    FunctionDelete(Bytes),
    FunctionFlush,
    FunctionDump,
    FunctionRestore { payload: Bytes, policy: RestorePolicy },
    FunctionStats,
    FunctionKill,
    FunctionHelp,
}

fn ok(c: ScriptCommand) -> Result<Command, CommandError> {
    Ok(Command::Script(c))
}

/// `target numkeys key... arg...` with Redis's numkeys errors.
fn invocation(mut a: Args, read_only: bool) -> Result<Invocation, CommandError> {
    let target = a.next_bytes()?;
    let numkeys = a.next_i64()?;
    split_keys(a, target, numkeys, read_only)
}

fn split_keys(a: Args, target: Bytes, numkeys: i64, read_only: bool) -> Result<Invocation, CommandError> {
    if numkeys < 0 {
        return Err(CommandError::fixed("ERR Number of keys can't be negative"));
    }
    if numkeys as u64 > a.remaining() as u64 {
        return Err(CommandError::fixed("ERR Number of keys can't be greater than number of args"));
    }
    let mut rest = a.rest();
    let args = rest.split_off(numkeys as usize);
    Ok(Invocation { target, keys: rest, args, read_only, numkeys_error: None })
}

/// FCALL: like EVAL's, but a bad `numkeys` is kept for after the function lookup.
fn fcall(mut a: Args, read_only: bool) -> Result<Command, CommandError> {
    let target = a.next_bytes()?;
    let numkeys = a.next_bytes()?;
    let parsed = crate::number::parse_i64(&numkeys)
        .ok_or(CommandError::fixed("ERR Bad number of keys provided"))
        .and_then(|n| split_keys(a, target.clone(), n, read_only));
    let inv = parsed.unwrap_or_else(|e| Invocation { target, keys: Vec::new(), args: Vec::new(), read_only, numkeys_error: Some(e) });
    ok(ScriptCommand::FCall(inv))
}

/// `[ASYNC | SYNC]`, with the error each command gives for anything else.
fn parse_flush(mut a: Args, done: ScriptCommand, error: &'static str) -> Result<Command, CommandError> {
    if let Some(w) = a.next_opt()
        && !is_word(&w, "ASYNC")
        && !is_word(&w, "SYNC")
    {
        return Err(CommandError::fixed(error));
    }
    a.finish()?;
    ok(done)
}

fn parse_function_load(mut a: Args) -> Result<Command, CommandError> {
    let mut replace = false;
    while a.remaining() > 1 {
        let w = a.next_bytes()?;
        if is_word(&w, "REPLACE") {
            replace = true;
        } else {
            return Err(CommandError::new(format!("ERR Unknown option given: {}", String::from_utf8_lossy(&w))));
        }
    }
    let Some(code) = a.next_opt() else {
        return Err(CommandError::fixed("ERR Function code is missing"));
    };
    ok(ScriptCommand::FunctionLoad { code, replace })
}

fn parse_function_list(mut a: Args) -> Result<Command, CommandError> {
    let (mut pattern, mut with_code) = (None, false);
    while let Some(w) = a.next_opt() {
        if is_word(&w, "WITHCODE") && !with_code {
            with_code = true;
        } else if is_word(&w, "LIBRARYNAME") && pattern.is_none() {
            match a.next_opt() {
                Some(p) => pattern = Some(p),
                None => return Err(CommandError::fixed("ERR library name argument was not given")),
            }
        } else {
            return Err(CommandError::new(format!("ERR Unknown argument {}", String::from_utf8_lossy(&w))));
        }
    }
    ok(ScriptCommand::FunctionList { pattern, with_code })
}

fn parse_function_restore(mut a: Args) -> Result<Command, CommandError> {
    let payload = a.next_bytes()?;
    let policy = match a.next_opt() {
        None => RestorePolicy::Append,
        Some(w) if is_word(&w, "APPEND") => RestorePolicy::Append,
        Some(w) if is_word(&w, "REPLACE") => RestorePolicy::Replace,
        Some(w) if is_word(&w, "FLUSH") => RestorePolicy::Flush,
        Some(_) => return Err(CommandError::fixed("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")),
    };
    if !a.is_empty() {
        return Err(CommandError::syntax());
    }
    ok(ScriptCommand::FunctionRestore { payload, policy })
}

fn container(_: Args) -> Result<Command, CommandError> {
    unreachable!("containers without their own form are rejected by arity before parsing")
}

/// Flags of the commands that run scripts: a script may write, and it decides itself what it touches.
const RUN: u32 = NOSCRIPT | STALE | MOVABLE_KEYS;
const RUN_RO: u32 = NOSCRIPT | STALE | MOVABLE_KEYS | READONLY;

const SCRIPT_SUBS: &[CommandSpec] = &[
    spec!(
        "script|load",
        3,
        NOSCRIPT | STALE,
        NO_KEYS,
        Scripting,
        "2.6.0",
        "Loads a server-side Lua script to the script cache.",
        |mut a| ok(ScriptCommand::ScriptLoad(a.next_bytes()?))
    ),
    spec!(
        "script|exists",
        -3,
        NOSCRIPT,
        NO_KEYS,
        Scripting,
        "2.6.0",
        "Determines whether server-side Lua scripts exist in the script cache.",
        |a| ok(ScriptCommand::ScriptExists(a.rest()))
    ),
    spec!("script|flush", -2, NOSCRIPT, NO_KEYS, Scripting, "2.6.0", "Removes all server-side Lua scripts from the script cache.", |a| {
        parse_flush(a, ScriptCommand::ScriptFlush, "ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    }),
    spec!(
        "script|kill",
        2,
        NOSCRIPT | ALLOW_BUSY,
        NO_KEYS,
        Scripting,
        "2.6.0",
        "Terminates a server-side Lua script during execution.",
        |_| ok(ScriptCommand::ScriptKill)
    ),
    spec!("script|help", 2, LOADING | STALE, NO_KEYS, Scripting, "5.0.0", "Returns helpful text about the different subcommands.", |_| ok(
        ScriptCommand::ScriptHelp
    )),
];

const FUNCTION_SUBS: &[CommandSpec] = &[
    spec!("function|load", -3, WRITE | DENYOOM | NOSCRIPT, NO_KEYS, Scripting, "7.0.0", "Creates a library.", parse_function_load),
    spec!("function|list", -2, NOSCRIPT, NO_KEYS, Scripting, "7.0.0", "Returns information about all libraries.", parse_function_list),
    spec!("function|delete", 3, WRITE | NOSCRIPT, NO_KEYS, Scripting, "7.0.0", "Deletes a library and its functions.", |mut a| ok(
        ScriptCommand::FunctionDelete(a.next_bytes()?)
    )),
    spec!("function|flush", -2, WRITE | NOSCRIPT, NO_KEYS, Scripting, "7.0.0", "Deletes all libraries and functions.", |a| parse_flush(
        a,
        ScriptCommand::FunctionFlush,
        "ERR FUNCTION FLUSH only supports SYNC|ASYNC option"
    )),
    spec!("function|dump", 2, NOSCRIPT, NO_KEYS, Scripting, "7.0.0", "Dumps all libraries into a serialized binary payload.", |_| ok(
        ScriptCommand::FunctionDump
    )),
    spec!(
        "function|restore",
        -3,
        WRITE | DENYOOM | NOSCRIPT,
        NO_KEYS,
        Scripting,
        "7.0.0",
        "Restores all libraries from a payload.",
        parse_function_restore
    ),
    spec!(
        "function|stats",
        2,
        NOSCRIPT | ALLOW_BUSY,
        NO_KEYS,
        Scripting,
        "7.0.0",
        "Returns information about a function during execution.",
        |_| ok(ScriptCommand::FunctionStats)
    ),
    spec!("function|kill", 2, NOSCRIPT | ALLOW_BUSY, NO_KEYS, Scripting, "7.0.0", "Terminates a function during execution.", |_| ok(
        ScriptCommand::FunctionKill
    )),
    spec!(
        "function|help",
        2,
        LOADING | STALE,
        NO_KEYS,
        Scripting,
        "7.0.0",
        "Returns helpful text about the different subcommands.",
        |_| ok(ScriptCommand::FunctionHelp)
    ),
];

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!("eval", -3, RUN, NO_KEYS, Scripting, "2.6.0", "Executes a server-side Lua script.", |a| ok(ScriptCommand::Eval(invocation(
        a, false
    )?))),
    spec!("evalsha", -3, RUN, NO_KEYS, Scripting, "2.6.0", "Executes a server-side Lua script by SHA1 digest.", |a| ok(
        ScriptCommand::EvalSha(invocation(a, false)?)
    )),
    spec!("eval_ro", -3, RUN_RO, NO_KEYS, Scripting, "7.0.0", "Executes a read-only server-side Lua script.", |a| ok(ScriptCommand::Eval(
        invocation(a, true)?
    ))),
    spec!("evalsha_ro", -3, RUN_RO, NO_KEYS, Scripting, "7.0.0", "Executes a read-only server-side Lua script by SHA1 digest.", |a| ok(
        ScriptCommand::EvalSha(invocation(a, true)?)
    )),
    spec!("fcall", -3, RUN, NO_KEYS, Scripting, "7.0.0", "Invokes a function.", |a| fcall(a, false)),
    spec!("fcall_ro", -3, RUN_RO, NO_KEYS, Scripting, "7.0.0", "Invokes a read-only function.", |a| fcall(a, true)),
    CommandSpec {
        subcommands: SCRIPT_SUBS,
        ..spec!("script", -2, 0, NO_KEYS, Scripting, "2.6.0", "A container for Lua scripts management commands.", container)
    },
    CommandSpec {
        subcommands: FUNCTION_SUBS,
        ..spec!("function", -2, 0, NO_KEYS, Scripting, "7.0.0", "A container for function commands.", container)
    },
];
