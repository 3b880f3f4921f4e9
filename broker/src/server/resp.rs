//! One RESP connection: read, decode every complete request, dispatch, encode every reply, flush once.
//!
//! The task owns its socket and buffers. Pushes from the hub arrive through the session's outbox and
//! are written when the previous write has finished, so a slow reader's backlog stays in the outbox,
//! where its limit applies. Replies to a long pipeline are flushed whenever they pass
//! `reply_flush_bytes`, and no more input is read while a write is pending, so a client that pipelines
//! without reading is bounded too.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use herald_protocol::resp;
use herald_protocol::{CommandError, DecodeLimits, Encoding, FramingError, Reply, RequestDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::sleep_until_opt;
use super::watch::Watch;
use crate::broker::Broker;
use crate::clients::{ClientHandle, Transport};
use crate::dispatch::{self, Outcome, Session};
use crate::pubsub::Outbox;

/// Read buffer growth: start small (idle connections stay cheap), grow for big requests.
const READ_CHUNK: usize = 4 * 1024;
const READ_CHUNK_MAX: usize = 64 * 1024;

/// Why a connection ended, for the log and the counters.
#[derive(Debug)]
pub enum Ended {
    ClientClosed,
    Quit,
    Killed,
    Shutdown,
    Idle,
    Protocol(FramingError),
    Overflow(&'static str),
    Io(std::io::Error),
}

pub struct RespConnection {
    stream: TcpStream,
    broker: Arc<Broker>,
    client: Arc<ClientHandle>,
    session: Session,
    decoder: RequestDecoder,
    rbuf: BytesMut,
    wbuf: BytesMut,
    read_chunk: usize,
    flush_at: usize,
    /// The last batch queued publications for the fan-out thread: wait for it before reading more
    /// while it is backlogged.
    fed_fanout: bool,
}

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
    let settings = broker.settings();
    let outbox = Arc::new(Outbox::new(Encoding::Resp2, settings.outbox));
    let client = broker.clients.register(Transport::Resp, peer, local, outbox);
    let session = Session::new(client.clone(), !broker.requires_auth(), Encoding::Resp2);
    let limits = DecodeLimits {
        max_multibulk_len: broker.config.limits.max_multibulk_len,
        max_bulk_len: settings.proto_max_bulk_len,
        max_inline_len: broker.config.limits.max_inline_len,
        max_query_buffer: settings.client_query_buffer_limit,
    };
    let mut decoder = RequestDecoder::new(limits);
    decoder.set_authenticated(session.authenticated);
    let mut conn = RespConnection {
        stream,
        flush_at: broker.config.limits.reply_flush_bytes,
        broker: broker.clone(),
        client: client.clone(),
        session,
        decoder,
        rbuf: BytesMut::with_capacity(READ_CHUNK),
        wbuf: BytesMut::new(),
        read_chunk: READ_CHUNK,
        fed_fanout: false,
    };
    let ended = conn.run().await;
    conn.log_end(&ended);
    conn.finish();
}

impl RespConnection {
    async fn run(&mut self) -> Ended {
        let broker = self.broker.clone();
        let client = self.client.clone();
        let mut watch = Watch::new(&broker, &client);
        loop {
            if let Err(ended) = self.flush().await {
                return ended;
            }
            if let Some(reason) = client.outbox.closed() {
                return Ended::Overflow(reason.describe());
            }
            if self.rbuf.capacity() - self.rbuf.len() < self.read_chunk / 2 {
                self.rbuf.reserve(self.read_chunk);
            }
            let idle = self.idle_deadline();
            let throttled = self.fed_fanout && broker.hub.fanout_backlogged();
            tokio::select! {
                biased;
                _ = watch.shutdown.as_mut() => return Ended::Shutdown,
                _ = watch.kill.as_mut() => return Ended::Killed,
                _ = watch.pushes.as_mut() => {
                    watch.rearm_pushes();
                    self.drain_pushes();
                }
                _ = sleep_until_opt(idle) => return Ended::Idle,
                // Publications wait for the fan-out thread to catch up (engine/pubsub/fanout.rs).
                _ = broker.hub.fanout_room(), if throttled => self.fed_fanout = false,
                read = self.stream.read_buf(&mut self.rbuf), if !throttled => match read {
                    Ok(0) => return Ended::ClientClosed,
                    Ok(n) => {
                        broker.stats.net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
                        if self.rbuf.len() == self.rbuf.capacity() {
                            self.read_chunk = (self.read_chunk * 2).min(READ_CHUNK_MAX);
                        }
                        if let Some(ended) = self.process(&mut watch).await {
                            return ended;
                        }
                    }
                    Err(e) => return Ended::Io(e),
                },
            }
        }
    }

    /// Redis's `timeout`: idle clients are closed, except subscribers.
    fn idle_deadline(&self) -> Option<Instant> {
        let secs = self.broker.settings().timeout_secs;
        if secs == 0 || !self.session.subscriptions.is_empty() {
            return None;
        }
        Some(self.broker.clock.instant_at(self.client.last_active_ms()) + Duration::from_secs(secs))
    }

    /// Handles every complete request in the read buffer.
    async fn process(&mut self, watch: &mut Watch<'_>) -> Option<Ended> {
        let queued = self.broker.hub.fanout_queued();
        let ended = self.process_batch(watch).await;
        self.fed_fanout = self.broker.hub.fanout_queued() != queued;
        ended
    }

    async fn process_batch(&mut self, watch: &mut Watch<'_>) -> Option<Ended> {
        self.stamp_batch();
        loop {
            let request = match self.decoder.decode(&mut self.rbuf) {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    self.broker.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    if e.replies() {
                        self.encode(&Reply::Error(CommandError::new(format!("ERR {e}"))));
                        let _ = self.flush().await;
                    }
                    return Some(Ended::Protocol(e));
                }
            };
            let outcome = dispatch::handle(request, &mut self.session, &self.broker);
            self.decoder.set_authenticated(self.session.authenticated);
            match outcome {
                Outcome::Reply(r) => self.encode(&r),
                Outcome::Replies(rs) => rs.iter().for_each(|r| self.encode(r)),
                Outcome::Close(r) => {
                    self.encode(&r);
                    let _ = self.flush().await;
                    return Some(Ended::Quit);
                }
                Outcome::Block(blocked) => match self.wait_blocked(blocked, watch).await {
                    Ok(reply) => {
                        self.encode(&reply);
                        self.stamp_batch();
                    }
                    Err(ended) => return Some(ended),
                },
            }
            if self.wbuf.len() >= self.flush_at
                && let Err(ended) = self.flush().await
            {
                return Some(ended);
            }
        }
        self.client.query_buffer.store(self.rbuf.len(), Ordering::Relaxed);
        if self.rbuf.is_empty() && self.rbuf.capacity() > READ_CHUNK_MAX {
            self.rbuf = BytesMut::with_capacity(READ_CHUNK);
            self.read_chunk = READ_CHUNK;
        }
        None
    }

    /// One clock reading for the requests that arrived together.
    fn stamp_batch(&mut self) {
        let at = Instant::now();
        self.session.batch_time = Some((self.broker.clock.ms_at(at), at));
    }

    /// Waits for a blocked command's reply while still noticing a disconnect, a kill or shutdown, and
    /// still delivering pushes. Input that arrives meanwhile is buffered (bounded by the query
    /// buffer limit) and handled after the reply, as Redis does.
    async fn wait_blocked(&mut self, blocked: dispatch::Blocked, watch: &mut Watch<'_>) -> Result<Reply, Ended> {
        self.flush().await?;
        let broker = self.broker.clone();
        let wait = blocked.wait(&broker);
        tokio::pin!(wait);
        loop {
            if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 2 {
                self.rbuf.reserve(READ_CHUNK);
            }
            tokio::select! {
                biased;
                reply = &mut wait => return Ok(reply),
                _ = watch.shutdown.as_mut() => return Err(Ended::Shutdown),
                _ = watch.kill.as_mut() => return Err(Ended::Killed),
                _ = watch.pushes.as_mut() => {
                    watch.rearm_pushes();
                    self.drain_pushes();
                    self.flush().await?;
                }
                read = self.stream.read_buf(&mut self.rbuf) => match read {
                    Ok(0) => return Err(Ended::ClientClosed),
                    Ok(n) => {
                        broker.stats.net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
                        if self.rbuf.len() > self.decoder.limits().max_query_buffer {
                            return Err(Ended::Protocol(FramingError::QueryBufferLimit));
                        }
                    }
                    Err(e) => return Err(Ended::Io(e)),
                },
            }
        }
    }

    fn encode(&mut self, reply: &Reply) {
        // Pushes already queued go first, so a subscriber sees messages and replies in the order
        // they happened.
        if !self.session.subscriptions.is_empty() {
            self.drain_pushes();
        }
        resp::encode(reply, self.session.encoding().resp(), &mut self.wbuf);
    }

    fn drain_pushes(&mut self) {
        let start = self.wbuf.len();
        let wbuf = &mut self.wbuf;
        let drained = self.client.outbox.drain(|frame| wbuf.extend_from_slice(&frame));
        if drained.lagged > 0 {
            // Drop-oldest discarded pushes: say how many, before the ones that survived.
            let frames = self.wbuf.split_off(start);
            let notice = Reply::Push(vec![Reply::text("lagged"), Reply::Int(drained.lagged as i64)]);
            resp::encode(&notice, self.session.encoding().resp(), &mut self.wbuf);
            self.wbuf.extend_from_slice(&frames);
        }
    }

    async fn flush(&mut self) -> Result<(), Ended> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let broker = self.broker.clone();
        let client = self.client.clone();
        let len = self.wbuf.len();
        // Most replies fit the socket buffer at once: check the kill and the overflow, then write
        // without a `select!`, which would register (and unlink) two waits per reply. Only a write
        // that cannot finish now waits, still watching both.
        if client.kill.is_cancelled() {
            return Err(Ended::Killed);
        }
        if client.outbox.has_overflowed() {
            return Err(Ended::Overflow(client.outbox.closed().map_or("output buffer limit", |r| r.describe())));
        }
        let sent = match self.stream.try_write(&self.wbuf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(Ended::Io(e)),
        };
        if sent < len {
            tokio::select! {
                biased;
                _ = client.kill.cancelled() => return Err(Ended::Killed),
                _ = client.outbox.overflowed() => {
                    return Err(Ended::Overflow(client.outbox.closed().map_or("output buffer limit", |r| r.describe())));
                }
                written = self.stream.write_all(&self.wbuf[sent..]) => written.map_err(Ended::Io)?,
            }
        }
        broker.stats.net_output_bytes.fetch_add(len as u64, Ordering::Relaxed);
        self.wbuf.clear();
        if self.wbuf.capacity() > 4 * READ_CHUNK_MAX {
            self.wbuf = BytesMut::new();
        }
        Ok(())
    }

    fn log_end(&self, ended: &Ended) {
        let id = self.client.id;
        let addr = self.client.addr;
        match ended {
            Ended::ClientClosed | Ended::Quit | Ended::Shutdown => tracing::debug!(id, %addr, "connection closed: {ended:?}"),
            Ended::Killed => tracing::info!(id, %addr, "connection killed by CLIENT KILL"),
            Ended::Idle => {
                self.broker.stats.idle_disconnects.fetch_add(1, Ordering::Relaxed);
                tracing::info!(id, %addr, "connection closed: idle longer than timeout");
            }
            Ended::Protocol(e) => tracing::info!(id, %addr, "connection closed: {e}"),
            Ended::Overflow(reason) => {
                self.broker.stats.output_limit_disconnects.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(id, %addr, "connection closed: {reason}");
            }
            Ended::Io(e) => tracing::debug!(id, %addr, "connection closed: {e}"),
        }
    }

    /// Leaves nothing behind: subscriptions, watches and the registry entry go with the connection.
    fn finish(&mut self) {
        crate::dispatch::disconnect(&mut self.session, &self.broker);
    }
}
