//! Rendering a [`Reply`] as RESP2 or RESP3 bytes.
//!
//! Written directly into the connection's output buffer: building `redis-protocol` frames first would
//! allocate a frame tree per reply on the hottest path. The unit tests decode every shape back with
//! `redis-protocol` to prove the bytes are well-formed.

use bytes::{BufMut, BytesMut};

use crate::number::{format_double, format_i64};
use crate::reply::Reply;

/// The RESP version a session speaks; `HELLO 3` switches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

impl Protocol {
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

fn header(out: &mut BytesMut, kind: u8, n: i64) {
    let mut digits = [0u8; 20];
    let text = format_i64(&mut digits, n);
    out.reserve(text.len() + 3);
    out.put_u8(kind);
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

fn bulk(out: &mut BytesMut, data: &[u8]) {
    header(out, b'$', data.len() as i64);
    out.reserve(data.len() + 2);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// Appends `reply` to `out` in the given protocol.
pub fn encode(reply: &Reply, proto: Protocol, out: &mut BytesMut) {
    let resp3 = proto == Protocol::Resp3;
    match reply {
        Reply::Status(text) => {
            out.reserve(text.len() + 3);
            out.put_u8(b'+');
            out.put_slice(text.as_bytes());
            out.put_slice(b"\r\n");
        }
        Reply::Error(e) => {
            out.reserve(e.0.len() + 3);
            out.put_u8(b'-');
            out.put_slice(e.0.as_bytes());
            out.put_slice(b"\r\n");
        }
        Reply::Int(n) => header(out, b':', *n),
        Reply::Bulk(data) => bulk(out, data),
        Reply::Nil if resp3 => out.put_slice(b"_\r\n"),
        Reply::Nil => out.put_slice(b"$-1\r\n"),
        Reply::NilArray if resp3 => out.put_slice(b"_\r\n"),
        Reply::NilArray => out.put_slice(b"*-1\r\n"),
        Reply::Array(items) => encode_items(b'*', items, proto, out),
        Reply::Set(items) => encode_items(if resp3 { b'~' } else { b'*' }, items, proto, out),
        Reply::Push(items) => encode_items(if resp3 { b'>' } else { b'*' }, items, proto, out),
        Reply::Map(pairs) => {
            if resp3 {
                header(out, b'%', pairs.len() as i64);
            } else {
                header(out, b'*', 2 * pairs.len() as i64);
            }
            for (k, v) in pairs {
                encode(k, proto, out);
                encode(v, proto, out);
            }
        }
        Reply::Double(d) => {
            let text = format_double(*d);
            if resp3 {
                out.put_u8(b',');
                out.put_slice(text.as_bytes());
                out.put_slice(b"\r\n");
            } else {
                bulk(out, text.as_bytes());
            }
        }
        Reply::Bool(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Reply::Bool(b) => header(out, b':', i64::from(*b)),
        Reply::Verbatim(text) if resp3 => {
            header(out, b'=', text.len() as i64 + 4);
            out.reserve(text.len() + 6);
            out.put_slice(b"txt:");
            out.put_slice(text);
            out.put_slice(b"\r\n");
        }
        Reply::Verbatim(text) => bulk(out, text),
    }
}

fn encode_items(kind: u8, items: &[Reply], proto: Protocol, out: &mut BytesMut) {
    header(out, kind, items.len() as i64);
    for item in items {
        encode(item, proto, out);
    }
}

/// Encodes one reply into fresh bytes (pushes shared by many subscribers are encoded this way, once).
pub fn encode_to_bytes(reply: &Reply, proto: Protocol) -> bytes::Bytes {
    let mut out = BytesMut::new();
    encode(reply, proto, &mut out);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CommandError;
    use bytes::Bytes;
    use redis_protocol::resp2::decode::decode as decode2;
    use redis_protocol::resp2::types::OwnedFrame as F2;
    use redis_protocol::resp3::decode::complete::decode as decode3;
    use redis_protocol::resp3::types::OwnedFrame as F3;

    fn sample() -> Reply {
        Reply::Array(vec![
            Reply::ok(),
            Reply::Error(CommandError::syntax()),
            Reply::Int(-42),
            Reply::bulk(Bytes::from_static(b"a\r\nb")),
            Reply::Nil,
            Reply::NilArray,
            Reply::Map(vec![(Reply::text("k"), Reply::Int(1))]),
            Reply::Set(vec![Reply::text("x")]),
            Reply::Double(1.5),
            Reply::Bool(true),
            Reply::Verbatim(Bytes::from_static(b"# Server\r\n")),
            Reply::Push(vec![Reply::text("message")]),
        ])
    }

    #[test]
    fn resp2_rendering_is_what_redis_sends() {
        let out = encode_to_bytes(&sample(), Protocol::Resp2);
        let expected: &[u8] = b"*12\r\n+OK\r\n-ERR syntax error\r\n:-42\r\n$4\r\na\r\nb\r\n$-1\r\n*-1\r\n*2\r\n$1\r\nk\r\n:1\r\n*1\r\n$1\r\nx\r\n$3\r\n1.5\r\n:1\r\n$10\r\n# Server\r\n\r\n*1\r\n$7\r\nmessage\r\n";
        assert_eq!(&out[..], expected);
        let (frame, used) = decode2(&out).unwrap().unwrap();
        assert_eq!(used, out.len());
        assert!(matches!(frame, F2::Array(ref items) if items.len() == 12));
    }

    #[test]
    fn resp3_rendering_decodes_back() {
        let out = encode_to_bytes(&sample(), Protocol::Resp3);
        let (frame, used) = decode3(&out).unwrap().unwrap();
        assert_eq!(used, out.len());
        let F3::Array { data, .. } = frame else { panic!("not an array: {frame:?}") };
        assert!(matches!(data[4], F3::Null));
        assert!(matches!(data[6], F3::Map { .. }));
        assert!(matches!(data[7], F3::Set { .. }));
        assert!(matches!(data[8], F3::Double { data, .. } if data == 1.5));
        assert!(matches!(data[9], F3::Boolean { data: true, .. }));
        assert!(matches!(data[10], F3::VerbatimString { .. }));
        assert!(matches!(data[11], F3::Push { .. }));
    }
}
