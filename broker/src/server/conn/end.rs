//! Why a connection ended: one reason for every wire, logged and counted once; each wire maps it to its
//! own close (RESP closes the socket, WebSocket sends a close code).

use std::fmt;
use std::sync::atomic::Ordering;

use herald_protocol::{CommandError, FramingError};

use crate::broker::Broker;
use crate::clients::ClientHandle;

/// Why a connection ended.
#[derive(Debug)]
pub enum End {
    /// The peer closed the connection (end of stream, or a WebSocket close).
    PeerClosed,
    /// The transport failed (reset, broken pipe...).
    Io(String),
    /// QUIT: its reply is sent, then the connection closes normally.
    Quit,
    /// CLIENT KILL.
    Killed,
    /// The broker is shutting down.
    Shutdown,
    /// Idle for too long: no command for Redis's `timeout`, or nothing heard for the WebSocket's
    /// `idle_timeout_ms`.
    Idle,
    /// Not authenticated within the wire's authentication timeout.
    AuthTimeout,
    /// The credentials given as the connection opened were refused, with `AUTH`'s error.
    AuthFailed(CommandError),
    /// The token the session authenticated with expired and no fresh one arrived (`AUTH.TOKEN`).
    TokenExpired,
    /// The outbox passed its limits (a slow consumer), for this reason.
    Overflow(&'static str),
    /// Too many requests waiting behind a blocking command (`client_query_buffer_limit`).
    Backlog,
    /// The wire's framing is broken or over its limits.
    Malformed(Malformed),
    /// The persistence log could not be written: the replies waiting for it are not sent.
    Persist(String),
}

/// How a request stream broke, in terms every wire can map to its own close.
#[derive(Debug)]
pub enum Malformed {
    /// A RESP request stream Redis would refuse; its text is Redis's, sent back before closing when
    /// [`FramingError::replies`].
    Resp(FramingError),
    /// A message or frame over the wire's size limit.
    TooBig(String),
    /// The wire's own framing is broken.
    Broken(String),
    /// Text that is not valid UTF-8.
    NotUtf8(String),
    /// A kind of message this wire does not take.
    Unsupported(String),
}

impl End {
    pub fn io(e: impl fmt::Display) -> End {
        End::Io(e.to_string())
    }

    /// Whether output still owed (a QUIT reply, a protocol error, pushes) is worth sending: not to a
    /// peer that is gone, nor to one whose outbox overflowed or that was killed while possibly stuck,
    /// nor replies the log could not make durable.
    pub fn owes_output(&self) -> bool {
        !matches!(self, End::PeerClosed | End::Io(_) | End::Killed | End::Overflow(_) | End::Persist(_))
    }

    /// Logs the end once (target `herald::clients`, one line with the client's id, address, wire and
    /// user, and `reason`: a stable word per kind of end) and counts it in INFO's stats. Ordinary ends
    /// (the peer left, QUIT, shutdown) and CLIENT KILL (logged by the command, with who killed) are
    /// debug lines; a slow consumer dropped, a protocol error, an idle or unauthenticated connection
    /// closed are worth an operator's attention.
    pub fn record(&self, broker: &Broker, client: &ClientHandle) {
        let (id, addr, transport) = (client.id, client.addr, client.transport.name());
        let user = client.activity().user.clone();
        let user = &*user;
        let reason = self.reason();
        match self {
            End::PeerClosed | End::Quit | End::Shutdown | End::Io(_) | End::Killed => {
                tracing::debug!(target: "herald::clients", id, %addr, transport, user, reason, "connection closed: {self}")
            }
            End::Idle => {
                broker.stats.idle_disconnects.fetch_add(1, Ordering::Relaxed);
                tracing::info!(target: "herald::clients", id, %addr, transport, user, reason, "connection closed: {self}");
            }
            End::Overflow(_) => {
                broker.stats.output_limit_disconnects.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target: "herald::clients", id, %addr, transport, user, reason, "slow consumer dropped: {self}");
            }
            End::Persist(_) => {
                tracing::warn!(target: "herald::clients", id, %addr, transport, user, reason, "connection closed without its replies: {self}")
            }
            End::Malformed(_) | End::Backlog => {
                tracing::warn!(target: "herald::clients", id, %addr, transport, user, reason, "protocol error, connection closed: {self}")
            }
            End::AuthFailed(_) | End::AuthTimeout | End::TokenExpired => {
                tracing::warn!(target: "herald::auth", id, %addr, transport, user, reason, "connection closed: {self}")
            }
        }
    }

    /// One stable word per kind of end, for log queries.
    pub fn reason(&self) -> &'static str {
        match self {
            End::PeerClosed => "peer-closed",
            End::Io(_) => "io-error",
            End::Quit => "quit",
            End::Killed => "killed",
            End::Shutdown => "shutdown",
            End::Idle => "idle",
            End::AuthTimeout => "auth-timeout",
            End::TokenExpired => "token-expired",
            End::AuthFailed(_) => "auth-failed",
            End::Overflow(_) => "slow-consumer",
            End::Backlog => "query-buffer-limit",
            End::Malformed(_) => "protocol-error",
            End::Persist(_) => "persistence-error",
        }
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::PeerClosed => f.write_str("client closed"),
            End::Io(e) => write!(f, "{e}"),
            End::Quit => f.write_str("QUIT"),
            End::Killed => f.write_str("killed by CLIENT KILL"),
            End::Shutdown => f.write_str("server shutting down"),
            End::Idle => f.write_str("idle timeout"),
            End::AuthTimeout => f.write_str("authentication timeout"),
            End::TokenExpired => f.write_str("token expired"),
            End::AuthFailed(e) => f.write_str(e.message()),
            End::Overflow(reason) => f.write_str(reason),
            End::Backlog => f.write_str("too many requests waiting behind a blocking command"),
            End::Malformed(Malformed::Resp(e)) => write!(f, "{e}"),
            End::Persist(e) => write!(f, "the replies could not be made durable: {e}"),
            End::Malformed(Malformed::TooBig(text) | Malformed::Broken(text) | Malformed::NotUtf8(text) | Malformed::Unsupported(text)) => {
                f.write_str(text)
            }
        }
    }
}
