//! Redis 7.0 functions: libraries loaded with FUNCTION LOAD (`#!lua name=lib`), whose code registers
//! functions with `redis.register_function`, called by FCALL. Libraries keep their source, which is
//! what FUNCTION DUMP / RESTORE and persistence carry: loading the source again rebuilds them.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use herald_protocol::CommandError;
use mlua::{Function, Lua, Table, Value, Variadic};

use super::monitor::Monitor;
use super::vm::{Flags, Vm};

pub struct Registered {
    pub func: Function,
    pub flags: Flags,
    pub description: Option<String>,
    /// Its last run was quick enough to run the next on the caller's thread (see `INLINE_BUDGET`).
    pub fast: std::cell::Cell<bool>,
}

pub struct Library {
    pub name: String,
    pub code: Bytes,
    pub functions: BTreeMap<String, Registered>,
}

pub struct Functions {
    pub vm: Vm,
    pub libraries: BTreeMap<String, Library>,
    /// Function name → library name.
    index: BTreeMap<String, String>,
}

// SAFETY: as for `Vm`: the registered functions are handles into the VM beside them, and the whole
// value is only reached through its mutex in `Scripting`.
unsafe impl Send for Functions {}

/// What `redis.register_function` collects while a library loads (the VM's app data).
#[derive(Default)]
struct Loading {
    functions: Vec<(String, Registered)>,
}

fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

fn err(msg: impl Into<String>) -> CommandError {
    CommandError::new(format!("ERR {}", msg.into()))
}

impl Functions {
    pub fn new(memory_limit: usize, monitor: Arc<Monitor>) -> mlua::Result<Functions> {
        let vm = Vm::new(memory_limit, monitor, Some(register_function))?;
        Ok(Functions { vm, libraries: BTreeMap::new(), index: BTreeMap::new() })
    }

    pub fn function(&self, name: &[u8]) -> Option<&Registered> {
        let name = std::str::from_utf8(name).ok()?;
        let lib = self.index.get(name)?;
        self.libraries.get(lib)?.functions.get(name)
    }

    pub fn function_count(&self) -> usize {
        self.index.len()
    }

    /// FUNCTION LOAD: compiles and runs the library's code, then adds (or with `replace`, swaps in)
    /// the library. Returns its name.
    pub fn load(&mut self, code: Bytes, replace: bool) -> Result<String, CommandError> {
        let (name, body_at) = metadata(&code)?;
        if self.libraries.contains_key(&name) && !replace {
            return Err(err(format!("Library '{name}' already exists")));
        }
        let functions = self.run_library(&code[body_at..])?;
        for (fname, _) in &functions {
            if let Some(owner) = self.index.get(fname)
                && *owner != name
            {
                return Err(err(format!("Function {fname} already exists")));
            }
        }
        self.remove(&name);
        for (fname, _) in &functions {
            self.index.insert(fname.clone(), name.clone());
        }
        let library = Library { name: name.clone(), code, functions: functions.into_iter().collect() };
        self.libraries.insert(name.clone(), library);
        Ok(name)
    }

    /// Runs a library's code with the load-time globals and returns what it registered.
    fn run_library(&self, body: &[u8]) -> Result<Vec<(String, Registered)>, CommandError> {
        let lua = &self.vm.lua;
        let chunk = self.vm.compile(body, "@user_function").map_err(|e| err(format!("Error compiling function: {e}")))?;
        let set_loading = self.vm.set_loading.as_ref().expect("the functions VM has a loading switch");
        lua.set_app_data(Loading::default());
        let _ = set_loading.call::<()>(true);
        let ran = self.vm.run_plain(&chunk);
        let _ = set_loading.call::<()>(false);
        let loading = lua.remove_app_data::<Loading>().unwrap_or_default();
        if let Err(msg) = ran {
            return Err(err(format!("Error registering functions: {msg}")));
        }
        if loading.functions.is_empty() {
            return Err(err("No functions registered"));
        }
        Ok(loading.functions)
    }

    /// Removes a library and its functions; `false` when there is none of that name.
    pub fn remove(&mut self, name: &str) -> bool {
        let Some(lib) = self.libraries.remove(name) else { return false };
        for fname in lib.functions.keys() {
            self.index.remove(fname);
        }
        true
    }

    pub fn flush(&mut self) {
        self.libraries.clear();
        self.index.clear();
    }

