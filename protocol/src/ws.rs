//! The WebSocket JSON envelope: requests in, replies out (pushes are rendered by `json::push_to_json`).
//!
//! A request is `{"id": 7, "cmd": ["SET", "k", "v"]}`; it becomes the same [`Request`] RESP produces, so
//! every command has exactly one implementation. Arguments may be strings, numbers (sent as their
//! decimal text) or `{"base64": "..."}` for bytes that are not UTF-8, the mirror of how replies render
//! binary values. The reply is `{"id": 7, "result": ...}` or `{"id": 7, "error": {"code", "message"}}`.
//!
//! A request that cannot be read gets an error reply carrying whatever id could be recovered (or null),
//! and the connection carries on: one bad message from a browser should not cost it its subscriptions.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Map, Value, json};

use crate::json::{base64_decode, reply_to_json};
use crate::reply::Reply;
use crate::request::Request;

/// A request read from one text frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Echoed back verbatim in the reply: a number or a string chosen by the client.
    pub id: Value,
    pub request: Request,
}

/// Why a text frame is not a request; answered as an `ERR` reply to `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvelopeError {
    pub id: Value,
    pub message: String,
}

impl EnvelopeError {
    fn new(id: &Value, message: impl Into<String>) -> Self {
        EnvelopeError { id: id.clone(), message: message.into() }
    }

    /// The error reply frame.
    pub fn frame(&self) -> String {
        error_frame(&self.id, "ERR", &self.message)
    }
}

/// Reads one request, refusing more than `max_args` arguments (the RESP multibulk bound).
pub fn parse_request(text: &str, max_args: usize) -> Result<Envelope, EnvelopeError> {
    let value: Value = serde_json::from_str(text).map_err(|e| EnvelopeError::new(&Value::Null, format!("invalid JSON: {e}")))?;
    let Value::Object(mut fields) = value else {
        return Err(EnvelopeError::new(&Value::Null, "a request is a JSON object {\"id\": ..., \"cmd\": [...]}"));
    };
    let id = fields.remove("id").unwrap_or(Value::Null);
    if !matches!(id, Value::Number(_) | Value::String(_)) {
        return Err(EnvelopeError::new(&Value::Null, "\"id\" must be a number or a string"));
    }
    if let Some(unknown) = fields.keys().find(|k| *k != "cmd") {
        return Err(EnvelopeError::new(&id, format!("unknown field \"{unknown}\" (a request has \"id\" and \"cmd\")")));
    }
    let request = parse_cmd(fields.remove("cmd"), max_args).map_err(|message| EnvelopeError::new(&id, message))?;
    Ok(Envelope { id, request })
}

