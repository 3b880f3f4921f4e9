//! One WebSocket connection: JSON requests through the same dispatch as RESP, replies in request order,
//! pushes from the same bounded outbox, and a close code that says why the connection ended.
//!
//! Like the RESP connection, one task owns the socket. Every message that is ready is handled before
//! anything is written, and the replies and pushes it produced go out in one write, which is what keeps
//! fan-out to many browsers cheap. tokio-tungstenite reads the client's frames (masking, fragments,
//! control frames, limits) and answers its pings and closes; the server's own data frames are simple
//! (unmasked, one frame per message), so the connection encodes them straight into its write buffer
//! (`ws::encode_frame`), after letting tungstenite flush whatever control frame it queued, instead of
//! paying tungstenite's per-message `Sink` path for every push. Pushes wait in the outbox, never in
//! the socket's buffer, so a slow reader meets the outbox's limits and is closed with 4002.
//!
//! A blocking command holds the replies behind it, as in Redis: messages that arrive meanwhile are kept
//! (bounded by `client_query_buffer_limit`) and handled after its reply, while pushes, pings and closes
//! are still served.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{FutureExt, SinkExt, StreamExt};
use herald_protocol::ws::{self as envelope, Opcode};
use herald_protocol::{Encoding, Reply, Request};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::http::Opening;
use super::sleep_until_opt;
use super::watch::Watch;
use crate::broker::Broker;
use crate::clients::{ClientHandle, Transport};
use crate::dispatch::{self, Blocked, Outcome, Session};
use crate::pubsub::Outbox;

/// Close codes Herald sends, beyond RFC 6455's own (1000 normal, 1001 going away, 1002 protocol error,
/// 1003 unsupported data, 1007 invalid payload, 1009 too big). Documented in docs/websocket.md.
pub mod close {
    pub const AUTH: u16 = 4001;
    pub const SLOW_CONSUMER: u16 = 4002;
    pub const IDLE: u16 = 4003;
    pub const KILLED: u16 = 4004;
}

/// How long a closing handshake may take before the socket is simply dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Why a connection ended.
#[derive(Debug)]
enum Ended {
    /// Herald closes with this code and reason.
    Close(u16, String),
    /// The peer closed or the socket failed: nothing more to say.
    Gone(String),
}

impl Ended {
    fn close(code: u16, reason: impl Into<String>) -> Self {
        Ended::Close(code, reason.into())
    }
}

struct WsConnection {
    ws: WebSocketStream<TcpStream>,
    broker: Arc<Broker>,
    client: Arc<ClientHandle>,
    session: Session,
    /// Encoded frames waiting for the next flush.
    wbuf: BytesMut,
    /// A pong (or close reply) tungstenite queued while reading needs a flush.
    must_flush: bool,
    /// Requests that arrived while a blocking command waited, handled after its reply.
    backlog: VecDeque<Utf8Bytes>,
    backlog_bytes: usize,
    last_heard: Instant,
    /// The last batch queued publications for the fan-out thread: wait for it before reading more
    /// while it is backlogged.
    fed_fanout: bool,
}

/// Serves an upgraded connection until it ends.
pub async fn serve(stream: TcpStream, broker: Arc<Broker>, opening: Opening) {
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else { return };
    let cfg = &broker.config.websocket;
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(cfg.read_buffer_bytes)
        .write_buffer_size(0)
        .max_message_size(Some(cfg.max_message_bytes))
        .max_frame_size(Some(cfg.max_frame_bytes));
    let ws = WebSocketStream::from_partially_read(stream, opening.leftover, Role::Server, Some(ws_config)).await;
    let outbox = Arc::new(Outbox::new(Encoding::Json, broker.settings().outbox));
    let client = broker.clients.register(Transport::WebSocket, peer, local, outbox);
    let session = Session::new(client.clone(), !broker.requires_auth(), Encoding::Json);
    let mut conn = WsConnection {
        ws,
        broker: broker.clone(),
        client,
        session,
        wbuf: BytesMut::new(),
        must_flush: false,
        backlog: VecDeque::new(),
        backlog_bytes: 0,
        last_heard: Instant::now(),
        fed_fanout: false,
    };
    let ended = match conn.authenticate(opening.user, opening.password) {
        Ok(()) => conn.run().await,
        Err(ended) => ended,
    };
    conn.finish(ended).await;
}

