//! Named streams (STREAM.*): a registry of [`StreamLog`]s, bounded in number, with retention defaults
//! from config. Appends and closes signal blocked readers.

mod log;

use std::collections::HashMap;
use std::sync::Arc;

use crate::engine::Error;
use bytes::Bytes;

pub use log::{AppendError, LogEntry, Read, Retention, StreamLog};

use super::change::{Change, ChangeSink, StreamChange};
use super::listing::{ListArgs, Page, select};
use super::wait::{Ready, WaitKey};

/// The `[streams]` section of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSettings {
    /// Default retention: most entries kept (0: no bound) and their longest age.
    pub max_len: usize,
    pub max_age_ms: u64,
    pub max_streams: usize,
}

impl StreamSettings {
    pub fn retention(&self) -> Retention {
        Retention { max_len: self.max_len, max_age_ms: self.max_age_ms }
    }
}

/// What STREAM.INFO reports.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    pub length: usize,
    pub first: u64,
    pub next: u64,
    pub bytes: usize,
    pub closed: bool,
    pub epoch: u64,
    pub retention: Retention,
}

pub struct Streams {
    logs: HashMap<Bytes, StreamLog>,
    settings: StreamSettings,
    /// Epochs grow across the broker's life, so a re-created stream never repeats one.
    next_epoch: u64,
    ready: Ready,
    sink: Arc<dyn ChangeSink>,
}

fn info_of(l: &StreamLog) -> StreamInfo {
    StreamInfo {
        length: l.len(),
        first: l.first_offset(),
        next: l.next_offset(),
        bytes: l.bytes(),
        closed: l.is_closed(),
        epoch: l.epoch(),
        retention: l.retention(),
    }
}

/// The wait key of a stream's readers.
pub fn wait_key(key: &Bytes) -> WaitKey {
    WaitKey::Named { domain: "stream", name: key.clone() }
}

pub fn closed_error() -> Error {
    Error::fixed("CLOSED the stream is closed; no more entries can be written")
}

impl Streams {
    pub fn new(settings: StreamSettings, first_epoch: u64, sink: Arc<dyn ChangeSink>) -> Self {
        Streams { logs: HashMap::new(), settings, next_epoch: first_epoch, ready: Ready::default(), sink }
    }

    /// The keys this engine's changes made ready since the state last collected them.
    pub fn ready_mut(&mut self) -> &mut Ready {
        &mut self.ready
    }

    fn log_mut(&mut self, key: &Bytes) -> Result<&mut StreamLog, Error> {
        if !self.logs.contains_key(key) {
            if self.logs.len() >= self.settings.max_streams {
                return Err(Error::fixed("ERR too many streams (streams.max_streams)"));
            }
            self.next_epoch += 1;
            let retention = self.settings.retention();
            self.logs.insert(key.clone(), StreamLog::new(self.next_epoch, retention));
            self.sink.emit(&Change::Stream(StreamChange::Created { key, epoch: self.next_epoch, retention }));
        }
        Ok(self.logs.get_mut(key).expect("just ensured"))
    }

    /// STREAM.WRITE: the new entry's offset.
    pub fn write(&mut self, key: &Bytes, data: &[u8], now: u64) -> Result<u64, Error> {
        let offset = self.log_mut(key)?.append(Bytes::copy_from_slice(data), now).map_err(|_| closed_error())?;
        self.sink.emit(&Change::Stream(StreamChange::Appended { key, offset, data, at_ms: now }));
        self.ready.push(wait_key(key));
        Ok(offset)
    }