/// Reads a command array (`["SET", "k", "v"]`), the part of a request every JSON surface shares (the
/// WebSocket envelope's `cmd`, HTTP's `{"cmd": [...]}` and each of `{"cmds": [...]}`); the error says
/// what is wrong in words a client can act on.
pub fn parse_cmd(cmd: Option<Value>, max_args: usize) -> Result<Request, String> {
    let Some(Value::Array(cmd)) = cmd else {
        return Err("\"cmd\" must be an array such as [\"GET\", \"key\"]".to_owned());
    };
    if cmd.is_empty() {
        return Err("\"cmd\" is empty".to_owned());
    }
    if cmd.len() > max_args {
        return Err(format!("\"cmd\" has more than {max_args} arguments"));
    }
    let args = cmd
        .into_iter()
        .enumerate()
        .map(|(i, arg)| argument(arg).ok_or_else(|| format!("cmd[{i}] must be a string, a number or {{\"base64\": \"...\"}}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Request::new(args))
}

fn argument(arg: Value) -> Option<Bytes> {
    match arg {
        Value::String(s) => Some(Bytes::from(s)),
        Value::Number(n) => Some(Bytes::from(n.to_string())),
        Value::Object(mut o) if o.len() == 1 => match o.remove("base64") {
            Some(Value::String(b64)) => base64_decode(&b64).map(Bytes::from),
            _ => None,
        },
        _ => None,
    }
}

/// The reply frame for one reply.
pub fn reply_frame(id: &Value, reply: &Reply) -> String {
    match reply {
        Reply::Error(e) => error_frame(id, e.code(), e.message()),
        _ => envelope(id, "result", reply_to_json(reply)),
    }
}

/// One reply as the JSON surfaces answer it without an envelope id (HTTP's `/v1/cmd` body and each
/// element of `/v1/pipeline`'s): `{"result": ...}` or `{"error": {"code", "message"}}`.
pub fn outcome_json(reply: &Reply) -> Value {
    let mut map = Map::with_capacity(1);
    match reply {
        Reply::Error(e) => map.insert("error".to_owned(), json!({ "code": e.code(), "message": e.message() })),
        _ => map.insert("result".to_owned(), reply_to_json(reply)),
    };
    Value::Object(map)
}

/// The reply frame for a command that answers several replies (SUBSCRIBE a b): one result, the array.
pub fn replies_frame(id: &Value, replies: &[Reply]) -> String {
    envelope(id, "result", Value::Array(replies.iter().map(reply_to_json).collect()))
}

/// An error frame for a refused command or envelope.
pub fn error_frame(id: &Value, code: &str, message: &str) -> String {
    envelope(id, "error", json!({ "code": code, "message": message }))
}

/// Told before the pushes that survived a drop-oldest overflow: how many were discarded.
pub fn lagged_frame(count: u64) -> String {
    json!({ "push": "lagged", "count": count }).to_string()
}

/// Appends one server-to-client WebSocket frame (RFC 6455 section 5.2: FIN set, unmasked) to `out`.
///
/// The broker writes replies and pushes with this into one buffer per batch: a shared, already rendered
/// push costs a header and a copy per subscriber, as a RESP push does.
pub fn encode_frame(opcode: Opcode, payload: &[u8], out: &mut BytesMut) {
    out.reserve(payload.len() + 10);
    out.put_u8(0x80 | opcode as u8);
    match payload.len() {
        n if n < 126 => out.put_u8(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.put_u8(126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(127);
            out.put_u64(n as u64);
        }
    }
    out.extend_from_slice(payload);
}

/// The frame kinds the server writes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Text = 0x1,
    Ping = 0x9,
}

fn envelope(id: &Value, key: &str, value: Value) -> String {
    let mut map = Map::with_capacity(2);
    map.insert("id".to_owned(), id.clone());
    map.insert(key.to_owned(), value);
    Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CommandError;

    fn parts(e: &Envelope) -> Vec<&[u8]> {
        e.request.parts().iter().map(|b| b.as_ref()).collect()
    }

    #[test]
    fn requests() {
        let e = parse_request(r#"{"id": 7, "cmd": ["SET", "k", 12, {"base64": "/w=="}]}"#, 100).unwrap();
        assert_eq!(e.id, json!(7));
        assert_eq!(parts(&e), vec![&b"SET"[..], b"k", b"12", b"\xff"]);
        let e = parse_request(r#"{"cmd": ["PING"], "id": "a"}"#, 100).unwrap();
        assert_eq!(e.id, json!("a"));
    }

    #[test]
    fn bad_requests_keep_the_id_when_they_can() {
        let err = |text| parse_request(text, 3).unwrap_err();
        assert_eq!(err("{").id, Value::Null);
        assert_eq!(err("[1]").id, Value::Null);
        assert_eq!(err(r#"{"id": [1], "cmd": ["PING"]}"#).id, Value::Null);
        assert_eq!(err(r#"{"id": 1}"#).id, json!(1));
        assert_eq!(err(r#"{"id": 1, "cmd": []}"#).id, json!(1));
        assert_eq!(err(r#"{"id": 1, "cmd": ["GET", true]}"#).message, "cmd[1] must be a string, a number or {\"base64\": \"...\"}");
        assert_eq!(err(r#"{"id": 1, "cmd": ["GET", {"base64": "!"}]}"#).id, json!(1));
        assert!(err(r#"{"id": 1, "cmd": ["PING"], "x": 1}"#).message.contains("unknown field \"x\""));
        assert!(err(r#"{"id": 1, "cmd": ["A", "B", "C", "D"]}"#).message.contains("more than 3"));
    }

    #[test]
    fn server_frames() {
        let mut out = BytesMut::new();
        encode_frame(Opcode::Text, b"hi", &mut out);
        assert_eq!(&out[..], b"\x81\x02hi");
        out.clear();
        encode_frame(Opcode::Ping, b"", &mut out);
        assert_eq!(&out[..], b"\x89\x00");
        out.clear();
        encode_frame(Opcode::Text, &[b'x'; 300], &mut out);
        assert_eq!(&out[..4], b"\x81\x7e\x01\x2c");
        assert_eq!(out.len(), 304);
        out.clear();
        encode_frame(Opcode::Text, &vec![b'x'; 70_000], &mut out);
        assert_eq!(&out[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }

    #[test]
    fn frames() {
        let v: Value = serde_json::from_str(&reply_frame(&json!(1), &Reply::Int(5))).unwrap();
        assert_eq!(v, json!({"id": 1, "result": 5}));
        let wrong = Reply::Error(CommandError::fixed("WRONGTYPE Operation against a key holding the wrong kind of value"));
        let v: Value = serde_json::from_str(&reply_frame(&json!("x"), &wrong)).unwrap();
        assert_eq!(
            v,
            json!({"id": "x", "error": {"code": "WRONGTYPE", "message": "Operation against a key holding the wrong kind of value"}})
        );
        let v: Value = serde_json::from_str(&replies_frame(&json!(2), &[Reply::Int(1), Reply::Nil])).unwrap();
        assert_eq!(v, json!({"id": 2, "result": [1, null]}));
        assert_eq!(lagged_frame(3), r#"{"count":3,"push":"lagged"}"#);
    }
}
