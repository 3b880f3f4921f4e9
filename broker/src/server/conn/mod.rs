//! The connection core: one connection's life, whatever wire it speaks.
//!
//! ```text
//! socket ─> wire adapter (server/resp.rs, server/ws.rs, server/http/: bytes <-> requests, replies,
//!           pushes, close)
//!             ─> connection core (this module: session, waits, batches, blocking, outbox, flush, end)
//!                  ─> dispatch::handle (the one path every request takes)
//! ```
//!
//! A connection is one task that owns its [`Wire`] (the byte stream and its codec) and its
//! [`Session`](crate::dispatch::Session). The core does everything that does not depend on the wire, once for every wire:
//!
//! - what happens to the connection from outside (a push, its outbox overflowing, CLIENT KILL,
//!   shutdown) arrives through one doorbell (`crate::doorbell`): one atomic load per loop turn;
//! - batches: every request that arrived together is decoded and dispatched, and their replies and
//!   pushes go out in one write (`connection.rs`), with one clock reading per batch;
//! - blocked commands: the replies behind one wait for it, input arriving meanwhile is kept (bounded
//!   by `client_query_buffer_limit`) and handled after its reply, pushes keep flowing;
//! - the outbox: pushes are drained when the previous write has finished, before any reply that
//!   follows them, with the `lagged` notice when drop-oldest discarded some;
//! - fan-out back-pressure: a connection whose last batch queued publications for the fan-out thread
//!   reads no more while that thread is behind;
//! - output: a write that the socket takes at once costs no `select!`; a write that cannot finish is
//!   interrupted by a kill or an overflow (`output.rs`);
//! - deadlines: idle (Redis's `timeout`, or "nothing heard" for WebSocket), authentication, heartbeat;
//! - the end: one [`End`] reason, logged and counted once (`end.rs`), which the wire maps to its own
//!   close (RESP closes the socket, after `-ERR ...` for a broken request stream; WebSocket sends its
//!   close code).
//!
//! Rules that keep it so: a wire adapter never dispatches, never touches the session or the outbox,
//! and never decides when to flush; the core never looks at bytes. The core adds nothing per request:
//! clock readings, flushes, doorbell checks and wait registrations are per batch or per loop turn (see
//! `docs/architecture.md`).

mod connection;
mod end;
mod in_flight;
mod output;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use herald_protocol::{CommandError, Encoding, Reply, Request};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub use end::{End, Malformed};

use crate::broker::Broker;
use crate::clients::Transport;

/// One wire format over one byte stream, as the connection core drives it.
///
/// Adapters are generic over the byte stream ([`Stream`]: `AsyncRead + AsyncWrite + Unpin + Send`),
/// so TLS and an in-memory `tokio::io::duplex` in tests plug in unchanged.
///
/// The third surface, HTTP with server-sent events (`server/http/`), uses the same shape: a keep-alive
/// connection decodes each `POST /v1/cmd` or `/v1/pipeline` body into requests and encodes their
/// replies as one HTTP response; an event stream decodes the commands that follow what it streams
/// (SUBSCRIBE, `STREAM.READ ... BLOCK`, `BB.CHANGES`...) one step per batch and encodes their
/// replies and its pushes as events. What a wire answers by itself (a static page, a CORS preflight)
/// is [`Undecodable::Local`]. Its profile changes when a connection turns into an event stream (no
/// idle timeout, heartbeats), so the core reads [`Wire::profile`] again after every batch.
pub trait Wire: Send {
    /// What ties a reply to its request: the WebSocket envelope's `id`; nothing for RESP.
    type Tag: Send;

    /// Which surface CLIENT LIST shows.
    const TRANSPORT: Transport;
    /// The encoding a new session starts with (RESP2; JSON).
    const ENCODING: Encoding;

    /// The wire's own limits and deadlines; read as the connection opens and again after each batch.
    fn profile(&self) -> Profile;

    /// Waits for more input and takes it in; the number of bytes received (for INFO). It is one
    /// branch of a `select!`, so it must be cancel-safe. An error ends the connection: the peer went
    /// away, the wire's framing broke, or the wire's own input bound was passed.
    fn read(&mut self) -> impl Future<Output = Result<usize, End>> + Send;

    /// Takes in input that has already arrived, without waiting; `None` when there is none. Called
    /// between requests of a batch, so what arrived together is answered together. The default never
    /// reads ahead (RESP: one read is one batch).
    fn read_ready(&mut self) -> Option<Result<usize, End>> {
        None
    }

    /// The next complete request in the input taken so far; `Ok(None)` when more must be read.
    /// `authenticated` lets RESP apply Redis's smaller bounds before `AUTH`.
    fn decode(&mut self, authenticated: bool) -> Decoded<Self::Tag>;

    /// Bytes taken in but not yet decoded (CLIENT LIST `qbuf`, and the bound while a command blocks).
    fn pending_input(&self) -> usize;

    /// Appends the reply to one request.
    fn encode_reply(&mut self, tag: &Self::Tag, reply: &Reply, encoding: Encoding, out: &mut BytesMut);

