//! Rewrites: a snapshot of everything, and a fresh log after it (BGSAVE, BGREWRITEAOF, SAVE, and
//! automatically when the log has grown).
//!
//! 1. Rotate: new records go to a new log, which the manifest lists after the current ones.
//! 2. Capture: everything is read in steps of about [`STEP_BYTES`] under the state lock, the lock
//!    released between steps so clients are never stalled for long. Each object is written with the
//!    LSN current when it was read; recovery applies only the log records newer than that, so the
//!    snapshot need not be a single instant. (FLUSHALL or SWAPDB during a capture move many keys at
//!    once, which per-object LSNs cannot follow: the rewrite starts again after them.)
//! 3. Switch: the snapshot is fsynced and renamed into place, the manifest names it and the new log
//!    only, and the files it replaces are deleted.

use std::fs::File;
use std::io::Write;
use std::sync::MutexGuard;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::codec;
use super::files::{self, Manifest};
use super::record::{self, Counters, Place, Target};
use super::{LogFile, Persistence, lock, unix_ms};
use crate::state::State;

/// Bytes of snapshot written per hold of the state lock.
const STEP_BYTES: usize = 256 * 1024;

/// How a rewrite was asked for (for the log and the stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    Save,
    Background,
    Automatic,
}

/// Where the capture is.
enum Step {
    Scopes,
    Keys { db: usize, cursor: u64, started: bool },
    Jobs { ids: Option<Vec<Bytes>>, next: usize },
    Queues,
    Boards { names: Option<Vec<(Bytes, Bytes)>>, next: usize },
    Mail,
    Streams { names: Option<Vec<Bytes>>, next: usize },
    Semaphores,
    Schemas,
    Counters,
    Done,
}

impl Persistence {
    /// Claims the right to run a rewrite: false while one runs.
    pub fn begin_rewrite(&self) -> bool {
        !self.rewriting.swap(true, Ordering::AcqRel)
    }

    pub fn rewrite_in_progress(&self) -> bool {
        self.rewriting.load(Ordering::Acquire)
    }

