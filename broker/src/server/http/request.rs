//! HTTP/1.1 requests taken off a connection's input: the head (httparse), a `Content-Length` body,
//! and whether the connection stays open afterwards (keep-alive).
//!
//! Bounds come from `[http]` (`max_head_bytes`, `max_body_bytes`) and are checked before anything is
//! buffered past them: a declared body over the limit is refused from its head, unread. Chunked
//! request bodies are refused (411): every client of this API knows its body's length up front.

use bytes::{Buf, Bytes, BytesMut};

/// Most header lines accepted in a request head.
const MAX_HEADERS: usize = 48;

/// One complete request.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: String,
    /// The path, still percent-encoded (the router decodes each segment).
    pub path: String,
    /// What follows `?`, still encoded.
    pub query: String,
    /// Header names in lower case, values as text (a value that is not UTF-8 is dropped).
    headers: Vec<(String, String)>,
    pub body: Bytes,
    /// Whether the connection carries on after the response (HTTP/1.1 unless `Connection: close`;
    /// HTTP/1.0 only with `Connection: keep-alive`).
    pub keep_alive: bool,
}

impl HttpRequest {
    /// The first value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The query's `name=value` pairs, decoded.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        query_pairs(&self.query)
    }
}

/// The request bounds of `[http]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_head: usize,
    pub max_body: usize,
}

/// What the input holds so far.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    Complete(HttpRequest),
    /// More bytes are needed; `expects_continue` once the head is in and asks for `100 Continue`
    /// before the client sends its body (curl does for bodies over 1 KB).
    Incomplete {
        expects_continue: bool,
    },
}

/// A request that cannot be served; answered with its status, then the connection closes (the
/// input cannot be trusted to be at a request boundary any more).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HttpError {
    #[error("malformed HTTP request: {0}")]
    Malformed(String),
    #[error("request head over {0} bytes (http.max_head_bytes)")]
    HeadTooLarge(usize),
    #[error("request body of {0} bytes is over {1} bytes (http.max_body_bytes)")]
    BodyTooLarge(usize, usize),
    #[error("chunked request bodies are not accepted: send Content-Length")]
    LengthRequired,
    #[error("request timed out before it was complete (http.request_timeout_ms)")]
    Timeout,
}

impl HttpError {
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_) => 400,
            HttpError::HeadTooLarge(_) => 431,
            HttpError::BodyTooLarge(..) => 413,
            HttpError::LengthRequired => 411,
            HttpError::Timeout => 408,
        }
    }
}

/// Takes the next complete request off the front of `buf`.
pub fn parse(buf: &mut BytesMut, limits: Limits) -> Result<Parsed, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_head => return Err(HttpError::HeadTooLarge(limits.max_head)),
        Ok(httparse::Status::Partial) => return Ok(Parsed::Incomplete { expects_continue: false }),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::Malformed(format!("more than {MAX_HEADERS} header lines"))),
        Err(e) => return Err(HttpError::Malformed(e.to_string())),
    };
    if head_len > limits.max_head {
        return Err(HttpError::HeadTooLarge(limits.max_head));
    }
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .filter_map(|h| Some((h.name.to_ascii_lowercase(), std::str::from_utf8(h.value).ok()?.trim().to_owned())))
        .collect();
    let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    if find("transfer-encoding").is_some() {
        return Err(HttpError::LengthRequired);
    }
    let body_len = match find("content-length") {
        None => 0,
        Some(v) => v.parse::<usize>().map_err(|_| HttpError::Malformed(format!("Content-Length '{v}' is not a length")))?,
    };
    if body_len > limits.max_body {
        return Err(HttpError::BodyTooLarge(body_len, limits.max_body));
    }
    if buf.len() < head_len + body_len {
        let expects_continue = find("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        return Ok(Parsed::Incomplete { expects_continue });
    }
    let connection = find("connection").map(str::to_ascii_lowercase);
    let has = |token: &str| connection.as_deref().is_some_and(|c| c.split(',').any(|t| t.trim() == token));
    let keep_alive = if req.version == Some(0) { has("keep-alive") } else { !has("close") };
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let request = HttpRequest {
        method: req.method.unwrap_or("GET").to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: Bytes::new(),
        keep_alive,
    };
    buf.advance(head_len);
    let body = buf.split_to(body_len).freeze();
    Ok(Parsed::Complete(HttpRequest { body, ..request }))
}

/// `a=1&b=x%20y` as decoded pairs (`+` is a space, as forms send it).
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " ")))
        })
        .collect()
}

/// Decodes `%XX` escapes; a malformed escape stays as it is.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(high << 4 | low);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_head: 1024, max_body: 16 };

    fn parse_str(text: &str) -> Result<Parsed, HttpError> {
        parse(&mut BytesMut::from(text), LIMITS)
    }

    #[test]
    fn requests_and_keep_alive() {
        let mut buf = BytesMut::from("POST /v1/cmd?x=1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.0\r\n\r\n");
        let Parsed::Complete(first) = parse(&mut buf, LIMITS).unwrap() else { panic!() };
        assert_eq!((first.method.as_str(), first.path.as_str(), first.query.as_str()), ("POST", "/v1/cmd", "x=1"));
        assert_eq!(&first.body[..], b"abc");
        assert!(first.keep_alive);
        let Parsed::Complete(second) = parse(&mut buf, LIMITS).unwrap() else { panic!() };
        assert!(!second.keep_alive);
        assert!(buf.is_empty());
        let Parsed::Complete(closing) = parse_str("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").unwrap() else { panic!() };
        assert!(!closing.keep_alive);
    }

    #[test]
    fn partial_requests_and_continue() {
        assert_eq!(parse_str("GET / HT").unwrap(), Parsed::Incomplete { expects_continue: false });
        let head = "POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nab";
        assert_eq!(parse_str(head).unwrap(), Parsed::Incomplete { expects_continue: true });
    }

    #[test]
    fn limits_and_refusals() {
        assert_eq!(parse_str("POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n").unwrap_err().status(), 413);
        assert_eq!(parse_str(&format!("GET /{} HTTP/1.1\r\n", "a".repeat(2000))).unwrap_err().status(), 431);
        assert_eq!(parse_str("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap_err().status(), 411);
        assert_eq!(parse_str("POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n").unwrap_err().status(), 400);
        assert_eq!(parse_str("\x01\x02 nonsense\r\n\r\n").unwrap_err().status(), 400);
    }

    #[test]
    fn queries() {
        assert_eq!(
            query_pairs("user=default&password=p%40ss+word&x"),
            vec![("user".into(), "default".into()), ("password".into(), "p@ss word".into()), ("x".into(), "".into())]
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("a%2Fb"), "a/b");
    }
}