impl WsConnection {
    /// Credentials from the URL go through `AUTH`, so they mean exactly what they mean over RESP.
    fn authenticate(&mut self, user: Option<String>, password: Option<String>) -> Result<(), Ended> {
        let Some(password) = password else { return Ok(()) };
        let mut parts = vec!["AUTH".to_owned()];
        parts.extend(user);
        parts.push(password);
        let request = Request::new(parts.into_iter().map(Into::into).collect());
        match dispatch::handle(request, &mut self.session, &self.broker) {
            Outcome::Reply(Reply::Error(e)) => Err(Ended::close(close::AUTH, e.message().to_owned())),
            _ => Ok(()),
        }
    }

    async fn run(&mut self) -> Ended {
        let broker = self.broker.clone();
        let client = self.client.clone();
        let cfg = &broker.config.websocket;
        let heartbeat = Duration::from_millis(cfg.heartbeat_ms);
        let mut next_ping = (cfg.heartbeat_ms > 0).then(|| Instant::now() + heartbeat);
        let auth_deadline = (cfg.auth_timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(cfg.auth_timeout_ms));
        let mut watch = Watch::new(&broker, &client);
        loop {
            if let Err(ended) = self.flush().await {
                return ended;
            }
            if let Some(reason) = client.outbox.closed() {
                return Ended::close(close::SLOW_CONSUMER, reason.describe());
            }
            let auth_at = if self.session.authenticated { None } else { auth_deadline };
            let idle_at = (cfg.idle_timeout_ms > 0).then(|| self.last_heard + Duration::from_millis(cfg.idle_timeout_ms));
            let throttled = self.fed_fanout && broker.hub.fanout_backlogged();
            tokio::select! {
                biased;
                _ = watch.shutdown.as_mut() => return Ended::close(1001, "server shutting down"),
                _ = watch.kill.as_mut() => return self.killed(),
                _ = watch.pushes.as_mut() => {
                    watch.rearm_pushes();
                    self.drain_pushes();
                }
                _ = sleep_until_opt(auth_at) => return Ended::close(close::AUTH, "authentication timeout"),
                _ = sleep_until_opt(idle_at) => return Ended::close(close::IDLE, "idle timeout"),
                _ = sleep_until_opt(next_ping) => {
                    envelope::encode_frame(Opcode::Ping, b"", &mut self.wbuf);
                    next_ping = Some(Instant::now() + heartbeat);
                }
                // Publications wait for the fan-out thread to catch up (engine/pubsub/fanout.rs).
                _ = broker.hub.fanout_room(), if throttled => self.fed_fanout = false,
                message = self.ws.next(), if !throttled => {
                    let queued = broker.hub.fanout_queued();
                    let received = self.receive_batch(message, &mut watch).await;
                    self.fed_fanout = broker.hub.fanout_queued() != queued;
                    if let Err(ended) = received {
                        return ended;
                    }
                }
            }
        }
    }

    /// Handles `first` and every further message already readable, so their replies share one flush.
    async fn receive_batch(&mut self, first: Option<Result<Message, WsError>>, watch: &mut Watch<'_>) -> Result<(), Ended> {
        let flush_at = self.broker.config.websocket.write_buffer_bytes;
        let mut message = Some(first);
        while let Some(next) = message.take() {
            if let Some(text) = self.receive(next)? {
                self.queue_request(text)?;
                self.handle_backlog(watch).await?;
            }
            if self.wbuf.len() < flush_at && !self.broker.hub.fanout_backlogged() {
                message = self.ws.next().now_or_never();
            }
        }
        Ok(())
    }

