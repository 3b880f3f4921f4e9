//! The RESP wire: Redis's request stream in, RESP2/RESP3 replies and pushes out.
//!
//! Reading is one `read` per batch into a buffer that starts small (idle connections stay cheap) and
//! grows for big requests; `RequestDecoder` takes every complete request off its front, with Redis's
//! limits. A broken stream ends the connection after Redis's `-ERR Protocol error: ...`. Everything
//! else (batches, blocking, pushes, flushing, the end) is the connection core's (`conn/`).

use std::io;
use std::sync::Arc;

use bytes::BytesMut;
use herald_protocol::resp;
use herald_protocol::{CommandError, DecodeLimits, Encoding, Reply, RequestDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::conn::{self, Decoded, End, Malformed, Profile, Stream, Undecodable, Wire};
use crate::broker::Broker;
use crate::clients::Transport;

/// The channel of the drop-oldest `lagged` notice over RESP: `message`, this channel, the number of
/// pushes discarded (as text). Clients should not publish on it: the `__herald__:` prefix is Herald's.
pub const LAGGED_CHANNEL: &str = "__herald__:lagged";

/// Read buffer growth: start small (idle connections stay cheap), grow for big requests.
const READ_CHUNK: usize = 4 * 1024;
const READ_CHUNK_MAX: usize = 64 * 1024;

/// Accepts the socket into the broker and serves it until it ends.
pub async fn serve(stream: std::net::TcpStream, broker: Arc<Broker>) {
    let stream = match TcpStream::from_std(stream) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("could not register connection: {e}");
            return;
        }
    };
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else { return };
    serve_stream(stream, peer, local, broker).await;
}

/// Serves RESP over any byte stream (TCP, or TLS once its handshake is done).
pub async fn serve_stream<S: Stream + 'static>(stream: S, peer: std::net::SocketAddr, local: std::net::SocketAddr, broker: Arc<Broker>) {
    let auth_timeout = Some(broker.config.limits.auth_timeout_ms).filter(|ms| *ms > 0).map(std::time::Duration::from_millis);
    let wire = RespWire::new(stream, decode_limits(&broker), broker.config.limits.reply_flush_bytes).with_auth_timeout(auth_timeout);
    conn::serve(wire, broker, peer, local, None).await;
}

/// The request bounds a new connection gets.
pub fn decode_limits(broker: &Broker) -> DecodeLimits {
    let settings = broker.settings();
    DecodeLimits {
        max_multibulk_len: broker.config.limits.max_multibulk_len,
        max_bulk_len: settings.proto_max_bulk_len,
        max_inline_len: broker.config.limits.max_inline_len,
        max_query_buffer: settings.client_query_buffer_limit,
    }
}

/// RESP over any byte stream.
pub struct RespWire<S> {
    stream: S,
    decoder: RequestDecoder,
    rbuf: BytesMut,
    read_chunk: usize,
    flush_at: usize,
    auth_timeout: Option<std::time::Duration>,
}

impl<S> RespWire<S> {
    pub fn new(stream: S, limits: DecodeLimits, flush_at: usize) -> Self {
        RespWire {
            stream,
            decoder: RequestDecoder::new(limits),
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            read_chunk: READ_CHUNK,
            flush_at,
            auth_timeout: None,
        }
    }

    /// Closes a connection that has not authenticated after this long (when authentication is
    /// required): a port open to a network is not held by silent sockets.
    pub fn with_auth_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
        self.auth_timeout = timeout;
        self
    }
}

impl<S: Stream> Wire for RespWire<S> {
    type Tag = ();

    const TRANSPORT: Transport = Transport::Resp;
    const ENCODING: Encoding = Encoding::Resp2;

    fn profile(&self) -> Profile {
        Profile { flush_at: self.flush_at, redis_timeout: true, auth: self.auth_timeout, ..Profile::default() }
    }

    #[inline]
    async fn read(&mut self) -> Result<usize, End> {
        if self.rbuf.capacity() - self.rbuf.len() < self.read_chunk / 2 {
            self.rbuf.reserve(self.read_chunk);
        }
        match self.stream.read_buf(&mut self.rbuf).await {
            Ok(0) => Err(End::PeerClosed),
            Ok(n) => {
                if self.rbuf.len() == self.rbuf.capacity() {
                    self.read_chunk = (self.read_chunk * 2).min(READ_CHUNK_MAX);
                }
                Ok(n)
            }
            Err(e) => Err(End::io(e)),
        }
    }

    #[inline]
    fn decode(&mut self, authenticated: bool) -> Decoded<()> {
        self.decoder.set_authenticated(authenticated);
        match self.decoder.decode(&mut self.rbuf) {
            Ok(Some(request)) => Ok(Some(((), request))),
            Ok(None) => {
                if self.rbuf.is_empty() && self.rbuf.capacity() > READ_CHUNK_MAX {
                    self.rbuf = BytesMut::with_capacity(READ_CHUNK);
                    self.read_chunk = READ_CHUNK;
                }
                Ok(None)
            }
            Err(e) => Err(Undecodable::Broken(End::Malformed(Malformed::Resp(e)))),
        }
    }

    fn pending_input(&self) -> usize {
        self.rbuf.len()
    }

    #[inline]
    fn encode_reply(&mut self, _: &(), reply: &Reply, encoding: Encoding, out: &mut BytesMut) {
        resp::encode(reply, encoding.resp(), out);
    }

    fn encode_push(&mut self, frame: &[u8], out: &mut BytesMut) {
        out.extend_from_slice(frame);
    }

    /// drop-oldest's notice as an ordinary message on the reserved channel [`LAGGED_CHANNEL`], the
    /// count as its payload: every Redis client's pub-sub reader parses a three-element `message` push
    /// (a two-element `lagged` frame made redis-py raise), and Herald's clients read the count from it.
    fn encode_lagged(&mut self, lost: u64, encoding: Encoding, out: &mut BytesMut) {
        let notice = vec![Reply::text("message"), Reply::text(LAGGED_CHANNEL), Reply::Bulk(lost.to_string().into())];
        resp::encode(&Reply::Push(notice), encoding.resp(), out);
    }

    /// Redis answers a protocol error once, then closes (except for the query buffer limit).
    fn encode_end(&mut self, end: &End, out: &mut BytesMut) {
        let last_words = match end {
            End::Malformed(Malformed::Resp(e)) if e.replies() => format!("ERR {e}"),
            End::AuthTimeout => "ERR authentication timeout: closing the connection".to_owned(),
            End::TokenExpired => "ERR token expired: closing the connection (refresh with AUTH.TOKEN before it expires)".to_owned(),
            _ => return,
        };
        resp::encode(&Reply::Error(CommandError::new(last_words)), Encoding::Resp2.resp(), out);
    }

    #[inline]
    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.try_write_now(buf)
    }

    fn write_all<'a>(&'a mut self, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + Send + 'a {
        self.stream.write_all(buf)
    }
}
