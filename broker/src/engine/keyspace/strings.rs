//! String operations, with Redis 7's semantics and notifications.

use crate::engine::Error;
use bytes::Bytes;
use herald_protocol::long_double::{self, LongDouble};
use herald_protocol::number::parse_i64;

use super::{Keyspace, NO_EXPIRY, Ttl, Value, notify};

/// A write's time to live, as a command gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Seconds from now.
    Ex(i64),
    /// Milliseconds from now.
    Px(i64),
    /// Unix time in seconds.
    ExAt(i64),
    /// Unix time in milliseconds.
    PxAt(i64),
    /// Remove any expiry (GETEX PERSIST).
    Persist,
}

/// When SET writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetCondition {
    #[default]
    Always,
    /// Only if the key does not exist.
    Nx,
    /// Only if the key exists.
    Xx,
}

/// SET's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct SetArgs {
    pub key: Bytes,
    pub value: Bytes,
    pub condition: SetCondition,
    /// Reply with the previous value.
    pub get: bool,
    pub expiry: Option<Expiry>,
    pub keep_ttl: bool,
}

/// Converts a command's expiry to an absolute deadline, with Redis's validation: non-positive amounts
/// and overflows are "invalid expire time in '<command>' command".
pub fn resolve_expiry(expiry: Expiry, now: u64, command: &str) -> Result<u64, Error> {
    let invalid = || Error::invalid_expire(command);
    let now = now as i64;
    let at = match expiry {
        Expiry::Persist => return Ok(NO_EXPIRY),
        Expiry::Ex(s) | Expiry::ExAt(s) if s <= 0 || s > i64::MAX / 1000 => return Err(invalid()),
        Expiry::Px(ms) | Expiry::PxAt(ms) if ms <= 0 => return Err(invalid()),
        Expiry::Ex(s) => (s * 1000).checked_add(now),
        Expiry::Px(ms) => ms.checked_add(now),
        Expiry::ExAt(s) => Some(s * 1000),
        Expiry::PxAt(ms) => Some(ms),
    };
    at.filter(|v| *v > 0).map(|v| v as u64).ok_or_else(invalid)
}

fn bytes(v: &[u8]) -> Bytes {
    Bytes::copy_from_slice(v)
}

/// The reply of SET: plain `OK`/nil, or with GET the previous value.
#[derive(Debug, PartialEq)]
pub enum SetReply {
    Ok,
    NotSet,
    Old(Option<Bytes>),
}

impl Keyspace {
    pub fn get(&mut self, db: usize, key: &[u8], now: u64) -> Result<Option<Bytes>, Error> {
        match self.read(db, key, now) {
            Some(e) => Ok(Some(bytes(e.value.as_str()?))),
            None => Ok(None),
        }
    }

    pub fn set(&mut self, db: usize, args: &SetArgs, now: u64) -> Result<SetReply, Error> {
        let deadline = args.expiry.map(|e| resolve_expiry(e, now, "set")).transpose()?;
        let old = if args.get { Some(self.get(db, &args.key, now)?) } else { None };
        let blocked = match args.condition {
            SetCondition::Always => false,
            SetCondition::Nx => self.exists(db, &args.key, now),
            SetCondition::Xx => !self.exists(db, &args.key, now),
        };
        if blocked {
            return Ok(old.map(SetReply::Old).unwrap_or(SetReply::NotSet));
        }
        let ttl = match deadline {
            Some(at) => Ttl::At(at),
            None if args.keep_ttl => Ttl::Keep,
            None => Ttl::Clear,
        };
        self.store(db, &args.key, Value::string(&args.value), ttl, now);
        self.changed(db, &args.key, notify::STRING, "set");
        if deadline.is_some() {
            self.notify(db, &args.key, notify::GENERIC, "expire");
        }
        Ok(old.map(SetReply::Old).unwrap_or(SetReply::Ok))
    }

