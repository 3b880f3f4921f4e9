//! One append-only log with offsets: the stream behind STREAM.* and behind each job's result chunks.
//!
//! Entries get consecutive offsets from 0. Retention (a length and/or an age) trims from the front; a
//! reader asking for an offset that was trimmed is told so ([`Read::Trimmed`]) instead of silently
//! getting later entries, and every log carries an epoch so a reader holding an offset of a log that
//! was deleted and re-created can tell. Closing marks the end: readers see `closed` once they have
//! everything, and appends are refused.

use std::collections::VecDeque;

use bytes::Bytes;

/// How much a log keeps. 0 disables a bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_len: usize,
    pub max_age_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub offset: u64,
    pub data: Bytes,
    pub at_ms: u64,
}

/// The outcome of a read.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// Entries from the requested offset (possibly none yet), the offset to read from next, and
    /// whether the log is closed with nothing after them.
    Entries { entries: Vec<LogEntry>, next: u64, ended: bool },
    /// The requested offset is older than what is retained; `first` is the oldest offset kept.
    Trimmed { first: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendError {
    Closed,
}

#[derive(Debug, Clone)]
pub struct StreamLog {
    entries: VecDeque<LogEntry>,
    next: u64,
    bytes: usize,
    closed: bool,
    epoch: u64,
    retention: Retention,
}

impl StreamLog {
    pub fn new(epoch: u64, retention: Retention) -> Self {
        StreamLog { entries: VecDeque::new(), next: 0, bytes: 0, closed: false, epoch, retention }
    }

    /// A log as persistence describes it, before its retained entries are put back with
    /// [`StreamLog::restore_entry`]: `next` is the offset the next append gets.
    pub fn restored(epoch: u64, retention: Retention, next: u64, closed: bool) -> Self {
        StreamLog { entries: VecDeque::new(), next, bytes: 0, closed, epoch, retention }
    }

    /// Puts back an entry read from persistence. One already present (offset below the next one
    /// expected) is skipped, so replaying a record twice changes nothing; a gap (earlier entries
    /// were trimmed) moves the next offset on.
    pub fn restore_entry(&mut self, offset: u64, data: Bytes, at_ms: u64) {
        if offset < self.entries.back().map_or(0, |e| e.offset + 1) {
            return;
        }
        self.next = self.next.max(offset + 1);
        self.bytes += data.len();
        self.entries.push_back(LogEntry { offset, data, at_ms });
    }

    /// The retained entries, oldest first (for snapshots).
    pub fn entries(&self) -> impl Iterator<Item = &LogEntry> {
        self.entries.iter()
    }

    /// Marks the log closed or open as persistence says, and its shape.
    pub fn restore_shape(&mut self, epoch: u64, retention: Retention, next: u64, closed: bool) {
        self.epoch = epoch;
        self.retention = retention;
        self.next = self.next.max(next);
        self.closed = closed;
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn retention(&self) -> Retention {
        self.retention
    }

    pub fn set_retention(&mut self, retention: Retention, now: u64) {
        self.retention = retention;
        self.trim(now);
    }

    /// Offset the next append gets (also: how many entries were ever appended).
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// Oldest offset still retained (equal to `next_offset` when nothing is).
    pub fn first_offset(&self) -> u64 {
        self.entries.front().map_or(self.next, |e| e.offset)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub fn append(&mut self, data: Bytes, now: u64) -> Result<u64, AppendError> {
        if self.closed {
            return Err(AppendError::Closed);
        }
        let offset = self.next;
        self.next += 1;
        self.bytes += data.len();
        self.entries.push_back(LogEntry { offset, data, at_ms: now });
        self.trim(now);
        Ok(offset)
    }

    /// Marks the end. Returns false if it was already closed.
    pub fn close(&mut self) -> bool {
        !std::mem::replace(&mut self.closed, true)
    }

    /// Drops entries beyond the retention bounds (age is checked lazily, on append and read).
    pub fn trim(&mut self, now: u64) {
        let r = self.retention;
        while let Some(front) = self.entries.front() {
            let too_many = r.max_len > 0 && self.entries.len() > r.max_len;
            let too_old = r.max_age_ms > 0 && front.at_ms.saturating_add(r.max_age_ms) <= now;
            if !(too_many || too_old) {
                break;
            }
            self.bytes -= front.data.len();
            self.entries.pop_front();
        }
    }

    /// Up to `count` entries from offset `from`.
    pub fn read(&mut self, from: u64, count: usize, now: u64) -> Read {
        self.trim(now);
        let first = self.first_offset();
        if from < first {
            return Read::Trimmed { first };
        }
        let skip = (from - first) as usize;
        let entries: Vec<LogEntry> = self.entries.iter().skip(skip).take(count).cloned().collect();
        let next = entries.last().map_or(from.max(first).min(self.next), |e| e.offset + 1);
        Read::Entries { ended: self.closed && next >= self.next, entries, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(max_len: usize, max_age_ms: u64) -> StreamLog {
        StreamLog::new(7, Retention { max_len, max_age_ms })
    }

    fn offsets(r: &Read) -> Vec<u64> {
        match r {
            Read::Entries { entries, .. } => entries.iter().map(|e| e.offset).collect(),
            Read::Trimmed { .. } => panic!("trimmed"),
        }
    }

    #[test]
    fn append_read_close() {
        let mut l = log(0, 0);
        for i in 0..5 {
            assert_eq!(l.append(Bytes::from(format!("e{i}")), 0), Ok(i));
        }
        let r = l.read(2, 2, 0);
        assert_eq!(offsets(&r), vec![2, 3]);
        assert!(matches!(r, Read::Entries { next: 4, ended: false, .. }));
        assert!(l.close());
        assert!(!l.close());
        assert_eq!(l.append(Bytes::new(), 0), Err(AppendError::Closed));
        assert!(matches!(l.read(4, 10, 0), Read::Entries { next: 5, ended: true, .. }));
        assert!(matches!(l.read(5, 10, 0), Read::Entries { ref entries, next: 5, ended: true } if entries.is_empty()));
    }

    #[test]
    fn trimmed_offsets_are_reported_not_skipped() {
        let mut l = log(3, 0);
        for i in 0..10u64 {
            l.append(Bytes::from(i.to_string()), 0).unwrap();
        }
        assert_eq!(l.first_offset(), 7);
        assert_eq!(l.read(2, 10, 0), Read::Trimmed { first: 7 });
        assert_eq!(offsets(&l.read(7, 10, 0)), vec![7, 8, 9]);
        assert!(matches!(l.read(10, 10, 0), Read::Entries { ref entries, next: 10, .. } if entries.is_empty()));
    }

    #[test]
    fn age_retention() {
        let mut l = log(0, 100);
        l.append(Bytes::from_static(b"old"), 0).unwrap();
        l.append(Bytes::from_static(b"new"), 90).unwrap();
        assert_eq!(l.read(0, 10, 150), Read::Trimmed { first: 1 });
        assert_eq!(l.bytes(), 3);
    }
}
