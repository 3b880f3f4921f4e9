//! The WebSocket wire: JSON envelopes in text frames, replies tagged with the request's `id`, pushes as
//! JSON, and a close code that says why the connection ended (docs/websocket.md).
//!
//! tokio-tungstenite reads the client's frames (masking, fragments, control frames, limits) and
//! answers its pings and closes; the server's own data frames are simple (unmasked, one frame per
//! message), so they are encoded straight into the connection's output (`ws::encode_frame`) and
//! written after letting tungstenite flush whatever control frame it queued, instead of paying
//! tungstenite's per-message `Sink` path for every push. Every message already readable is taken in
//! before anything is written ([`Wire::read_ready`]), so their replies share one write, which is what
//! keeps fan-out to many browsers cheap. Everything else (batches, blocking, pushes, flushing, the
//! end) is the connection core's (`conn/`).

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{FutureExt, SinkExt, StreamExt};
use herald_protocol::ws::{self as envelope, Opcode};
use herald_protocol::{CommandError, Encoding, Reply};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::conn::{self, Credentials, Decoded, End, Malformed, Profile, Stream, Undecodable, Wire};
use crate::broker::Broker;
use crate::clients::Transport;

/// Close codes Herald sends, beyond RFC 6455's own (1000 normal, 1001 going away, 1002 protocol error,
/// 1003 unsupported data, 1007 invalid payload, 1008 policy, 1009 too big, 1011 server error). Documented in
/// docs/websocket.md.
pub mod close {
    pub const AUTH: u16 = 4001;
    pub const SLOW_CONSUMER: u16 = 4002;
    pub const IDLE: u16 = 4003;
    pub const KILLED: u16 = 4004;
    /// The session's token expired and no fresh one arrived (`AUTH.TOKEN`, the JS client's
    /// `refreshToken`).
    pub const TOKEN_EXPIRED: u16 = 4005;
}

/// Serves a connection the HTTP router has upgraded (the handshake answered, `leftover` the bytes
/// that came after it) until it ends.
pub async fn serve<S: Stream + 'static>(
    stream: S,
    peer: std::net::SocketAddr,
    local: std::net::SocketAddr,
    broker: Arc<Broker>,
    leftover: Vec<u8>,
    credentials: Option<Credentials>,
) {
    let wire = WsWire::accept(stream, leftover, &broker).await;
    conn::serve(wire, broker, peer, local, credentials).await;
}

/// The WebSocket wire over any byte stream whose handshake is done.
pub struct WsWire<S> {
    ws: WebSocketStream<S>,
    /// Text messages taken in and not handled yet.
    queue: VecDeque<Utf8Bytes>,
    queued_bytes: usize,
    /// The most message bytes that may wait (`client_query_buffer_limit`): reached when requests pile
    /// up behind a blocking command.
    queue_limit: usize,
    max_args: usize,
    /// A pong (or close reply) tungstenite queued while reading must go out before our own bytes.
    must_flush: bool,
    profile: Profile,
}

impl<S: Stream> WsWire<S> {
    /// Wraps a stream whose opening handshake is done, with the broker's WebSocket limits.
    pub async fn accept(stream: S, leftover: Vec<u8>, broker: &Broker) -> Self {
        let cfg = &broker.config.websocket;
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(cfg.read_buffer_bytes)
            .write_buffer_size(0)
            .max_message_size(Some(cfg.max_message_bytes))
            .max_frame_size(Some(cfg.max_frame_bytes));
        let ws = WebSocketStream::from_partially_read(stream, leftover, Role::Server, Some(ws_config)).await;
        let millis = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms));
        WsWire {
            ws,
            queue: VecDeque::new(),
            queued_bytes: 0,
            queue_limit: broker.settings().client_query_buffer_limit,
            max_args: broker.config.limits.max_multibulk_len,
            must_flush: false,
            profile: Profile {
                flush_at: cfg.write_buffer_bytes,
                idle: millis(cfg.idle_timeout_ms),
                redis_timeout: false,
                auth: millis(cfg.auth_timeout_ms),
                heartbeat: millis(cfg.heartbeat_ms),
            },
        }
    }

    /// Sorts one incoming message: text is queued as a request, control frames are answered (by
    /// tungstenite, on the next flush) or end the connection.
    fn take(&mut self, message: Option<Result<Message, WsError>>) -> Result<usize, End> {
        match message {
            None => Err(End::PeerClosed),
            Some(Err(e)) => Err(read_error(e)),
            Some(Ok(Message::Text(text))) => {
                let len = text.len();
                self.queued_bytes += len;
                if self.queued_bytes > self.queue_limit {
                    return Err(End::Backlog);
                }
                self.queue.push_back(text);
                Ok(len)
            }
            Some(Ok(Message::Binary(_))) => {
                Err(End::Malformed(Malformed::Unsupported("binary frames are not supported: send JSON text frames".into())))
            }
            Some(Ok(Message::Ping(_) | Message::Close(_))) => {
                self.must_flush = true;
                Ok(0)
            }
            Some(Ok(Message::Pong(_) | Message::Frame(_))) => Ok(0),
        }
    }

    fn push_text(text: &str, out: &mut BytesMut) {
        envelope::encode_frame(Opcode::Text, text.as_bytes(), out);
    }
}

