//! The libraries Redis adds to its Lua: `bit` (LuaBitOp's API), and the ones in their own files
//! (`cjson`, `cmsgpack`, `struct`). Installed as globals before the prelude protects them.

use mlua::{Lua, Value, Variadic};

pub fn install(lua: &Lua) -> mlua::Result<()> {
    let g = lua.globals();
    g.raw_set("bit", bit(lua)?)?;
    Ok(())
}

/// LuaBitOp's argument conversion: the number rounded (ties to even, as its 2^52+2^51 trick does)
/// and taken modulo 2^32.
fn bits(v: &Value) -> mlua::Result<u32> {
    let n = match v {
        Value::Integer(i) => *i as f64,
        Value::Number(n) => *n,
        Value::String(s) => s.to_str()?.trim().parse::<f64>().map_err(|_| mlua::Error::runtime("bad argument (number expected)"))?,
        _ => return Err(mlua::Error::runtime("bad argument (number expected, got no value)")),
    };
    Ok(n.round_ties_even().rem_euclid(4294967296.0) as u32)
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
                let mut it = args.iter();
                let first = bits(it.next().unwrap_or(&Value::Nil))?;
                it.try_fold(first, |acc, v| Ok::<_, mlua::Error>(op(acc, bits(v)?))).map(result)
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
