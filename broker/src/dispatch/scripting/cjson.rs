//! `cjson` as Redis bundles it (lua-cjson 2.1 with Redis's defaults): `encode`, `decode`, `null`,
//! arrays vs objects decided from the keys, excessively sparse arrays refused, numbers as `%.14g`,
//! `/` escaped, nesting limited to 1000 both ways, and the configuration functions.

use std::cell::Cell;
use std::rc::Rc;

use mlua::{LightUserData, Lua, Table, Value, Variadic};

use super::convert::lua_number;

/// `cjson.null`: a light userdata holding NULL, as lua-cjson's.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

fn is_null(v: &Value) -> bool {
    matches!(v, Value::LightUserData(p) if p.0.is_null())
}

#[derive(Clone, Copy)]
struct Config {
    encode_max_depth: usize,
    decode_max_depth: usize,
    sparse_convert: bool,
    sparse_ratio: usize,
    sparse_safe: usize,
    encode_invalid_numbers: bool,
}

const DEFAULT: Config = Config {
    encode_max_depth: 1000,
    decode_max_depth: 1000,
    sparse_convert: false,
    sparse_ratio: 2,
    sparse_safe: 10,
    encode_invalid_numbers: false,
};

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let config = Rc::new(Cell::new(DEFAULT));
    let t = lua.create_table()?;
    let c = config.clone();
    t.raw_set(
        "encode",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let [v] = &args[..] else { return Err(mlua::Error::runtime("bad argument #1 to 'encode' (expected 1 argument)")) };
            let mut out = Vec::new();
            encode(v, &c.get(), 1, &mut out).map_err(mlua::Error::runtime)?;
            lua.create_string(out)
        })?,
    )?;
    let c = config.clone();
    t.raw_set(
        "decode",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let [Value::String(s)] = &args[..] else {
                return Err(mlua::Error::runtime("bad argument #1 to 'decode' (expected 1 argument)"));
            };
            let bytes = s.as_bytes();
            let mut p = Parser { lua, s: &bytes, at: 0, depth: 0, max_depth: c.get().decode_max_depth };
            p.document().map_err(mlua::Error::runtime)
        })?,
    )?;
    t.raw_set("null", null())?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    let c = config.clone();
    t.raw_set(
        "encode_max_depth",
        lua.create_function(move |_, depth: Option<usize>| {
            let mut cfg = c.get();
            if let Some(d) = depth {
                cfg.encode_max_depth = d.max(1);
                c.set(cfg);
            }
            Ok(cfg.encode_max_depth)
        })?,
    )?;
    let c = config.clone();
    t.raw_set(
        "decode_max_depth",
        lua.create_function(move |_, depth: Option<usize>| {
            let mut cfg = c.get();
            if let Some(d) = depth {
                cfg.decode_max_depth = d.max(1);
                c.set(cfg);
            }
            Ok(cfg.decode_max_depth)
        })?,
    )?;
    let c = config.clone();
    t.raw_set(
        "encode_sparse_array",
        lua.create_function(move |_, (convert, ratio, safe): (Option<bool>, Option<usize>, Option<usize>)| {
            let mut cfg = c.get();
            if let Some(v) = convert {
                cfg.sparse_convert = v;
            }
            if let Some(v) = ratio {
                cfg.sparse_ratio = v;
            }
            if let Some(v) = safe {
                cfg.sparse_safe = v;
            }
            c.set(cfg);
            Ok((cfg.sparse_convert, cfg.sparse_ratio, cfg.sparse_safe))
        })?,
    )?;
    let c = config;
    t.raw_set(
        "encode_invalid_numbers",
        lua.create_function(move |_, on: Option<bool>| {
            let mut cfg = c.get();
            if let Some(v) = on {
                cfg.encode_invalid_numbers = v;
                c.set(cfg);
            }
            Ok(cfg.encode_invalid_numbers)
        })?,
    )?;
    t.raw_set("encode_keep_buffer", lua.create_function(|_, on: Option<bool>| Ok(on.unwrap_or(true)))?)?;
    t.raw_set("encode_number_precision", lua.create_function(|_, _p: Option<i64>| Ok(14))?)?;
    t.raw_set("decode_invalid_numbers", lua.create_function(|_, on: Option<bool>| Ok(on.unwrap_or(true)))?)?;
    Ok(t)
}

