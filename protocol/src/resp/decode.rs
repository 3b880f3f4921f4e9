//! Request decoding: multibulk frames through `redis-protocol`, inline lines through [`split_inline`],
//! with Redis's limits enforced before anything is allocated for them.
//!
//! `redis-protocol` parses a complete frame into ranges of the shared input buffer (zero copy), but it has
//! no notion of limits: a declared `$536870912` just means "incomplete" to it. So a small scanner walks
//! the frame's headers first, exactly as Redis's `processMultibulkBuffer` does: it rejects an oversized
//! count or length the moment its header arrives, produces Redis's exact protocol-error text, and tells us
//! when the frame is complete. The scanner keeps its position between reads, so a large value arriving in
//! many reads is scanned once, not once per read. Only complete frames reach `redis-protocol`.

use bytes::{Buf, Bytes, BytesMut};
use redis_protocol::resp2::decode::decode_range;
use redis_protocol::resp2::types::RangeFrame;

use super::inline::split_inline;
use crate::error::FramingError;
use crate::number::parse_i64;
use crate::request::Request;

/// Bounds on what one connection may send. Every field comes from the broker's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Most arguments in one multibulk request (Redis allows up to `INT_MAX`; we bound it).
    pub max_multibulk_len: usize,
    /// Largest single argument (`proto-max-bulk-len`, 512 MB in Redis).
    pub max_bulk_len: usize,
    /// Longest inline line or header line without a terminator (Redis: 64 KB).
    pub max_inline_len: usize,
    /// Most unparsed bytes held for one connection (`client-query-buffer-limit`, 1 GB in Redis).
    pub max_query_buffer: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_multibulk_len: 1024 * 1024,
            max_bulk_len: 512 * 1024 * 1024,
            max_inline_len: 64 * 1024,
            max_query_buffer: 1024 * 1024 * 1024,
        }
    }
}

/// Redis's tighter bounds for a client that has not authenticated yet on a password-protected server.
const UNAUTH_MAX_MULTIBULK: i64 = 10;
const UNAUTH_MAX_BULK: i64 = 16 * 1024;

/// Where the header scan of the current multibulk frame has got to.
#[derive(Debug, Default, Clone, Copy)]
struct Scan {
    /// Offset of the next header to read; 0 means the `*N` line has not been read.
    pos: usize,
    /// Bulk strings still to scan.
    left: usize,
}

/// Stateful decoder for one connection's request stream.
#[derive(Debug)]
pub struct RequestDecoder {
    limits: DecodeLimits,
    authenticated: bool,
    scan: Scan,
}

enum Scanned {
    /// More bytes are needed.
    Partial,
    /// `*0` / `*-1`: an empty request Redis silently skips; this many bytes.
    Empty(usize),
    /// A complete frame of this many bytes.
    Complete(usize),
}

impl RequestDecoder {
    pub fn new(limits: DecodeLimits) -> Self {
        RequestDecoder { limits, authenticated: true, scan: Scan::default() }
    }

    /// Under `requirepass`, unauthenticated clients get Redis's small request bounds.
    pub fn set_authenticated(&mut self, authenticated: bool) {
        self.authenticated = authenticated;
    }

    pub fn limits(&self) -> DecodeLimits {
        self.limits
    }

