//! Redis's replies read straight off the wire (`lean.rs`): where one reply frame ends, and a frame as a
//! Herald [`Reply`] without going through `redis::Value` (the forwarding of plain commands), and a client's
//! request written as the RESP array Redis reads.
//!
//! Redis sends what the connection's protocol shapes (RESP2 for RESP2 clients, RESP3 for the others), and
//! a RESP2 reply says itself whether a null is a null bulk (`$-1`) or a null array (`*-1`), so a frame maps
//! onto a [`Reply`] one to one: the reply a client gets is the one `value::reply` made of the same frame
//! through `redis::Value`, which the tests compare (`tests` below).

use std::borrow::Cow;

use bytes::{BufMut, Bytes};
use herald_protocol::{CommandError, Reply, Request};

/// A frame Redis should never send (the connection is out of step and is dropped).
#[derive(Debug)]
pub struct Malformed;

/// The length of the complete frame at the start of `buf`; `None` if more bytes are needed.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, Malformed> {
    let mut at = 0;
    // Elements still to skip: one frame, then the elements of each aggregate met on the way.
    let mut remaining: usize = 1;
    while remaining > 0 {
        let Some((kind, line, next)) = header(buf, at) else { return Ok(None) };
        remaining -= 1;
        at = next;
        match kind {
            b'$' | b'!' | b'=' => {
                let n = length(line)?;
                if n >= 0 {
                    let end = at + n as usize + 2;
                    if buf.len() < end {
                        return Ok(None);
                    }
                    at = end;
                }
            }
            b'*' | b'~' | b'>' => remaining += length(line)?.max(0) as usize,
            b'%' => remaining += 2 * length(line)?.max(0) as usize,
            // An attribute map comes before the reply it is about: its pairs, then that reply.
            b'|' => remaining += 2 * length(line)?.max(0) as usize + 1,
            b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {}
            _ => return Err(Malformed),
        }
    }
    Ok(Some(at))
}

/// The type byte, the rest of the line, and where the next line starts; `None` if the line is incomplete.
pub(super) fn header(buf: &[u8], at: usize) -> Option<(u8, &[u8], usize)> {
    let &kind = buf.get(at)?;
    let i = memchr(&buf[at + 1..])?;
    Some((kind, &buf[at + 1..at + 1 + i], at + 1 + i + 2))
}

/// Where `\r\n` starts in `buf`.
fn memchr(buf: &[u8]) -> Option<usize> {
    let i = buf.iter().position(|&b| b == b'\n')?;
    (i > 0 && buf[i - 1] == b'\r').then(|| i - 1)
}

pub(super) fn length(line: &[u8]) -> Result<i64, Malformed> {
    std::str::from_utf8(line).ok().and_then(|s| s.parse().ok()).ok_or(Malformed)
}

/// Whether a complete frame is out-of-band data (a RESP3 push), which answers no request.
pub fn is_push(frame: &[u8]) -> bool {
    frame.first() == Some(&b'>')
}

/// A complete frame as the `redis` crate's parser reads it into a `redis::Value`, for the shapes domain
/// scripts answer with (RESP2 simple strings, integers, bulk strings, arrays and their nulls); `None` for
/// anything else (errors, RESP3 types, a frame nested deeper than [`PLAIN_DEPTH`], text the crate would
/// read differently), which the caller hands to the crate's parser. Why: `redis::Parser::parse_value`
/// zeroes a fresh decoder buffer on every call, about 6,000 instructions per script reply on the node
/// (docs/benchmarks.md, "After the merges of 2026-12-06").
pub fn plain_value(frame: &[u8]) -> Option<redis::Value> {
    let mut at = 0;
    let value = plain_at(frame, &mut at, 0)?;
    (at == frame.len()).then_some(value)
}

/// How deep [`plain_value`] reads arrays in arrays (the crate's own limit is 100).
const PLAIN_DEPTH: usize = 32;