fn escape(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..0x20 | 0x7f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

fn number(n: f64, cfg: &Config, out: &mut Vec<u8>) -> Result<(), String> {
    if !n.is_finite() && !cfg.encode_invalid_numbers {
        return Err("Cannot serialise number: must not be NaN or Inf".into());
    }
    out.extend_from_slice(lua_number(n).as_bytes());
    Ok(())
}

/// The array length of `t` if its keys are all positive integers (0 for an empty table, which
/// encodes as an object), `None` for an object; an error for an excessively sparse array.
fn array_len(t: &Table, cfg: &Config) -> Result<Option<usize>, String> {
    let (mut max, mut items) = (0usize, 0usize);
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        let idx = match k {
            Value::Integer(i) if i >= 1 => i as usize,
            Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => n as usize,
            _ => return Ok(None),
        };
        max = max.max(idx);
        items += 1;
    }
    if cfg.sparse_ratio > 0 && max > items * cfg.sparse_ratio && max > cfg.sparse_safe {
        if !cfg.sparse_convert {
            return Err("Cannot serialise table: excessively sparse array".into());
        }
        return Ok(None);
    }
    Ok(Some(max))
}

fn encode(v: &Value, cfg: &Config, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::String(s) => escape(&s.as_bytes(), out),
        Value::Integer(i) => number(*i as f64, cfg, out)?,
        Value::Number(n) => number(*n, cfg, out)?,
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Nil => out.extend_from_slice(b"null"),
        v if is_null(v) => out.extend_from_slice(b"null"),
        Value::Table(t) => {
            if depth > cfg.encode_max_depth {
                return Err(format!("Cannot serialise, excessive nesting ({depth})"));
            }
            match array_len(t, cfg)? {
                Some(len) if len > 0 => {
                    out.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            out.push(b',');
                        }
                        let item: Value = t.raw_get(i).map_err(|e| e.to_string())?;
                        encode(&item, cfg, depth + 1, out)?;
                    }
                    out.push(b']');
                }
                _ => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in t.pairs::<Value, Value>() {
                        let (k, item) = pair.map_err(|e| e.to_string())?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &k {
                            Value::String(s) => escape(&s.as_bytes(), out),
                            Value::Integer(i) => escape(lua_number(*i as f64).as_bytes(), out),
                            Value::Number(n) => {
                                let mut key = Vec::new();
                                number(*n, cfg, &mut key)?;
                                escape(&key, out);
                            }
                            _ => return Err("Cannot serialise table: table key must be a number or string".into()),
                        }
                        out.push(b':');
                        encode(&item, cfg, depth + 1, out)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => return Err(format!("Cannot serialise {}: type not supported", other.type_name())),
    }
    Ok(())
}

struct Parser<'l, 's> {
    lua: &'l Lua,
    s: &'s [u8],
    at: usize,
    depth: usize,
    max_depth: usize,
}

impl Parser<'_, '_> {
    fn document(&mut self) -> Result<Value, String> {
        let v = self.value()?;
        self.ws();
        if self.at < self.s.len() {
            return Err(self.expected("the end", self.token_name()));
        }
        Ok(v)
    }

    fn ws(&mut self) {
        while self.at < self.s.len() && matches!(self.s[self.at], b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
    }

    fn token_name(&self) -> &'static str {
        match self.s.get(self.at) {
            None => "T_END",
            Some(b'{') => "T_OBJ_BEGIN",
            Some(b'}') => "T_OBJ_END",
            Some(b'[') => "T_ARR_BEGIN",
            Some(b']') => "T_ARR_END",
            Some(b',') => "T_COMMA",
            Some(b':') => "T_COLON",
            Some(b'"') => "T_STRING",
            Some(b'-' | b'0'..=b'9') => "T_NUMBER",
            Some(b't' | b'f') => "T_BOOLEAN",
            Some(b'n') => "T_NULL",
            _ => "invalid token",
        }
    }