    /// Appends the replies of one request that answers several (SUBSCRIBE a b).
    fn encode_replies(&mut self, tag: &Self::Tag, replies: &[Reply], encoding: Encoding, out: &mut BytesMut) {
        for reply in replies {
            self.encode_reply(tag, reply, encoding, out);
        }
    }

    /// Appends a push the hub already rendered in the session's encoding.
    fn encode_push(&mut self, frame: &[u8], out: &mut BytesMut);

    /// Appends the notice that drop-oldest discarded `lost` pushes.
    fn encode_lagged(&mut self, lost: u64, encoding: Encoding, out: &mut BytesMut);

    /// Appends the answer to a request the wire handled itself ([`Undecodable::Local`]).
    fn encode_local(&mut self, _tag: &Self::Tag, _out: &mut BytesMut) {}

    /// Appends a heartbeat (only called when the profile asks for heartbeats).
    fn encode_heartbeat(&mut self, _out: &mut BytesMut) {}

    /// Appends what the wire says before closing for `end` (RESP: `-ERR Protocol error...`).
    fn encode_end(&mut self, _end: &End, _out: &mut BytesMut) {}

    /// Writes what the stream takes at once without waiting: how many bytes of `buf` it took (0 when
    /// it would block, or when the wire has something of its own to send first).
    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize>;

    /// Writes all of `buf` (after anything of the wire's own), waiting as long as the peer makes it;
    /// the core interrupts it on a kill or an overflow.
    fn write_all<'a>(&'a mut self, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + Send + 'a;

    /// Whether the wire has something of its own to send (WebSocket: a pong or a close reply its
    /// reader queued), so a flush is due even with nothing else written.
    fn must_flush(&self) -> bool {
        false
    }

    /// Closes the wire for `end`, after the core flushed what was owed (or gave up on a stuck peer).
    /// Bounded by the caller.
    fn close(&mut self, _end: &End) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// The next request and its tag, `None` when more input is needed, or why it cannot be read.
pub type Decoded<T> = Result<Option<(T, Request)>, Undecodable<T>>;

/// A request the wire could not read.
#[derive(Debug)]
pub enum Undecodable<T> {
    /// Answer this error to the request and carry on (a WebSocket message that is not an envelope).
    Refused(T, CommandError),
    /// The request stream is broken: the connection ends (a RESP protocol error).
    Broken(End),
    /// The wire answers this request itself, no command runs (HTTP: a static page, a CORS
    /// preflight, an unknown route): its answer is encoded in order with the replies.
    Local(T),
}

/// What a wire asks of the core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Profile {
    /// Flush once a batch's output passes this many bytes.
    pub flush_at: usize,
    /// Close after this long without any input at all (requests, pongs).
    pub idle: Option<Duration>,
    /// Apply Redis's `timeout` (CONFIG SET-able): close after that long without a command, unless
    /// the client subscribes.
    pub redis_timeout: bool,
    /// Close a connection that has not authenticated after this long.
    pub auth: Option<Duration>,
    /// Send a heartbeat this often.
    pub heartbeat: Option<Duration>,
}

/// Credentials presented as the connection opened (the WebSocket URL's `?user=..&password=..` or
/// `?token=..`, or its handshake's `Authorization` header): they go through `AUTH` / `AUTH.TOKEN`, so
/// they mean exactly what they mean over RESP, and a refusal ends the connection.
#[derive(Debug, Clone)]
pub enum Credentials {
    Password {
        user: Option<String>,
        password: String,
    },
    /// A signed token (JWT): `AUTH.TOKEN`.
    Token(String),
}

impl Credentials {
    /// The command that authenticates a session with these credentials.
    pub fn request(self) -> Request {
        let parts = match self {
            Credentials::Password { user, password } => {
                let mut parts = vec![Bytes::from_static(b"AUTH")];
                parts.extend(user.map(Bytes::from));
                parts.push(Bytes::from(password));
                parts
            }
            Credentials::Token(token) => vec![Bytes::from_static(b"AUTH.TOKEN"), Bytes::from(token)],
        };
        Request::new(parts)
    }
}

/// Registers a client for `wire` and serves it until it ends.
pub async fn serve<W: Wire>(wire: W, broker: Arc<Broker>, peer: SocketAddr, local: SocketAddr, credentials: Option<Credentials>) {
    connection::Conn::open(wire, broker, peer, local).serve(credentials).await;
}

/// A byte stream a wire runs over: TCP, TLS (`server/tls.rs`), an in-memory pipe in tests.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {
    /// Writes what the stream takes without waiting: how many bytes (0 when it would block). The
    /// default polls the write once with a no-op waker (a `Pending` leaves that waker registered, and
    /// the next real poll replaces it); TCP answers with `TcpStream::try_write`, which skips the
    /// readiness registration a poll makes.
    fn try_write_now(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(self).poll_write(&mut cx, buf) {
            Poll::Ready(Ok(n)) => Ok(n),
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Ok(0),
        }
    }
}

impl Stream for TcpStream {
    fn try_write_now(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.try_write(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            written => written,
        }
    }
}

impl Stream for tokio::io::DuplexStream {}
