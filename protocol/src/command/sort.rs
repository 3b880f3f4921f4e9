//! SORT and SORT_RO: the elements of a list, set or sorted set, ordered by themselves or by the keys
//! (or hash fields) a pattern names, optionally projected through GET patterns and stored as a list.

use bytes::Bytes;

use super::conn::spec;
use super::flags::*;
use super::{Command, CommandSpec, Group, keys};
use crate::error::CommandError;
use crate::number::parse_i64;
use crate::request::{Args, is_word};

#[derive(Debug, Clone, PartialEq)]
pub enum SortCommand {
    Sort(SortArgs),
}

/// `SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE dest]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SortArgs {
    pub key: Bytes,
    pub by: Option<Bytes>,
    /// `LIMIT offset count` as given (a negative count means "to the end").
    pub limit: Option<(i64, i64)>,
    pub get: Vec<Bytes>,
    pub desc: bool,
    pub alpha: bool,
    pub store: Option<Bytes>,
}

/// Redis's option loop: later options override earlier ones, a keyword short of its arguments is a
/// syntax error, and SORT_RO knows no STORE.
fn parse_sort(read_only: bool, mut a: Args) -> Result<Command, CommandError> {
    let mut s = SortArgs { key: a.next_bytes()?, ..SortArgs::default() };
    let mut rest = a.rest().into_iter();
    while let Some(opt) = rest.next() {
        let left = rest.len();
        if is_word(&opt, "ASC") {
            s.desc = false;
        } else if is_word(&opt, "DESC") {
            s.desc = true;
        } else if is_word(&opt, "ALPHA") {
            s.alpha = true;
        } else if is_word(&opt, "LIMIT") && left >= 2 {
            let mut number = || parse_i64(&rest.next().expect("counted")).ok_or(CommandError::not_integer());
            let offset = number()?;
            s.limit = Some((offset, number()?));
        } else if !read_only && is_word(&opt, "STORE") && left >= 1 {
            s.store = rest.next();
        } else if is_word(&opt, "BY") && left >= 1 {
            s.by = rest.next();
        } else if is_word(&opt, "GET") && left >= 1 {
            s.get.push(rest.next().expect("counted"));
        } else {
            return Err(CommandError::syntax());
        }
    }
    Ok(Command::Sort(SortCommand::Sort(s)))
}

/// SORT's STORE destination among its arguments, as Redis's `sortGetKeys` finds it: the arguments of
/// LIMIT, GET and BY are skipped, and the last STORE wins.
pub(crate) fn store_key(parts: &[Bytes]) -> Option<&[u8]> {
    let mut found = None;
    let mut i = 2;
    while i < parts.len() {
        let arg = &parts[i];
        if is_word(arg, "LIMIT") {
            i += 2;
        } else if is_word(arg, "GET") || is_word(arg, "BY") {
            i += 1;
        } else if is_word(arg, "STORE") && i + 1 < parts.len() {
            found = Some(&parts[i + 1][..]);
            i += 1;
        }
        i += 1;
    }
    found
}

pub(crate) const SPECS: &[CommandSpec] = &[
    spec!(
        "sort",
        -2,
        WRITE | DENYOOM | MOVABLE_KEYS,
        keys(1, 1, 1),
        Generic,
        "1.0.0",
        "Sorts the elements in a list, a set, or a sorted set, optionally storing the result.",
        |a| parse_sort(false, a)
    ),
    spec!(
        "sort_ro",
        -2,
        READONLY | MOVABLE_KEYS,
        keys(1, 1, 1),
        Generic,
        "7.0.0",
        "Returns the sorted elements of a list, a set, or a sorted set.",
        |a| parse_sort(true, a)
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::parse_request;
    use crate::request::Request;

    fn parse(parts: &[&str]) -> Result<SortArgs, CommandError> {
        match parse_request(Request::from_strs(parts))? {
            (_, Command::Sort(SortCommand::Sort(s))) => Ok(s),
            (_, other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn options() {
        let s = parse(&["SORT", "k", "BY", "w_*", "LIMIT", "0", "-1", "GET", "#", "GET", "o_*->f", "DESC", "ALPHA", "ASC", "STORE", "d"])
            .unwrap();
        assert_eq!((s.by.as_deref(), s.limit, s.get.len(), s.desc, s.alpha), (Some(&b"w_*"[..]), Some((0, -1)), 2, false, true));
        assert_eq!(s.store.as_deref(), Some(&b"d"[..]));
        assert_eq!(parse(&["SORT", "k", "LIMIT", "0"]).unwrap_err(), CommandError::syntax());
        assert_eq!(parse(&["SORT", "k", "LIMIT", "x", "1"]).unwrap_err(), CommandError::not_integer());
        assert_eq!(parse(&["SORT_RO", "k", "STORE", "d"]).unwrap_err(), CommandError::syntax());
        assert_eq!(parse(&["SORT", "k", "GET"]).unwrap_err(), CommandError::syntax());
    }
}