    /// Takes the next complete request off the front of `buf`, skipping empty ones.
    ///
    /// `Ok(None)` means more input is needed. After an error the stream cannot be trusted: the caller
    /// replies (when [`FramingError::replies`]) and closes.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, FramingError> {
        loop {
            if buf.is_empty() {
                return Ok(None);
            }
            if buf[0] != b'*' {
                match self.decode_inline(buf)? {
                    Some(args) if args.is_empty() => continue,
                    Some(args) => return Ok(Some(Request::new(args))),
                    None => return self.incomplete(buf),
                }
            }
            match self.scan_multibulk(buf)? {
                Scanned::Partial => return self.incomplete(buf),
                Scanned::Empty(len) => {
                    buf.advance(len);
                    self.scan = Scan::default();
                }
                Scanned::Complete(len) => {
                    self.scan = Scan::default();
                    let frame = buf.split_to(len).freeze();
                    return Ok(Some(Request::new(frame_args(&frame))));
                }
            }
        }
    }

    fn incomplete(&self, buf: &BytesMut) -> Result<Option<Request>, FramingError> {
        if buf.len() > self.limits.max_query_buffer { Err(FramingError::QueryBufferLimit) } else { Ok(None) }
    }

    fn decode_inline(&self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, FramingError> {
        let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
            if buf.len() > self.limits.max_inline_len {
                return Err(FramingError::InlineTooBig);
            }
            return Ok(None);
        };
        let line = buf.split_to(newline + 1);
        let mut text = &line[..newline];
        if text.last() == Some(&b'\r') {
            text = &text[..text.len() - 1];
        }
        split_inline(text).map(Some)
    }

    /// Reads one `\r\n`-terminated header starting at `start`; `None` if its terminator has not arrived.
    fn header<'a>(&self, buf: &'a [u8], start: usize, too_long: FramingError) -> Result<Option<(&'a [u8], usize)>, FramingError> {
        let rest = &buf[start..];
        match rest.iter().position(|&b| b == b'\r') {
            None if rest.len() > self.limits.max_inline_len => Err(too_long),
            None => Ok(None),
            // The `\n` after the `\r` must be there too.
            Some(cr) if cr + 2 > rest.len() => Ok(None),
            Some(cr) => Ok(Some((&rest[..cr], start + cr + 2))),
        }
    }

    fn scan_multibulk(&mut self, buf: &[u8]) -> Result<Scanned, FramingError> {
        if self.scan.pos == 0 {
            let Some((line, next)) = self.header(buf, 0, FramingError::MultibulkCountTooLong)? else {
                return Ok(Scanned::Partial);
            };
            let count = parse_i64(&line[1..]).ok_or(FramingError::InvalidMultibulkLength)?;
            if count > i64::from(i32::MAX) || count > self.limits.max_multibulk_len as i64 {
                return Err(FramingError::InvalidMultibulkLength);
            }
            if count > UNAUTH_MAX_MULTIBULK && !self.authenticated {
                return Err(FramingError::UnauthenticatedMultibulkLength);
            }
            if count <= 0 {
                return Ok(Scanned::Empty(next));
            }
            self.scan = Scan { pos: next, left: count as usize };
        }
        while self.scan.left > 0 {
            let start = self.scan.pos;
            if start >= buf.len() {
                return Ok(Scanned::Partial);
            }
            let Some((line, next)) = self.header(buf, start, FramingError::BulkCountTooLong)? else {
                return Ok(Scanned::Partial);
            };
            if buf[start] != b'$' {
                return Err(FramingError::ExpectedBulk(buf[start] as char));
            }
            let len = parse_i64(&line[1..]).ok_or(FramingError::InvalidBulkLength)?;
            if len < 0 || len as u64 > self.limits.max_bulk_len as u64 {
                return Err(FramingError::InvalidBulkLength);
            }
            if len > UNAUTH_MAX_BULK && !self.authenticated {
                return Err(FramingError::UnauthenticatedBulkLength);
            }
            let end = next + len as usize + 2;
            if end > buf.len() {
                return Ok(Scanned::Partial);
            }
            self.scan.pos = end;
            self.scan.left -= 1;
        }
        Ok(Scanned::Complete(self.scan.pos))
    }
}

