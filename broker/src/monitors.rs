//! MONITOR: the clients that asked to see every command, and the line each command becomes, as
//! Redis 7.0 writes it: `+<unix seconds>.<microseconds> [<db> <client address>] "cmd" "arg" ...`
//! (`lua` for a script's `redis.call`), arguments quoted as `sdscatrepr` quotes them, passwords of
//! AUTH and HELLO ... AUTH shown as `(redacted)`.
//!
//! The request path asks [`Monitors::active`] (one relaxed load) and builds nothing when nobody
//! monitors. A line is rendered once per wire format (RESP simple string, or the WebSocket's JSON
//! push `{"push":"monitor","data":...}`) and queued in each monitor's outbox like any push.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use herald_protocol::Encoding;

use crate::clients::ClientHandle;

#[derive(Default)]
pub struct Monitors {
    count: AtomicUsize,
    clients: Mutex<Vec<Arc<ClientHandle>>>,
}

impl Monitors {
    fn clients(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ClientHandle>>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether anybody monitors.
    #[inline]
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) != 0
    }

    /// MONITOR: this client sees every command from now on (asking twice changes nothing).
    pub fn add(&self, client: Arc<ClientHandle>) {
        let mut clients = self.clients();
        if !clients.iter().any(|c| c.id == client.id) {
            client.activity().monitor = true;
            clients.push(client);
            self.count.store(clients.len(), Ordering::Relaxed);
        }
    }

    /// The client left (or RESET): it no longer monitors.
    pub fn remove(&self, id: u64) {
        if !self.active() {
            return;
        }
        let mut clients = self.clients();
        clients.retain(|c| {
            if c.id == id {
                c.activity().monitor = false;
            }
            c.id != id
        });
        self.count.store(clients.len(), Ordering::Relaxed);
    }

    /// Sends one command to every monitor. `source` is the client's address, or `lua`.
    pub fn feed(&self, now_us: u64, db: usize, source: &str, args: &[Bytes]) {
        let line = render(now_us, db, source, args);
        let mut frames: [Option<Bytes>; Encoding::COUNT] = Default::default();
        for client in self.clients().iter() {
            let format = client.outbox.format();
            let frame = frames[format as usize].get_or_insert_with(|| encode(&line, format)).clone();
            client.outbox.push(frame);
        }
    }
}

/// The line without its `+` and CRLF.
pub fn render(now_us: u64, db: usize, source: &str, args: &[Bytes]) -> String {
    let mut line = format!("{}.{:06} [{db} {source}]", now_us / 1_000_000, now_us % 1_000_000);
    let redacted = redacted_from(args);
    for (i, arg) in args.iter().enumerate() {
        line.push(' ');
        if i >= redacted.0 && i < redacted.1 {
            line.push_str("\"(redacted)\"");
        } else {
            quote(&mut line, arg);
        }
    }
    line
}

/// Which arguments Redis shows as `(redacted)`: AUTH's, and HELLO's two after its AUTH keyword.
pub fn redacted_from(args: &[Bytes]) -> (usize, usize) {
    let name = args.first().map(|b| &b[..]).unwrap_or_default();
    if name.eq_ignore_ascii_case(b"auth") {
        return (1, args.len());
    }
    if name.eq_ignore_ascii_case(b"hello")
        && let Some(at) = args.iter().skip(2).position(|a| a.eq_ignore_ascii_case(b"auth"))
    {
        let at = at + 2;
        return (at + 1, (at + 3).min(args.len()));
    }
    (0, 0)
}

/// Redis's `sdscatrepr`: a double-quoted string with C escapes and `\xHH` for other bytes.
fn quote(out: &mut String, arg: &[u8]) {
    out.push('"');
    for &b in arg {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            b if b.is_ascii_graphic() || b == b' ' => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
}

fn encode(line: &str, format: Encoding) -> Bytes {
    match format {
        Encoding::Resp2 | Encoding::Resp3 => Bytes::from(format!("+{line}\r\n")),
        Encoding::Json => Bytes::from(serde_json::json!({ "push": "monitor", "data": line }).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(parts: &[&[u8]]) -> Vec<Bytes> {
        parts.iter().map(|p| Bytes::copy_from_slice(p)).collect()
    }

    #[test]
    fn lines_as_redis_writes_them() {
        let line = render(1_700_000_000_000_042, 3, "127.0.0.1:5000", &args(&[b"get", b"a\x01b\"c\\ \n"]));
        assert_eq!(line, r#"1700000000.000042 [3 127.0.0.1:5000] "get" "a\x01b\"c\\ \n""#);
        assert_eq!(render(1_000_000, 0, "lua", &args(&[b"auth", b"u", b"p"])), r#"1.000000 [0 lua] "auth" "(redacted)" "(redacted)""#);
        assert_eq!(
            render(0, 0, "x", &args(&[b"hello", b"3", b"AUTH", b"u", b"p", b"SETNAME", b"n"])),
            r#"0.000000 [0 x] "hello" "3" "AUTH" "(redacted)" "(redacted)" "SETNAME" "n""#
        );
        assert_eq!(encode("x", Encoding::Resp3), Bytes::from_static(b"+x\r\n"));
    }
}
