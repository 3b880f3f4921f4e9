//! What Redis sends on the bridge's own pub-sub connection (`link.rs`), cut straight out of the read
//! buffer: a publication's pattern, channel and payload become slices of the frame (`Bytes`, no copy and
//! no `redis::Value` in between), a subscription's confirmation is only counted.
//!
//! On RESP2 every pub-sub reply is an array of bulk strings and at most one integer (`message channel
//! payload`, `pmessage pattern channel payload`, `subscribe channel count`); RESP3 sends the same
//! elements as a push (`>`), which is read alike. Any other frame (an error, a `pong`, a push of another
//! kind) is cut whole with [`resp::frame_len`] and reported as such.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::resp::{self, Malformed};

/// One frame read on a pub-sub connection.
#[derive(Debug, PartialEq)]
pub enum Push {
    /// A publication: `message` (no pattern) or `pmessage`.
    Message { pattern: Option<Bytes>, channel: Bytes, payload: Bytes },
    /// The confirmation of one name of a SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE or PUNSUBSCRIBE.
    Confirmed,
    /// An error reply: Redis refused an order (a `NOPERM` channel, say).
    Refused(String),
    /// Anything else, skipped.
    Other,
}

/// The elements of a pub-sub reply read: at most four.
const MOST: usize = 4;

/// Takes the complete frame at the start of `buf` out of it; `None` (and `buf` untouched) if more bytes
/// are needed.
pub fn cut(buf: &mut BytesMut) -> Result<Option<Push>, Malformed> {
    let Some((kind, line, mut at)) = resp::header(buf, 0) else { return Ok(None) };
    let n = match kind {
        b'*' | b'>' => resp::length(line)?,
        _ => -1,
    };
    if !(2..=MOST as i64).contains(&n) {
        return whole(buf);
    }
    // Each element's data (a bulk string's bytes, an integer's digits), by position in the frame.
    let mut parts: [Range<usize>; MOST] = Default::default();
    for part in parts.iter_mut().take(n as usize) {
        let Some((kind, line, next)) = resp::header(buf, at) else { return Ok(None) };
        match kind {
            b'$' => {
                let len = resp::length(line)?;
                if len < 0 {
                    return whole(buf);
                }
                let end = next + len as usize;
                if buf.len() < end + 2 {
                    return Ok(None);
                }
                if &buf[end..end + 2] != b"\r\n" {
                    return Err(Malformed);
                }
                *part = next..end;
                at = end + 2;
            }
            b':' => {
                *part = next - 2 - line.len()..next - 2;
                at = next;
            }
            _ => return whole(buf),
        }
    }
    let frame = buf.split_to(at).freeze();
    let slice = |i: usize| frame.slice(parts[i].clone());
    Ok(Some(match (&frame[parts[0].clone()], n) {
        (b"message", 3) => Push::Message { pattern: None, channel: slice(1), payload: slice(2) },
        (b"pmessage", 4) => Push::Message { pattern: Some(slice(1)), channel: slice(2), payload: slice(3) },
        (b"subscribe" | b"psubscribe" | b"unsubscribe" | b"punsubscribe", 3) => Push::Confirmed,
        _ => Push::Other,
    }))
}

/// A frame of any other shape, taken whole.
fn whole(buf: &mut BytesMut) -> Result<Option<Push>, Malformed> {
    let Some(n) = resp::frame_len(buf)? else { return Ok(None) };
    let frame = buf.split_to(n);
    Ok(Some(match frame.first() {
        Some(b'-') => Push::Refused(String::from_utf8_lossy(&frame[1..n - 2]).into_owned()),
        Some(b'!') => Push::Refused(String::from_utf8_lossy(&frame).lines().nth(1).unwrap_or_default().to_owned()),
        _ => Push::Other,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(pattern: Option<&str>, channel: &str, payload: &[u8]) -> Push {
        Push::Message {
            pattern: pattern.map(|p| Bytes::copy_from_slice(p.as_bytes())),
            channel: Bytes::copy_from_slice(channel.as_bytes()),
            payload: Bytes::copy_from_slice(payload),
        }
    }

    /// Reads `wire` fed to the buffer in pieces of `step` bytes, as reads off a socket would bring it.
    fn read_in_steps(wire: &[u8], step: usize) -> Vec<Push> {
        let mut buf = BytesMut::new();
        let mut read = Vec::new();
        for piece in wire.chunks(step) {
            buf.extend_from_slice(piece);
            while let Some(push) = cut(&mut buf).unwrap() {
                read.push(push);
            }
        }
        assert!(buf.is_empty(), "nothing left over");
        read
    }

    #[test]
    fn frames_split_anywhere_are_cut_once_complete() {
        let wire: &[u8] = b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n\
            *3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\na\r\nb:\r\n\
            *4\r\n$8\r\npmessage\r\n$3\r\nne*\r\n$4\r\nnews\r\n$0\r\n\r\n\
            *3\r\n$12\r\npunsubscribe\r\n$3\r\nne*\r\n:0\r\n\
            -NOPERM this user has no permissions to access the 'x' channel\r\n\
            *2\r\n$4\r\npong\r\n$0\r\n\r\n\
            *3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n";
        let expected = vec![
            Push::Confirmed,
            message(None, "news", b"a\r\nb:"),
            message(Some("ne*"), "news", b""),
            Push::Confirmed,
            Push::Refused("NOPERM this user has no permissions to access the 'x' channel".into()),
            Push::Other,
            message(None, "c", b"hi"),
        ];
        for step in 1..=wire.len() {
            assert_eq!(read_in_steps(wire, step), expected, "read {step} bytes at a time");
        }
    }

    #[test]
    fn a_large_payload_is_one_slice_of_the_frame() {
        let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let wire = [format!("*3\r\n$7\r\nmessage\r\n$3\r\nbig\r\n${}\r\n", payload.len()).as_bytes(), &payload, b"\r\n"].concat();
        for step in [1000, 65536, wire.len()] {
            assert_eq!(read_in_steps(&wire, step), vec![message(None, "big", &payload)]);
        }
        let mut buf = BytesMut::from(&wire[..]);
        let Some(Push::Message { payload: read, .. }) = cut(&mut buf).unwrap() else { panic!("a message") };
        assert_eq!(read.len(), payload.len());
    }

    #[test]
    fn resp3_pushes_read_as_resp2_arrays_do() {
        let wire: &[u8] = b">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n\
            >4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$1\r\nc\r\n$1\r\nx\r\n\
            >3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\ny\r\n\
            >3\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n:1\r\n\
            %1\r\n+a\r\n:1\r\n\
            !5\r\nERR x\r\n";
        let expected = vec![
            Push::Confirmed,
            message(Some("*"), "c", b"x"),
            message(None, "c", b"y"),
            Push::Other,
            Push::Other,
            Push::Refused("ERR x".into()),
        ];
        for step in 1..=wire.len() {
            assert_eq!(read_in_steps(wire, step), expected, "read {step} bytes at a time");
        }
    }

    #[test]
    fn what_redis_never_sends_is_malformed() {
        for bad in [&b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhiXY"[..], b"*3\r\n$x\r\n", b"?\r\n"] {
            assert!(cut(&mut BytesMut::from(bad)).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
