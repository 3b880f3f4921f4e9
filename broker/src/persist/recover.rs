//! Recovery: the snapshot, then the logs, into the engines, before the broker serves anyone.
//!
//! A snapshot is fuzzy: it was written in small steps while clients kept changing things, each
//! object with the LSN at which it was read. So a log record is applied only if it is newer than the
//! snapshot's copy of the object it changes; everything older is already in that copy. Deadlines
//! are wall-clock: a key whose deadline passed while the broker was down is not restored, a lease
//! that ran out is due at once (the timer returns the job or item as soon as the broker runs).
//!
//! Damage: a record cut short at the very end of the last log is what a crash during a write leaves;
//! it is cut off and the bytes dropped are logged. Damage anywhere else (a bad checksum before other
//! valid records, a damaged snapshot) refuses to start, naming the file and offset, unless `repair`
//! says to drop the damaged record and everything after it in that file.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;

use super::codec::{self, Scan};
use super::files::Manifest;
use super::record::{self, Delta, Place, Record, Target};
use crate::state::State;

/// What recovery found and left in place for the log to continue.
#[derive(Debug)]
pub struct Recovered {
    pub manifest: Manifest,
    /// The last LSN in the files (new records continue after it).
    pub lsn: u64,
    /// Bytes of the last log, after any torn tail was cut.
    pub log_len: u64,
    pub snapshot_len: u64,
    pub keys_loaded: u64,
    pub keys_expired: u64,
}

/// What a record changes, for comparing with the LSN its snapshot copy was read at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Obj {
    Key(Target, Bytes),
    Scope(Bytes),
    Job(Bytes),
    Queues,
    Board(Bytes, Bytes),
    Mail,
    Stream(Bytes),
    Sem(Bytes),
    Schema(crate::engine::schema::Target),
}

fn object_of(record: &Record) -> Option<Obj> {
    Some(match record {
        Record::KeySet { target, key, .. }
        | Record::KeyExpire { target, key, .. }
        | Record::KeyDel { target, key, .. }
        | Record::ListPush { target, key, .. }
        | Record::ListPop { target, key, .. }
        | Record::Aggregate { target, key, .. }
        | Record::XStream { target, key, .. } => Obj::Key(target.clone(), key.clone()),
        Record::ScopeSeq { scope, .. } | Record::Journal { scope, .. } => Obj::Scope(scope.clone()),
        Record::Job { job, .. } => Obj::Job(job.id.clone()),
        Record::JobChunk { id, .. } | Record::JobGone { id } => Obj::Job(id.clone()),
        Record::Queue { .. } => Obj::Queues,
        Record::Item { scope, board, .. } | Record::ItemGone { scope, board, .. } | Record::Board { scope, board, .. } => {
            Obj::Board(scope.clone(), board.clone())
        }
        Record::MailSent { .. } | Record::MailReceived { .. } | Record::MailKey { .. } | Record::MailConfig { .. } => Obj::Mail,
        Record::StreamCreated { key, .. }
        | Record::StreamAppended { key, .. }
        | Record::StreamClosed { key }
        | Record::StreamConfigured { key, .. }
        | Record::StreamDeleted { key } => Obj::Stream(key.clone()),
        Record::SemHeld { name, .. } | Record::SemDropped { name, .. } => Obj::Sem(name.clone()),
        Record::Schema { target, .. } => Obj::Schema(target.clone()),
        Record::Flush(_)
        | Record::SwapDb(..)
        | Record::Counters(_)
        | Record::Libraries(_)
        | Record::SemFence(_)
        | Record::MailRequested { .. } => return None,
    })
}

struct Loader<'a> {
    state: &'a mut State,
    now: u64,
    /// The LSN each object's snapshot copy was read at, for copies read after the first log record
    /// was made (older copies are older than every log record: nothing to compare).
    captured: HashMap<Obj, u64>,
    /// The LSN of the first record of the logs (`u64::MAX` when they are empty).
    first_log_lsn: u64,
    lsn: u64,
    keys_loaded: u64,
    keys_expired: u64,
}