    /// SETEX / PSETEX.
    pub fn set_ex(&mut self, db: usize, key: &[u8], value: &[u8], expiry: Expiry, command: &str, now: u64) -> Result<(), Error> {
        let at = resolve_expiry(expiry, now, command)?;
        self.store(db, key, Value::string(value), Ttl::At(at), now);
        self.changed(db, key, notify::STRING, "set");
        self.notify(db, key, notify::GENERIC, "expire");
        Ok(())
    }

    pub fn set_nx(&mut self, db: usize, key: &[u8], value: &[u8], now: u64) -> bool {
        if self.exists(db, key, now) {
            return false;
        }
        self.store(db, key, Value::string(value), Ttl::Clear, now);
        self.changed(db, key, notify::STRING, "set");
        true
    }

    pub fn get_set(&mut self, db: usize, key: &[u8], value: &[u8], now: u64) -> Result<Option<Bytes>, Error> {
        let old = self.get(db, key, now)?;
        self.store(db, key, Value::string(value), Ttl::Clear, now);
        self.changed(db, key, notify::STRING, "set");
        Ok(old)
    }

    pub fn get_del(&mut self, db: usize, key: &[u8], now: u64) -> Result<Option<Bytes>, Error> {
        let old = self.get(db, key, now)?;
        if old.is_some() {
            self.delete(db, key, now);
        }
        Ok(old)
    }

    pub fn get_ex(&mut self, db: usize, key: &[u8], expiry: Option<Expiry>, now: u64) -> Result<Option<Bytes>, Error> {
        let deadline = expiry.map(|e| resolve_expiry(e, now, "getex")).transpose()?;
        let Some(value) = self.get(db, key, now)? else { return Ok(None) };
        match (expiry, deadline) {
            (Some(Expiry::Persist), _) if self.dbs[db].get(key).is_some_and(|e| e.has_expiry()) => {
                self.dbs[db].set_expire(key, NO_EXPIRY);
                self.retimed(db, key, "persist");
            }
            (Some(Expiry::ExAt(_) | Expiry::PxAt(_)), Some(at)) if at <= now => {
                self.delete(db, key, now);
            }
            (Some(_), Some(at)) => {
                self.dbs[db].set_expire(key, at);
                self.retimed(db, key, "expire");
            }
            _ => {}
        }
        Ok(Some(value))
    }

    /// MGET: values of string keys, nil for anything else.
    pub fn mget(&mut self, db: usize, keys: &[Bytes], now: u64) -> Vec<Option<Bytes>> {
        keys.iter()
            .map(|k| match self.read(db, k, now) {
                Some(e) => match &e.value {
                    Value::Str(s) => Some(bytes(s.as_slice())),
                    _ => None,
                },
                None => None,
            })
            .collect()
    }

    /// MSET, or MSETNX when `only_if_none_exist` (then false if any key existed and nothing was set).
    pub fn mset(&mut self, db: usize, pairs: &[(Bytes, Bytes)], only_if_none_exist: bool, now: u64) -> bool {
        if only_if_none_exist && pairs.iter().any(|(k, _)| self.exists(db, k, now)) {
            return false;
        }
        for (k, v) in pairs {
            self.store(db, k, Value::string(v), Ttl::Clear, now);
            self.changed(db, k, notify::STRING, "set");
        }
        true
    }

    fn check_size(&self, len: usize) -> Result<(), Error> {
        if len > self.settings.max_string_len {
            Err(Error::fixed("ERR string exceeds maximum allowed size (proto-max-bulk-len)"))
        } else {
            Ok(())
        }
    }

    pub fn append(&mut self, db: usize, key: &[u8], value: &[u8], now: u64) -> Result<usize, Error> {
        let current = match self.live_mut(db, key, now) {
            Some(e) => Some(e.value.as_str()?.len()),
            None => None,
        };
        let len = match current {
            None => {
                self.check_size(value.len())?;
                self.store(db, key, Value::string(value), Ttl::Clear, now);
                value.len()
            }
            Some(len) => {
                self.check_size(len + value.len())?;
                let entry = self.dbs[db].get_mut(key).expect("live key");
                let s = entry.value.as_str_mut()?;
                s.extend_from_slice(value);
                entry.revision += 1;
                entry.raw = true;
                s.len()
            }
        };
        self.changed(db, key, notify::STRING, "append");
        Ok(len)
    }

