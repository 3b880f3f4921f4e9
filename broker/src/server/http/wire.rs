//! The HTTP wire: the connection core's third adapter. Requests on a keep-alive connection become
//! commands (`POST /v1/cmd`, `/v1/pipeline`) whose replies become HTTP responses; an event stream
//! (`GET /v1/subscribe` and the followers of `sse.rs`) becomes the commands that follow it, and their
//! replies and the connection's pushes become events.
//!
//! Everything that is not about bytes is the core's (`server/conn/`): dispatch and the session,
//! blocked commands and their timeouts, the outbox and its slow-consumer policy, the durability wait
//! before a response goes out (an acknowledged write is as durable as `appendfsync` promises), the
//! keep-alive timeout and heartbeats, the end.
//!
//! Each HTTP request starts from a fresh session: its credentials are presented with it (`AUTH`
//! through dispatch, `auth.rs`), and a request that changed the session (SELECT, MULTI, other
//! credentials...) has it `RESET` before the next one on the same connection.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use herald_protocol::{CommandError, Encoding, Reply, Request, ws};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::auth::Presented;
use super::cmd;
use super::cors::Origin;
use super::request::{self, HttpError, HttpRequest, Parsed};
use super::response;
use super::router::{self, Route, Routed};
use super::sse::{self, Feed, Next, Step};
use crate::broker::Broker;
use crate::clients::Transport;
use crate::server::conn::{Decoded, End, Malformed, Profile, Stream, Undecodable, Wire};

/// What a reply is for.
#[derive(Debug)]
pub enum Tag {
    /// `RESET` / `AUTH` before a request's commands: silent unless refused.
    Prelude,
    /// One of the current request's commands.
    Command,
    /// A step of the event stream.
    Step(Step),
    /// A response the wire made itself.
    Local(Bytes),
}

/// A command (or answer) ready for the core.
#[derive(Debug)]
enum Queued {
    Run(Tag, Request),
    Refuse(Tag, CommandError),
    Local(Bytes),
}

/// The request being answered on a keep-alive connection.
#[derive(Debug)]
struct Exchange {
    pipeline: bool,
    keep_alive: bool,
    /// Header lines every response to it carries (CORS).
    headers: String,
    /// A pipeline's answers so far.
    results: Vec<Value>,
    /// Answers still to come.
    expected: usize,
}

/// What the session holds from earlier requests on this connection.
#[derive(Debug, Default)]
struct SessionMark {
    /// The credentials it is authenticated with (the `Authorization` value).
    credentials: Option<String>,
    /// A command changed it (SELECT, MULTI...) or authentication failed: reset before the next one.
    dirty: bool,
}

/// The `[http]` settings a connection uses.
#[derive(Debug, Clone)]
struct Settings {
    limits: request::Limits,
    max_args: usize,
    max_pipeline: usize,
    request_timeout: Duration,
    keepalive: Option<Duration>,
    heartbeat: Duration,
    flush_at: usize,
    follow: sse::Settings,
    allowed_origins: Vec<String>,
}

/// HTTP over any byte stream.
pub struct HttpWire<S> {
    stream: S,
    rbuf: BytesMut,
    settings: Settings,
    queue: VecDeque<Queued>,
    exchange: Option<Exchange>,
    feed: Option<Feed>,
    /// The event stream's next step, and whether `read` has announced it (one step per batch).
    due: Option<Step>,
    announced: bool,
    /// No more requests: the connection ends once what is owed is written.
    closing: bool,
    /// Bytes of the wire's own that go before anything else (`100 Continue`).
    own: Vec<u8>,
    continue_sent: bool,
    /// When the first byte of the request being received arrived.
    partial_since: Option<Instant>,
    /// Why the request stream was refused, answered before closing.
    refusal: Option<HttpError>,
    session: SessionMark,
    /// The first request arrived before the wire existed: the first `read` hands it over at once.
    primed: bool,
}

