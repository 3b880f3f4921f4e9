//! DUMP and RESTORE: a key's value in Redis's serialization format, and back.

use bytes::Bytes;

use super::conn::spec;
use super::flags::*;
use super::{Command, CommandSpec, Group, keys};
use crate::error::CommandError;
use crate::number::parse_i64;
use crate::request::{Args, is_word};

#[derive(Debug, Clone, PartialEq)]
pub enum DumpCommand {
    Dump(Bytes),
    Restore(RestoreArgs),
}

/// `RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreArgs {
    pub key: Bytes,
    /// Milliseconds (0: no expiry), read only after the key is found free, so its error waits.
    pub ttl: Result<i64, CommandError>,
    pub payload: Bytes,
    pub replace: bool,
    /// `ttl` is a unix time in milliseconds.
    pub abs_ttl: bool,
    pub idle_secs: Option<u64>,
    /// Accepted and range-checked; there is no LFU policy to use it.
    pub freq: Option<u8>,
}

fn parse_restore(mut a: Args) -> Result<Command, CommandError> {
    let key = a.next_bytes()?;
    let ttl_raw = a.next_bytes()?;
    let payload = a.next_bytes()?;
    let (mut replace, mut abs_ttl, mut idle_secs, mut freq) = (false, false, None, None);
    let mut rest = a.rest().into_iter();
    while let Some(opt) = rest.next() {
        let more = rest.len() >= 1;
        if is_word(&opt, "REPLACE") {
            replace = true;
        } else if is_word(&opt, "ABSTTL") {
            abs_ttl = true;
        } else if is_word(&opt, "IDLETIME") && more && freq.is_none() {
            let idle = parse_i64(&rest.next().expect("counted")).ok_or(CommandError::not_integer())?;
            idle_secs = Some(u64::try_from(idle).map_err(|_| CommandError::fixed("ERR Invalid IDLETIME value, must be >= 0"))?);
        } else if is_word(&opt, "FREQ") && more && idle_secs.is_none() {
            let f = parse_i64(&rest.next().expect("counted")).ok_or(CommandError::not_integer())?;
            freq = Some(u8::try_from(f).map_err(|_| CommandError::fixed("ERR Invalid FREQ value, must be >= 0 and <= 255"))?);
        } else {
            return Err(CommandError::syntax());
        }
    }
    let ttl = match parse_i64(&ttl_raw) {
        None => Err(CommandError::not_integer()),
        Some(t) if t < 0 => Err(CommandError::fixed("ERR Invalid TTL value, must be >= 0")),
        Some(t) => Ok(t),
    };
    Ok(Command::Dump(DumpCommand::Restore(RestoreArgs { key, ttl, payload, replace, abs_ttl, idle_secs, freq })))
}

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!(
        "dump",
        2,
        READONLY,
        keys(1, 1, 1),
        Generic,
        "2.6.0",
        "Returns a serialized representation of the value stored at a key.",
        |mut a| Ok(Command::Dump(DumpCommand::Dump(a.next_bytes()?)))
    ),
    spec!(
        "restore",
        -4,
        WRITE | DENYOOM | DANGEROUS,
        keys(1, 1, 1),
        Generic,
        "2.6.0",
        "Creates a key from the serialized representation of a value.",
        parse_restore
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::parse_request;
    use crate::request::Request;

    fn parse(parts: &[&str]) -> Result<RestoreArgs, CommandError> {
        match parse_request(Request::from_strs(parts))? {
            (_, Command::Dump(DumpCommand::Restore(r))) => Ok(r),
            (_, other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn restore_options() {
        let r = parse(&["RESTORE", "k", "-1", "p", "REPLACE", "IDLETIME", "10"]).unwrap();
        assert!(r.replace && r.idle_secs == Some(10) && r.ttl.is_err());
        assert_eq!(parse(&["RESTORE", "k", "0", "p", "IDLETIME", "1", "FREQ", "2"]).unwrap_err(), CommandError::syntax());
        assert_eq!(parse(&["RESTORE", "k", "0", "p", "FREQ", "256"]).unwrap_err().0, "ERR Invalid FREQ value, must be >= 0 and <= 255");
        assert_eq!(parse(&["RESTORE", "k", "0", "p", "IDLETIME", "-1"]).unwrap_err().0, "ERR Invalid IDLETIME value, must be >= 0");
    }
}