/// Loads everything `dir` holds into `state` (a fresh directory is made ready for a first log).
pub fn recover(dir: &Path, repair: bool, state: &mut State, now: u64) -> Result<Recovered, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    let manifest = match Manifest::read(dir)? {
        Some(m) => m,
        None => fresh(dir)?,
    };
    let first_log_lsn = if manifest.snapshot.is_some() { first_lsn(dir, &manifest.logs) } else { u64::MAX };
    let mut loader = Loader { state, now, captured: HashMap::new(), first_log_lsn, lsn: 0, keys_loaded: 0, keys_expired: 0 };
    let mut snapshot_len = 0;
    if let Some(name) = &manifest.snapshot {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| format!("cannot read snapshot {}: {e}", path.display()))?;
        snapshot_len = bytes.len() as u64;
        codec::check_header(&bytes, codec::SNAPSHOT_MAGIC).map_err(|e| format!("{}: {e}", path.display()))?;
        loader.read_file(&path, &bytes, true, repair, false)?;
    }
    let mut log_len = 0;
    for (i, name) in manifest.logs.iter().enumerate() {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| format!("cannot read log {}: {e}", path.display()))?;
        codec::check_header(&bytes, codec::LOG_MAGIC).map_err(|e| format!("{}: {e}", path.display()))?;
        let last = i + 1 == manifest.logs.len();
        let good = loader.read_file(&path, &bytes, false, repair, last)?;
        if good < bytes.len() {
            truncate(&path, good as u64)?;
        }
        log_len = good as u64;
    }
    loader.state.jobs.finish_restore();
    loader.state.bulletin.finish_restore();
    loader.state.semaphores.finish_restore();
    Ok(Recovered { lsn: loader.lsn, log_len, snapshot_len, keys_loaded: loader.keys_loaded, keys_expired: loader.keys_expired, manifest })
}

/// The LSN of the first record in `logs` (`u64::MAX` if they hold none, or cannot be read: the loader
/// then reports the problem when it reads them).
fn first_lsn(dir: &Path, logs: &[String]) -> u64 {
    for name in logs {
        let Ok(bytes) = std::fs::read(dir.join(name)) else { return u64::MAX };
        if let Some(Scan::Frame(_, payload)) = codec::frames(&bytes).next() {
            let inner = record::group_frames(payload).and_then(|g| match codec::frames_from(g, 0).next() {
                Some(Scan::Frame(_, p)) => Some(p),
                _ => None,
            });
            if let Ok((lsn, _)) = record::decode(inner.unwrap_or(payload)) {
                return lsn;
            }
        }
    }
    u64::MAX
}

/// A first log and manifest for an empty data directory.
fn fresh(dir: &Path) -> Result<Manifest, String> {
    let m = Manifest { generation: 1, snapshot: None, logs: vec![Manifest::log_name(1)] };
    super::files::create_log(dir, &m.logs[0]).map_err(|e| format!("cannot create the first log in {}: {e}", dir.display()))?;
    m.write(dir).map_err(|e| format!("cannot write the manifest in {}: {e}", dir.display()))?;
    tracing::info!("persistence: new data directory {}", dir.display());
    Ok(m)
}

fn truncate(path: &Path, len: u64) -> Result<(), String> {
    let f = std::fs::OpenOptions::new().write(true).open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    f.set_len(len).and_then(|_| f.sync_all()).map_err(|e| format!("cannot truncate {}: {e}", path.display()))
}