    /// Runs one rewrite claimed with [`Persistence::begin_rewrite`] to completion on the calling
    /// thread (never an io thread: it writes files).
    pub fn rewrite<'a>(&self, why: Rewrite, lock_state: &dyn Fn() -> MutexGuard<'a, State>) -> Result<(), String> {
        let started = std::time::Instant::now();
        self.stats.rewrite_started_ms.store(unix_ms(), Ordering::Relaxed);
        let result = self.rewrite_inner(lock_state);
        let ms = started.elapsed().as_millis() as u64;
        self.stats.last_rewrite_ms.store(ms, Ordering::Relaxed);
        self.stats.last_rewrite_ok.store(result.is_ok(), Ordering::Relaxed);
        match &result {
            Ok(()) => {
                self.stats.saves.fetch_add(1, Ordering::Relaxed);
                self.stats.last_save_unix.store(unix_ms() / 1000, Ordering::Relaxed);
                tracing::info!("persistence: {why:?} rewrite done in {ms} ms");
            }
            Err(e) => {
                self.stats.rewrite_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!("persistence: {why:?} rewrite failed: {e}");
            }
        }
        self.rewriting.store(false, Ordering::Release);
        result
    }

    fn rewrite_inner<'a>(&self, lock_state: &dyn Fn() -> MutexGuard<'a, State>) -> Result<(), String> {
        let io = |what: &str, e: std::io::Error| format!("{what} in {}: {e}", self.dir.display());
        loop {
            self.restart.store(false, Ordering::Release);
            let generation = self.generation.load(Ordering::Acquire) + 1;
            let mut manifest = Manifest::read(&self.dir)?.ok_or("the manifest is missing")?;
            let log_name = Manifest::log_name(generation);
            // The manifest names the new log before any record goes to it: a crash between the two
            // must not leave acknowledged records in a file recovery does not read.
            let new_log = files::create_log(&self.dir, &log_name).map_err(|e| io("cannot start a new log", e))?;
            manifest.logs.push(log_name.clone());
            manifest.write(&self.dir).map_err(|e| io("cannot write the manifest", e))?;
            self.rotate(new_log).map_err(|e| io("cannot start a new log", e))?;
            self.generation.store(generation, Ordering::Release);
            self.stats.changes_since_save.store(0, Ordering::Relaxed);

            let name = Manifest::snapshot_name(generation);
            let tmp = self.dir.join(format!("{name}.tmp"));
            let mut file = File::create(&tmp).map_err(|e| io("cannot create the snapshot", e))?;
            file.write_all(&codec::header(codec::SNAPSHOT_MAGIC)).map_err(|e| io("cannot write the snapshot", e))?;
            let mut step = Step::Scopes;
            let mut size = codec::HEADER_LEN as u64;
            let mut buf = Vec::with_capacity(STEP_BYTES * 2);
            while !matches!(step, Step::Done) {
                {
                    let state = lock_state();
                    let lsn = self.lsn();
                    while buf.len() < STEP_BYTES && !matches!(step, Step::Done) {
                        step = capture(&state, lsn, step, &mut buf);
                    }
                }
                file.write_all(&buf).map_err(|e| io("cannot write the snapshot", e))?;
                size += buf.len() as u64;
                buf.clear();
                if self.restart.load(Ordering::Acquire) {
                    break;
                }
            }
            if self.restart.load(Ordering::Acquire) {
                drop(file);
                let _ = std::fs::remove_file(&tmp);
                tracing::info!("persistence: FLUSHALL or SWAPDB during the snapshot: starting it again");
                continue;
            }
            file.sync_all().map_err(|e| io("cannot fsync the snapshot", e))?;
            std::fs::rename(&tmp, self.dir.join(&name)).map_err(|e| io("cannot rename the snapshot", e))?;
            let done = Manifest { generation, snapshot: Some(name), logs: vec![log_name] };
            done.write(&self.dir).map_err(|e| io("cannot write the manifest", e))?;
            files::remove_unlisted(&self.dir, &done);
            self.stats.base_size.store(size.max(self.stats.log_size.load(Ordering::Relaxed)), Ordering::Relaxed);
            return Ok(());
        }
    }

    /// Finishes the current log (written and fsynced) and sends new records to `file`, a new log the
    /// manifest already names.
    fn rotate(&self, file: File) -> std::io::Result<()> {
        let mut current = lock(&self.file);
        self.write_pending(&mut current)?;
        current.file.sync_data()?;
        self.synced.fetch_max(self.written_lsn(), Ordering::AcqRel);
        *current = LogFile { file, len: codec::HEADER_LEN as u64 };
        self.stats.log_size.store(current.len, Ordering::Relaxed);
        Ok(())
    }
}