    /// STREAM.READ. A missing stream reads as empty and open (its writer may not have started). With
    /// `epoch`, a stream whose epoch differs (deleted and re-created since) is an error.
    pub fn read(&mut self, key: &Bytes, from: u64, count: usize, epoch: Option<u64>, now: u64) -> Result<(Read, Option<u64>), Error> {
        let Some(log) = self.logs.get_mut(key) else {
            return Ok((Read::Entries { entries: Vec::new(), next: from, ended: false }, None));
        };
        if epoch.is_some_and(|e| e != log.epoch()) {
            return Err(Error::new(format!("STALE the stream was re-created (epoch {}); read it again from the start", log.epoch())));
        }
        Ok((log.read(from, count, now), Some(log.epoch())))
    }

    /// STREAM.CLOSE: true when this call closed it (a missing stream is created closed).
    pub fn close(&mut self, key: &Bytes) -> Result<bool, Error> {
        let closed = self.log_mut(key)?.close();
        if closed {
            self.sink.emit(&Change::Stream(StreamChange::Closed { key }));
        }
        self.ready.push(wait_key(key));
        Ok(closed)
    }

    pub fn info(&self, key: &[u8]) -> Option<StreamInfo> {
        self.logs.get(key).map(info_of)
    }

    /// STREAM.LIST: a page of the streams with what STREAM.INFO says of each.
    pub fn list(&self, args: &ListArgs) -> Page<(Bytes, StreamInfo)> {
        select(self.logs.iter(), |(name, _)| name, args).map(|(name, log)| (name.clone(), info_of(log)))
    }

    /// STREAM.CONFIG: per-stream retention (creating the stream).
    pub fn configure(&mut self, key: &Bytes, max_len: Option<usize>, max_age_ms: Option<u64>, now: u64) -> Result<(), Error> {
        let log = self.log_mut(key)?;
        let mut r = log.retention();
        r.max_len = max_len.unwrap_or(r.max_len);
        r.max_age_ms = max_age_ms.unwrap_or(r.max_age_ms);
        log.set_retention(r, now);
        self.sink.emit(&Change::Stream(StreamChange::Configured { key, retention: r }));
        Ok(())
    }

    pub fn delete(&mut self, key: &[u8]) -> bool {
        let deleted = self.logs.remove(key).is_some();
        if deleted {
            self.sink.emit(&Change::Stream(StreamChange::Deleted { key }));
        }
        deleted
    }

    pub fn len(&self) -> usize {
        self.logs.len()
    }

    /// A stream as recorded: created (a new epoch replaces an older stream of the same name), with
    /// the offset its next entry gets.
    pub fn restore_created(&mut self, key: &Bytes, epoch: u64, retention: Retention, next: u64) {
        self.next_epoch = self.next_epoch.max(epoch);
        match self.logs.get_mut(key) {
            Some(log) if log.epoch() == epoch => {
                let closed = log.is_closed();
                log.restore_shape(epoch, retention, next, closed);
            }
            _ => {
                self.logs.insert(key.clone(), StreamLog::restored(epoch, retention, next, false));
            }
        }
    }

    pub fn restore_appended(&mut self, key: &Bytes, offset: u64, data: Bytes, at_ms: u64) {
        if let Some(log) = self.logs.get_mut(key) {
            log.restore_entry(offset, data, at_ms);
        }
    }

    pub fn restore_closed(&mut self, key: &[u8]) {
        if let Some(log) = self.logs.get_mut(key) {
            log.close();
        }
    }

    pub fn restore_retention(&mut self, key: &[u8], retention: Retention) {
        if let Some(log) = self.logs.get_mut(key) {
            let (epoch, next, closed) = (log.epoch(), log.next_offset(), log.is_closed());
            log.restore_shape(epoch, retention, next, closed);
        }
    }

    pub fn restore_deleted(&mut self, key: &[u8]) {
        self.logs.remove(key);
    }

    /// Every stream by name, for a snapshot.
    pub fn names(&self) -> Vec<Bytes> {
        self.logs.keys().cloned().collect()
    }

    pub fn log(&self, key: &[u8]) -> Option<&StreamLog> {
        self.logs.get(key)
    }

    pub fn is_empty(&self) -> bool {
        self.logs.is_empty()
    }
}
