//! Redis's conversions between command replies and Lua values, both ways, for RESP2 and RESP3
//! (`redis.setresp`), and the shape of error tables (`{err = "CODE message"}`).

use std::borrow::Cow;

use bytes::Bytes;
use herald_protocol::number::format_double;
use herald_protocol::{CommandError, Reply};
use mlua::{Lua, Table, Value};

/// A library function's argument as bytes (`redis.sha1hex`, `redis.log`, `struct`): strings as they
/// are, numbers as Lua prints them (`%.14g`); `None` for any other type.
pub fn arg_bytes(v: &Value) -> Option<Bytes> {
    match v {
        Value::String(s) => Some(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Integer(i) if i.unsigned_abs() < 100_000_000_000_000 => Some(Bytes::from(i.to_string())),
        Value::Integer(i) => Some(Bytes::from(lua_number(*i as f64))),
        Value::Number(n) => Some(Bytes::from(lua_number(*n))),
        _ => None,
    }
}

/// A number given to `redis.call` as Redis 7.0 writes it (`%.17g`, not Lua's lossy `%.14g`):
/// integral values below 1e17 as integers (what `%.17g` prints for them), others as
/// [`format_double`] (and NaN with its sign, as glibc prints it).
pub fn number_arg(n: f64) -> Bytes {
    let i = n as i64;
    if (i as f64).to_bits() == n.to_bits() && i.unsigned_abs() < 100_000_000_000_000_000 {
        return Bytes::from(i.to_string());
    }
    if n.is_nan() && n.is_sign_negative() {
        return Bytes::from_static(b"-nan");
    }
    Bytes::from(format_double(n))
}

/// A number as Lua 5.1 turns it into a string (`LUAI_NUMFFORMAT`, `%.14g`).
pub fn lua_number(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if n.is_infinite() {
        return if n < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if n == 0.0 {
        return if n.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let sci = format!("{n:.13e}");
    let (mantissa, exp) = sci.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent digits");
    if !(-4..14).contains(&exp) {
        let mantissa = trim_zeros(mantissa);
        return format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    let fixed = format!("{n:.*}", (13 - exp).max(0) as usize);
    trim_zeros(&fixed).to_owned()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s }
}

/// Redis's `luaPushErrorBuff`: `-CODE msg` keeps its code, text without one gets `ERR`; trailing line
/// ends are trimmed.
pub fn error_text(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let (code, msg) = match text.strip_prefix('-') {
        Some(rest) => match rest.split_once(' ') {
            Some((code, msg)) => (code.to_owned(), msg.to_owned()),
            None => ("ERR".to_owned(), rest.to_owned()),
        },
        None => ("ERR".to_owned(), text.into_owned()),
    };
    let msg = msg.trim_matches(|c| c == '\r' || c == '\n');
    format!("{code} {msg}")
}

/// `{err = ...}` for an error reply or a message (see [`error_text`]). A command's error text carries
/// its code already (`WRONGTYPE ...`), so it is given with the leading `-` Redis's own replies have.
pub fn error_table(lua: &Lua, raw: &[u8]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 1)?;
    t.raw_set("err", error_text(raw))?;
    Ok(t)
}

/// An error reply as Redis writes a script's `{err = ...}`: the text as given, line ends inside
/// turned into spaces (no `ERR` is added: the text is taken to start with its code).
pub fn error_reply(text: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(text);
    let text = text.trim_matches(|c| c == '\r' || c == '\n').replace(['\r', '\n'], " ");
    Reply::Error(CommandError(Cow::Owned(text)))
}

/// How deep a returned table may nest before the rest is cut (Redis stops at the Lua stack's limit).
const MAX_DEPTH: usize = 1000;

/// A script's return value as a reply (`luaReplyToRedisReply`). `resp` is the script's version
/// (`redis.setresp`): booleans differ.
pub fn to_reply(v: &Value, resp: u8) -> Reply {
    to_reply_at(v, resp, 0)
}

fn to_reply_at(v: &Value, resp: u8, depth: usize) -> Reply {
    match v {
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) if resp == 2 => match b {
            true => Reply::Int(1),
            false => Reply::Nil,
        },
        Value::Boolean(b) => Reply::Bool(*b),
        Value::Integer(i) => Reply::Int(*i),
        Value::Number(n) => Reply::Int(truncate(*n)),
        Value::Table(t) if depth < MAX_DEPTH => table_reply(t, resp, depth),
        _ => Reply::Nil,
    }
}

/// `(long long)` of a double, as C converts it (saturating here instead of undefined).
fn truncate(n: f64) -> i64 {
    n as i64
}

fn table_reply(t: &Table, resp: u8, depth: usize) -> Reply {
    if let Ok(Value::String(err)) = t.raw_get::<Value>("err") {
        return error_reply(&err.as_bytes());
    }
    if let Ok(Value::String(ok)) = t.raw_get::<Value>("ok") {
        let text = ok.to_string_lossy().replace(['\r', '\n'], " ");
        return Reply::Status(Cow::Owned(text));
    }
    if let Ok(d) = t.raw_get::<Value>("double")
        && let Some(d) = number(&d)
    {
        return Reply::Double(d);
    }
    if let Ok(Value::String(big)) = t.raw_get::<Value>("big_number") {
        return Reply::Bulk(Bytes::copy_from_slice(&big.as_bytes()));
    }
    if let Ok(Value::Table(v)) = t.raw_get::<Value>("verbatim_string")
        && let Ok(Value::String(s)) = v.raw_get::<Value>("string")
    {
        return Reply::Verbatim(Bytes::copy_from_slice(&s.as_bytes()));
    }
    if let Ok(Value::Table(map)) = t.raw_get::<Value>("map") {
        let pairs = map.pairs::<Value, Value>().filter_map(Result::ok);
        return Reply::Map(pairs.map(|(k, v)| (to_reply_at(&k, resp, depth + 1), to_reply_at(&v, resp, depth + 1))).collect());
    }
    if let Ok(Value::Table(set)) = t.raw_get::<Value>("set") {
        let keys = set.pairs::<Value, Value>().filter_map(Result::ok);
        return Reply::Set(keys.map(|(k, _)| to_reply_at(&k, resp, depth + 1)).collect());
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(to_reply_at(&v, resp, depth + 1)),
        }
    }
    Reply::Array(items)
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_lua_does() {
        assert_eq!(lua_number(3.5), "3.5");
        assert_eq!(lua_number(1e20), "1e+20");
        assert_eq!(lua_number(100000000000000.0), "1e+14");
        assert_eq!(lua_number(12345678901234.0), "12345678901234");
        assert_eq!(lua_number(0.1), "0.1");
        assert_eq!(lua_number(0.00001), "1e-05");
        assert_eq!(lua_number(-2.25), "-2.25");
        assert_eq!(lua_number(1.0 / 3.0), "0.33333333333333");
    }

    #[test]
    fn call_numbers_print_as_redis_does() {
        assert_eq!(number_arg(12.0), "12");
        assert_eq!(number_arg(-7.0), "-7");
        assert_eq!(number_arg(123456789012345.0), "123456789012345");
        assert_eq!(number_arg(3.5), "3.5");
        assert_eq!(number_arg(0.1), "0.10000000000000001");
        assert_eq!(number_arg(1e20), "1e+20");
        assert_eq!(number_arg(-0.0), "-0");
        assert_eq!(number_arg(f64::INFINITY), "inf");
    }

    #[test]
    fn error_texts_get_a_code() {
        assert_eq!(error_text(b"-x y"), "x y");
        assert_eq!(error_text(b"x y"), "ERR x y");
        assert_eq!(error_text(b"-nospace"), "ERR nospace");
        assert_eq!(error_text(b"-WRONGTYPE Operation\r\n"), "WRONGTYPE Operation");
    }
}
