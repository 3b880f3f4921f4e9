//! Server-sent event streams: what each `GET /v1/...` stream follows, the commands that follow it, and
//! how their replies and pushes become events.
//!
//! A stream is driven by ordinary commands that go through dispatch like any client's (so auth,
//! permissions and stats apply), one step at a time:
//!
//! - `/v1/subscribe`: `SUBSCRIBE` / `PSUBSCRIBE`, then every push is an event whose data is the
//!   WebSocket push (`{"push": "message", "channel": ..., "data": ...}`), through the connection's
//!   outbox and its slow-consumer policy like every subscriber.
//! - `/v1/streams/{key}`: `STREAM.READ key FROM next COUNT n BLOCK heartbeat`, entries as events
//!   with `id: <offset>`, then `event: end` once the stream is closed.
//! - `/v1/jobs/{id}/events`: `SUBSCRIBE __job__:<id>` (progress and the other live events),
//!   `JOB.STATUS`, then `JOB.READ` for the chunks (`id: <offset>`), then `JOB.RESULT` as `result` or
//!   `error` (`id: <chunk count>`) and `end`.
//! - `/v1/bb/{scope}/changes`: `PSUBSCRIBE __bb:*@<scope>__:*` as the wake-up, `BB.CHANGES scope
//!   SINCE seq` for the changes themselves (`id: <seq>`), so a wake-up lost to a slow consumer costs
//!   nothing: the journal is the truth.
//!
//! Ids are the followed log's own positions, so an `EventSource` that reconnects with
//! `Last-Event-ID` resumes right after the last event it saw, without loss or duplicates. A stream
//! that has nothing left for such a reader answers 204 (an `EventSource` then stops reconnecting); a
//! position the log no longer holds answers 410.

use std::fmt::Write as _;

use bytes::{Bytes, BytesMut};
use herald_protocol::json::reply_to_json;
use herald_protocol::{Reply, Request};
use serde_json::{Value, json};

use super::response;
use super::router::Route;

/// Which command a reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Subscribe,
    StreamRead,
    JobStatus,
    JobRead,
    JobResult,
    /// `BB.STATS`: where a changes stream without a start position begins (now).
    ChangesStart,
    Changes,
}

/// What the wire does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing until a push arrives.
    Wait,
    /// Run this step at the next turn.
    Now(Step),
    /// The stream is over: close the connection.
    End,
}

/// What a stream follows, and where it is.
#[derive(Debug)]
enum Kind {
    Subscribe,
    Stream { key: Bytes, next: u64 },
    Job { id: Bytes, next: u64, resume: Option<u64> },
    Changes { scope: Bytes, after: Option<u64> },
}

/// The stream bounds of `[http]`.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub count: usize,
    pub block_ms: u64,
}

/// Why a stream cannot open: the status and the message.
pub type Refused = (u16, String);

/// One event stream.
#[derive(Debug)]
pub struct Feed {
    kind: Kind,
    settings: Settings,
    /// Subscription replies still to come before the stream opens.
    subscribing: usize,
    opened: bool,
    /// Header lines for the response (CORS).
    headers: String,
    /// Events that came before the head went out.
    early: BytesMut,
}

