//! The command endpoints, `POST /v1/cmd` and `POST /v1/pipeline`: their bodies, which commands they
//! take, and the HTTP status an answer gets.
//!
//! A body is `{"cmd": ["SET", "k", "v"]}` or `{"cmds": [["SET", "k", "v"], ["GET", "k"]]}`; the
//! command arrays are read by the protocol crate's `ws::parse_cmd`, the WebSocket envelope's own
//! reader, so arguments (strings, numbers, `{"base64": ...}`) mean the same on both. Answers are
//! rendered by `ws::outcome_json`, as WebSocket results are.

use herald_protocol::{CommandError, Reply, Request, ws};
use serde_json::Value;

/// Commands that would leave the connection's session different for the next request (another
/// database, an open transaction, watches, another user). After one, the session is `RESET` before
/// the next request on the same connection, so every HTTP request starts from a fresh session.
const SESSION_CHANGING: &[&str] = &["AUTH", "HELLO", "SELECT", "MULTI", "WATCH", "BB.WATCH", "CLIENT", "RESET", "SWAPDB"];

/// Commands that make pushes, which a response cannot carry: `GET /v1/subscribe` serves them.
const STREAMING: &[&str] = &["SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR"];

/// The body's one command.
pub fn parse_one(body: &[u8], max_args: usize) -> Result<Request, String> {
    let mut fields = object(body, "{\"cmd\": [\"GET\", \"key\"]}", "cmd")?;
    ws::parse_cmd(fields.remove("cmd"), max_args)
}

/// The body's commands, in order. `Err` for a body that is not a pipeline of commands (any element
/// included: nothing runs then), with the status to answer it (400, or 413 past `max_pipeline`).
pub fn parse_many(body: &[u8], max_args: usize, max_pipeline: usize) -> Result<Vec<Request>, (u16, String)> {
    let mut fields = object(body, "{\"cmds\": [[\"SET\", \"k\", \"v\"], [\"GET\", \"k\"]]}", "cmds").map_err(|e| (400, e))?;
    let Some(Value::Array(cmds)) = fields.remove("cmds") else {
        return Err((400, "\"cmds\" must be an array of command arrays".to_owned()));
    };
    if cmds.is_empty() {
        return Err((400, "\"cmds\" is empty".to_owned()));
    }
    if cmds.len() > max_pipeline {
        return Err((413, format!("\"cmds\" has more than {max_pipeline} commands (http.max_pipeline)")));
    }
    cmds.into_iter().enumerate().map(|(i, c)| ws::parse_cmd(Some(c), max_args).map_err(|e| (400, format!("cmds[{i}]: {e}")))).collect()
}

fn object(body: &[u8], example: &str, field: &str) -> Result<serde_json::Map<String, Value>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(fields) = value else { return Err(format!("the body is a JSON object such as {example}")) };
    if let Some(unknown) = fields.keys().find(|k| *k != field) {
        return Err(format!("unknown field \"{unknown}\" (the body has \"{field}\")"));
    }
    Ok(fields)
}

fn is_one_of(request: &Request, names: &[&str]) -> bool {
    names.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(request.name()))
}

/// Whether the session must be reset after this command (see [`SESSION_CHANGING`]).
pub fn changes_session(request: &Request) -> bool {
    is_one_of(request, SESSION_CHANGING)
}

/// The refusal for a command the command endpoints do not run.
pub fn refusal(request: &Request) -> Option<CommandError> {
    is_one_of(request, STREAMING).then(|| {
        CommandError::new(format!(
            "ERR {} needs a connection that stays open for pushes: use GET /v1/subscribe (or the WebSocket)",
            String::from_utf8_lossy(request.name()).to_uppercase()
        ))
    })
}

/// The HTTP status of a command's answer (docs/http.md has the table).
pub fn status(reply: &Reply) -> u16 {
    let Reply::Error(e) = reply else { return 200 };
    error_status(e.code())
}

pub fn error_status(code: &str) -> u16 {
    match code {
        "NOAUTH" | "WRONGPASS" => 401,
        "NOPERM" => 403,
        "SCHEMA" => 422,
        "WRONGTYPE" | "CONFLICT" | "LEASE" | "BUSYKEY" | "BUSYGROUP" | "CLOSED" | "NOJOB" | "NOGROUP" | "CANCELLED" | "JOBFAILED"
        | "JOBDEAD" | "LOST" | "TRIMMED" | "EXECABORT" | "TIMEOUT" | "FULL" => 409,
        "MISCONF" | "LOADING" | "OOM" | "BUSY" | "MASTERDOWN" => 503,
        _ => 400,
    }
}

/// The body answering one command.
pub fn one_body(reply: &Reply) -> Vec<u8> {
    serde_json::to_vec(&ws::outcome_json(reply)).expect("JSON values always serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        let one = parse_one(br#"{"cmd": ["SET", "k", 5]}"#, 10).unwrap();
        assert_eq!(one.parts().len(), 3);
        assert!(parse_one(b"{", 10).unwrap_err().starts_with("invalid JSON"));
        assert!(parse_one(b"[1]", 10).unwrap_err().contains("JSON object"));
        assert!(parse_one(br#"{"cmd": ["GET"], "x": 1}"#, 10).unwrap_err().contains("unknown field"));
        assert!(parse_one(br#"{"cmd": []}"#, 10).unwrap_err().contains("empty"));
        assert_eq!(parse_many(br#"{"cmds": [["PING"], ["GET", "k"]]}"#, 10, 5).unwrap().len(), 2);
        let bad = parse_many(br#"{"cmds": [["PING"], [true], ["GET", "k"]]}"#, 10, 5).unwrap_err();
        assert!(bad.0 == 400 && bad.1.starts_with("cmds[1]"), "{bad:?}");
        assert_eq!(parse_many(br#"{"cmds": [["PING"], ["PING"]]}"#, 10, 1).unwrap_err().0, 413);
        assert_eq!(parse_many(br#"{"cmds": []}"#, 10, 1).unwrap_err().0, 400);
    }

    #[test]
    fn statuses_and_refusals() {
        let err = |text: &'static str| Reply::Error(CommandError::fixed(text));
        assert_eq!(status(&Reply::ok()), 200);
        assert_eq!(status(&err("NOAUTH Authentication required.")), 401);
        assert_eq!(status(&err("NOPERM no")), 403);
        assert_eq!(status(&err("WRONGTYPE x")), 409);
        assert_eq!(status(&err("SCHEMA /a: bad")), 422);
        assert_eq!(status(&err("ERR unknown command 'X'")), 400);
        assert!(refusal(&Request::from_strs(&["subscribe", "a"])).is_some());
        assert!(refusal(&Request::from_strs(&["GET", "a"])).is_none());
        assert!(changes_session(&Request::from_strs(&["select", "1"])));
        assert_eq!(one_body(&Reply::Int(3)), br#"{"result":3}"#);
    }
}
