//! Request decoding: multibulk frames by a scanner of our own, inline lines through [`split_inline`],
//! with Redis's limits enforced before anything is allocated for them.
//!
//! The scanner walks a frame's headers exactly as Redis's `processMultibulkBuffer` does: it rejects an
//! oversized count or length the moment its header arrives, produces Redis's exact protocol-error text,
//! notes where each argument lies, and tells us when the frame is complete; the arguments are then
//! slices of the shared input buffer (zero copy). Like Redis, it skips the two bytes after an
//! argument's data without looking at them. The scanner keeps its position between reads, so a large
//! value arriving in many reads is scanned once, not once per read.
//!
//! Requests used to be parsed a second time by `redis-protocol` once the scanner had found them whole;
//! that second parse was most of the decoding cost (about 1,400 instructions of a pipelined SET's
//! 2,500), and the scanner already knew everything it produced.

use bytes::{Buf, Bytes, BytesMut};

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
pub const UNAUTH_MAX_MULTIBULK: i64 = 10;
pub const UNAUTH_MAX_BULK: i64 = 16 * 1024;

/// Argument positions reserved ahead of a frame's arrival, and kept between frames.
const SPANS_KEPT: usize = 1024;

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
    /// Where each argument of the frame being scanned lies (start, end), kept between requests so its
    /// allocation is reused.
    spans: Vec<(usize, usize)>,
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
        RequestDecoder { limits, authenticated: true, scan: Scan::default(), spans: Vec::new() }
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
                    return Ok(Some(Request::new(self.arguments(buf.split_to(len).freeze()))));
                }
            }
        }
    }

    /// Decodes `bytes` as if they arrived in reads of `sizes` (repeated; the whole input when empty):
    /// every request, then the first framing error if one came. What the parser tests and the fuzz
    /// targets compare across splits of the same input: the answer must not depend on the split.
    pub fn decode_in_reads(&mut self, bytes: &[u8], sizes: &[usize]) -> (Vec<Request>, Option<FramingError>) {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut sizes = sizes.iter().copied().cycle();
        let mut at = 0;
        while at < bytes.len() {
            let n = sizes.next().unwrap_or(bytes.len()).clamp(1, bytes.len() - at);
            buf.extend_from_slice(&bytes[at..at + n]);
            at += n;
            loop {
                match self.decode(&mut buf) {
                    Ok(Some(req)) => out.push(req),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        (out, None)
    }

    /// The scanned frame's arguments. Each but the last is a slice of the frame (a reference count
    /// each); the last is the frame itself, narrowed to its span: the frame's own handle would only
    /// be counted and released again, two atomic read-modify-writes per request for nothing.
    fn arguments(&self, mut frame: Bytes) -> Vec<Bytes> {
        let Some((&(start, end), init)) = self.spans.split_last() else { return Vec::new() };
        let mut args = Vec::with_capacity(self.spans.len());
        args.extend(init.iter().map(|&(start, end)| frame.slice(start..end)));
        frame.truncate(end);
        frame.advance(start);
        args.push(frame);
        args
    }

    fn incomplete(&self, buf: &BytesMut) -> Result<Option<Request>, FramingError> {
        if buf.len() > self.limits.max_query_buffer { Err(FramingError::QueryBufferLimit) } else { Ok(None) }
    }

    fn decode_inline(&self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, FramingError> {
        // Too long whether or not its newline has arrived: Redis checks only a line still waiting for
        // its newline, which makes the verdict depend on how the bytes were split into reads (found
        // by `broker/fuzz`'s `resp_decoder` target); a bound on the line itself answers the same always.
        let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
            if buf.len() > self.limits.max_inline_len {
                return Err(FramingError::InlineTooBig);
            }
            return Ok(None);
        };
        if newline > self.limits.max_inline_len {
            return Err(FramingError::InlineTooBig);
        }
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
            // As for inline lines: the same verdict however the header was split.
            Some(cr) if cr > self.limits.max_inline_len => Err(too_long),
            // The `\n` after the `\r` must be there too.
            Some(cr) if cr + 2 > rest.len() => Ok(None),
            Some(cr) => Ok(Some((&rest[..cr], start + cr + 2))),
        }
    }

    /// A count or length header (`*N` / `$N`) at `start`: its value and where the next line starts;
    /// `None` if its terminator has not arrived.
    fn number(
        &self,
        buf: &[u8],
        start: usize,
        too_long: FramingError,
        invalid: FramingError,
    ) -> Result<Option<(i64, usize)>, FramingError> {
        if let Some(quick) = quick_number(buf, start + 1) {
            return Ok(Some(quick));
        }
        let Some((line, next)) = self.header(buf, start, too_long)? else { return Ok(None) };
        let value = parse_i64(&line[1..]).ok_or(invalid)?;
        Ok(Some((value, next)))
    }

    fn scan_multibulk(&mut self, buf: &[u8]) -> Result<Scanned, FramingError> {
        if self.scan.pos == 0 {
            let too_long = FramingError::MultibulkCountTooLong;
            let Some((count, next)) = self.number(buf, 0, too_long, FramingError::InvalidMultibulkLength)? else {
                return Ok(Scanned::Partial);
            };
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
            // Room for the declared arguments, as Redis does for argv: at most 1024 ahead of their
            // arrival, and a big frame's room is not kept for the connection's life.
            if self.spans.capacity() > SPANS_KEPT {
                self.spans = Vec::new();
            }
            self.spans.clear();
            self.spans.reserve((count as usize).min(SPANS_KEPT));
        }
        while self.scan.left > 0 {
            let start = self.scan.pos;
            if start >= buf.len() {
                return Ok(Scanned::Partial);
            }
            let (len, next) = if buf[start] == b'$'
                && let Some(quick) = quick_number(buf, start + 1)
            {
                quick
            } else {
                let Some((line, next)) = self.header(buf, start, FramingError::BulkCountTooLong)? else {
                    return Ok(Scanned::Partial);
                };
                if buf[start] != b'$' {
                    return Err(FramingError::ExpectedBulk(buf[start] as char));
                }
                (parse_i64(&line[1..]).ok_or(FramingError::InvalidBulkLength)?, next)
            };
            if len < 0 || len as u64 > self.limits.max_bulk_len as u64 {
                return Err(FramingError::InvalidBulkLength);
            }
            if len > UNAUTH_MAX_BULK && !self.authenticated {
                return Err(FramingError::UnauthenticatedBulkLength);
            }
            let data_end = next + len as usize;
            let end = data_end + 2;
            if end > buf.len() {
                return Ok(Scanned::Partial);
            }
            self.spans.push((next, data_end));
            self.scan.pos = end;
            self.scan.left -= 1;
        }
        Ok(Scanned::Complete(self.scan.pos))
    }
}

/// The common shape of a count or length, read in one pass: 1 to 9 digits without a leading zero,
/// then `\r` and one more byte (skipped unread, as [`RequestDecoder::header`] and Redis do). Anything
/// else (a sign, more digits, a line still arriving, a malformed one) returns `None` and takes the
/// general path, which has the exact error for it.
#[inline]
fn quick_number(buf: &[u8], at: usize) -> Option<(i64, usize)> {
    let digits = buf.get(at..)?;
    let mut value = 0i64;
    let mut n = 0;
    while let Some(&d) = digits.get(n)
        && d.is_ascii_digit()
        && n < 9
    {
        value = value * 10 + i64::from(d - b'0');
        n += 1;
    }
    let canonical = n == 1 || (n > 1 && digits[0] != b'0');
    (canonical && digits.get(n) == Some(&b'\r') && digits.len() > n + 1).then_some((value, at + n + 2))
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
    fn the_two_bytes_after_an_argument_are_skipped_unread_as_redis_does() {
        let mut buf = BytesMut::from(&b"*2\r\n$4\r\nECHO\r\n$1\r\nabXY\r\n"[..]);
        let reqs = decode_all(&mut decoder(), &mut buf).unwrap();
        assert_eq!(names(&reqs), vec![vec!["ECHO", "a"], vec!["Y"]]);
    }

    #[test]
    fn quick_numbers_are_only_the_common_shape() {
        assert_eq!(quick_number(b"*3\r\n", 1), Some((3, 4)));
        assert_eq!(quick_number(b"$123456789\r\n", 1), Some((123_456_789, 12)));
        assert_eq!(quick_number(b"$0\r\n", 1), Some((0, 4)));
        for general in [&b"$1234567890\r\n"[..], b"$01\r\n", b"$-1\r\n", b"$+1\r\n", b"$1\r", b"$1", b"$\r\n", b"$1x\r\n"] {
            assert_eq!(quick_number(general, 1), None, "{:?}", String::from_utf8_lossy(general));
        }
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
        // The same when the whole line, newline included, arrived in one read.
        let mut line = [b'a'; 18];
        line[17] = b'\n';
        assert_eq!(error_of(&line, &mut RequestDecoder::new(limits)), FramingError::InlineTooBig);
        let mut line = vec![b'"'];
        line.extend_from_slice(&[b'a'; 16]);
        line.push(b'\n');
        assert_eq!(error_of(&line, &mut RequestDecoder::new(limits)), FramingError::InlineTooBig);
        let mut header = b"*1".to_vec();
        header.extend_from_slice(&[b' '; 16]);
        header.extend_from_slice(b"\r\n");
        assert_eq!(error_of(&header, &mut RequestDecoder::new(limits)), FramingError::MultibulkCountTooLong);
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