impl Feed {
    /// The stream for `route` and the commands that set it up, or the status and message refusing it.
    pub fn open(
        route: &Route,
        query: &[(String, String)],
        last_event_id: Option<&str>,
        settings: Settings,
        headers: String,
    ) -> Result<(Feed, Vec<(Step, Request)>), Refused> {
        let param = |name: &str| query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect::<Vec<_>>();
        let number =
            |name: &str, text: &str| text.parse::<u64>().map_err(|_| (400, format!("{name} must be a non-negative integer, got '{text}'")));
        // The position to resume after: Last-Event-ID wins over ?from=N (the first position wanted).
        let after: Option<u64> = match (last_event_id, param("from").first()) {
            (Some(id), _) if !id.is_empty() => Some(number("Last-Event-ID", id)?),
            (_, Some(from)) => number("from", from)?.checked_sub(1),
            _ => None,
        };
        let from_given = last_event_id.is_some_and(|id| !id.is_empty()) || !param("from").is_empty();
        let mut steps = Vec::new();
        let kind = match route {
            Route::Subscribe => {
                let (channels, patterns) = (param("channel"), param("pattern"));
                if channels.is_empty() && patterns.is_empty() {
                    return Err((400, "give at least one ?channel=name or ?pattern=glob".to_owned()));
                }
                for (name, list) in [("SUBSCRIBE", channels), ("PSUBSCRIBE", patterns)] {
                    if !list.is_empty() {
                        steps.push((Step::Subscribe, command(name, list.into_iter().map(Bytes::from))));
                    }
                }
                Kind::Subscribe
            }
            Route::Stream(key) => {
                let next = if from_given { after.map_or(0, |a| a + 1) } else { 0 };
                steps.push((Step::StreamRead, Request::new(Vec::new())));
                Kind::Stream { key: Bytes::from(key.clone()), next }
            }
            Route::Job(id) => {
                let mut channel = b"__job__:".to_vec();
                channel.extend_from_slice(id.as_bytes());
                steps.push((Step::Subscribe, command("SUBSCRIBE", [Bytes::from(channel)])));
                steps.push((Step::JobStatus, command("JOB.STATUS", [Bytes::from(id.clone())])));
                let resume = last_event_id.filter(|id| !id.is_empty()).and(after);
                Kind::Job { id: Bytes::from(id.clone()), next: after.map_or(0, |a| a + 1), resume }
            }
            Route::Changes(scope) => {
                let pattern = format!("__bb:*@{}__:*", glob_escape(scope));
                steps.push((Step::Subscribe, command("PSUBSCRIBE", [Bytes::from(pattern)])));
                let after = if from_given { Some(after.unwrap_or(0)) } else { None };
                steps.push((if after.is_some() { Step::Changes } else { Step::ChangesStart }, Request::new(Vec::new())));
                Kind::Changes { scope: Bytes::from(scope.clone()), after }
            }
            _ => return Err((404, "not an event stream".to_owned())),
        };
        let subscribing = steps.iter().filter(|(s, _)| *s == Step::Subscribe).count();
        let mut feed = Feed { kind, settings, subscribing, opened: false, headers, early: BytesMut::new() };
        for (step, request) in &mut steps {
            if request.is_empty() {
                *request = feed.request(*step);
            }
        }
        Ok((feed, steps))
    }

    /// The command for `step` from where the stream is now.
    pub fn request(&mut self, step: Step) -> Request {
        let count = Bytes::from(self.settings.count.to_string());
        // Reads wait at most a heartbeat (a timed-out read is the heartbeat), but only once the
        // stream is open: the head goes out at once.
        let block: Vec<Bytes> = if self.opened { vec!["BLOCK".into(), self.settings.block_ms.to_string().into()] } else { Vec::new() };
        let number = |n: u64| Bytes::from(n.to_string());
        match (&self.kind, step) {
            (Kind::Stream { key, next }, _) => {
                command("STREAM.READ", [key.clone(), "FROM".into(), number(*next), "COUNT".into(), count].into_iter().chain(block))
            }
            (Kind::Job { id, next, .. }, Step::JobRead) => {
                command("JOB.READ", [id.clone(), "FROM".into(), number(*next), "COUNT".into(), count].into_iter().chain(block))
            }
            (Kind::Job { id, .. }, Step::JobResult) => command("JOB.RESULT", [id.clone()]),
            (Kind::Job { id, .. }, _) => command("JOB.STATUS", [id.clone()]),
            (Kind::Changes { scope, .. }, Step::ChangesStart) => command("BB.STATS", [scope.clone()]),
            (Kind::Changes { scope, after }, _) => {
                command("BB.CHANGES", [scope.clone(), "SINCE".into(), number(after.unwrap_or(0)), "COUNT".into(), count])
            }
            (Kind::Subscribe, _) => command("PING", []),
        }
    }

    pub fn is_open(&self) -> bool {
        self.opened
    }

    /// Whether the connection's heartbeat timer should run: streams and jobs are read with blocking
    /// commands that time out after a heartbeat interval, and that timeout is their heartbeat.
    pub fn wants_heartbeats(&self) -> bool {
        self.opened && matches!(self.kind, Kind::Subscribe | Kind::Changes { .. })
    }

