//! The bridge's connection to Redis (`bridge.rs`), one interface over two ways of holding it:
//!
//! - **Herald's own** to a single server or Sentinel's primary without TLS (what `lean.rs` serves too):
//!   orders are written as RESP arrays into one output buffer, written while reading, and the frames
//!   Redis sends are cut out of one read buffer (`push.rs`): a publication's channel and payload are
//!   slices of it, handed to the hub without a copy; nothing goes through `redis::Value`. Orders are
//!   not waited for one by one: each name of an order gets one confirmation, which is counted.
//! - **The `redis` crate's** `PubSubSink`/`PubSubStream`, for TLS and Redis Cluster: each order is
//!   awaited (its confirmations read) before the next.
//!
//! Either way the bridge sees the same three things: orders are carried out in the order given,
//! [`Link::confirmed`] says how many names Redis has confirmed (a barrier waits for the count at its
//! turn), and [`Link::next`] gives the next publication, or `None` once the connection is lost.

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use herald_protocol::Request;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::lean::{Dial, Reader, Writer};
use super::push::{self, Push};
use super::resp;

/// What an order asks of Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Subscribe,
    PSubscribe,
    Unsubscribe,
    PUnsubscribe,
}

impl Op {
    fn name(self) -> &'static [u8] {
        match self {
            Op::Subscribe => b"SUBSCRIBE",
            Op::PSubscribe => b"PSUBSCRIBE",
            Op::Unsubscribe => b"UNSUBSCRIBE",
            Op::PUnsubscribe => b"PUNSUBSCRIBE",
        }
    }
}

/// A publication as Redis delivered it: on `channel`, through `pattern` for a `pmessage`.
pub struct Msg {
    pub pattern: Option<Bytes>,
    pub channel: Bytes,
    pub payload: Bytes,
}

/// How the bridge connects: Herald's own connection where it can be used (`connect_timeout` bounds
/// making it), else the crate's.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Herald's own connection is allowed (not Redis Cluster, whose nodes the crate's reaches).
    pub lean: bool,
    pub connect_timeout: Duration,
}

pub enum Link {
    Lean(Box<Lean>),
    Crate { sink: PubSubSink, stream: PubSubStream, confirmed: u64 },
}

pub struct Lean {
    r: Reader,
    w: Writer,
    /// Read and not yet cut into frames.
    input: BytesMut,
    /// Orders not yet written.
    output: Vec<u8>,
    confirmed: u64,
}

impl Link {
    /// A pub-sub connection to `client`'s server, subscribed to nothing yet.
    pub async fn open(client: redis::Client, settings: Settings) -> redis::RedisResult<Link> {
        let dial = if settings.lean { Dial::new(client.get_connection_info(), false, settings.connect_timeout) } else { None };
        match dial {
            Some(dial) => {
                let (conn, input) = dial.connect().await?;
                let (r, w) = conn.into_split();
                Ok(Link::Lean(Box::new(Lean { r, w, input, output: Vec::new(), confirmed: 0 })))
            }
            None => {
                let (sink, stream) = client.get_async_pubsub().await?.split();
                Ok(Link::Crate { sink, stream, confirmed: 0 })
            }
        }
    }

    /// Orders `op` for `names` after every order before it. Herald's own connection only queues it (it is
    /// written by [`Link::next`]); the crate's is awaited. An error: the connection is lost.
    pub async fn order(&mut self, op: Op, names: Vec<Bytes>) -> redis::RedisResult<()> {
        if names.is_empty() {
            return Ok(());
        }
        match self {
            Link::Lean(lean) => {
                let order = Request::new([Bytes::from_static(op.name())].into_iter().chain(names).collect());
                resp::write_request(&order, &mut lean.output);
                Ok(())
            }
            Link::Crate { sink, confirmed, .. } => {
                let n = names.len() as u64;
                let names: Vec<Vec<u8>> = names.iter().map(|n| n.to_vec()).collect();
                match op {
                    Op::Subscribe => sink.subscribe(names).await?,
                    Op::PSubscribe => sink.psubscribe(names).await?,
                    Op::Unsubscribe => sink.unsubscribe(names).await?,
                    Op::PUnsubscribe => sink.punsubscribe(names).await?,
                }
                *confirmed += n;
                Ok(())
            }
        }
    }

    /// How many names of the orders so far Redis has confirmed, in order.
    pub fn confirmed(&self) -> u64 {
        match self {
            Link::Lean(lean) => lean.confirmed,
            Link::Crate { confirmed, .. } => *confirmed,
        }
    }

    /// The next publication, or [`Incoming::Confirmed`] after a confirmation was read (the count went up);
    /// `None` once the connection is lost. Cancel-safe: what was read stays for the next call.
    pub async fn next(&mut self) -> Option<Incoming> {
        match self {
            Link::Lean(lean) => match lean.next().await {
                Ok(incoming) => Some(incoming),
                Err(e) => {
                    tracing::warn!("redis engine: pub-sub connection: {e}");
                    None
                }
            },
            Link::Crate { stream, .. } => loop {
                let msg = stream.next().await?;
                let Ok(channel) = msg.get_channel::<Vec<u8>>() else { continue };
                let pattern = msg.get_pattern::<Option<Vec<u8>>>().ok().flatten().map(Bytes::from);
                let payload = Bytes::copy_from_slice(msg.get_payload_bytes());
                return Some(Incoming::Message(Msg { pattern, channel: Bytes::from(channel), payload }));
            },
        }
    }
}

/// What [`Link::next`] read.
pub enum Incoming {
    Message(Msg),
    Confirmed,
}

impl Lean {
    async fn next(&mut self) -> io::Result<Incoming> {
        loop {
            loop {
                match push::cut(&mut self.input) {
                    Ok(Some(Push::Message { pattern, channel, payload })) => {
                        return Ok(Incoming::Message(Msg { pattern, channel, payload }));
                    }
                    // At once, as the crate's connection answers an order before it delivers what follows.
                    Ok(Some(Push::Confirmed)) => {
                        self.confirmed += 1;
                        return Ok(Incoming::Confirmed);
                    }
                    Ok(Some(Push::Refused(e))) => return Err(io::Error::other(format!("redis refused an order: {e}"))),
                    Ok(Some(Push::Other)) => {}
                    Ok(None) => break,
                    Err(resp::Malformed) => return Err(io::Error::new(io::ErrorKind::InvalidData, "a malformed reply from redis")),
                }
            }
            if self.input.capacity() - self.input.len() < 4096 {
                self.input.reserve(64 * 1024);
            }
            // Orders are written while reading: Redis may be sending as much as it reads.
            let read = if self.output.is_empty() {
                self.r.read_buf(&mut self.input).await
            } else {
                tokio::select! {
                    biased;
                    read = self.r.read_buf(&mut self.input) => read,
                    written = self.w.write(&self.output) => {
                        self.output.drain(..written?);
                        continue;
                    }
                }
            };
            if read? == 0 {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "redis closed the connection"));
            }
        }
    }
}