impl<S: Stream> Wire for WsWire<S> {
    type Tag = Value;

    const TRANSPORT: Transport = Transport::WebSocket;
    const ENCODING: Encoding = Encoding::Json;

    fn profile(&self) -> Profile {
        self.profile
    }

    async fn read(&mut self) -> Result<usize, End> {
        let message = self.ws.next().await;
        self.take(message)
    }

    fn read_ready(&mut self) -> Option<Result<usize, End>> {
        let message = self.ws.next().now_or_never()?;
        Some(self.take(message))
    }

    /// Before authentication Redis's pre-AUTH bounds apply: a message of at most 16 KiB (else the
    /// connection closes with 1009) with at most 10 arguments.
    fn decode(&mut self, authenticated: bool) -> Decoded<Value> {
        let Some(text) = self.queue.pop_front() else { return Ok(None) };
        self.queued_bytes -= text.len();
        if !authenticated && text.len() as i64 > herald_protocol::resp::UNAUTH_MAX_BULK {
            return Err(Undecodable::Broken(End::Malformed(Malformed::TooBig("message too big before authentication".into()))));
        }
        let max_args = if authenticated { self.max_args } else { herald_protocol::resp::UNAUTH_MAX_MULTIBULK as usize };
        match envelope::parse_request(&text, max_args) {
            Ok(request) => Ok(Some((request.id, request.request))),
            Err(e) => Err(Undecodable::Refused(e.id, CommandError::new(format!("ERR {}", e.message)))),
        }
    }

    fn pending_input(&self) -> usize {
        self.queued_bytes
    }

    fn encode_reply(&mut self, id: &Value, reply: &Reply, _: Encoding, out: &mut BytesMut) {
        Self::push_text(&envelope::reply_frame(id, reply), out);
    }

    /// One frame whose result is the array of replies.
    fn encode_replies(&mut self, id: &Value, replies: &[Reply], _: Encoding, out: &mut BytesMut) {
        Self::push_text(&envelope::replies_frame(id, replies), out);
    }

    fn encode_push(&mut self, frame: &[u8], out: &mut BytesMut) {
        envelope::encode_frame(Opcode::Text, frame, out);
    }

    fn encode_lagged(&mut self, lost: u64, _: Encoding, out: &mut BytesMut) {
        Self::push_text(&envelope::lagged_frame(lost), out);
    }

    fn encode_heartbeat(&mut self, out: &mut BytesMut) {
        envelope::encode_frame(Opcode::Ping, b"", out);
    }

    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.must_flush {
            return Ok(0);
        }
        self.ws.get_mut().try_write_now(buf)
    }

    async fn write_all<'a>(&'a mut self, buf: &'a [u8]) -> io::Result<()> {
        if std::mem::take(&mut self.must_flush) {
            match self.ws.flush().await {
                Ok(()) | Err(WsError::ConnectionClosed) => {}
                Err(e) => return Err(io::Error::other(e.to_string())),
            }
        }
        self.ws.get_mut().write_all(buf).await
    }

    fn must_flush(&self) -> bool {
        self.must_flush
    }

    /// Sends the close frame for `end`; when the peer is gone, only what tungstenite still owes it
    /// (the reply to its close).
    async fn close(&mut self, end: &End) {
        match close_code(end) {
            Some(code) => {
                let frame = CloseFrame { code: CloseCode::from(code), reason: truncate_reason(&end.to_string()).into() };
                let _ = self.ws.close(Some(frame)).await;
            }
            None => {
                let _ = self.ws.flush().await;
            }
        }
    }
}

/// The close code for each end (docs/websocket.md); `None` when the peer is gone.
pub fn close_code(end: &End) -> Option<u16> {
    Some(match end {
        End::PeerClosed | End::Io(_) => return None,
        End::Quit => 1000,
        End::Shutdown => 1001,
        End::Malformed(Malformed::Broken(_) | Malformed::Resp(_)) => 1002,
        End::Malformed(Malformed::Unsupported(_)) => 1003,
        End::Malformed(Malformed::NotUtf8(_)) => 1007,
        End::Backlog => 1008,
        End::Persist(_) => 1011,
        End::Malformed(Malformed::TooBig(_)) => 1009,
        End::AuthFailed(_) | End::AuthTimeout => close::AUTH,
        End::Overflow(_) => close::SLOW_CONSUMER,
        End::Idle => close::IDLE,
        End::Killed => close::KILLED,
        End::TokenExpired => close::TOKEN_EXPIRED,
    })
}

/// What a read error means for the peer: too big, broken framing, or a socket that is gone.
fn read_error(e: WsError) -> End {
    match e {
        WsError::Capacity(e) => End::Malformed(Malformed::TooBig(e.to_string())),
        WsError::Protocol(e) => End::Malformed(Malformed::Broken(e.to_string())),
        WsError::Utf8(e) => End::Malformed(Malformed::NotUtf8(format!("invalid UTF-8: {e}"))),
        e => End::io(e),
    }
}

/// A close reason must fit in a control frame (125 bytes, two of them the code).
fn truncate_reason(reason: &str) -> String {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}
