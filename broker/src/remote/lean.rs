//! The shared connection to one Redis server (standalone, or Sentinel's primary; not TLS, not Cluster,
//! where the `redis` crate's connections stay): requests are written straight into one output buffer in
//! the order they are sent, and the replies read off the socket are handed back in that order.
//!
//! Why not the `redis` crate's multiplexed connection here: every forwarded request and every domain
//! script goes through this connection, and the crate spends more per request than the rest of the node
//! (a `Cmd` built and packed, a bounded channel send, a oneshot, its connection driver's sink and a parse
//! into `redis::Value`; docs/benchmarks.md, "The node's CPU per forwarded request"). Here a request costs
//! its bytes appended under one lock and a slot for its reply; a client's pipeline becomes one write and
//! its replies one read, and a reply is cut out of the read buffer without copying (`resp.rs`).
//!
//! What it keeps from the crate's connection, so the domains and forwarding do not see a difference
//! (`conn.rs` makes it a [`ConnectionLike`](redis::aio::ConnectionLike)):
//!
//! - **Made on first use, made again after a failure.** A driver task connects (`HELLO 3` for RESP3,
//!   `AUTH` with the URL's credentials, `SELECT` of the target's database), writes and reads. When the
//!   connection fails, every request written on it gets an error (`-ERR redis engine unavailable: ...`),
//!   in order; requests not written yet go on a new connection, in order. A failure to connect fails the
//!   requests waiting for it.
//! - **Response timeout** (`engine.response_timeout_ms`): when requests wait and nothing is read for that
//!   long (checked once per period, so after one to two periods), the connection is dropped and they
//!   fail, as a timed-out request of the crate's did, and the next request connects again.
//! - **Pushes** (RESP3 out-of-band data) answer no request and are dropped, as the crate did without a
//!   push sender.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use redis::{ConnectionAddr, ConnectionInfo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::resp;

/// One shared connection's state and settings.
pub struct Lean {
    dial: Dial,
    resp3: bool,
    db: i64,
    response_timeout: Option<Duration>,
    state: Mutex<State>,
}

/// How a connection to one server (TCP or a Unix socket, not TLS) is made and set up: what the lean
/// connection and the bridge's own pub-sub connection (`link.rs`) share.
pub struct Dial {
    addr: Addr,
    /// `HELLO 3` / `AUTH` / `SELECT`, written first on each new connection, and how many replies they get.
    handshake: (Vec<u8>, usize),
    connect_timeout: Duration,
}

enum Addr {
    Tcp(String, u16),
    Unix(std::path::PathBuf),
}

#[derive(Default)]
struct State {
    /// Requests sent and not yet handed to the socket, in order.
    out: Vec<u8>,
    /// One entry per request sent and not yet answered, in order: written or still in `out`.
    waiting: VecDeque<Waiting>,
    /// How many of `waiting`'s last entries are still in `out` (not written on the connection).
    unsent: usize,
    /// The driver, asleep until `out` has something.
    writer: Option<Waker>,
    /// A driver task is connecting or connected.
    running: bool,
    /// The pool let go of this connection (a Sentinel switch): requests fail, the driver ends.
    closed: bool,
}

struct Waiting {
    slot: Arc<Slot>,
    replies: usize,
}

/// The reply frames of one request: one for a command, several for a pipeline.
pub enum Frames {
    One(Bytes),
    Many(Vec<Bytes>),
}

impl Frames {
    pub fn one(self) -> Bytes {
        match self {
            Frames::One(frame) => frame,
            Frames::Many(mut frames) => frames.pop().unwrap_or_default(),
        }
    }

    pub fn all(self) -> Vec<Bytes> {
        match self {
            Frames::One(frame) => vec![frame],
            Frames::Many(frames) => frames,
        }
    }
}

/// Why a request got no reply: the connection failed (or could not be made) before it came.
#[derive(Clone, Debug)]
pub struct Failure(Arc<io::Error>);

impl From<Failure> for redis::RedisError {
    fn from(f: Failure) -> redis::RedisError {
        io::Error::new(f.0.kind(), f.0.to_string()).into()
    }
}

