//! `cmsgpack` as Redis bundles it (lua-cmsgpack): `pack(...)` encodes each argument in turn with the
//! smallest MessagePack type that holds it; `unpack(s)` returns every value in `s`,
//! `unpack_one(s [, offset])` and `unpack_limit(s, limit [, offset])` the next ones and the offset.
//! Tables whose keys are exactly 1..n are arrays, others maps; nesting beyond 16 encodes nil.

use mlua::{Lua, Table, Value, Variadic};

const MAX_NESTING: usize = 16;

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let pack = lua.create_function(|lua, args: Variadic<Value>| {
        if args.is_empty() {
            return Err(mlua::Error::runtime("MessagePack pack needs input."));
        }
        let mut out = Vec::new();
        for v in args.iter() {
            encode(v, 0, &mut out)?;
        }
        lua.create_string(out)
    })?;
    t.raw_set("pack", pack)?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, s: mlua::String| {
            let bytes = s.as_bytes();
            let mut d = Decoder { lua, s: &bytes, at: 0 };
            let mut values = Vec::new();
            while d.at < d.s.len() {
                values.push(d.value()?);
            }
            Ok(Variadic::from_iter(values))
        })?,
    )?;
    t.raw_set("unpack_one", lua.create_function(|lua, (s, offset): (mlua::String, Option<i64>)| unpack_limit(lua, s, 1, offset))?)?;
    t.raw_set(
        "unpack_limit",
        lua.create_function(|lua, (s, limit, offset): (mlua::String, i64, Option<i64>)| unpack_limit(lua, s, limit, offset))?,
    )?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    Ok(t)
}

/// The next `limit` values (0: all) from `offset`: the offset after them (-1 at the end), then them.
fn unpack_limit(lua: &Lua, s: mlua::String, limit: i64, offset: Option<i64>) -> mlua::Result<Variadic<Value>> {
    let bytes = s.as_bytes();
    let offset = offset.unwrap_or(0);
    if offset < 0 || limit < 0 {
        return Err(mlua::Error::runtime(format!("Invalid request to unpack with offset of {offset} and limit of {limit}.")));
    }
    if offset as usize > bytes.len() {
        return Err(mlua::Error::runtime("Start offset greater than input length"));
    }
    let mut d = Decoder { lua, s: &bytes, at: offset as usize };
    let mut values = vec![Value::Nil];
    while d.at < d.s.len() && (limit == 0 || (values.len() as i64) <= limit) {
        values.push(d.value()?);
    }
    values[0] = Value::Integer(if d.at >= d.s.len() { -1 } else { d.at as i64 });
    Ok(Variadic::from_iter(values))
}