fn plain_at(frame: &[u8], at: &mut usize, depth: usize) -> Option<redis::Value> {
    use redis::Value;
    let (kind, line, next) = header(frame, *at)?;
    *at = next;
    // The crate trims integers and lengths before parsing them, and reads a line as UTF-8.
    let int = || std::str::from_utf8(line).ok()?.trim().parse::<i64>().ok();
    match kind {
        b'+' => match std::str::from_utf8(line).ok()? {
            "OK" => Some(Value::Okay),
            text => Some(Value::SimpleString(text.to_owned())),
        },
        b':' => int().map(Value::Int),
        b'$' => {
            let n = int()?;
            if n < 0 {
                return Some(Value::Nil);
            }
            let end = next.checked_add(usize::try_from(n).ok()?)?;
            let data = frame.get(next..end)?;
            if frame.get(end..end + 2)? != b"\r\n" {
                return None;
            }
            *at = end + 2;
            Some(Value::BulkString(data.to_vec()))
        }
        b'*' if depth < PLAIN_DEPTH => {
            let n = int()?;
            if n < 0 {
                return Some(Value::Nil);
            }
            let n = usize::try_from(n).ok()?;
            // Each element is at least three bytes: a count beyond what the frame holds is not read here.
            if n > frame.len() {
                return None;
            }
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(plain_at(frame, at, depth + 1)?);
            }
            Some(Value::Array(items))
        }
        _ => None,
    }
}

/// A complete frame (as [`frame_len`] found it) as a [`Reply`]; bulk strings are slices of `frame`.
pub fn reply(frame: &Bytes) -> Result<Reply, Malformed> {
    let mut at = 0;
    parse(frame, &mut at)
}

fn parse(frame: &Bytes, at: &mut usize) -> Result<Reply, Malformed> {
    let (kind, line, next) = header(frame, *at).ok_or(Malformed)?;
    let (start, end) = (*at + 1, next - 2);
    *at = next;
    let text = || std::str::from_utf8(line).map_err(|_| Malformed);
    Ok(match kind {
        b'+' if line == b"OK" => Reply::ok(),
        b'+' => Reply::Status(Cow::Owned(text()?.to_owned())),
        b'-' => Reply::Error(CommandError::new(String::from_utf8_lossy(line))),
        b':' => Reply::Int(length(line)?),
        b'_' => Reply::Nil,
        b'#' => Reply::Bool(line == b"t"),
        b',' => Reply::Double(double(text()?)?),
        b'(' => Reply::Bulk(frame.slice(start..end)),
        b'$' | b'!' | b'=' => {
            let n = length(line)?;
            if n < 0 {
                return Ok(Reply::Nil);
            }
            let body = frame.slice(*at..*at + n as usize);
            *at += n as usize + 2;
            match kind {
                b'$' => Reply::Bulk(body),
                b'!' => Reply::Error(CommandError::new(String::from_utf8_lossy(&body))),
                // `txt:` or `mkd:` and the text; Herald's encoder writes the `txt:` back.
                _ => Reply::Verbatim(body.slice(4.min(body.len())..)),
            }
        }
        b'*' | b'~' | b'>' => {
            let n = length(line)?;
            if n < 0 {
                return Ok(Reply::NilArray);
            }
            let items = (0..n).map(|_| parse(frame, at)).collect::<Result<Vec<_>, _>>()?;
            match kind {
                b'*' => Reply::Array(items),
                b'~' => Reply::Set(items),
                _ => Reply::Push(items),
            }
        }
        b'%' => {
            let n = length(line)?.max(0);
            Reply::Map((0..n).map(|_| Ok((parse(frame, at)?, parse(frame, at)?))).collect::<Result<Vec<_>, _>>()?)
        }
        b'|' => {
            for _ in 0..2 * length(line)?.max(0) {
                parse(frame, at)?;
            }
            parse(frame, at)?
        }
        _ => return Err(Malformed),
    })
}

/// A RESP3 double: digits, `inf`, `-inf` or `nan`.
fn double(text: &str) -> Result<f64, Malformed> {
    text.parse().map_err(|_| Malformed)
}