#[derive(Default)]
struct Slot(Mutex<Fill>);

enum Fill {
    Waiting(Option<Waker>),
    Done(Result<Frames, Failure>),
    Taken,
}

impl Default for Fill {
    fn default() -> Fill {
        Fill::Waiting(None)
    }
}

impl Slot {
    fn fill(&self, result: Result<Frames, Failure>) {
        let previous = std::mem::replace(&mut *self.0.lock().expect("reply slot"), Fill::Done(result));
        if let Fill::Waiting(Some(waker)) = previous {
            waker.wake();
        }
    }
}

/// A request's reply to come (see [`Lean::send`]).
pub struct Pending(Arc<Slot>);

impl Future for Pending {
    type Output = Result<Frames, Failure>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut fill = self.0.0.lock().expect("reply slot");
        match &mut *fill {
            Fill::Waiting(waker) => {
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Fill::Done(_) => match std::mem::replace(&mut *fill, Fill::Taken) {
                Fill::Done(result) => Poll::Ready(result),
                _ => unreachable!("just looked"),
            },
            Fill::Taken => panic!("a reply polled after it was taken"),
        }
    }
}

impl Lean {
    /// A connection to `info`'s server (its credentials and database), `None` for a TLS address, which
    /// the crate's connection serves.
    pub fn new(info: &ConnectionInfo, resp3: bool, connect_timeout: Duration, response_timeout: Option<Duration>) -> Option<Lean> {
        let dial = Dial::new(info, resp3, connect_timeout)?;
        Some(Lean { dial, resp3, db: info.redis_settings().db(), response_timeout, state: Mutex::default() })
    }

    pub fn db(&self) -> i64 {
        self.db
    }

