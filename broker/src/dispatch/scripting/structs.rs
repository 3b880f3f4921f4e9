//! `struct` as Redis bundles it (Roberto Ierusalimschy's struct library): `pack(fmt, ...)`,
//! `unpack(fmt, s [, pos])` (the values, then the position after them) and `size(fmt)`.
//! Formats: `<` `>` `=` endianness, `!n` alignment, `b B h H l L T i[n] I[n]` integers, `f d` floats,
//! `s` zero-terminated and `c[n]` fixed strings (`c0`: the previous value's length), `x` padding.

use mlua::{Lua, Table, Value, Variadic};

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", lua.create_function(pack)?)?;
    t.raw_set("unpack", lua.create_function(unpack)?)?;
    t.raw_set("size", lua.create_function(|_, fmt: mlua::String| size(&fmt.as_bytes()))?)?;
    Ok(t)
}

#[derive(Clone, Copy)]
enum Item {
    Int { size: usize, signed: bool },
    Float,
    Double,
    ZString,
    Chars(usize),
    Pad,
    Align(usize),
}

struct Format<'f> {
    /// The calling function's name, for argument errors.
    func: &'static str,
    fmt: &'f [u8],
    at: usize,
    little: bool,
    max_align: usize,
}

fn err(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::runtime(msg.into())
}

impl<'f> Format<'f> {
    fn new(func: &'static str, fmt: &'f [u8]) -> Self {
        Format { func, fmt, at: 0, little: true, max_align: 1 }
    }

    fn number(&mut self, default: usize) -> usize {
        let start = self.at;
        while self.at < self.fmt.len() && self.fmt[self.at].is_ascii_digit() {
            self.at += 1;
        }
        std::str::from_utf8(&self.fmt[start..self.at]).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
    }

    /// The next item, or `None` at the end; options (`<`, `!`...) are applied on the way.
    fn next(&mut self) -> mlua::Result<Option<Item>> {
        while let Some(&c) = self.fmt.get(self.at) {
            self.at += 1;
            let item = match c {
                b' ' => continue,
                b'<' | b'=' => {
                    self.little = true;
                    continue;
                }
                b'>' => {
                    self.little = false;
                    continue;
                }
                b'!' => {
                    self.max_align = self.number(8);
                    continue;
                }
                b'b' => Item::Int { size: 1, signed: true },
                b'B' => Item::Int { size: 1, signed: false },
                b'h' => Item::Int { size: 2, signed: true },
                b'H' => Item::Int { size: 2, signed: false },
                b'l' => Item::Int { size: 8, signed: true },
                b'L' | b'T' => Item::Int { size: 8, signed: false },
                b'i' | b'I' => {
                    let size = self.number(4);
                    if size == 0 || size > 8 {
                        return Err(err(format!("bad argument #1 to '{}' (integral size {size} is larger than limit of 8)", self.func)));
                    }
                    Item::Int { size, signed: c == b'i' }
                }
                b'f' => Item::Float,
                b'd' => Item::Double,
                b's' => Item::ZString,
                b'c' => Item::Chars(self.number(1)),
                b'x' => Item::Pad,
                b'X' => Item::Align(self.number(1)),
                other => return Err(err(format!("bad argument #1 to '{}' (invalid format option '{}')", self.func, other as char))),
            };
            return Ok(Some(item));
        }
        Ok(None)
    }

    /// Padding before an item of `size` bytes at `pos` under the current alignment.
    fn padding(&self, item: Item, pos: usize) -> usize {
        let size = match item {
            Item::Int { size, .. } => size,
            Item::Float => 4,
            Item::Double => 8,
            Item::Align(n) => n,
            _ => 1,
        };
        let align = size.min(self.max_align);
        if align <= 1 || !align.is_power_of_two() { 0 } else { (align - (pos & (align - 1))) & (align - 1) }
    }
}

fn to_f64(v: Option<&Value>, i: usize) -> mlua::Result<f64> {
    match v {
        Some(Value::Integer(n)) => Ok(*n as f64),
        Some(Value::Number(n)) => Ok(*n),
        Some(Value::String(s)) => {
            s.to_str()?.trim().parse().map_err(|_| err(format!("bad argument #{i} to 'pack' (number expected, got string)")))
        }
        _ => Err(err(format!("bad argument #{i} to 'pack' (number expected, got no value)"))),
    }
}