/// `req` as the RESP array of bulk strings Redis reads, appended to `out`.
pub fn write_request(req: &Request, out: &mut Vec<u8>) {
    let parts = req.parts();
    header_line(out, b'*', parts.len());
    for part in parts {
        header_line(out, b'$', part.len());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
}

fn header_line(out: &mut Vec<u8>, kind: u8, n: usize) {
    out.put_u8(kind);
    herald_protocol::number::push_i64(out, n as i64);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::value;

    /// Every kind of frame, as the lean connection reads it and as `redis::Value` reads it.
    const FRAMES: &[&[u8]] = &[
        b"+OK\r\n",
        b"+PONG\r\n",
        b"-ERR wrong number of arguments for 'get' command\r\n",
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        b":-42\r\n",
        b"$5\r\nhello\r\n",
        b"$0\r\n\r\n",
        b"$-1\r\n",
        b"*-1\r\n",
        b"*0\r\n",
        b"*3\r\n$1\r\na\r\n$-1\r\n:7\r\n",
        b"*2\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n*1\r\n+x\r\n",
        b"_\r\n",
        b"#t\r\n",
        b"#f\r\n",
        b",1.5\r\n",
        b",inf\r\n",
        b",-inf\r\n",
        b"(3492890328409238509324850943850943825024385\r\n",
        b"=15\r\ntxt:Some string\r\n",
        b"%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n_\r\n",
        b"~2\r\n$1\r\na\r\n$1\r\nb\r\n",
        b"!21\r\nSYNTAX invalid syntax\r\n",
        b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.1923\r\n*1\r\n:2\r\n",
    ];

    #[test]
    fn frames_read_as_redis_values_do() {
        for frame in FRAMES {
            assert_eq!(frame_len(frame).unwrap(), Some(frame.len()), "{}", String::from_utf8_lossy(frame));
            for cut in 0..frame.len() {
                assert_eq!(frame_len(&frame[..cut]).unwrap(), None, "{} cut at {cut}", String::from_utf8_lossy(frame));
            }
            let mut longer = frame.to_vec();
            longer.extend_from_slice(b"+next\r\n");
            assert_eq!(frame_len(&longer).unwrap(), Some(frame.len()));
            let ours = reply(&Bytes::from_static(frame)).unwrap();
            let value = redis::parse_redis_value(frame).unwrap();
            let nil = if frame.starts_with(b"*-1") { Reply::NilArray } else { Reply::Nil };
            assert_eq!(ours, value::reply(value, &nil), "{}", String::from_utf8_lossy(frame));
        }
        assert!(is_push(b">2\r\n$7\r\nmessage\r\n$1\r\nx\r\n"));
        assert!(frame_len(b"?x\r\n").is_err());
        assert!(frame_len(b"$x\r\n").is_err());
    }

    #[test]
    fn plain_frames_read_as_the_crates_parser_reads_them_and_the_rest_is_left_to_it() {
        let plain: &[&[u8]] = &[
            b"+OK\r\n",
            b"+PONG\r\n",
            b":-42\r\n",
            b": 7 \r\n",
            b"$5\r\nhello\r\n",
            b"$4\r\na\r\nb\r\n",
            b"$0\r\n\r\n",
            b"$-1\r\n",
            b"$-2\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*3\r\n$1\r\na\r\n$-1\r\n:7\r\n",
            b"*2\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n*1\r\n+x\r\n",
            b"*2\r\n:1\r\n*1\r\n*0\r\n",
        ];
        for frame in plain {
            let value = redis::parse_redis_value(frame).unwrap();
            assert_eq!(plain_value(frame), Some(value), "{}", String::from_utf8_lossy(frame));
        }
        let others: &[&[u8]] = &[
            b"+caf\xc3\r\n",
            b":x\r\n",
            b"$5\r\nhi\r\n",
            b"$2\r\nhiX\r\n",
            b"*2\r\n:1\r\n",
            b"*1\r\n-ERR x\r\n",
            b"*99999\r\n:1\r\n",
            b":1\r\n:2\r\n",
        ];
        for frame in FRAMES.iter().chain(others) {
            if let Some(ours) = plain_value(frame) {
                assert_eq!(Ok(ours), redis::parse_redis_value(frame).map_err(|_| ()), "{}", String::from_utf8_lossy(frame));
            }
        }
        for frame in others {
            assert_eq!(plain_value(frame), None, "{}", String::from_utf8_lossy(frame));
        }
        let deep = [b"*1\r\n".repeat(PLAIN_DEPTH + 1), b":1\r\n".to_vec()].concat();
        assert_eq!(plain_value(&deep), None);
    }

    #[test]
    fn requests_are_written_as_resp_arrays() {
        let req = Request::new(vec![Bytes::from_static(b"SET"), Bytes::from_static(b"k"), Bytes::from_static(b"a\r\nb")]);
        let mut out = Vec::new();
        write_request(&req, &mut out);
        assert_eq!(out, value::command(&req).get_packed_command());
    }
}
