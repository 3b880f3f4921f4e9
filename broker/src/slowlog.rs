//! SLOWLOG as Redis 7.0 keeps it: commands that ran for at least `slowlog-log-slower-than`
//! microseconds, newest first, at most `slowlog-max-len` of them, each with its arguments cut to
//! Redis's bounds (32 arguments, 128 bytes each) and the client's address and name.
//!
//! The duration is the one `dispatch::run` already measures for INFO commandstats: no second clock
//! reading. A command below the threshold costs one relaxed load; only an entry takes the log's lock.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use bytes::Bytes;
use herald_protocol::Reply;

/// Redis's `SLOWLOG_ENTRY_MAX_ARGC`: past this many arguments the last kept one says how many more.
pub const MAX_ARGC: usize = 32;
/// Redis's `SLOWLOG_ENTRY_MAX_STRING`: a longer argument is cut and says how many bytes more.
pub const MAX_STRING: usize = 128;

/// One slow command.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: u64,
    /// Unix seconds when it was logged.
    pub time: i64,
    pub micros: u64,
    pub args: Vec<Bytes>,
    pub addr: String,
    pub name: Bytes,
}

impl Entry {
    fn reply(&self) -> Reply {
        Reply::Array(vec![
            Reply::Int(self.id as i64),
            Reply::Int(self.time),
            Reply::Int(self.micros as i64),
            Reply::Array(self.args.iter().cloned().map(Reply::Bulk).collect()),
            Reply::bulk(self.addr.clone()),
            Reply::Bulk(self.name.clone()),
        ])
    }
}

#[derive(Default)]
struct Entries {
    list: VecDeque<Entry>,
    next_id: u64,
}

pub struct SlowLog {
    /// `slowlog-log-slower-than` in microseconds; negative: off.
    threshold_us: AtomicI64,
    /// `slowlog-max-len`.
    max_len: AtomicUsize,
    entries: Mutex<Entries>,
}

impl SlowLog {
    pub fn new(threshold_us: i64, max_len: usize) -> Self {
        SlowLog { threshold_us: AtomicI64::new(threshold_us), max_len: AtomicUsize::new(max_len), entries: Mutex::default() }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn threshold_us(&self) -> i64 {
        self.threshold_us.load(Ordering::Relaxed)
    }

    pub fn set_threshold_us(&self, us: i64) {
        self.threshold_us.store(us, Ordering::Relaxed);
    }

    pub fn max_len(&self) -> usize {
        self.max_len.load(Ordering::Relaxed)
    }

    /// CONFIG SET slowlog-max-len: a shorter log drops its oldest entries at once, as Redis does.
    pub fn set_max_len(&self, n: usize) {
        self.max_len.store(n, Ordering::Relaxed);
        let mut e = self.entries();
        e.list.truncate(n);
    }

    /// Whether a command that ran for `micros` goes in the log (Redis: `duration >= slower_than`, a
    /// negative threshold or a zero length turning the log off).
    #[inline]
    pub fn wants(&self, micros: u64) -> bool {
        let threshold = self.threshold_us.load(Ordering::Relaxed);
        threshold >= 0 && micros >= threshold as u64 && self.max_len() != 0
    }

    /// Logs a command: `args` as the client sent them (the caller has redacted secrets).
    pub fn push(&self, args: &[Bytes], micros: u64, time: i64, addr: String, name: Bytes) {
        let args = truncate(args);
        let max = self.max_len();
        let mut e = self.entries();
        let id = e.next_id;
        e.next_id += 1;
        e.list.push_front(Entry { id, time, micros, args, addr, name });
        e.list.truncate(max);
    }

    pub fn len(&self) -> usize {
        self.entries().list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reset(&self) {
        self.entries().list.clear();
    }

    /// SLOWLOG GET: the newest `count` entries (`None`: all).
    pub fn get(&self, count: Option<usize>) -> Reply {
        let e = self.entries();
        let n = count.unwrap_or(usize::MAX);
        Reply::Array(e.list.iter().take(n).map(Entry::reply).collect())
    }
}

/// Redis's cut of a logged command: at most [`MAX_ARGC`] arguments, the last of them saying how
/// many were left out; each argument at most [`MAX_STRING`] bytes, saying how many more there were.
/// Every argument is copied: a request's arguments are slices of its connection's read buffer, which
/// an entry would otherwise keep alive whole for as long as it stays in the log.
pub fn truncate(args: &[Bytes]) -> Vec<Bytes> {
    let kept = args.len().min(MAX_ARGC);
    let mut out = Vec::with_capacity(kept);
    for (i, arg) in args.iter().take(kept).enumerate() {
        if kept != args.len() && i == kept - 1 {
            out.push(Bytes::from(format!("... ({} more arguments)", args.len() - kept + 1)));
        } else if arg.len() > MAX_STRING {
            let mut cut = arg[..MAX_STRING].to_vec();
            cut.extend_from_slice(format!("... ({} more bytes)", arg.len() - MAX_STRING).as_bytes());
            out.push(Bytes::from(cut));
        } else {
            out.push(Bytes::copy_from_slice(arg));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn cuts_arguments_as_redis_does() {
        let many: Vec<Bytes> = (0..40).map(|i| b(&i.to_string())).collect();
        let cut = truncate(&many);
        assert_eq!(cut.len(), 32);
        assert_eq!(cut[30], b("30"));
        assert_eq!(cut[31], b("... (9 more arguments)"));
        let long = vec![b("set"), Bytes::from(vec![b'x'; 200])];
        let cut = truncate(&long);
        assert_eq!(cut[1].len(), 128 + "... (72 more bytes)".len());
        assert!(cut[1].ends_with(b"x... (72 more bytes)"));
        let exact: Vec<Bytes> = (0..32).map(|i| b(&i.to_string())).collect();
        assert_eq!(truncate(&exact), exact);
    }

    #[test]
    fn keeps_the_newest_within_max_len() {
        let log = SlowLog::new(0, 2);
        assert!(log.wants(0));
        for i in 0..3 {
            log.push(&[b("get"), b(&format!("k{i}"))], 5, 100, "127.0.0.1:1".into(), Bytes::new());
        }
        assert_eq!(log.len(), 2);
        let Reply::Array(entries) = log.get(None) else { panic!() };
        let Reply::Array(first) = &entries[0] else { panic!() };
        assert_eq!(first[0], Reply::Int(2));
        log.set_max_len(1);
        assert_eq!(log.len(), 1);
        log.set_threshold_us(-1);
        assert!(!log.wants(1_000_000));
        log.set_threshold_us(10);
        assert!(!log.wants(9) && log.wants(10));
        log.reset();
        assert!(log.is_empty());
    }
}