    /// Every library's source, in name order (FUNCTION DUMP, snapshots).
    pub fn codes(&self) -> Vec<Bytes> {
        self.libraries.values().map(|l| l.code.clone()).collect()
    }
}

/// `#!lua name=<lib>` on the first line: the library's name and where its code starts (at the first
/// line's end, so line numbers stay the user's).
fn metadata(code: &[u8]) -> Result<(String, usize), CommandError> {
    if !code.starts_with(b"#!") {
        return Err(err("Missing library metadata"));
    }
    let end = code.iter().position(|b| *b == b'\n').ok_or_else(|| err("Invalid library metadata"))?;
    let line = String::from_utf8_lossy(&code[2..end]);
    let mut parts = line.split_whitespace();
    let engine = parts.next().unwrap_or("");
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(err(format!("Engine '{engine}' not found")));
    }
    let mut name = None;
    for part in parts {
        match part.strip_prefix("name=") {
            Some(_) if name.is_some() => return Err(err("Invalid metadata value, name argument was given multiple times")),
            Some(n) => name = Some(n.to_owned()),
            None => return Err(err(format!("Invalid metadata value given: {part}"))),
        }
    }
    let name = name.ok_or_else(|| err("Library name was not given"))?;
    if !valid_name(name.as_bytes()) {
        return Err(err("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"));
    }
    Ok((name, end))
}

use super::vm::Native;

fn fail(lua: &Lua, msg: &str) -> Native {
    Ok((Value::Nil, Value::Table(super::convert::error_table(lua, msg.as_bytes())?)))
}

/// `redis.register_function(name, callback)` or `redis.register_function{function_name=, callback=,
/// flags=, description=}`, while a library loads.
fn register_function(lua: &Lua, args: Variadic<Value>) -> Native {
    if lua.app_data_ref::<Loading>().is_none() {
        return fail(lua, "redis.register_function can only be called on FUNCTION LOAD command");
    }
    let (name, callback, flags, description) = match &args[..] {
        [Value::Table(t)] => match named_args(t) {
            Ok(parts) => parts,
            Err(msg) => return fail(lua, &msg),
        },
        [name, callback] => (name.clone(), callback.clone(), Flags::default(), None),
        _ => return fail(lua, "wrong number of arguments to redis.register_function"),
    };
    let name = match &name {
        Value::String(s) if valid_name(&s.as_bytes()) => s.to_string_lossy(),
        _ => {
            return fail(
                lua,
                "Function names can only contain letters, numbers, or underscores(_) and must be at least one character long",
            );
        }
    };
    let Value::Function(func) = callback else {
        return fail(lua, "callback argument given to redis.register_function must be a function");
    };
    let mut loading = lua.app_data_mut::<Loading>().expect("checked above");
    if loading.functions.iter().any(|(n, _)| *n == name) {
        drop(loading);
        return fail(lua, "Function already exists in the library");
    }
    loading.functions.push((name, Registered { func, flags, description, fast: std::cell::Cell::new(false) }));
    Ok((Value::Nil, Value::Nil))
}

fn named_args(t: &Table) -> Result<(Value, Value, Flags, Option<String>), String> {
    let (mut name, mut callback, mut flags, mut description) = (Value::Nil, Value::Nil, Flags::default(), None);
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        let Value::String(k) = k else { return Err("named argument key given to redis.register_function is not a string".into()) };
        match &*k.as_bytes() {
            b"function_name" => name = v,
            b"callback" => callback = v,
            b"description" => match v {
                Value::String(d) => description = Some(d.to_string_lossy()),
                _ => return Err("description argument given to redis.register_function must be a string".into()),
            },
            b"flags" => {
                let Value::Table(list) = v else {
                    return Err("flags argument to redis.register_function must be a table representing function flags".into());
                };
                for flag in list.sequence_values::<Value>() {
                    let Ok(Value::String(flag)) = flag else { return Err("unknown flag given".into()) };
                    if !flags.set(&flag.as_bytes()) {
                        return Err("unknown flag given".into());
                    }
                }
            }
            _ => return Err("unknown argument given to redis.register_function".into()),
        }
    }
    if name.is_nil() {
        return Err("redis.register_function must get a function name argument".into());
    }
    if callback.is_nil() {
        return Err("redis.register_function must get a callback argument".into());
    }
    Ok((name, callback, flags, description))
}