    /// Appends a request (`write` writes its bytes; `replies` is how many reply frames it gets) after every
    /// one sent before it, and starts the connection if it is not running. The reply comes in the returned
    /// [`Pending`]; dropping it discards the reply when it comes.
    pub fn send(self: &Arc<Self>, replies: usize, write: impl FnOnce(&mut Vec<u8>)) -> Pending {
        let slot = Arc::new(Slot::default());
        let pending = Pending(slot.clone());
        let mut state = self.state.lock().expect("lean connection");
        if state.closed {
            drop(state);
            slot.fill(Err(Failure(Arc::new(io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection was closed (the primary changed)",
            )))));
            return pending;
        }
        let was_empty = state.out.is_empty();
        write(&mut state.out);
        state.waiting.push_back(Waiting { slot, replies });
        state.unsent += 1;
        let start = !std::mem::replace(&mut state.running, true);
        let writer = if was_empty { state.writer.take() } else { None };
        drop(state);
        if start {
            tokio::spawn(self.clone().drive());
        } else if let Some(writer) = writer {
            writer.wake();
        }
        pending
    }

    /// Lets go of the connection: waiting requests fail, later ones fail at once.
    pub fn close(&self) {
        let writer = {
            let mut state = self.state.lock().expect("lean connection");
            state.closed = true;
            state.writer.take()
        };
        if let Some(writer) = writer {
            writer.wake();
        }
    }

    /// Connects, serves until the connection fails, and fails what was written on it; starts again while
    /// requests not yet written wait.
    async fn drive(self: Arc<Self>) {
        loop {
            let (error, connected) = match self.dial.connect().await {
                Ok((Conn::Tcp(mut s), buf)) => {
                    let (r, w) = s.split();
                    (self.serve(r, w, buf).await, true)
                }
                Ok((Conn::Unix(mut s), buf)) => {
                    let (r, w) = s.split();
                    (self.serve(r, w, buf).await, true)
                }
                Err(e) => (e, false),
            };
            let failure = Failure(Arc::new(error));
            let (failed, again) = {
                let mut state = self.state.lock().expect("lean connection");
                // A failed connect wrote nothing: everything waiting fails (no retry loop against a down
                // server). A lost connection fails what it had written; the rest goes on a new one.
                let written = if connected && !state.closed { state.waiting.len() - state.unsent } else { state.waiting.len() };
                let failed: Vec<Waiting> = state.waiting.drain(..written).collect();
                if state.waiting.is_empty() {
                    state.out.clear();
                    state.unsent = 0;
                    state.running = false;
                }
                state.writer = None;
                (failed, state.running)
            };
            for waiting in failed {
                waiting.slot.fill(Err(failure.clone()));
            }
            if !again {
                return;
            }
        }
    }

    /// Writes what is sent and hands back what is read until either fails; the error that ended it.
    async fn serve<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(&self, r: R, w: W, buf: BytesMut) -> io::Error {
        tokio::select! {
            biased;
            e = self.read_loop(r, buf) => e,
            e = self.write_loop(w) => e,
        }
    }

    async fn write_loop<W: AsyncWrite + Unpin>(&self, mut w: W) -> io::Error {
        let mut buf = Vec::new();
        loop {
            let ready = std::future::poll_fn(|cx| {
                let mut state = self.state.lock().expect("lean connection");
                if state.closed {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::NotConnected,
                        "the connection was closed (the primary changed)",
                    )));
                }
                if state.out.is_empty() {
                    if !state.writer.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        state.writer = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
                std::mem::swap(&mut state.out, &mut buf);
                state.unsent = 0;
                Poll::Ready(Ok(()))
            })
            .await;
            if let Err(e) = ready {
                return e;
            }
            if let Err(e) = w.write_all(&buf).await {
                return e;
            }
            buf.clear();
        }
    }

    async fn read_loop<R: AsyncRead + Unpin>(&self, mut r: R, mut buf: BytesMut) -> io::Error {
        let mut partial: Vec<Bytes> = Vec::new();
        let mut frames: Vec<Bytes> = Vec::new();
        let mut done: Vec<(Arc<Slot>, Frames)> = Vec::new();
        // For the response timeout: replies handed back so far, and that count at the last period's end.
        let (mut answered, mut answered_then) = (0u64, None);
        loop {
            loop {
                match resp::frame_len(&buf) {
                    Ok(Some(n)) => {
                        let frame = buf.split_to(n).freeze();
                        if !(self.resp3 && resp::is_push(&frame)) {
                            frames.push(frame);
                        }
                    }
                    Ok(None) => break,
                    Err(resp::Malformed) => return io::Error::new(io::ErrorKind::InvalidData, "a malformed reply from redis"),
                }
            }
            if !frames.is_empty() {
                let mut state = self.state.lock().expect("lean connection");
                for frame in frames.drain(..) {
                    let Some(front) = state.waiting.front() else {
                        return io::Error::new(io::ErrorKind::InvalidData, "a reply from redis to no request");
                    };
                    let replies = front.replies;
                    if replies == 1 {
                        done.push((state.waiting.pop_front().expect("looked").slot, Frames::One(frame)));
                    } else {
                        partial.push(frame);
                        if partial.len() >= replies {
                            done.push((state.waiting.pop_front().expect("looked").slot, Frames::Many(std::mem::take(&mut partial))));
                        }
                    }
                }
                drop(state);
                answered += done.len() as u64;
                for (slot, frames) in done.drain(..) {
                    slot.fill(Ok(frames));
                }
            }
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(64 * 1024);
            }
            let read = match self.response_timeout {
                None => r.read_buf(&mut buf).await,
                Some(period) => match tokio::time::timeout(period, r.read_buf(&mut buf)).await {
                    Ok(read) => read,
                    Err(_) => {
                        let waiting = !self.state.lock().expect("lean connection").waiting.is_empty();
                        if waiting && answered_then == Some(answered) {
                            return io::Error::new(io::ErrorKind::TimedOut, "timed out waiting for redis's reply");
                        }
                        answered_then = waiting.then_some(answered);
                        continue;
                    }
                },
            };
            match read {
                Ok(0) => return io::Error::new(io::ErrorKind::ConnectionReset, "redis closed the connection"),
                Ok(_) => {}
                Err(e) => return e,
            }
        }
    }
}