impl<S: Stream> HttpWire<S> {
    /// A wire over `stream`, with `leftover` the bytes already read from it (the first request).
    pub fn new(stream: S, leftover: Vec<u8>, broker: &Broker) -> Self {
        let http = &broker.config.http;
        let millis = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms));
        let heartbeat = Duration::from_millis(http.heartbeat_ms.max(1));
        HttpWire {
            stream,
            rbuf: BytesMut::from(&leftover[..]),
            settings: Settings {
                limits: request::Limits { max_head: http.max_head_bytes, max_body: http.max_body_bytes },
                max_args: broker.config.limits.max_multibulk_len,
                max_pipeline: http.max_pipeline,
                request_timeout: Duration::from_millis(http.request_timeout_ms.max(1)),
                keepalive: millis(http.keepalive_timeout_ms),
                heartbeat,
                flush_at: http.write_buffer_bytes,
                follow: sse::Settings { count: http.follow_count, block_ms: heartbeat.as_millis() as u64 },
                allowed_origins: http.allowed_origins.clone(),
            },
            queue: VecDeque::new(),
            exchange: None,
            feed: None,
            due: None,
            announced: false,
            closing: false,
            own: Vec::new(),
            continue_sent: false,
            partial_since: None,
            refusal: None,
            session: SessionMark::default(),
            primed: !leftover.is_empty(),
        }
    }

    /// Sorts a complete request into what the core runs or what the wire answers.
    fn start(&mut self, req: HttpRequest) {
        let origin = Origin::check(req.header("origin"), req.header("host"), &self.settings.allowed_origins);
        let keep_alive = req.keep_alive;
        // A request for something that does not exist closes the connection, as it always has: such
        // a client is likely not speaking this API.
        let route = match router::route(&req.method, &req.path) {
            Routed::Found(route) => route,
            Routed::OtherMethods { allow, route } if req.method == "OPTIONS" && route.is_api() => {
                return match &origin {
                    Origin::Refused(o) => {
                        self.answer_error(403, "ERR", &format!("origin {o} is not allowed (http.allowed_origins)"), "", keep_alive)
                    }
                    _ => self.answer(204, "", &origin.preflight_headers(&allow, 600), b"", keep_alive),
                };
            }
            Routed::OtherMethods { allow, .. } => {
                let message = format!("{} is not served here; allowed: {allow}", req.method);
                return self.answer_error(405, "ERR", &message, &format!("Allow: {allow}\r\n"), false);
            }
            Routed::NotFound => {
                let message = "no such endpoint: see docs/http.md (POST /v1/cmd, POST /v1/pipeline, GET /v1/subscribe, ...)";
                return self.answer_error(404, "ERR", message, "", false);
            }
        };
        if let Some((content_type, body)) = response::page(&route) {
            let mut out = BytesMut::new();
            response::write_static(&mut out, 200, content_type, body);
            self.queue.push_back(Queued::Local(out.freeze()));
            self.closing = true;
            return;
        }
        if route == Route::WebSocket {
            return self.answer_error(400, "ERR", "a WebSocket opens on a connection of its own: connect to /ws anew", "", false);
        }
        if let Origin::Refused(o) = &origin {
            return self.answer_error(403, "ERR", &format!("origin {o} is not allowed (http.allowed_origins)"), "", keep_alive);
        }
        let headers = origin.headers();
        let streaming = !matches!(route, Route::Cmd | Route::Pipeline);
        let query = req.query_pairs();
        let presented = match Presented::from_request(req.header("authorization"), streaming.then_some(&query[..])) {
            Ok(p) => p,
            Err(e) => return self.answer_error(401, e.code(), e.message(), &headers, keep_alive),
        };
        let credentials = match presented {
            Presented::Anonymous => None,
            _ => Some(req.header("authorization").map_or_else(|| format!("{query:?}"), str::to_owned)),
        };
        self.prelude(&presented, credentials);
        match route {
            Route::Cmd => {
                self.exchange = Some(Exchange { pipeline: false, keep_alive, headers, results: Vec::new(), expected: 1 });
                let queued = match cmd::parse_one(&req.body, self.settings.max_args) {
                    Ok(request) => self.command(request),
                    Err(message) => Queued::Refuse(Tag::Command, CommandError::new(format!("ERR {message}"))),
                };
                self.queue.push_back(queued);
            }
            Route::Pipeline => match cmd::parse_many(&req.body, self.settings.max_args, self.settings.max_pipeline) {
                Err((status, message)) => self.answer_error(status, "ERR", &message, &headers, keep_alive),
                Ok(commands) => {
                    self.exchange = Some(Exchange { pipeline: true, keep_alive, headers, results: Vec::new(), expected: commands.len() });
                    for request in commands {
                        let queued = self.command(request);
                        self.queue.push_back(queued);
                    }
                }
            },
            route => {
                // An event stream: the connection is its from now on.
                let last_event_id = req.header("last-event-id");
                match Feed::open(&route, &query, last_event_id, self.settings.follow, headers.clone()) {
                    Err((status, message)) => self.answer_error(status, "ERR", &message, &headers, false),
                    Ok((feed, steps)) => {
                        self.feed = Some(feed);
                        self.queue.extend(steps.into_iter().map(|(step, request)| Queued::Run(Tag::Step(step), request)));
                    }
                }
            }
        }
    }

    /// A command of the request, or its refusal.
    fn command(&mut self, request: Request) -> Queued {
        if let Some(refused) = cmd::refusal(&request) {
            return Queued::Refuse(Tag::Command, refused);
        }
        self.session.dirty |= cmd::changes_session(&request);
        Queued::Run(Tag::Command, request)
    }

    /// Queues what brings the session to this request's credentials: `RESET` when earlier requests
    /// changed it, `AUTH` when it is not already authenticated with them.
    fn prelude(&mut self, presented: &Presented, credentials: Option<String>) {
        let auth = presented.auth_request();
        let mark = &mut self.session;
        if mark.dirty || (mark.credentials.is_some() && mark.credentials != credentials) {
            self.queue.push_back(Queued::Run(Tag::Prelude, Request::new(vec![Bytes::from_static(b"RESET")])));
            *mark = SessionMark::default();
        }
        if let Some(auth) = auth
            && mark.credentials != credentials
        {
            self.queue.push_back(Queued::Run(Tag::Prelude, auth));
            mark.credentials = credentials;
        }
    }

    /// Queues a response of the wire's own.
    fn answer(&mut self, status: u16, content_type: &str, headers: &str, body: &[u8], keep_alive: bool) {
        let mut out = BytesMut::new();
        response::write(&mut out, status, content_type, headers, body, keep_alive);
        self.queue.push_back(Queued::Local(out.freeze()));
        self.closing |= !keep_alive;
    }

    fn answer_error(&mut self, status: u16, code: &str, message: &str, headers: &str, keep_alive: bool) {
        let mut headers = headers.to_owned();
        if status == 401 {
            headers.push_str("WWW-Authenticate: Basic realm=\"herald\", Bearer realm=\"herald\"\r\n");
        }
        self.answer(status, "application/json", &headers, &response::error_body(code, message), keep_alive);
    }

    /// Writes the current request's response.
    fn respond(&mut self, status: u16, body: &[u8], out: &mut BytesMut) {
        let Some(exchange) = self.exchange.take() else { return };
        let mut headers = exchange.headers;
        if status == 401 {
            headers.push_str("WWW-Authenticate: Basic realm=\"herald\", Bearer realm=\"herald\"\r\n");
        }
        response::write(out, status, "application/json", &headers, body, exchange.keep_alive);
        self.closing |= !exchange.keep_alive;
    }

    fn apply(&mut self, next: Next) {
        match next {
            Next::Wait => {}
            Next::Now(step) => self.due = Some(step),
            Next::End => {
                self.closing = true;
                self.due = None;
                self.queue.clear();
            }
        }
    }

    /// Takes the next request off the input into the queue; `false` when more input is needed.
    fn next_request(&mut self) -> Result<bool, End> {
        if self.closing || self.feed.is_some() || self.exchange.is_some() || self.rbuf.is_empty() {
            return Ok(false);
        }
        match request::parse(&mut self.rbuf, self.settings.limits) {
            Ok(Parsed::Complete(req)) => {
                self.continue_sent = false;
                self.partial_since = (!self.rbuf.is_empty()).then(Instant::now);
                self.start(req);
                Ok(true)
            }
            Ok(Parsed::Incomplete { expects_continue }) => {
                self.partial_since.get_or_insert_with(Instant::now);
                if expects_continue && !self.continue_sent {
                    self.continue_sent = true;
                    self.own.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
                Ok(false)
            }
            Err(e) => {
                self.closing = true;
                let end = match &e {
                    HttpError::HeadTooLarge(_) | HttpError::BodyTooLarge(..) => End::Malformed(Malformed::TooBig(e.to_string())),
                    _ => End::Malformed(Malformed::Broken(e.to_string())),
                };
                self.refusal = Some(e);
                Err(end)
            }
        }
    }

    /// The refusal's response, once.
    fn farewell(&mut self, out: &mut BytesMut) {
        if let Some(e) = self.refusal.take() {
            let code = if e.status() == 408 { "TIMEOUT" } else { "ERR" };
            response::write(out, e.status(), "application/json", "", &response::error_body(code, &e.to_string()), false);
        }
    }
}

