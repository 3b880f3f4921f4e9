//! Keyspace notification classes and the `notify-keyspace-events` flag string, as Redis defines them.

pub const GENERIC: u32 = 1 << 2; // g
pub const STRING: u32 = 1 << 3; // $
pub const LIST: u32 = 1 << 4; // l
pub const SET: u32 = 1 << 5; // s
pub const HASH: u32 = 1 << 6; // h
pub const ZSET: u32 = 1 << 7; // z
pub const EXPIRED: u32 = 1 << 8; // x
pub const EVICTED: u32 = 1 << 9; // e
pub const STREAM: u32 = 1 << 10; // t
pub const KEY_MISS: u32 = 1 << 11; // m
pub const MODULE: u32 = 1 << 12; // d
pub const NEW: u32 = 1 << 13; // n
pub const KEYSPACE: u32 = 1 << 0; // K
pub const KEYEVENT: u32 = 1 << 1; // E
/// What `A` stands for.
pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

const LETTERS: &[(u8, u32)] = &[
    (b'g', GENERIC),
    (b'$', STRING),
    (b'l', LIST),
    (b's', SET),
    (b'h', HASH),
    (b'z', ZSET),
    (b'x', EXPIRED),
    (b'e', EVICTED),
    (b't', STREAM),
    (b'm', KEY_MISS),
    (b'd', MODULE),
    (b'n', NEW),
    (b'K', KEYSPACE),
    (b'E', KEYEVENT),
];

/// Parses a flag string (`KEA`, `Ex`, ...); `None` for an unknown letter.
pub fn parse_flags(text: &[u8]) -> Option<u32> {
    let mut flags = 0;
    for &c in text {
        flags |= if c == b'A' { ALL } else { LETTERS.iter().find(|(l, _)| *l == c)?.1 };
    }
    Some(flags)
}

/// Renders flags the way CONFIG GET shows them (`AKE` rather than `g$lshzxetdKE`), in Redis's order.
pub fn format_flags(flags: u32) -> String {
    let mut out = String::new();
    let classes = [b'g', b'$', b'l', b's', b'h', b'z', b'x', b'e', b't', b'd', b'n'];
    if flags & ALL == ALL {
        // Redis prints no `n` after `A` even when it is set; so do we.
        out.push('A');
    } else {
        push_letters(&mut out, flags, &classes);
    }
    push_letters(&mut out, flags, b"KEm");
    out
}

fn push_letters(out: &mut String, flags: u32, letters: &[u8]) {
    for letter in letters {
        let (_, flag) = LETTERS.iter().find(|(l, _)| l == letter).expect("known letter");
        if flags & flag != 0 {
            out.push(*letter as char);
        }
    }
}

/// Whether an event of `class` goes out at all under `flags`.
pub fn enabled(flags: u32, class: u32) -> bool {
    flags & (KEYSPACE | KEYEVENT) != 0 && flags & class != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(format_flags(parse_flags(b"KEA").unwrap()), "AKE");
        assert_eq!(format_flags(parse_flags(b"Ex").unwrap()), "xE");
        assert_eq!(format_flags(parse_flags(b"").unwrap()), "");
        assert_eq!(parse_flags(b"Q"), None);
        assert!(!enabled(parse_flags(b"A").unwrap(), GENERIC), "no K or E: nothing is sent");
    }
}