fn encode(v: &Value, depth: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match v {
        Value::Nil => out.push(0xc0),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => int(*i, out),
        Value::Number(n) => {
            if n.fract() == 0.0 && *n >= i64::MIN as f64 && *n < i64::MAX as f64 {
                int(*n as i64, out);
            } else if (*n as f32) as f64 == *n {
                out.push(0xca);
                out.extend_from_slice(&(*n as f32).to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Value::String(s) => {
            let b = s.as_bytes();
            let len = b.len();
            if len < 32 {
                out.push(0xa0 | len as u8);
            } else if len <= 0xff {
                out.extend_from_slice(&[0xd9, len as u8]);
            } else if len <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(len as u32).to_be_bytes());
            }
            out.extend_from_slice(&b);
        }
        Value::Table(t) if depth < MAX_NESTING => {
            let mut count = 0usize;
            let mut max = 0i64;
            let mut is_array = true;
            for pair in t.pairs::<Value, Value>() {
                let (k, _) = pair?;
                count += 1;
                match k {
                    Value::Integer(i) if i >= 1 => max = max.max(i),
                    Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => max = max.max(n as i64),
                    _ => is_array = false,
                }
            }
            if is_array && max as usize == count {
                header(count, 0x90, 0xdc, out);
                for i in 1..=count {
                    encode(&t.raw_get::<Value>(i)?, depth + 1, out)?;
                }
            } else {
                header(count, 0x80, 0xde, out);
                for pair in t.pairs::<Value, Value>() {
                    let (k, item) = pair?;
                    encode(&k, depth + 1, out)?;
                    encode(&item, depth + 1, out)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

/// An array or map header: the fix form, then 16 and 32 bits.
fn header(n: usize, fix: u8, wide: u8, out: &mut Vec<u8>) {
    if n < 16 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(wide);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(wide + 1);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        if i < 128 {
            out.push(i as u8);
        } else if i <= 0xff {
            out.extend_from_slice(&[0xcc, i as u8]);
        } else if i <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(i as u16).to_be_bytes());
        } else if i <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(i as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(i as u64).to_be_bytes());
        }
    } else if i >= -32 {
        out.push(i as i8 as u8);
    } else if i >= -128 {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= -2147483648 {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

struct Decoder<'l, 's> {
    lua: &'l Lua,
    s: &'s [u8],
    at: usize,
}

fn missing() -> mlua::Error {
    mlua::Error::runtime("Missing bytes in input.")
}

impl<'s> Decoder<'_, 's> {
    fn take(&mut self, n: usize) -> mlua::Result<&'s [u8]> {
        let bytes = self.s.get(self.at..self.at + n).ok_or_else(missing)?;
        self.at += n;
        Ok(bytes)
    }

    fn uint(&mut self, n: usize) -> mlua::Result<u64> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn int(&mut self, n: usize) -> mlua::Result<i64> {
        let v = self.uint(n)?;
        let shift = 64 - 8 * n as u32;
        Ok(((v << shift) as i64) >> shift)
    }

    fn number(i: i64) -> Value {
        Value::Number(i as f64)
    }

    fn value(&mut self) -> mlua::Result<Value> {
        let tag = self.take(1)?[0];
        Ok(match tag {
            0x00..=0x7f => Self::number(i64::from(tag)),
            0xe0..=0xff => Self::number(i64::from(tag as i8)),
            0x80..=0x8f => self.map(usize::from(tag & 0x0f))?,
            0x90..=0x9f => self.array(usize::from(tag & 0x0f))?,
            0xa0..=0xbf => self.str(usize::from(tag & 0x1f))?,
            0xc0 => Value::Nil,
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xc4 | 0xd9 => {
                let n = self.uint(1)? as usize;
                self.str(n)?
            }
            0xc5 | 0xda => {
                let n = self.uint(2)? as usize;
                self.str(n)?
            }
            0xc6 | 0xdb => {
                let n = self.uint(4)? as usize;
                self.str(n)?
            }
            0xca => Value::Number(f64::from(f32::from_bits(self.uint(4)? as u32))),
            0xcb => Value::Number(f64::from_bits(self.uint(8)?)),
            0xcc => Self::number(self.uint(1)? as i64),
            0xcd => Self::number(self.uint(2)? as i64),
            0xce => Self::number(self.uint(4)? as i64),
            0xcf => Value::Number(self.uint(8)? as f64),
            0xd0 => Self::number(self.int(1)?),
            0xd1 => Self::number(self.int(2)?),
            0xd2 => Self::number(self.int(4)?),
            0xd3 => Self::number(self.int(8)?),
            0xdc => {
                let n = self.uint(2)? as usize;
                self.array(n)?
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                self.array(n)?
            }
            0xde => {
                let n = self.uint(2)? as usize;
                self.map(n)?
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                self.map(n)?
            }
            _ => return Err(mlua::Error::runtime("Bad data format in input.")),
        })
    }

    fn str(&mut self, n: usize) -> mlua::Result<Value> {
        let bytes = self.take(n)?;
        Ok(Value::String(self.lua.create_string(bytes)?))
    }

    fn array(&mut self, n: usize) -> mlua::Result<Value> {
        let t = self.lua.create_table_with_capacity(n.min(1024), 0)?;
        for i in 1..=n {
            t.raw_seti(i, self.value()?)?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, n: usize) -> mlua::Result<Value> {
        let t = self.lua.create_table_with_capacity(0, n.min(1024))?;
        for _ in 0..n {
            let k = self.value()?;
            let v = self.value()?;
            if !k.is_nil() {
                t.raw_set(k, v)?;
            }
        }
        Ok(Value::Table(t))
    }
}