    fn expected(&self, what: &str, found: &str) -> String {
        format!("Expected {what} but found {found} at character {}", self.at + 1)
    }

    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        let lua = self.lua;
        let err = |e: mlua::Error| e.to_string();
        match self.s.get(self.at) {
            Some(b'{') => {
                self.nest()?;
                self.at += 1;
                let t = lua.create_table().map_err(err)?;
                self.ws();
                if self.s.get(self.at) == Some(&b'}') {
                    self.at += 1;
                    self.depth -= 1;
                    return Ok(Value::Table(t));
                }
                loop {
                    self.ws();
                    if self.s.get(self.at) != Some(&b'"') {
                        return Err(self.expected("object key string", self.token_name()));
                    }
                    let key = self.string()?;
                    self.ws();
                    if self.s.get(self.at) != Some(&b':') {
                        return Err(self.expected("colon", self.token_name()));
                    }
                    self.at += 1;
                    let v = self.value()?;
                    t.raw_set(key, v).map_err(err)?;
                    self.ws();
                    match self.s.get(self.at) {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            break;
                        }
                        _ => return Err(self.expected("comma or object end", self.token_name())),
                    }
                }
                self.depth -= 1;
                Ok(Value::Table(t))
            }
            Some(b'[') => {
                self.nest()?;
                self.at += 1;
                let t = lua.create_table().map_err(err)?;
                self.ws();
                if self.s.get(self.at) == Some(&b']') {
                    self.at += 1;
                    self.depth -= 1;
                    return Ok(Value::Table(t));
                }
                let mut i = 1;
                loop {
                    let v = self.value()?;
                    t.raw_seti(i, v).map_err(err)?;
                    i += 1;
                    self.ws();
                    match self.s.get(self.at) {
                        Some(b',') => self.at += 1,
                        Some(b']') => {
                            self.at += 1;
                            break;
                        }
                        _ => return Err(self.expected("comma or array end", self.token_name())),
                    }
                }
                self.depth -= 1;
                Ok(Value::Table(t))
            }
            Some(b'"') => self.string(),
            Some(b't') if self.s[self.at..].starts_with(b"true") => {
                self.at += 4;
                Ok(Value::Boolean(true))
            }
            Some(b'f') if self.s[self.at..].starts_with(b"false") => {
                self.at += 5;
                Ok(Value::Boolean(false))
            }
            Some(b'n') if self.s[self.at..].starts_with(b"null") => {
                self.at += 4;
                Ok(null())
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.expected("value", self.token_name())),
        }
    }

    fn nest(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(format!("Found too many nested data structures ({}) at character {}", self.depth, self.at + 1));
        }
        Ok(())
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.at;
        while self.at < self.s.len() && matches!(self.s[self.at], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.at]).unwrap_or("");
        match text.parse::<f64>() {
            Ok(n) => Ok(Value::Number(n)),
            Err(_) => {
                self.at = start;
                Err(self.expected("value", "invalid number"))
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.s.get(self.at..self.at + 4)?;
        let v = u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?;
        self.at += 4;
        Some(v)
    }

    fn string(&mut self) -> Result<Value, String> {
        let start = self.at;
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.at) else {
                return Err(self.expected("value", "unexpected end of string"));
            };
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.at) else {
                        self.at = start;
                        return Err(self.expected("value", "invalid escape code"));
                    };
                    self.at += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let Some(mut cp) = self.hex4() else {
                                self.at = start;
                                return Err(self.expected("value", "invalid unicode escape code"));
                            };
                            if (0xd800..0xdc00).contains(&cp) && self.s.get(self.at..self.at + 2) == Some(b"\\u") {
                                self.at += 2;
                                let low = self.hex4().unwrap_or(0);
                                if (0xdc00..0xe000).contains(&low) {
                                    cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                                }
                            }
                            let c = char::from_u32(cp).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => {
                            self.at = start;
                            return Err(self.expected("value", "invalid escape code"));
                        }
                    }
                }
                _ => out.push(b),
            }
        }
        Ok(Value::String(self.lua.create_string(out).map_err(|e| e.to_string())?))
    }
}