impl<S: Stream> Wire for HttpWire<S> {
    type Tag = Tag;

    const TRANSPORT: Transport = Transport::Http;
    const ENCODING: Encoding = Encoding::Json;

    fn profile(&self) -> Profile {
        let streaming = self.feed.is_some();
        Profile {
            flush_at: self.settings.flush_at,
            idle: if streaming { None } else { self.settings.keepalive },
            redis_timeout: false,
            auth: None,
            heartbeat: self.feed.as_ref().filter(|f| f.wants_heartbeats()).map(|_| self.settings.heartbeat),
        }
    }

    async fn read(&mut self) -> Result<usize, End> {
        if self.closing && self.queue.is_empty() {
            return Err(End::Quit);
        }
        if std::mem::take(&mut self.primed) {
            return Ok(0);
        }
        if self.due.is_some() {
            // The event stream's next step: one per turn of the core's loop, which answers the
            // doorbell and flushes in between; yielding lets the io thread serve others.
            tokio::task::yield_now().await;
            self.announced = true;
            return Ok(0);
        }
        if self.feed.is_some() {
            // Nothing is expected from an event stream's client but its going away.
            let mut scratch = [0u8; 512];
            return match self.stream.read(&mut scratch).await {
                Ok(0) => Err(End::PeerClosed),
                Ok(n) => Ok(n),
                Err(e) => Err(End::io(e)),
            };
        }
        if self.rbuf.capacity() - self.rbuf.len() < 2048 {
            self.rbuf.reserve(4096);
        }
        let read = match self.partial_since {
            Some(since) => match tokio::time::timeout_at(since + self.settings.request_timeout, self.stream.read_buf(&mut self.rbuf)).await
            {
                Ok(read) => read,
                Err(_) => {
                    self.refusal = Some(HttpError::Timeout);
                    return Err(End::Malformed(Malformed::Broken(HttpError::Timeout.to_string())));
                }
            },
            None => self.stream.read_buf(&mut self.rbuf).await,
        };
        match read {
            Ok(0) => Err(End::PeerClosed),
            Ok(n) => Ok(n),
            Err(e) => Err(End::io(e)),
        }
    }