/// Turns a frame the scanner has validated into argument slices of the shared buffer.
fn frame_args(frame: &Bytes) -> Vec<Bytes> {
    match decode_range(frame) {
        Ok(Some((RangeFrame::Array(items), _))) => items
            .into_iter()
            .map(|item| match item {
                RangeFrame::BulkString((start, end)) => frame.slice(start..end),
                other => unreachable!("scanner admitted a non-bulk element: {other:?}"),
            })
            .collect(),
        other => unreachable!("scanner admitted a frame redis-protocol rejects: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder() -> RequestDecoder {
        RequestDecoder::new(DecodeLimits::default())
    }

    fn names(reqs: &[Request]) -> Vec<Vec<String>> {
        reqs.iter().map(|r| r.parts().iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect()).collect()
    }

    fn decode_all(d: &mut RequestDecoder, buf: &mut BytesMut) -> Result<Vec<Request>, FramingError> {
        let mut out = Vec::new();
        while let Some(r) = d.decode(buf)? {
            out.push(r);
        }
        Ok(out)
    }

    const PIPELINE: &[u8] =
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\nPING\r\n*0\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n\r\n*1\r\n$0\r\n\r\nECHO \"a b\"\n";

    #[test]
    fn pipeline_of_mixed_requests() {
        let mut buf = BytesMut::from(PIPELINE);
        let reqs = decode_all(&mut decoder(), &mut buf).unwrap();
        assert_eq!(names(&reqs), vec![vec!["SET", "k", "hello"], vec!["PING"], vec!["GET", "k"], vec![""], vec!["ECHO", "a b"]]);
        assert!(buf.is_empty());
    }

    #[test]
    fn split_at_every_byte_boundary_decodes_the_same() {
        let expected = names(&decode_all(&mut decoder(), &mut BytesMut::from(PIPELINE)).unwrap());
        for cut in 0..=PIPELINE.len() {
            let mut d = decoder();
            let mut buf = BytesMut::from(&PIPELINE[..cut]);
            let mut got = decode_all(&mut d, &mut buf).unwrap();
            buf.extend_from_slice(&PIPELINE[cut..]);
            got.extend(decode_all(&mut d, &mut buf).unwrap());
            assert_eq!(names(&got), expected, "cut at {cut}");
        }
    }

    #[test]
    fn fed_one_byte_at_a_time() {
        let mut d = decoder();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in PIPELINE {
            buf.extend_from_slice(&[b]);
            got.extend(decode_all(&mut d, &mut buf).unwrap());
        }
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn binary_safe_values() {
        let mut buf = BytesMut::from(&b"*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\0\xff\r\n"[..]);
        let req = decoder().decode(&mut buf).unwrap().unwrap();
        assert_eq!(&req.parts()[1][..], b"\r\n\0\xff");
    }

    fn error_of(input: &[u8], d: &mut RequestDecoder) -> FramingError {
        let mut buf = BytesMut::from(input);
        decode_all(d, &mut buf).unwrap_err()
    }

    #[test]
    fn redis_protocol_errors() {
        let d = &mut decoder();
        assert_eq!(error_of(b"*abc\r\n", d), FramingError::InvalidMultibulkLength);
        assert_eq!(error_of(b"*2\r\n:1\r\n", &mut decoder()), FramingError::ExpectedBulk(':'));
        assert_eq!(error_of(b"*1\r\n$-1\r\n", &mut decoder()), FramingError::InvalidBulkLength);
        assert_eq!(error_of(b"*1\r\n$+1\r\n", &mut decoder()), FramingError::InvalidBulkLength);
        assert_eq!(error_of(b"*1\r\n$536870913\r\n", &mut decoder()), FramingError::InvalidBulkLength);
        assert_eq!(error_of(b"*3000000000\r\n", &mut decoder()), FramingError::InvalidMultibulkLength);
        assert_eq!(error_of(b"SET k \"oops\r\n", &mut decoder()), FramingError::UnbalancedQuotes);
    }

    #[test]
    fn declared_lengths_are_checked_before_their_bytes_arrive() {
        let limits = DecodeLimits { max_bulk_len: 100, max_multibulk_len: 4, ..DecodeLimits::default() };
        let mut d = RequestDecoder::new(limits);
        assert_eq!(error_of(b"*2\r\n$3\r\nSET\r\n$101\r\n", &mut d), FramingError::InvalidBulkLength);
        let mut d = RequestDecoder::new(limits);
        assert_eq!(error_of(b"*5\r\n", &mut d), FramingError::InvalidMultibulkLength);
    }

    #[test]
    fn unterminated_lines_are_bounded() {
        let limits = DecodeLimits { max_inline_len: 16, ..DecodeLimits::default() };
        assert_eq!(error_of(&[b'a'; 17], &mut RequestDecoder::new(limits)), FramingError::InlineTooBig);
        let mut long_count = b"*".to_vec();
        long_count.extend_from_slice(&[b'1'; 17]);
        assert_eq!(error_of(&long_count, &mut RequestDecoder::new(limits)), FramingError::MultibulkCountTooLong);
        let mut long_len = b"*1\r\n$".to_vec();
        long_len.extend_from_slice(&[b'1'; 17]);
        assert_eq!(error_of(&long_len, &mut RequestDecoder::new(limits)), FramingError::BulkCountTooLong);
    }

    #[test]
    fn query_buffer_limit() {
        let limits = DecodeLimits { max_query_buffer: 32, ..DecodeLimits::default() };
        let mut d = RequestDecoder::new(limits);
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$30\r\n0123456789012345678"[..]);
        assert_eq!(d.decode(&mut buf), Err(FramingError::QueryBufferLimit));
    }

    #[test]
    fn unauthenticated_bounds() {
        let mut d = decoder();
        d.set_authenticated(false);
        assert_eq!(error_of(b"*11\r\n", &mut d), FramingError::UnauthenticatedMultibulkLength);
        let mut d = decoder();
        d.set_authenticated(false);
        assert_eq!(error_of(b"*1\r\n$16385\r\n", &mut d), FramingError::UnauthenticatedBulkLength);
    }
}