    pub fn strlen(&mut self, db: usize, key: &[u8], now: u64) -> Result<usize, Error> {
        match self.read(db, key, now) {
            Some(e) => Ok(e.value.as_str()?.len()),
            None => Ok(0),
        }
    }

    pub fn get_range(&mut self, db: usize, key: &[u8], start: i64, end: i64, now: u64) -> Result<Bytes, Error> {
        let Some(entry) = self.read(db, key, now) else { return Ok(Bytes::new()) };
        let s = entry.value.as_str()?;
        let len = s.len() as i64;
        if start < 0 && end < 0 && start > end {
            return Ok(Bytes::new());
        }
        let mut start = if start < 0 { len + start } else { start };
        let mut end = if end < 0 { len + end } else { end };
        start = start.max(0);
        end = end.max(0);
        if end >= len {
            end = len - 1;
        }
        if start > end || len == 0 {
            return Ok(Bytes::new());
        }
        Ok(bytes(&s[start as usize..=end as usize]))
    }

    pub fn set_range(&mut self, db: usize, key: &[u8], offset: i64, value: &[u8], now: u64) -> Result<usize, Error> {
        if offset < 0 {
            return Err(Error::fixed("ERR offset is out of range"));
        }
        let offset = offset as usize;
        let current = match self.live_mut(db, key, now) {
            Some(e) => Some(e.value.as_str()?.len()),
            None => None,
        };
        if value.is_empty() {
            return Ok(current.unwrap_or(0));
        }
        self.check_size(offset + value.len())?;
        if current.is_none() {
            self.store(db, key, Value::string(b""), Ttl::Clear, now);
        }
        let entry = self.dbs[db].get_mut(key).expect("live key");
        let s = entry.value.as_str_mut()?;
        if s.len() < offset + value.len() {
            s.resize(offset + value.len(), 0);
        }
        s.as_mut_slice()[offset..offset + value.len()].copy_from_slice(value);
        let len = s.len();
        if current.is_some() {
            entry.revision += 1;
        }
        entry.raw = true;
        self.changed(db, key, notify::STRING, "setrange");
        Ok(len)
    }

    /// INCR / DECR / INCRBY / DECRBY. Keeps the key's deadline.
    pub fn incr_by(&mut self, db: usize, key: &[u8], by: i64, now: u64) -> Result<i64, Error> {
        let current = match self.live_mut(db, key, now) {
            Some(e) => parse_i64(e.value.as_str()?).ok_or(Error::not_integer())?,
            None => 0,
        };
        let next = current.checked_add(by).ok_or(Error::fixed("ERR increment or decrement would overflow"))?;
        let mut digits = [0u8; 20];
        self.store(db, key, Value::string(herald_protocol::number::format_i64(&mut digits, next)), Ttl::Keep, now);
        self.changed(db, key, notify::STRING, "incrby");
        Ok(next)
    }