    /// Sorts an incoming message: requests are returned, control frames are answered or end the
    /// connection.
    fn receive(&mut self, message: Option<Result<Message, WsError>>) -> Result<Option<Utf8Bytes>, Ended> {
        self.last_heard = Instant::now();
        let message = match message {
            None => return Err(Ended::Gone("client closed".into())),
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(read_error(e)),
        };
        match message {
            Message::Text(text) => {
                self.broker.stats.net_input_bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
                Ok(Some(text))
            }
            Message::Binary(_) => Err(Ended::close(1003, "binary frames are not supported: send JSON text frames")),
            Message::Ping(_) | Message::Close(_) => {
                // tungstenite has queued the pong or the closing reply; it goes out with the next flush.
                self.must_flush = true;
                Ok(None)
            }
            Message::Pong(_) | Message::Frame(_) => Ok(None),
        }
    }

    fn queue_request(&mut self, text: Utf8Bytes) -> Result<(), Ended> {
        self.backlog_bytes += text.len();
        if self.backlog_bytes > self.broker.settings().client_query_buffer_limit {
            return Err(Ended::close(1008, "too many requests waiting behind a blocking command"));
        }
        self.backlog.push_back(text);
        Ok(())
    }

    /// Handles queued requests in order; a blocking one is waited for before the next.
    async fn handle_backlog(&mut self, watch: &mut Watch<'_>) -> Result<(), Ended> {
        while let Some(text) = self.backlog.pop_front() {
            self.backlog_bytes -= text.len();
            if let Some((id, blocked)) = self.handle(&text)? {
                let reply = self.wait_blocked(blocked, watch).await?;
                self.push_reply(&id, &reply);
            }
        }
        Ok(())
    }

    /// Dispatches one request. A blocking command comes back to be waited for.
    fn handle(&mut self, text: &str) -> Result<Option<(Value, Blocked)>, Ended> {
        let envelope = match envelope::parse_request(text, self.broker.config.limits.max_multibulk_len) {
            Ok(e) => e,
            Err(e) => {
                self.broker.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
                self.push_text(e.frame());
                return Ok(None);
            }
        };
        let at = Instant::now();
        self.session.batch_time = Some((self.broker.clock.ms_at(at), at));
        match dispatch::handle(envelope.request, &mut self.session, &self.broker) {
            Outcome::Reply(reply) => self.push_reply(&envelope.id, &reply),
            Outcome::Replies(replies) => {
                self.drain_pushes_first();
                self.push_text(envelope::replies_frame(&envelope.id, &replies));
            }
            Outcome::Close(reply) => {
                self.push_reply(&envelope.id, &reply);
                return Err(Ended::close(1000, "QUIT"));
            }
            Outcome::Block(blocked) => return Ok(Some((envelope.id, blocked))),
        }
        Ok(None)
    }

