//! DUMP and RESTORE on the keyspace: a key's value to Redis's serialization format and back, with
//! RESTORE's expiry, REPLACE, IDLETIME and notification as Redis 7.0 has them.

use super::{Keyspace, Ttl, Value, notify};
use crate::engine::Error;
use crate::engine::dump;

/// How RESTORE places a value.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreSpec {
    /// The absolute deadline in unix ms, or `None` for no expiry.
    pub expire_at: Option<u64>,
    pub replace: bool,
    pub idle_secs: Option<u64>,
}

impl Keyspace {
    /// DUMP: the payload of the key's value, `None` for a missing key.
    pub fn dump(&mut self, db: usize, key: &[u8], now: u64) -> Result<Option<Vec<u8>>, Error> {
        let Some(entry) = self.read(db, key, now) else { return Ok(None) };
        Ok(Some(dump::dump(&entry.value)))
    }

    /// Whether RESTORE without REPLACE must refuse the key (it holds a live value).
    pub fn restore_busy(&self, db: usize, key: &[u8], now: u64) -> bool {
        self.exists(db, key, now)
    }

    /// RESTORE of a decoded value. A deadline already past stores nothing (a replaced key is then
    /// deleted, announced `del`); otherwise the key is created afresh (`new`, then `restore`), the old
    /// value of a REPLACE removed without an event of its own, as Redis does.
    pub fn restore_value(&mut self, db: usize, key: &[u8], value: Value, spec: RestoreSpec, now: u64) {
        if spec.expire_at.is_some_and(|at| at <= now) {
            if spec.replace {
                self.delete(db, key, now);
            }
            return;
        }
        if spec.replace {
            self.expire_if_due(db, key, now);
            self.dbs[db].remove(key);
        }
        self.store(db, key, value, spec.expire_at.map_or(Ttl::Clear, Ttl::At), now);
        if let Some(idle) = spec.idle_secs {
            let accessed = self.clock_secs(now).saturating_sub(u32::try_from(idle).unwrap_or(u32::MAX));
            if let Some(entry) = self.dbs[db].get(key) {
                entry.accessed.set(accessed);
            }
        }
        self.changed(db, key, notify::GENERIC, "restore");
    }
}

/// Turns a payload's refusal into Redis's error.
pub fn refusal(r: dump::Refused) -> Error {
    match r {
        dump::Refused::VersionOrChecksum => Error::fixed("ERR DUMP payload version or checksum are wrong"),
        dump::Refused::BadFormat => Error::fixed("ERR Bad data format"),
    }
}