impl Dial {
    /// How to reach `info`'s server and set a connection up (`HELLO 3` when `resp3`, `AUTH` with its
    /// credentials, `SELECT` of its database); `None` for a TLS address.
    pub fn new(info: &ConnectionInfo, resp3: bool, connect_timeout: Duration) -> Option<Dial> {
        let addr = match info.addr() {
            ConnectionAddr::Tcp(host, port) => Addr::Tcp(host.clone(), *port),
            ConnectionAddr::Unix(path) => Addr::Unix(path.clone()),
            _ => return None,
        };
        let settings = info.redis_settings();
        let mut handshake = (Vec::new(), 0);
        let mut command = |parts: &[&[u8]]| {
            let req = herald_protocol::Request::new(parts.iter().map(|p| Bytes::copy_from_slice(p)).collect());
            resp::write_request(&req, &mut handshake.0);
            handshake.1 += 1;
        };
        let user = settings.username().unwrap_or("default");
        match (resp3, settings.password()) {
            (true, Some(password)) => command(&[b"HELLO", b"3", b"AUTH", user.as_bytes(), password.as_bytes()]),
            (true, None) => command(&[b"HELLO", b"3"]),
            (false, Some(password)) => match settings.username() {
                Some(user) => command(&[b"AUTH", user.as_bytes(), password.as_bytes()]),
                None => command(&[b"AUTH", password.as_bytes()]),
            },
            (false, None) => {}
        }
        if settings.db() != 0 {
            command(&[b"SELECT", settings.db().to_string().as_bytes()]);
        }
        Some(Dial { addr, handshake, connect_timeout })
    }

    /// A new connection, set up, and what was read past the setup's replies.
    pub async fn connect(&self) -> io::Result<(Conn, BytesMut)> {
        let connecting = async {
            let mut conn = match &self.addr {
                Addr::Tcp(host, port) => {
                    let s = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                    s.set_nodelay(true)?;
                    Conn::Tcp(s)
                }
                Addr::Unix(path) => Conn::Unix(tokio::net::UnixStream::connect(path).await?),
            };
            let mut buf = BytesMut::with_capacity(16 * 1024);
            match &mut conn {
                Conn::Tcp(s) => {
                    let (r, w) = s.split();
                    self.handshake(r, w, &mut buf).await?;
                }
                Conn::Unix(s) => {
                    let (r, w) = s.split();
                    self.handshake(r, w, &mut buf).await?;
                }
            }
            Ok((conn, buf))
        };
        match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(connected) => connected,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "timed out connecting")),
        }
    }

    /// Writes `HELLO`/`AUTH`/`SELECT` (what the URL and target ask for) and checks their replies.
    async fn handshake<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(&self, mut r: R, mut w: W, buf: &mut BytesMut) -> io::Result<()> {
        if self.handshake.1 == 0 {
            return Ok(());
        }
        w.write_all(&self.handshake.0).await?;
        for _ in 0..self.handshake.1 {
            let frame = read_frame(&mut r, buf).await?;
            if matches!(frame.first(), Some(b'-' | b'!')) {
                let text = String::from_utf8_lossy(&frame[1..]);
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("connection setup refused: {}", text.trim_end())));
            }
        }
        Ok(())
    }
}

/// A connection as made, TCP or a Unix socket.
pub enum Conn {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

/// The read half of a [`Conn`], owned.
pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a [`Conn`], owned.
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

impl Conn {
    /// Its halves, owned (the bridge keeps them in a struct across its loop's turns).
    pub fn into_split(self) -> (Reader, Writer) {
        match self {
            Conn::Tcp(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            Conn::Unix(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
        }
    }
}

/// One complete frame read off `r` into `buf` (the handshake's replies).
async fn read_frame(r: &mut (impl AsyncRead + Unpin), buf: &mut BytesMut) -> io::Result<Bytes> {
    loop {
        match resp::frame_len(buf) {
            Ok(Some(n)) => return Ok(buf.split_to(n).freeze()),
            Ok(None) => {}
            Err(resp::Malformed) => return Err(io::Error::new(io::ErrorKind::InvalidData, "a malformed reply from redis")),
        }
        if r.read_buf(buf).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "redis closed the connection"));
        }
    }
}