    /// Waits for a blocked command's reply while serving pushes and control frames and keeping the
    /// requests that arrive meanwhile.
    async fn wait_blocked(&mut self, blocked: Blocked, watch: &mut Watch<'_>) -> Result<Reply, Ended> {
        self.flush().await?;
        let broker = self.broker.clone();
        let wait = blocked.wait(&broker);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                biased;
                reply = &mut wait => return Ok(reply),
                _ = watch.shutdown.as_mut() => return Err(Ended::close(1001, "server shutting down")),
                _ = watch.kill.as_mut() => return Err(self.killed()),
                _ = watch.pushes.as_mut() => {
                    watch.rearm_pushes();
                    self.drain_pushes();
                    self.flush().await?;
                }
                message = self.ws.next() => {
                    if let Some(text) = self.receive(message)? {
                        self.queue_request(text)?;
                    }
                    self.flush().await?;
                }
            }
        }
    }

    fn killed(&self) -> Ended {
        match self.client.outbox.closed() {
            Some(reason) => Ended::close(close::SLOW_CONSUMER, reason.describe()),
            None => Ended::close(close::KILLED, "killed by CLIENT KILL"),
        }
    }

    fn push_reply(&mut self, id: &Value, reply: &Reply) {
        self.drain_pushes_first();
        self.push_text(envelope::reply_frame(id, reply));
    }

    /// Pushes already queued go before a reply, so a subscriber sees messages and replies in the order
    /// they happened.
    fn drain_pushes_first(&mut self) {
        if !self.session.subscriptions.is_empty() {
            self.drain_pushes();
        }
    }

    fn push_text(&mut self, text: String) {
        envelope::encode_frame(Opcode::Text, text.as_bytes(), &mut self.wbuf);
    }

    fn drain_pushes(&mut self) {
        let start = self.wbuf.len();
        let wbuf = &mut self.wbuf;
        let drained = self.client.outbox.drain(|frame| envelope::encode_frame(Opcode::Text, &frame, wbuf));
        if drained.lagged > 0 {
            // Drop-oldest discarded pushes: say how many, before the ones that survived.
            let frames = self.wbuf.split_off(start);
            self.push_text(envelope::lagged_frame(drained.lagged));
            self.wbuf.unsplit(frames);
        }
    }

    /// Writes every gathered frame in one write, after any control frame tungstenite queued. A kill
    /// (or an overflow) interrupts a write stuck on a reader that stopped reading.
    async fn flush(&mut self) -> Result<(), Ended> {
        if self.wbuf.is_empty() && !self.must_flush {
            return Ok(());
        }
        let must_flush = std::mem::take(&mut self.must_flush);
        let client = self.client.clone();
        let (ws, wbuf) = (&mut self.ws, &self.wbuf);
        let write = async move {
            if must_flush {
                match ws.flush().await {
                    Ok(()) | Err(WsError::ConnectionClosed) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
            ws.get_mut().write_all(wbuf).await.map_err(|e| e.to_string())
        };
        let written = tokio::select! {
            biased;
            _ = client.kill.cancelled() => return Err(self.killed()),
            _ = client.outbox.overflowed() => return Err(self.killed()),
            written = write => written,
        };
        written.map_err(Ended::Gone)?;
        self.broker.stats.net_output_bytes.fetch_add(self.wbuf.len() as u64, Ordering::Relaxed);
        self.wbuf.clear();
        if self.wbuf.capacity() > 4 * self.broker.config.websocket.write_buffer_bytes {
            self.wbuf = BytesMut::new();
        }
        Ok(())
    }

    /// Sends what is still owed and the close frame (within `CLOSE_GRACE`), then leaves nothing behind.
    async fn finish(&mut self, ended: Ended) {
        let id = self.client.id;
        let addr = self.client.addr;
        match &ended {
            Ended::Close(code, reason) => {
                match *code {
                    close::SLOW_CONSUMER => {
                        self.broker.stats.output_limit_disconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(id, %addr, "WebSocket closed: {reason}");
                    }
                    close::IDLE => {
                        self.broker.stats.idle_disconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(id, %addr, "WebSocket closed: {reason}");
                    }
                    1000 | 1001 => tracing::debug!(id, %addr, "WebSocket closed: {reason}"),
                    _ => tracing::info!(id, %addr, code, "WebSocket closed: {reason}"),
                }
                let frame = CloseFrame { code: CloseCode::from(*code), reason: truncate_reason(reason).into() };
                let stuck = *code == close::SLOW_CONSUMER || *code == close::KILLED;
                if !stuck {
                    let _ = tokio::time::timeout(CLOSE_GRACE, self.flush()).await;
                }
                let _ = tokio::time::timeout(CLOSE_GRACE, self.ws.close(Some(frame))).await;
            }
            Ended::Gone(reason) => {
                tracing::debug!(id, %addr, "WebSocket ended: {reason}");
                let _ = tokio::time::timeout(CLOSE_GRACE, self.ws.flush()).await;
            }
        }
        dispatch::disconnect(&mut self.session, &self.broker);
    }
}

/// What a read error means for the peer: too big, broken framing, or a socket that is gone.
fn read_error(e: WsError) -> Ended {
    match e {
        WsError::Capacity(e) => Ended::close(1009, e.to_string()),
        WsError::Protocol(e) => Ended::close(1002, e.to_string()),
        WsError::Utf8(e) => Ended::close(1007, format!("invalid UTF-8: {e}")),
        e => Ended::Gone(e.to_string()),
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