impl Loader<'_> {
    /// Applies every record of one file; returns how many bytes of it are good.
    fn read_file(&mut self, path: &Path, bytes: &[u8], snapshot: bool, repair: bool, last_log: bool) -> Result<usize, String> {
        let mut good = codec::HEADER_LEN;
        for scan in codec::frames(bytes) {
            let (at, payload) = match scan {
                Scan::Frame(at, payload) => (at, payload),
                Scan::Damaged { at, last } => return self.damaged(path, bytes.len(), at, last && last_log, repair),
            };
            let applied = match record::group_frames(payload) {
                Some(inner) => codec::frames_from(inner, 0).try_for_each(|scan| match scan {
                    Scan::Frame(_, p) => self.record(p, snapshot),
                    Scan::Damaged { .. } => Err("a damaged record inside a group".into()),
                }),
                None => self.record(payload, snapshot),
            };
            if let Err(e) = applied {
                return self.damaged(path, bytes.len(), at, false, repair).map_err(|m| format!("{m} ({e})"));
            }
            good = at + 8 + payload.len();
        }
        Ok(good)
    }

    /// Decodes one record and applies it (a log record only if newer than its object's snapshot copy).
    fn record(&mut self, payload: &[u8], snapshot: bool) -> Result<(), String> {
        let (lsn, record) = record::decode(payload).map_err(|e| e.0.to_string())?;
        self.lsn = self.lsn.max(lsn);
        let obj = object_of(&record);
        if snapshot {
            if lsn >= self.first_log_lsn
                && let Some(obj) = obj
            {
                let seen = self.captured.entry(obj).or_insert(lsn);
                *seen = (*seen).max(lsn);
            }
        } else if obj.as_ref().and_then(|o| self.captured.get(o)).is_some_and(|seen| *seen >= lsn) {
            return Ok(());
        }
        self.apply(record)
    }

    /// What to do about damage at `at`: a torn tail is cut off; anything else refuses to start
    /// unless repair was asked for.
    fn damaged(&self, path: &Path, len: usize, at: usize, torn_tail: bool, repair: bool) -> Result<usize, String> {
        if torn_tail {
            tracing::warn!(
                "persistence: {} ends with an incomplete record (a crash during a write): cutting off its last {} bytes",
                path.display(),
                len - at
            );
            return Ok(at);
        }
        if repair {
            tracing::error!(
                "persistence: {} is corrupt at offset {at}: --repair drops that record and the {} bytes after it",
                path.display(),
                len - at
            );
            return Ok(at);
        }
        Err(format!(
            "{} is corrupt at offset {at} (a record fails its checksum or cannot be read, and {} bytes follow); \
             refusing to start. Restore the file from a backup, or start with --repair to drop that record and everything after it in this file",
            path.display(),
            len - at
        ))
    }

    fn db(&mut self, target: &Target) -> Result<usize, String> {
        match target {
            Target::Db(db) if *db < self.state.keyspace.db_count() => Ok(*db),
            Target::Db(db) => Err(format!("database {db} does not exist (fewer `databases` configured than when it was written?)")),
            Target::Scope(scope) => self.state.keyspace.restore_scope(scope).map_err(|e| e.to_string()),
        }
    }

    fn journal(&mut self, db: usize, key: &[u8], journal: Option<record::Journal>) {
        if let Some(j) = journal {
            self.state.keyspace.restore_journal(db, key, j.seq, j.kind, j.revision, j.value.as_deref());
        }
    }

    fn apply(&mut self, record: Record) -> Result<(), String> {
        let now = self.now;
        match record {
            Record::KeySet { target, key, value, expire_at, revision, journal } => {
                let db = self.db(&target)?;
                if expire_at <= now {
                    self.state.keyspace.restore_remove(db, &key);
                    self.keys_expired += 1;
                } else {
                    self.state.keyspace.restore_entry(db, &key, value, expire_at, revision);
                    self.keys_loaded += 1;
                }
                self.journal(db, &key, journal);
            }
            Record::KeyExpire { target, key, at } => {
                let db = self.db(&target)?;
                if at <= now {
                    self.state.keyspace.restore_remove(db, &key);
                } else {
                    self.state.keyspace.restore_deadline(db, &key, at);
                }
            }
            Record::KeyDel { target, key, journal } => {
                let db = self.db(&target)?;
                self.state.keyspace.restore_remove(db, &key);
                self.journal(db, &key, journal);
            }
            Record::ListPush { target, key, end, values, journal } => {
                let db = self.db(&target)?;
                self.state.keyspace.restore_push(db, &key, end, values);
                self.journal(db, &key, journal);
            }
            Record::ListPop { target, key, end, count, journal } => {
                let db = self.db(&target)?;
                self.state.keyspace.restore_pop(db, &key, end, count);
                self.journal(db, &key, journal);
            }
            Record::Aggregate { target, key, delta, journal } => {
                let db = self.db(&target)?;
                let ks = &mut self.state.keyspace;
                match delta {
                    Delta::HashSet(pairs) => ks.restore_hash(db, &key, |h| {
                        for (f, v) in &pairs {
                            h.set(f, v);
                        }
                    }),
                    Delta::HashDel(fields) => ks.restore_hash(db, &key, |h| {
                        for f in &fields {
                            h.remove(f);
                        }
                    }),
                    Delta::SetAdd(members) => ks.restore_set(db, &key, |s| {
                        for m in &members {
                            s.add(m);
                        }
                    }),
                    Delta::SetRem(members) => ks.restore_set(db, &key, |s| {
                        for m in &members {
                            s.remove(m);
                        }
                    }),
                    Delta::ZAdd(entries) => ks.restore_zset(db, &key, |z| {
                        for (score, m) in &entries {
                            z.set(m, *score);
                        }
                    }),
                    Delta::ZRem(members) => ks.restore_zset(db, &key, |z| {
                        for m in &members {
                            z.remove(m);
                        }
                    }),
                }
                self.journal(db, &key, journal);
            }
            Record::XStream { target, key, change, journal } => {
                let db = self.db(&target)?;
                self.state.keyspace.restore_xstream(db, &key, &change.effect());
                self.journal(db, &key, journal);
            }
            Record::Flush(db) => self.state.keyspace.restore_flush(db),
            Record::SwapDb(a, b) => self.state.keyspace.restore_swap(a, b),
            Record::Journal { scope, key, journal } => {
                let db = self.db(&Target::Scope(scope))?;
                self.journal(db, &key, Some(journal));
            }
            Record::ScopeSeq { scope, seq } => {
                let db = self.db(&Target::Scope(scope))?;
                self.state.keyspace.restore_journal_seq(db, seq);
            }
            Record::Job { job, payload_recorded } => self.state.jobs.restore_job(*job, payload_recorded),
            Record::JobChunk { id, offset, data, at_ms } => self.state.jobs.restore_chunk(&id, offset, data, at_ms),
            Record::JobGone { id } => self.state.jobs.restore_gone(&id),
            Record::Queue { name, config } => self.state.jobs.restore_queue(&name, config),
            Record::Item { scope, board, item, place } => self.state.bulletin.restore_item(&scope, &board, *item, place == Place::Dead),
            Record::ItemGone { scope, board, id } => self.state.bulletin.restore_gone(&scope, &board, &id),
            Record::Board { scope, board, config } => self.state.bulletin.restore_config(&scope, &board, config),
            Record::MailSent { dest, topic, id, payload, idempotency } => {
                self.state.mailboxes.restore_sent(&dest, &topic, id, payload, idempotency)
            }
            Record::MailReceived { dest, topic, id } => self.state.mailboxes.restore_received(&dest, &topic, id),
            Record::MailKey { dest, key, id } => self.state.mailboxes.restore_key(&dest, &key, id),
            Record::MailRequested { id } => self.state.mailboxes.restore_counter(id),
            Record::MailConfig { dest, max_len } => self.state.mailboxes.restore_config(&dest, max_len),
            Record::StreamCreated { key, epoch, retention, next } => self.state.streams.restore_created(&key, epoch, retention, next),
            Record::StreamAppended { key, offset, data, at_ms } => self.state.streams.restore_appended(&key, offset, data, at_ms),
            Record::StreamClosed { key } => self.state.streams.restore_closed(&key),
            Record::StreamConfigured { key, retention } => self.state.streams.restore_retention(&key, retention),
            Record::StreamDeleted { key } => self.state.streams.restore_deleted(&key),
            Record::SemHeld { name, permits, token, expires_ms } => self.state.semaphores.restore_held(&name, permits, token, expires_ms),
            Record::SemDropped { name, token } => self.state.semaphores.restore_dropped(&name, token),
            Record::SemFence(last) => self.state.semaphores.restore_fence(last),
            Record::Schema { target, schema } => {
                if let Err(e) = self.state.schemas.restore(target.clone(), schema) {
                    // Valid when it was set; a validator that now refuses it must not keep the
                    // broker down. The writes it guarded go unchecked until it is set again.
                    tracing::error!(
                        "persistence: the schema of {} {:?} no longer compiles and is dropped: {e}",
                        target.0.name(),
                        String::from_utf8_lossy(&target.2)
                    );
                }
            }
            Record::Libraries(codes) => self.state.libraries = codes,
            Record::Counters(c) => {
                self.state.jobs.restore_counters(c.job_seq, c.job_token);
                self.state.bulletin.restore_counters(c.item_seq, c.item_token);
                self.state.mailboxes.restore_counter(c.mail_id);
            }
        }
        Ok(())
    }
}