/// Appends the next part of the state to `out`; the step after it.
fn capture(state: &State, lsn: u64, step: Step, out: &mut Vec<u8>) -> Step {
    let ks = &state.keyspace;
    match step {
        Step::Scopes => {
            for db in 0..ks.db_total() {
                if let (Some(scope), Some(seq)) = (ks.scope_of(db), ks.journal_seq(db))
                    && (db >= ks.db_count() || seq > 0)
                {
                    for entry in ks.journal_entries(db) {
                        codec::frame(out, |w| record::encode_journal(w, lsn, scope, entry));
                    }
                    codec::frame(out, |w| record::encode_scope_seq(w, lsn, scope, seq));
                }
            }
            Step::Keys { db: 0, cursor: 0, started: false }
        }
        Step::Keys { db, .. } if db >= ks.db_total() => Step::Jobs { ids: None, next: 0 },
        Step::Keys { db, cursor, started } => {
            if started && cursor == 0 {
                return Step::Keys { db: db + 1, cursor: 0, started: false };
            }
            let target = if db < ks.db_count() { Target::Db(db) } else { Target::Scope(ks.scope_of(db).cloned().unwrap_or_default()) };
            let cursor = ks.scan_entries(db, cursor, 256, |key, entry| {
                codec::frame(out, |w| record::encode_key(w, lsn, &target, key, entry));
            });
            Step::Keys { db, cursor, started: true }
        }
        Step::Jobs { ids: None, .. } => Step::Jobs { ids: Some(state.jobs.ids()), next: 0 },
        Step::Jobs { ids: Some(ids), next } => {
            let end = (next + 256).min(ids.len());
            for id in &ids[next..end] {
                let Some(job) = state.jobs.job(id) else { continue };
                codec::frame(out, |w| record::encode_job(w, lsn, job));
                for e in job.chunks.entries() {
                    codec::frame(out, |w| record::encode_chunk(w, lsn, id, e.offset, &e.data, e.at_ms));
                }
            }
            if end == ids.len() { Step::Queues } else { Step::Jobs { ids: Some(ids), next: end } }
        }
        Step::Queues => {
            for (name, config) in state.jobs.configs() {
                codec::frame(out, |w| record::encode_queue(w, lsn, &name, config));
            }
            Step::Boards { names: None, next: 0 }
        }
        Step::Boards { names: None, .. } => Step::Boards { names: Some(state.bulletin.board_names()), next: 0 },
        Step::Boards { names: Some(names), next } => {
            let end = (next + 16).min(names.len());
            for (scope, board) in &names[next..end] {
                let config = state.bulletin.board_image(scope, board, |item, dead| {
                    let place = if dead { Place::Dead } else { Place::Board };
                    codec::frame(out, |w| record::encode_item(w, lsn, scope, board, item, place));
                });
                if let Some(config) = config {
                    codec::frame(out, |w| record::encode_board(w, lsn, scope, board, config));
                }
            }
            if end == names.len() { Step::Mail } else { Step::Boards { names: Some(names), next: end } }
        }
        Step::Mail => {
            let mut keys = Vec::new();
            let mut configs = Vec::new();
            state.mailboxes.image(
                |dest, topic, id, payload| codec::frame(out, |w| record::encode_mail(w, lsn, dest, topic, id, payload, None)),
                |dest, max_len| codec::frame(&mut configs, |w| record::encode_mail_config(w, lsn, dest, max_len)),
                |dest, key, id| codec::frame(&mut keys, |w| record::encode_mail_key(w, lsn, dest, key, id)),
            );
            out.extend_from_slice(&configs);
            out.extend_from_slice(&keys);
            Step::Streams { names: None, next: 0 }
        }
        Step::Streams { names: None, .. } => Step::Streams { names: Some(state.streams.names()), next: 0 },
        Step::Streams { names: Some(names), next } => {
            let end = (next + 16).min(names.len());
            for key in &names[next..end] {
                let Some(log) = state.streams.log(key) else { continue };
                codec::frame(out, |w| record::encode_stream(w, lsn, key, log));
                for e in log.entries() {
                    codec::frame(out, |w| record::encode_stream_entry(w, lsn, key, e.offset, &e.data, e.at_ms));
                }
                if log.is_closed() {
                    codec::frame(out, |w| record::encode_stream_closed(w, lsn, key));
                }
            }
            if end == names.len() { Step::Semaphores } else { Step::Streams { names: Some(names), next: end } }
        }
        Step::Semaphores => {
            state.semaphores.image(|name, permits, token, expires_ms| {
                codec::frame(out, |w| record::encode_sem_held(w, lsn, name, permits, token, expires_ms));
            });
            Step::Schemas
        }
        Step::Schemas => {
            state.schemas.image(|target, text| codec::frame(out, |w| record::encode_schema(w, lsn, target, text)));
            if !state.libraries.is_empty() {
                codec::frame(out, |w| record::encode_libraries(w, lsn, &state.libraries));
            }
            Step::Counters
        }
        Step::Counters => {
            let (job_seq, job_token) = state.jobs.counters();
            let (item_seq, item_token) = state.bulletin.counters();
            let counters = Counters { job_seq, job_token, item_seq, item_token, mail_id: state.mailboxes.counter() };
            codec::frame(out, |w| record::encode_counters(w, lsn, counters));
            codec::frame(out, |w| record::encode_sem_fence(w, lsn, state.semaphores.fence()));
            Step::Done
        }
        Step::Done => Step::Done,
    }
}
