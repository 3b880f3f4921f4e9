//! Rendering replies and pushes as JSON, for the WebSocket channel.
//!
//! Binary safety: a byte string that is valid UTF-8 becomes a JSON string; anything else becomes
//! `{"base64": "..."}`. Maps become objects when every key is text, and arrays of pairs otherwise.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::reply::Reply;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); `None` on any invalid character.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = ALPHABET.iter().position(|&a| a == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    Some(out)
}

/// A byte string as JSON: text when it is UTF-8, `{"base64": ...}` otherwise.
pub fn bytes_to_json(data: &[u8]) -> Value {
    match std::str::from_utf8(data) {
        Ok(text) => Value::String(text.to_owned()),
        Err(_) => json!({ "base64": base64_encode(data) }),
    }
}

fn key_text(reply: &Reply) -> Option<String> {
    match reply {
        Reply::Bulk(b) | Reply::Verbatim(b) => std::str::from_utf8(b).ok().map(str::to_owned),
        Reply::Status(s) => Some(s.to_string()),
        Reply::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Any reply as a JSON value (errors are rendered by the envelope, not here).
pub fn reply_to_json(reply: &Reply) -> Value {
    match reply {
        Reply::Status(s) => Value::String(s.to_string()),
        Reply::Error(e) => json!({ "code": e.code(), "message": e.message() }),
        Reply::Int(n) => json!(n),
        Reply::Bulk(b) | Reply::Verbatim(b) => bytes_to_json(b),
        Reply::Nil | Reply::NilArray => Value::Null,
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => Value::Array(items.iter().map(reply_to_json).collect()),
        Reply::Map(pairs) => {
            let keys: Option<Vec<String>> = pairs.iter().map(|(k, _)| key_text(k)).collect();
            match keys {
                Some(keys) => {
                    let mut map = Map::new();
                    for (k, (_, v)) in keys.into_iter().zip(pairs) {
                        map.insert(k, reply_to_json(v));
                    }
                    Value::Object(map)
                }
                None => Value::Array(pairs.iter().map(|(k, v)| json!([reply_to_json(k), reply_to_json(v)])).collect()),
            }
        }
        Reply::Double(d) if d.is_finite() => json!(d),
        Reply::Double(d) => Value::String(crate::number::format_f64(*d)),
        Reply::Bool(b) => Value::Bool(*b),
    }
}

/// A push as a JSON envelope: `["message", ch, data]` becomes
/// `{"push": "message", "channel": ch, "data": data}`, `pmessage` adds `"pattern"`, and any other push
/// keeps its items under `"data"`.
pub fn push_to_json(items: &[Reply]) -> Bytes {
    let kind = items.first().and_then(key_text).unwrap_or_default();
    let value = match (kind.as_str(), items) {
        ("message" | "smessage", [_, channel, data]) => {
            json!({ "push": kind, "channel": reply_to_json(channel), "data": reply_to_json(data) })
        }
        ("pmessage", [_, pattern, channel, data]) => json!({
            "push": kind,
            "pattern": reply_to_json(pattern),
            "channel": reply_to_json(channel),
            "data": reply_to_json(data),
        }),
        (_, [_, rest @ ..]) => json!({ "push": kind, "data": rest.iter().map(reply_to_json).collect::<Vec<_>>() }),
        _ => json!({ "push": kind }),
    };
    Bytes::from(serde_json::to_vec(&value).expect("JSON values always serialise"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\xff\x00\xfe"] {
            assert_eq!(base64_decode(&base64_encode(data)).unwrap(), data);
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_decode("!!"), None);
    }

    #[test]
    fn binary_and_text() {
        assert_eq!(bytes_to_json(b"hi"), json!("hi"));
        assert_eq!(bytes_to_json(b"\xff"), json!({"base64": "/w=="}));
    }

    #[test]
    fn pushes() {
        let msg = push_to_json(&[Reply::text("message"), Reply::text("news"), Reply::text("hello")]);
        let v: Value = serde_json::from_slice(&msg).unwrap();
        assert_eq!(v, json!({"push": "message", "channel": "news", "data": "hello"}));
        let map = reply_to_json(&Reply::fields(vec![("a", Reply::Int(1))]));
        assert_eq!(map, json!({"a": 1}));
    }
}