fn pack(lua: &Lua, args: Variadic<Value>) -> mlua::Result<mlua::String> {
    let Some(Value::String(fmt)) = args.first() else { return Err(err("bad argument #1 to 'pack' (string expected, got no value)")) };
    let fmt = fmt.as_bytes();
    let mut f = Format::new("pack", &fmt);
    let mut out = Vec::new();
    let mut arg = 1;
    while let Some(item) = f.next()? {
        out.resize(out.len() + f.padding(item, out.len()), 0);
        match item {
            Item::Int { size, .. } => {
                let n = to_f64(args.get(arg), arg + 1)? as i64;
                arg += 1;
                let bytes = n.to_le_bytes();
                if f.little {
                    out.extend_from_slice(&bytes[..size]);
                } else {
                    out.extend(bytes[..size].iter().rev());
                }
            }
            Item::Float => {
                let n = to_f64(args.get(arg), arg + 1)? as f32;
                arg += 1;
                out.extend_from_slice(&if f.little { n.to_le_bytes() } else { n.to_be_bytes() });
            }
            Item::Double => {
                let n = to_f64(args.get(arg), arg + 1)?;
                arg += 1;
                out.extend_from_slice(&if f.little { n.to_le_bytes() } else { n.to_be_bytes() });
            }
            Item::ZString | Item::Chars(_) => {
                let s = match args.get(arg) {
                    Some(Value::String(s)) => s.as_bytes().to_vec(),
                    Some(v @ (Value::Integer(_) | Value::Number(_))) => super::convert::arg_bytes(v).unwrap_or_default().to_vec(),
                    _ => return Err(err(format!("bad argument #{} to 'pack' (string expected, got no value)", arg + 1))),
                };
                arg += 1;
                match item {
                    Item::ZString => {
                        if s.contains(&0) {
                            return Err(err(format!("bad argument #{} to 'pack' (string contains zeros)", arg)));
                        }
                        out.extend_from_slice(&s);
                        out.push(0);
                    }
                    Item::Chars(n) => {
                        let n = if n == 0 { s.len() } else { n };
                        if s.len() < n {
                            return Err(err(format!("bad argument #{arg} to 'pack' (string too short)")));
                        }
                        out.extend_from_slice(&s[..n]);
                    }
                    _ => unreachable!(),
                }
            }
            Item::Pad => out.push(0),
            Item::Align(_) => {}
        }
    }
    lua.create_string(out)
}

fn unpack(lua: &Lua, (fmt, data, pos): (mlua::String, mlua::String, Option<i64>)) -> mlua::Result<Variadic<Value>> {
    let fmt = fmt.as_bytes();
    let data = data.as_bytes();
    let mut f = Format::new("unpack", &fmt);
    let mut at = pos.unwrap_or(1).max(1) as usize - 1;
    let mut values: Vec<Value> = Vec::new();
    let short = || err("bad argument #2 to 'unpack' (data string too short)");
    while let Some(item) = f.next()? {
        at += f.padding(item, at);
        match item {
            Item::Int { size, signed } => {
                let bytes = data.get(at..at + size).ok_or_else(short)?;
                let mut v: u64 = 0;
                for i in 0..size {
                    let b = if f.little { bytes[size - 1 - i] } else { bytes[i] };
                    v = (v << 8) | u64::from(b);
                }
                let n = if signed && size < 8 {
                    let shift = 64 - 8 * size as u32;
                    (((v << shift) as i64) >> shift) as f64
                } else if signed {
                    v as i64 as f64
                } else {
                    v as f64
                };
                values.push(Value::Number(n));
                at += size;
            }
            Item::Float => {
                let b: [u8; 4] = data.get(at..at + 4).ok_or_else(short)?.try_into().expect("4 bytes");
                values.push(Value::Number(f64::from(if f.little { f32::from_le_bytes(b) } else { f32::from_be_bytes(b) })));
                at += 4;
            }
            Item::Double => {
                let b: [u8; 8] = data.get(at..at + 8).ok_or_else(short)?.try_into().expect("8 bytes");
                values.push(Value::Number(if f.little { f64::from_le_bytes(b) } else { f64::from_be_bytes(b) }));
                at += 8;
            }
            Item::ZString => {
                let rest = data.get(at..).ok_or_else(short)?;
                let end = rest.iter().position(|b| *b == 0).ok_or_else(|| err("unfinished string in data"))?;
                values.push(Value::String(lua.create_string(&rest[..end])?));
                at += end + 1;
            }
            Item::Chars(n) => {
                let n = if n == 0 {
                    match values.last() {
                        Some(Value::Number(len)) => *len as usize,
                        Some(Value::Integer(len)) => *len as usize,
                        _ => return Err(err("format 'c0' needs a previous size")),
                    }
                } else {
                    n
                };
                let bytes = data.get(at..at + n).ok_or_else(short)?;
                values.push(Value::String(lua.create_string(bytes)?));
                at += n;
            }
            Item::Pad => at += 1,
            Item::Align(_) => {}
        }
    }
    values.push(Value::Integer(at as i64 + 1));
    Ok(Variadic::from_iter(values))
}

fn size(fmt: &[u8]) -> mlua::Result<i64> {
    let mut f = Format::new("size", fmt);
    let mut total = 0usize;
    while let Some(item) = f.next()? {
        total += f.padding(item, total);
        total += match item {
            Item::Int { size, .. } => size,
            Item::Float => 4,
            Item::Double => 8,
            Item::Chars(n) => n,
            Item::Pad => 1,
            Item::Align(_) => 0,
            Item::ZString => return Err(err("options 'c0' - 's' have undefined sizes")),
        };
    }
    Ok(total as i64)
}
