//! Writing HTTP responses: the status line, the headers every answer carries, and the static pages.

use bytes::BytesMut;

/// The JavaScript client and its browser example, compiled in so the broker serves them as they are in
/// this source tree.
pub const HERALD_JS: &[u8] = include_bytes!("../../../../clients/js/herald.js");
pub const EXAMPLE_HTML: &[u8] = include_bytes!("../../../../clients/js/example/index.html");
/// The live console at `/` (docs/operations.md): a page on the same client, over `/ws`.
pub const CONSOLE_HTML: &[u8] = include_bytes!("../../../../clients/js/console/index.html");

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Appends a complete response. `extra` is header lines, each ending in `\r\n` (CORS, `Allow`...).
pub fn write(out: &mut BytesMut, status: u16, content_type: &str, extra: &str, body: &[u8], keep_alive: bool) {
    use std::fmt::Write;
    let mut head = String::with_capacity(160 + extra.len());
    let _ = write!(head, "HTTP/1.1 {status} {}\r\n", reason(status));
    if !content_type.is_empty() {
        let _ = write!(head, "Content-Type: {content_type}\r\n");
    }
    let _ = write!(head, "Content-Length: {}\r\nCache-Control: no-store\r\n{extra}", body.len());
    head.push_str(if keep_alive { "\r\n" } else { "Connection: close\r\n\r\n" });
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
}

/// A JSON error body, `{"error": {"code", "message"}}`, the shape every API error has.
pub fn error_body(code: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": { "code": code, "message": message } })).expect("JSON")
}

/// The static answers. They are public (the client module is imported by pages of any origin), hence
/// `Access-Control-Allow-Origin: *`; they close the connection, as they always have.
pub fn write_static(out: &mut BytesMut, status: u16, content_type: &str, body: &[u8]) {
    use std::fmt::Write;
    let mut head = String::with_capacity(160);
    let _ = write!(
        head,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
}

/// The page for a static route; `None` for the routes that are not pages.
pub fn page(route: &super::router::Route) -> Option<(&'static str, &'static [u8])> {
    use super::router::Route;
    match route {
        Route::Healthz => Some(("text/plain", b"ok\n")),
        Route::Client => Some(("text/javascript; charset=utf-8", HERALD_JS)),
        Route::Example => Some(("text/html; charset=utf-8", EXAMPLE_HTML)),
        Route::Console => Some(("text/html; charset=utf-8", CONSOLE_HTML)),
        _ => None,
    }
}

/// The head of an event stream: no length, it ends when the connection does.
pub fn write_event_stream_head(out: &mut BytesMut, extra: &str) {
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nX-Accel-Buffering: no\r\n");
    out.extend_from_slice(extra.as_bytes());
    out.extend_from_slice(b"Connection: close\r\n\r\n");
}
