//! A user's answer for each command, computed once per ACL epoch (when the session refreshes its user)
//! rather than on every request: the usual request of a restricted user is then one byte read by the
//! command's dense index and, for a single-key command, one word compare of the key's prefix.
//!
//! It only ever says "allowed" for what [`super::plainly_allowed`] allows; anything else (a refused
//! command, movable or several keys, channels, several key patterns) is [`Verdict::Full`], which sends
//! the request through the full check with its exact errors, in Redis's order.

use bytes::Bytes;
use herald_protocol::Request;
use herald_protocol::command;

use super::user::User;
use super::{Channels, SHAPES};

/// What a user's request of one command needs checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Not decided here: the full check.
    Full,
    /// Allowed whatever its arguments.
    Allowed,
    /// Allowed when its one key (argument 1) matches the user's one `prefix*` pattern.
    Prefix,
}

/// One user's verdicts, indexed by [`command::Found::index`], and its one key prefix.
#[derive(Debug, Clone, Default)]
pub struct Verdicts {
    by_index: Box<[Verdict]>,
    prefix: Prefix,
}

impl Verdicts {
    pub fn of(user: &User) -> Verdicts {
        let prefix = match &user.keys[..] {
            [only] if !user.all_keys => only.prefix().map(Prefix::new).map(|p| (only.access, p)),
            _ => None,
        };
        let by_index = command::indexed_specs()
            .iter()
            .zip(SHAPES.iter())
            .map(|(spec, shape)| {
                let channels_ok = user.all_channels || shape.channels == Channels::None;
                if !(shape.no_auth || user.can_run(shape.id)) || !channels_ok {
                    return Verdict::Full;
                }
                let Some(access) = shape.keys else { return Verdict::Allowed };
                if user.all_keys || (shape.fixed_keys && !shape.keyword_keys && (spec.keys.first <= 0 || spec.keys.step <= 0)) {
                    return Verdict::Allowed;
                }
                let single = shape.fixed_keys && !shape.keyword_keys && spec.keys.first == 1 && spec.keys.last == 1;
                match &prefix {
                    Some((allows, _)) if single && allows & access == access => Verdict::Prefix,
                    _ => Verdict::Full,
                }
            })
            .collect();
        Verdicts { by_index, prefix: prefix.map(|(_, p)| p).unwrap_or_default() }
    }

    /// `true`: the request is allowed as it stands. `false` says only "check in full".
    #[inline(always)]
    pub fn allows(&self, index: usize, req: &Request) -> bool {
        match self.by_index.get(index) {
            Some(Verdict::Allowed) => true,
            Some(Verdict::Prefix) => req.parts().get(1).is_some_and(|key| self.prefix.matches(key)),
            _ => false,
        }
    }
}

/// A key prefix (the literal head of a `prefix*` pattern) as a masked little-endian word when it is
/// at most 8 bytes, the usual tenant prefix: a key of 8 bytes or more is then one load and compare.
#[derive(Debug, Clone, Default)]
struct Prefix {
    bytes: Bytes,
    word: u64,
    mask: u64,
}

impl Prefix {
    fn new(head: &[u8]) -> Prefix {
        let (mut word, mut mask) = (0u64, 0u64);
        if head.len() <= 8 {
            for (i, b) in head.iter().enumerate() {
                word |= u64::from(*b) << (8 * i);
                mask |= 0xff << (8 * i);
            }
        }
        Prefix { bytes: Bytes::copy_from_slice(head), word, mask }
    }

    /// As `KeyPattern::matches` for `prefix*`: the glob never matches an empty key.
    #[inline(always)]
    fn matches(&self, key: &[u8]) -> bool {
        if self.bytes.len() <= 8
            && let Some(first) = key.first_chunk::<8>()
        {
            return u64::from_le_bytes(*first) & self.mask == self.word;
        }
        !key.is_empty() && key.starts_with(&self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::user::test_user as user;
    use crate::acl::{check_command, check_request, shape};

    fn full_check(u: &User, req: &Request) -> bool {
        let found = command::lookup(req).unwrap();
        check_command(u, found.spec, shape(found)).and_then(|_| check_request(u, found.spec, shape(found), req)).is_ok()
    }

    /// Whatever the verdicts allow, the full check allows too (they may only send more to it).
    #[test]
    fn never_allows_what_the_full_check_refuses() {
        let users = [
            "on ~key:* &* +@all -@dangerous",
            "on %R~key:* &* +@all",
            "on %W~k* +@all",
            "on ~longer-than-eight:* +get +set",
            "on ~a:* ~b:* +@all",
            "on ~a?:* +@all",
            "on allkeys resetchannels +@all",
            "on ~* +@read",
        ];
        let requests: [&[&str]; 14] = [
            &["GET", "key:0000000001"],
            &["GET", "key:"],
            &["GET", "ke"],
            &["GET", ""],
            &["GET", "other:000000001"],
            &["SET", "key:1", "v"],
            &["SET", "kez:00000000", "v"],
            &["INCR", "key:12345678"],
            &["GET", "longer-than-eight:1"],
            &["GET", "longer-than-eightX1"],
            &["PUBLISH", "ch", "m"],
            &["FLUSHALL"],
            &["MGET", "key:1", "x"],
            &["PING"],
        ];
        for rules in users {
            let u = user(rules);
            let verdicts = Verdicts::of(&u);
            for parts in requests {
                let req = Request::from_strs(parts);
                let found = command::lookup(&req).unwrap();
                if verdicts.allows(found.index, &req) {
                    assert!(full_check(&u, &req), "{rules}: {parts:?} allowed by the verdicts only");
                }
            }
        }
    }

    #[test]
    fn the_usual_tenant_request_is_decided_here() {
        let u = user("on ~key:* &* +@all -@dangerous");
        let verdicts = Verdicts::of(&u);
        for parts in [&["GET", "key:000000012345"][..], &["SET", "key:1", "v"], &["GET", "key:"], &["PING"]] {
            let req = Request::from_strs(parts);
            assert!(verdicts.allows(command::lookup(&req).unwrap().index, &req), "{parts:?}");
        }
    }
}