    /// INCRBYFLOAT as Redis 7.0 computes it: in `long double`, printed with `%.17Lf` less its trailing
    /// zeros. The type is checked first, then the stored value and the increment are read. Keeps the
    /// key's deadline.
    pub fn incr_by_float(&mut self, db: usize, key: &[u8], by: Option<LongDouble>, now: u64) -> Result<Bytes, Error> {
        let current = match self.live_mut(db, key, now) {
            Some(e) => long_double::parse(e.value.as_str()?).ok_or(Error::not_float())?,
            None => LongDouble::ZERO,
        };
        let next = current.checked_add(by.ok_or(Error::not_float())?).ok_or(Error::fixed("ERR increment would produce NaN or Infinity"))?;
        let text = next.human();
        let reply = bytes(text.as_bytes());
        self.store(db, key, Value::string(text.as_bytes()), Ttl::Keep, now);
        self.changed(db, key, notify::STRING, "incrbyfloat");
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::keyspace::test_support::keyspace;

    fn set_args(key: &str, value: &str) -> SetArgs {
        SetArgs {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
            condition: SetCondition::Always,
            get: false,
            expiry: None,
            keep_ttl: false,
        }
    }

    #[test]
    fn set_get_with_expiry() {
        let mut ks = keyspace();
        let args = SetArgs { expiry: Some(Expiry::Px(100)), ..set_args("k", "v") };
        assert_eq!(ks.set(0, &args, 1000).unwrap(), SetReply::Ok);
        assert_eq!(ks.get(0, b"k", 1099).unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(ks.get(0, b"k", 1100).unwrap(), None, "expired exactly at the deadline");
        assert_eq!(ks.expire_due(1100, 10), 1, "the timer removes it");
        assert_eq!(ks.stats.expired_keys, 1);
    }

    #[test]
    fn set_conditions_and_get() {
        let mut ks = keyspace();
        let nx = SetArgs { condition: SetCondition::Nx, ..set_args("k", "1") };
        assert_eq!(ks.set(0, &nx, 0).unwrap(), SetReply::Ok);
        assert_eq!(ks.set(0, &nx, 0).unwrap(), SetReply::NotSet);
        let get = SetArgs { get: true, ..set_args("k", "2") };
        assert_eq!(ks.set(0, &get, 0).unwrap(), SetReply::Old(Some(Bytes::from_static(b"1"))));
        assert_eq!(ks.db(0).get(b"k").unwrap().revision, 2);
    }

    #[test]
    fn counters() {
        let mut ks = keyspace();
        assert_eq!(ks.incr_by(0, b"n", 5, 0).unwrap(), 5);
        assert_eq!(ks.incr_by(0, b"n", -7, 0).unwrap(), -2);
        ks.mset(0, &[(Bytes::from_static(b"n"), Bytes::from_static(b"9223372036854775807"))], false, 0);
        assert!(ks.incr_by(0, b"n", 1, 0).is_err());
        let float = |text: &str| long_double::parse(text.as_bytes());
        assert_eq!(&ks.incr_by_float(0, b"f", float("10.5"), 0).unwrap()[..], b"10.5");
        assert_eq!(&ks.incr_by_float(0, b"f", float("0.1"), 0).unwrap()[..], b"10.6");
        assert_eq!(&ks.incr_by_float(0, b"f", float("0.1"), 0).unwrap()[..], b"10.7");
        assert!(ks.incr_by_float(0, b"f", None, 0).is_err(), "an increment string2ld refuses");
        assert!(ks.incr_by_float(0, b"f", float("1.18e4932"), 0).is_ok());
        assert!(ks.incr_by_float(0, b"f", float("1.18e4932"), 0).is_err(), "past the largest long double");
    }

    #[test]
    fn ranges() {
        let mut ks = keyspace();
        ks.mset(0, &[(Bytes::from_static(b"s"), Bytes::from_static(b"Hello World"))], false, 0);
        assert_eq!(&ks.get_range(0, b"s", 0, 4, 0).unwrap()[..], b"Hello");
        assert_eq!(&ks.get_range(0, b"s", -5, -1, 0).unwrap()[..], b"World");
        assert_eq!(&ks.get_range(0, b"s", 5, 1, 0).unwrap()[..], b"");
        assert_eq!(ks.set_range(0, b"pad", 3, b"x", 0).unwrap(), 4);
        assert_eq!(ks.get(0, b"pad", 0).unwrap().as_deref(), Some(&b"\0\0\0x"[..]));
        assert_eq!(ks.append(0, b"pad", b"yz", 0).unwrap(), 6);
    }

    #[test]
    fn expiry_validation() {
        assert!(resolve_expiry(Expiry::Ex(0), 0, "set").is_err());
        assert!(resolve_expiry(Expiry::Ex(i64::MAX / 1000 + 1), 0, "set").is_err());
        assert!(resolve_expiry(Expiry::Px(i64::MAX), 5, "set").is_err());
        assert_eq!(resolve_expiry(Expiry::ExAt(2), 5, "set").unwrap(), 2000);
    }
}