    /// Sends the head (and what waited for it).
    fn open_stream(&mut self, out: &mut BytesMut) {
        if !self.opened {
            self.opened = true;
            response::write_event_stream_head(out, &self.headers);
            out.extend_from_slice(b"retry: 1000\n\n");
            out.extend_from_slice(&std::mem::take(&mut self.early));
        }
    }

    /// Ends the stream on an error: an HTTP error before the head went out, an `error` event after.
    fn fail(&mut self, status: u16, code: &str, message: &str, out: &mut BytesMut) -> Next {
        if self.opened {
            event(out, None, Some("error"), &json!({ "code": code, "message": message }).to_string());
        } else {
            response::write(out, status, "application/json", &self.headers, &response::error_body(code, message), false);
        }
        Next::End
    }

    /// Nothing left for this reader (it has seen the end): 204 tells an `EventSource` to stop.
    fn nothing_left(&mut self, out: &mut BytesMut) -> Next {
        response::write(out, 204, "", &self.headers, b"", false);
        Next::End
    }

    /// Takes the reply to `step`, writes its events into `out`, and says what comes next.
    pub fn on_reply(&mut self, step: Step, reply: &Reply, out: &mut BytesMut) -> Next {
        if let (Reply::Error(e), Step::JobResult, Kind::Job { next, .. }) = (reply, step, &self.kind) {
            // The job did not succeed: that is its outcome, told like a result.
            event(out, Some(*next), Some("error"), &json!({ "code": e.code(), "message": e.message() }).to_string());
            event(out, None, Some("end"), "{}");
            return Next::End;
        }
        if let Reply::Error(e) = reply {
            let status = match e.code() {
                "LOST" | "TRIMMED" => 410,
                code => super::cmd::error_status(code),
            };
            if self.opened && e.code() == "LOST" {
                event(out, None, Some("lost"), &json!({ "code": e.code(), "message": e.message() }).to_string());
                return Next::End;
            }
            return self.fail(status, e.code(), e.message(), out);
        }
        match step {
            Step::Subscribe => {
                self.subscribing = self.subscribing.saturating_sub(1);
                if self.subscribing == 0 && matches!(self.kind, Kind::Subscribe) {
                    self.open_stream(out);
                }
                Next::Wait
            }
            Step::StreamRead => self.on_read(reply, out, Step::StreamRead),
            Step::JobStatus => self.on_job_status(reply, out),
            Step::JobRead => self.on_read(reply, out, Step::JobRead),
            Step::JobResult => {
                let next = match &self.kind {
                    Kind::Job { next, .. } => *next,
                    _ => 0,
                };
                event(out, Some(next), Some("result"), &reply_to_json(reply).to_string());
                event(out, None, Some("end"), "{}");
                Next::End
            }
            Step::ChangesStart => {
                let seq = reply_to_json(reply).get("seq").and_then(Value::as_u64).unwrap_or(0);
                if let Kind::Changes { after, .. } = &mut self.kind {
                    *after = Some(seq);
                }
                self.open_stream(out);
                Next::Now(Step::Changes)
            }
            Step::Changes => self.on_changes(reply, out),
        }
    }

    /// The job exists: open with its status, unless this reader already saw its end.
    fn on_job_status(&mut self, reply: &Reply, out: &mut BytesMut) -> Next {
        let status = reply_to_json(reply);
        if status.is_null() {
            return self.fail(404, "NOJOB", "no such job (or its result expired)", out);
        }
        let ended = matches!(status.get("state").and_then(Value::as_str), Some("done" | "error" | "cancelled" | "dead"));
        let chunks = status.get("chunks").and_then(Value::as_u64).unwrap_or(0);
        if let Kind::Job { resume: Some(seen), .. } = self.kind
            && ended
            && seen >= chunks
        {
            return self.nothing_left(out);
        }
        self.open_stream(out);
        event(out, None, Some("status"), &status.to_string());
        Next::Now(Step::JobRead)
    }

