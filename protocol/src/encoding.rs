//! How everything sent to one session is rendered: its replies and its pushes alike.

use crate::resp::Protocol;

/// A session's encoding. A RESP session starts in RESP2 and `HELLO 3` switches it to RESP3; a
/// WebSocket session is JSON for its whole life (`HELLO` there changes only the version it reports).
/// Pushes are pre-rendered once per encoding and shared by every subscriber that uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Resp2 = 0,
    Resp3 = 1,
    Json = 2,
}

impl Encoding {
    /// How many encodings there are (the size of a per-encoding cache).
    pub const COUNT: usize = 3;

    /// The encoding after `HELLO` negotiated `protocol`: RESP follows it, JSON stays JSON.
    pub fn after_hello(self, protocol: Protocol) -> Encoding {
        match (self, protocol) {
            (Encoding::Json, _) => Encoding::Json,
            (_, Protocol::Resp2) => Encoding::Resp2,
            (_, Protocol::Resp3) => Encoding::Resp3,
        }
    }

    /// The RESP version a RESP encoder writes for this encoding (RESP3 only when negotiated).
    pub fn resp(self) -> Protocol {
        match self {
            Encoding::Resp3 => Protocol::Resp3,
            Encoding::Resp2 | Encoding::Json => Protocol::Resp2,
        }
    }

    /// The inverse of `self as u8`, for encodings kept in an atomic.
    pub fn from_u8(v: u8) -> Encoding {
        match v {
            0 => Encoding::Resp2,
            1 => Encoding::Resp3,
            _ => Encoding::Json,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_switches_resp_only() {
        assert_eq!(Encoding::Resp2.after_hello(Protocol::Resp3), Encoding::Resp3);
        assert_eq!(Encoding::Resp3.after_hello(Protocol::Resp2), Encoding::Resp2);
        assert_eq!(Encoding::Json.after_hello(Protocol::Resp3), Encoding::Json);
        for e in [Encoding::Resp2, Encoding::Resp3, Encoding::Json] {
            assert_eq!(Encoding::from_u8(e as u8), e);
        }
    }
}
