//! Discovery listings (JOB.QUEUES, BL.BOARDS, BB.SCOPES, MSG.DESTS, STREAM.LIST): pages of an engine's
//! named objects, by glob pattern, with a cursor.
//!
//! Engines keep their objects in hash maps whose iteration order changes as they grow, so a position
//! cannot be a cursor. Instead the names are visited in the order of a fixed 64-bit hash of the name
//! (FNV-1a) and the cursor is the hash of the next name to visit: an object that exists for a whole
//! iteration is returned exactly once however many others are created or deleted meanwhile (SCAN
//! promises at least once), and a cursor stays valid across restarts. A page costs one pass over the
//! engine's names, which is what SCAN's callers expect of a listing.

use bytes::Bytes;

use super::glob::glob_match;

/// One page's request: `cursor [MATCH pattern] [COUNT n]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListArgs {
    /// 0 starts an iteration; otherwise the cursor a previous page returned.
    pub cursor: u64,
    pub pattern: Option<Bytes>,
    /// Most entries in the page (names sharing one hash go together, so rarely a few more).
    pub count: usize,
}

impl ListArgs {
    /// Every name, in one page.
    pub fn all() -> Self {
        ListArgs { cursor: 0, pattern: None, count: usize::MAX }
    }
}

/// A page: the cursor of the next page (0 when the iteration is over) and the entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub cursor: u64,
    pub entries: Vec<T>,
}

/// The fixed order names are listed in.
pub fn name_hash(name: &[u8]) -> u64 {
    name.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// Selects a page of `items` (named by `name`) matching `args`, in name-hash order.
pub fn select<T>(items: impl Iterator<Item = T>, name: impl Fn(&T) -> &[u8], args: &ListArgs) -> Page<T> {
    let mut found: Vec<(u64, T)> = items
        .filter_map(|item| {
            let n = name(&item);
            let hash = name_hash(n);
            (hash >= args.cursor && args.pattern.as_ref().is_none_or(|p| glob_match(p, n))).then_some((hash, item))
        })
        .collect();
    found.sort_unstable_by_key(|(hash, _)| *hash);
    let mut end = args.count.max(1).min(found.len());
    while end < found.len() && found[end].0 == found[end - 1].0 {
        end += 1;
    }
    let cursor = found.get(end).map_or(0, |(hash, _)| *hash);
    found.truncate(end);
    Page { cursor, entries: found.into_iter().map(|(_, item)| item).collect() }
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { cursor: self.cursor, entries: self.entries.into_iter().map(f).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("queue:{i}").into_bytes()).collect()
    }

    fn walk(items: &[Vec<u8>], pattern: Option<&str>, count: usize) -> Vec<Vec<u8>> {
        let mut args = ListArgs { cursor: 0, pattern: pattern.map(|p| Bytes::copy_from_slice(p.as_bytes())), count };
        let mut seen = Vec::new();
        loop {
            let page = select(items.iter(), |n| n, &args);
            assert!(page.entries.len() <= count);
            seen.extend(page.entries.into_iter().cloned());
            if page.cursor == 0 {
                return seen;
            }
            args.cursor = page.cursor;
        }
    }

    #[test]
    fn a_full_iteration_returns_every_name_once() {
        let items = names(100);
        let mut seen = walk(&items, None, 7);
        seen.sort();
        let mut expected = items.clone();
        expected.sort();
        assert_eq!(seen, expected);
    }

    #[test]
    fn match_filters_names() {
        let mut items = names(20);
        items.push(b"other".to_vec());
        let seen = walk(&items, Some("queue:1*"), 3);
        assert_eq!(seen.len(), 11, "queue:1 and queue:10..19");
        assert!(walk(&items, Some("nothing*"), 3).is_empty());
    }

    #[test]
    fn names_present_throughout_survive_changes_between_pages() {
        let mut items = names(50);
        let mut args = ListArgs { cursor: 0, pattern: None, count: 5 };
        let mut seen = Vec::new();
        let mut round = 0;
        loop {
            let page = select(items.iter(), |n| n, &args).map(|n| n.clone());
            seen.extend(page.entries);
            // Between pages: one name goes away and two arrive.
            items.retain(|n| n != format!("queue:{}", 49 - round).as_bytes());
            items.push(format!("new:{round}:a").into_bytes());
            items.push(format!("new:{round}:b").into_bytes());
            round += 1;
            if page.cursor == 0 {
                break;
            }
            args.cursor = page.cursor;
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "no name twice");
        for i in 0..(49 - round + 1) {
            assert!(seen.contains(&format!("queue:{i}").into_bytes()), "queue:{i} was there throughout");
        }
    }

    #[test]
    fn an_empty_listing_ends_at_once() {
        let page = select(std::iter::empty::<&[u8]>(), |n| n, &ListArgs { cursor: 0, pattern: None, count: 10 });
        assert_eq!(page, Page { cursor: 0, entries: Vec::new() });
    }
}