    /// Entries of a stream or chunks of a job (`STREAM.READ` / `JOB.READ`: entries, next, closed).
    fn on_read(&mut self, reply: &Reply, out: &mut BytesMut, step: Step) -> Next {
        if matches!(reply, Reply::Nil) {
            self.heartbeat(out);
            return Next::Now(step);
        }
        let read = reply_to_json(reply);
        let entries = read.get("entries").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let closed = read.get("closed").and_then(Value::as_bool).unwrap_or(false);
        if !self.opened && step == Step::StreamRead && closed && entries.is_empty() {
            return self.nothing_left(out);
        }
        self.open_stream(out);
        let name = if step == Step::JobRead { Some("chunk") } else { None };
        for entry in entries {
            if let Some(offset) = entry.get(0).and_then(Value::as_u64) {
                event(out, Some(offset), name, &entry.get(1).cloned().unwrap_or(Value::Null).to_string());
            }
        }
        let cursor = match &mut self.kind {
            Kind::Stream { next, .. } | Kind::Job { next, .. } => next,
            _ => return Next::End,
        };
        if let Some(next) = read.get("next").and_then(Value::as_u64) {
            *cursor = next.max(*cursor);
        }
        match (closed, step) {
            (true, Step::JobRead) => Next::Now(Step::JobResult),
            (true, _) => {
                event(out, None, Some("end"), &json!({ "next": *cursor }).to_string());
                Next::End
            }
            _ => Next::Now(step),
        }
    }

    fn on_changes(&mut self, reply: &Reply, out: &mut BytesMut) -> Next {
        self.open_stream(out);
        let read = reply_to_json(reply);
        let changes = read.get("changes").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let Kind::Changes { after, .. } = &mut self.kind else { return Next::End };
        for change in changes {
            if let Some(seq) = change.get("seq").and_then(Value::as_u64) {
                event(out, Some(seq), None, &change.to_string());
                *after = Some(seq);
            }
        }
        // A full page may have more behind it; otherwise the next push wakes the stream.
        if changes.len() >= self.settings.count { Next::Now(Step::Changes) } else { Next::Wait }
    }

    /// A push the hub rendered for this connection (JSON, as the WebSocket gets it).
    pub fn on_push(&mut self, frame: &[u8], out: &mut BytesMut) -> Next {
        match &self.kind {
            Kind::Subscribe => {
                let target = if self.opened { out } else { &mut self.early };
                event(target, None, None, &String::from_utf8_lossy(frame));
                Next::Wait
            }
            Kind::Job { .. } => {
                // Progress and the job's other live events; chunks and the end come from the reads,
                // which carry their ids.
                let message: Option<Value> = serde_json::from_slice::<Value>(frame)
                    .ok()
                    .and_then(|push| push.get("data").and_then(Value::as_str).and_then(|d| serde_json::from_str(d).ok()));
                if let Some(message) = message
                    && let Some(kind @ ("progress" | "claimed" | "queued" | "failed" | "lease-expired")) =
                        message.get("event").and_then(Value::as_str)
                {
                    let target = if self.opened { out } else { &mut self.early };
                    event(target, None, Some(kind), &message.to_string());
                }
                Next::Wait
            }
            Kind::Changes { .. } if self.opened => Next::Now(Step::Changes),
            _ => Next::Wait,
        }
    }

    /// Drop-oldest discarded `lost` pushes. Subscribers are told, as on the WebSocket; a changes
    /// stream re-reads its journal, which lost nothing.
    pub fn on_lagged(&mut self, lost: u64, out: &mut BytesMut) -> Next {
        match self.kind {
            Kind::Changes { .. } if self.opened => Next::Now(Step::Changes),
            Kind::Changes { .. } => Next::Wait,
            _ => {
                let target = if self.opened { out } else { &mut self.early };
                event(target, None, Some("lagged"), &json!({ "push": "lagged", "count": lost }).to_string());
                Next::Wait
            }
        }
    }

    /// A comment line that keeps proxies from closing a quiet stream.
    pub fn heartbeat(&self, out: &mut BytesMut) {
        if self.opened {
            out.extend_from_slice(b": heartbeat\n\n");
        }
    }
}