    fn decode(&mut self, _authenticated: bool) -> Decoded<Tag> {
        loop {
            if let Some(queued) = self.queue.pop_front() {
                return match queued {
                    Queued::Run(tag, request) => Ok(Some((tag, request))),
                    Queued::Refuse(tag, error) => Err(Undecodable::Refused(tag, error)),
                    Queued::Local(bytes) => Err(Undecodable::Local(Tag::Local(bytes))),
                };
            }
            if let Some(feed) = &mut self.feed {
                if std::mem::take(&mut self.announced)
                    && let Some(step) = self.due.take()
                {
                    return Ok(Some((Tag::Step(step), feed.request(step))));
                }
                return Ok(None);
            }
            match self.next_request() {
                Ok(true) => continue,
                Ok(false) => return Ok(None),
                Err(end) => return Err(Undecodable::Broken(end)),
            }
        }
    }

    fn pending_input(&self) -> usize {
        self.rbuf.len()
    }

    fn encode_reply(&mut self, tag: &Tag, reply: &Reply, _: Encoding, out: &mut BytesMut) {
        match tag {
            Tag::Prelude => {
                if let Reply::Error(e) = reply {
                    // Refused credentials: the request's commands do not run.
                    self.session = SessionMark { credentials: None, dirty: true };
                    self.queue.retain(|q| !matches!(q, Queued::Run(Tag::Command | Tag::Step(_), _) | Queued::Refuse(..)));
                    let status = cmd::status(reply);
                    match &mut self.feed {
                        Some(feed) => {
                            let next = feed.on_reply(Step::Subscribe, reply, out);
                            self.apply(next);
                        }
                        None => self.respond(status, &response::error_body(e.code(), e.message()), out),
                    }
                }
            }
            Tag::Command => {
                let Some(exchange) = &mut self.exchange else { return };
                if !exchange.pipeline {
                    self.respond(cmd::status(reply), &cmd::one_body(reply), out);
                    return;
                }
                exchange.results.push(ws::outcome_json(reply));
                if exchange.results.len() >= exchange.expected {
                    let body = serde_json::to_vec(&exchange.results).expect("JSON values always serialise");
                    self.respond(200, &body, out);
                }
            }
            Tag::Step(step) => {
                if let Some(feed) = &mut self.feed {
                    let next = feed.on_reply(*step, reply, out);
                    self.apply(next);
                }
            }
            Tag::Local(bytes) => out.extend_from_slice(bytes),
        }
    }

