//! The libraries Redis adds to its Lua: `bit` (LuaBitOp's API), and the ones in their own files
//! (`cjson`, `cmsgpack`, `struct`). Installed as globals before the prelude protects them.

use mlua::{Lua, Value, Variadic};

pub fn install(lua: &Lua) -> mlua::Result<()> {
    let g = lua.globals();
    g.raw_set("bit", bit(lua)?)?;
    g.raw_set("cjson", super::cjson::module(lua)?)?;
    g.raw_set("cmsgpack", super::cmsgpack::module(lua)?)?;
    g.raw_set("struct", super::structs::module(lua)?)?;
    Ok(())
}

/// LuaBitOp's argument conversion: the number rounded (ties to even, as its 2^52+2^51 trick does)
/// and taken modulo 2^32.
fn bits(v: &Value) -> mlua::Result<u32> {
    bits_arg(v, 1, "?")
}

/// [`bits`] for argument `i` of `func`, with Lua's argument error.
fn bits_arg(v: &Value, i: usize, func: &str) -> mlua::Result<u32> {
    let n = match v {
        Value::Integer(i) => *i as f64,
        Value::Number(n) => *n,
        Value::String(s) => s.to_str()?.trim().parse::<f64>().map_err(|_| mlua::Error::runtime("bad argument (number expected)"))?,
        other => return Err(mlua::Error::runtime(format!("bad argument #{i} to '{func}' (number expected, got {})", type_name(other)))),
    };
    Ok(n.round_ties_even().rem_euclid(4294967296.0) as u32)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "no value",
        other => other.type_name(),
    }
}

fn result(b: u32) -> f64 {
    f64::from(b as i32)
}

fn bit(lua: &Lua) -> mlua::Result<mlua::Table> {
    let t = lua.create_table()?;
    t.raw_set("tobit", lua.create_function(|_, x: Value| Ok(result(bits(&x)?)))?)?;
    t.raw_set("bnot", lua.create_function(|_, x: Value| Ok(result(!bits(&x)?)))?)?;
    t.raw_set("bswap", lua.create_function(|_, x: Value| Ok(result(bits(&x)?.swap_bytes())))?)?;
    type Fold = fn(u32, u32) -> u32;
    for (name, op) in [("band", (|a, b| a & b) as Fold), ("bor", |a, b| a | b), ("bxor", |a, b| a ^ b)] {
        t.raw_set(
            name,
            lua.create_function(move |_, args: Variadic<Value>| {
                let first = bits_arg(args.first().unwrap_or(&Value::Nil), 1, name)?;
                let mut rest = args.iter().enumerate().skip(1);
                rest.try_fold(first, |acc, (i, v)| Ok::<_, mlua::Error>(op(acc, bits_arg(v, i + 1, name)?))).map(result)
            })?,
        )?;
    }
    type Shift = fn(u32, u32) -> u32;
    for (name, op) in [
        ("lshift", (|x: u32, n: u32| x << (n & 31)) as Shift),
        ("rshift", |x, n| x >> (n & 31)),
        ("arshift", |x, n| ((x as i32) >> (n & 31)) as u32),
        ("rol", |x: u32, n| x.rotate_left(n & 31)),
        ("ror", |x: u32, n| x.rotate_right(n & 31)),
    ] {
        t.raw_set(name, lua.create_function(move |_, (x, n): (Value, Value)| Ok(result(op(bits(&x)?, bits(&n)?))))?)?;
    }
    t.raw_set(
        "tohex",
        lua.create_function(|_, (x, n): (Value, Option<Value>)| {
            let b = bits(&x)?;
            let n = match n {
                Some(v) => bits(&v)? as i32,
                None => 8,
            };
            let upper = n < 0;
            let width = n.unsigned_abs().min(8) as usize;
            let hex = if upper { format!("{b:08X}") } else { format!("{b:08x}") };
            Ok(hex[8 - width..].to_owned())
        })?,
    )?;
    Ok(t)
}