fn command(name: &'static str, args: impl IntoIterator<Item = Bytes>) -> Request {
    let mut parts = vec![Bytes::from_static(name.as_bytes())];
    parts.extend(args);
    Request::new(parts)
}

/// Appends one event. `data` is a single line (compact JSON).
fn event(out: &mut BytesMut, id: Option<u64>, name: Option<&str>, data: &str) {
    let mut text = String::with_capacity(data.len() + 32);
    if let Some(id) = id {
        let _ = writeln!(text, "id: {id}");
    }
    if let Some(name) = name {
        let _ = writeln!(text, "event: {name}");
    }
    let _ = write!(text, "data: {data}\n\n");
    out.extend_from_slice(text.as_bytes());
}

/// A scope name as a literal inside a Redis glob pattern.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: Settings = Settings { count: 2, block_ms: 500 };

    fn text(out: &BytesMut) -> String {
        String::from_utf8_lossy(out).into_owned()
    }

    fn parts(r: &Request) -> Vec<String> {
        r.parts().iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect()
    }

    #[test]
    fn stream_resumes_after_the_last_event_id() {
        let (mut feed, steps) = Feed::open(&Route::Stream("s".into()), &[], Some("4"), SETTINGS, String::new()).unwrap();
        assert_eq!(parts(&steps[0].1), ["STREAM.READ", "s", "FROM", "5", "COUNT", "2"]);
        let read = Reply::fields(vec![
            ("entries", Reply::Array(vec![Reply::Array(vec![Reply::Int(5), Reply::bulk(Bytes::from("x"))])])),
            ("next", Reply::Int(6)),
            ("closed", Reply::Bool(false)),
        ]);
        let mut out = BytesMut::new();
        assert_eq!(feed.on_reply(Step::StreamRead, &read, &mut out), Next::Now(Step::StreamRead));
        assert!(text(&out).starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream"));
        assert!(text(&out).ends_with("id: 5\ndata: \"x\"\n\n"));
        assert_eq!(parts(&feed.request(Step::StreamRead)), ["STREAM.READ", "s", "FROM", "6", "COUNT", "2", "BLOCK", "500"]);
        out.clear();
        assert_eq!(feed.on_reply(Step::StreamRead, &Reply::Nil, &mut out), Next::Now(Step::StreamRead));
        assert_eq!(text(&out), ": heartbeat\n\n");
    }

    #[test]
    fn a_reader_past_the_end_gets_204_and_lost_positions_410() {
        let (mut feed, _) = Feed::open(&Route::Stream("s".into()), &[("from".into(), "3".into())], None, SETTINGS, String::new()).unwrap();
        let done = Reply::fields(vec![("entries", Reply::Array(vec![])), ("next", Reply::Int(3)), ("closed", Reply::Bool(true))]);
        let mut out = BytesMut::new();
        assert_eq!(feed.on_reply(Step::StreamRead, &done, &mut out), Next::End);
        assert!(text(&out).starts_with("HTTP/1.1 204"));
        let (mut feed, steps) = Feed::open(&Route::Changes("a*".into()), &[], Some("7"), SETTINGS, String::new()).unwrap();
        assert_eq!(parts(&steps[0].1), ["PSUBSCRIBE", "__bb:*@a\\*__:*"]);
        assert_eq!(parts(&steps[1].1), ["BB.CHANGES", "a*", "SINCE", "7", "COUNT", "2"]);
        out.clear();
        let lost = Reply::Error(herald_protocol::CommandError::fixed("LOST gone"));
        assert_eq!(feed.on_reply(Step::Changes, &lost, &mut out), Next::End);
        assert!(text(&out).starts_with("HTTP/1.1 410"));
    }

    #[test]
    fn bad_positions_and_empty_subscriptions_are_refused() {
        assert_eq!(Feed::open(&Route::Subscribe, &[], None, SETTINGS, String::new()).unwrap_err().0, 400);
        let from = [("from".to_owned(), "x".to_owned())];
        assert_eq!(Feed::open(&Route::Stream("s".into()), &from, None, SETTINGS, String::new()).unwrap_err().0, 400);
    }
}