    /// SUBSCRIBE confirms each channel: one answer for the lot (the first refusal, if any).
    fn encode_replies(&mut self, tag: &Tag, replies: &[Reply], encoding: Encoding, out: &mut BytesMut) {
        match tag {
            Tag::Command => self.encode_reply(tag, &Reply::Array(replies.to_vec()), encoding, out),
            _ => {
                let first_error = replies.iter().find(|r| matches!(r, Reply::Error(_)));
                self.encode_reply(tag, first_error.unwrap_or(&Reply::ok()), encoding, out);
            }
        }
    }

    fn encode_local(&mut self, tag: &Tag, out: &mut BytesMut) {
        if let Tag::Local(bytes) = tag {
            out.extend_from_slice(bytes);
        }
    }

    fn encode_push(&mut self, frame: &[u8], out: &mut BytesMut) {
        if let Some(feed) = &mut self.feed {
            let next = feed.on_push(frame, out);
            self.apply(next);
        }
    }

    fn encode_lagged(&mut self, lost: u64, _: Encoding, out: &mut BytesMut) {
        if let Some(feed) = &mut self.feed {
            let next = feed.on_lagged(lost, out);
            self.apply(next);
        }
    }

    fn encode_heartbeat(&mut self, out: &mut BytesMut) {
        if let Some(feed) = &self.feed {
            feed.heartbeat(out);
        }
    }

    fn encode_end(&mut self, _end: &End, out: &mut BytesMut) {
        self.farewell(out);
    }

    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.own.is_empty() {
            return Ok(0);
        }
        self.stream.try_write_now(buf)
    }

    async fn write_all<'a>(&'a mut self, buf: &'a [u8]) -> io::Result<()> {
        if !self.own.is_empty() {
            let own = std::mem::take(&mut self.own);
            self.stream.write_all(&own).await?;
        }
        self.stream.write_all(buf).await
    }

    fn must_flush(&self) -> bool {
        !self.own.is_empty()
    }

    /// Answers a request that timed out (408) if nothing else was owed, then closes.
    async fn close(&mut self, _end: &End) {
        let mut out = BytesMut::new();
        if self.feed.as_ref().is_none_or(|f| !f.is_open()) {
            self.farewell(&mut out);
        }
        if !out.is_empty() {
            let _ = self.stream.write_all(&out).await;
        }
        let _ = self.stream.shutdown().await;
    }
}
