//! Argument forms the hash, set and sorted-set commands share: HSCAN / SSCAN / ZSCAN options, the
//! counts of HRANDFIELD / ZRANDMEMBER / SRANDMEMBER / SPOP, and `numkeys key [key ...]` lists.

use bytes::Bytes;

use super::keys::{ScanArgs, parse_cursor, parse_scan_options};
use crate::error::CommandError;
use crate::number::parse_i64;
use crate::request::{Args, is_word};

/// `key cursor [MATCH pattern] [COUNT count]` of HSCAN / SSCAN / ZSCAN. Redis reads the options only
/// once the key is found to exist with the right type (a missing key answers an empty page whatever
/// follows), so an option error is kept for dispatch to report at that point.
#[derive(Debug, Clone, PartialEq)]
pub struct ElementScan {
    pub key: Bytes,
    pub scan: Result<ScanArgs, CommandError>,
}

pub(crate) fn parse_element_scan(mut a: Args) -> Result<ElementScan, CommandError> {
    let key = a.next_bytes()?;
    let cursor = parse_cursor(&a.next_bytes()?)?;
    Ok(ElementScan { key, scan: parse_scan_options(&mut a, cursor, false) })
}

/// Redis's `getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX)` without a message.
fn range_long(raw: &[u8]) -> Result<i64, CommandError> {
    let n = parse_i64(raw).ok_or(CommandError::not_integer())?;
    if n == i64::MIN {
        return Err(CommandError::fixed("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"));
    }
    Ok(n)
}

/// HRANDFIELD / ZRANDMEMBER: `[count [WITHVALUES|WITHSCORES]]`; `None` without a count.
pub(crate) fn parse_random_count(mut a: Args, with: &str) -> Result<Option<(i64, bool)>, CommandError> {
    let Some(raw) = a.next_opt() else { return Ok(None) };
    let count = range_long(&raw)?;
    let with_values = match (a.next_opt(), a.is_empty()) {
        (None, _) => false,
        (Some(w), true) if is_word(&w, with) => true,
        _ => return Err(CommandError::syntax()),
    };
    // Twice the count must not overflow when values come along.
    if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(CommandError::fixed("ERR value is out of range"));
    }
    Ok(Some((count, with_values)))
}

/// SRANDMEMBER's count: any integer but `i64::MIN`; no more arguments.
pub(crate) fn parse_signed_count(mut a: Args) -> Result<Option<i64>, CommandError> {
    let Some(raw) = a.next_opt() else { return Ok(None) };
    if !a.is_empty() {
        return Err(CommandError::syntax());
    }
    range_long(&raw).map(Some)
}

/// SPOP / ZPOPMIN / ZPOPMAX's count: Redis's `getPositiveLongFromObjectOrReply`, one message for text
/// that is no integer and for a negative value; no more arguments.
pub(crate) fn parse_positive_count(mut a: Args) -> Result<Option<usize>, CommandError> {
    let Some(raw) = a.next_opt() else { return Ok(None) };
    if !a.is_empty() {
        return Err(CommandError::syntax());
    }
    let n = parse_i64(&raw).filter(|n| *n >= 0).ok_or(CommandError::fixed("ERR value is out of range, must be positive"))?;
    Ok(Some(n as usize))
}

/// `numkeys key [key ...]` as the *INTERCARD and *MPOP commands read it: numkeys at least 1 (`error`
/// otherwise) and no more than the arguments left (`too_many`).
pub(crate) fn parse_numkeys(a: &mut Args, error: CommandError, too_many: CommandError) -> Result<Vec<Bytes>, CommandError> {
    let numkeys = a.next_i64_at_least(1, error)?;
    if numkeys as u64 > a.remaining() as u64 {
        return Err(too_many);
    }
    (0..numkeys).map(|_| a.next_bytes()).collect()
}
