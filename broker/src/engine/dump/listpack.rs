//! The compact blobs inside Redis's serialization: listpacks (small hashes, sorted sets and the
//! nodes of a list), intsets, and LZF, which Redis applies to strings of more than 20 bytes.
//!
//! Readers accept every encoding Redis writes; the listpack writer encodes integers as Redis does
//! (so a DUMP of a small value has Redis's bytes) and everything else as strings.

use herald_protocol::number::parse_i64;

/// A listpack entry: text or an integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Str(Vec<u8>),
    Int(i64),
}

impl Item {
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Item::Str(s) => s,
            Item::Int(n) => n.to_string().into_bytes(),
        }
    }
}

/// The size of the back-length Redis writes after an entry of `len` bytes.
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// Redis's `lpEncodeBacklen`: the entry's length, 7 bits per byte, read backwards.
fn push_backlen(out: &mut Vec<u8>, len: usize) {
    let n = backlen_size(len);
    for i in (0..n).rev() {
        let byte = ((len >> (7 * i)) & 127) as u8;
        out.push(if i == n - 1 { byte } else { byte | 128 });
    }
}

/// Appends one entry: an integer in the smallest of Redis's integer encodings when the text is one
/// (`string2ll`), else the text.
fn push_entry(out: &mut Vec<u8>, text: &[u8]) {
    let start = out.len();
    match parse_i64(text).filter(|_| text.len() <= 20) {
        Some(v @ 0..=127) => out.push(v as u8),
        Some(v @ -4096..=4095) => {
            let u = (v as u16) & 0x1fff;
            out.extend_from_slice(&[0xc0 | (u >> 8) as u8, u as u8]);
        }
        Some(v @ -32768..=32767) => {
            out.push(0xf1);
            out.extend_from_slice(&(v as i16).to_le_bytes());
        }
        Some(v @ -8388608..=8388607) => {
            out.push(0xf2);
            out.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        }
        Some(v) if i32::try_from(v).is_ok() => {
            out.push(0xf3);
            out.extend_from_slice(&(v as i32).to_le_bytes());
        }
        Some(v) => {
            out.push(0xf4);
            out.extend_from_slice(&v.to_le_bytes());
        }
        None if text.len() < 64 => {
            out.push(0x80 | text.len() as u8);
            out.extend_from_slice(text);
        }
        None if text.len() < 4096 => {
            out.extend_from_slice(&[0xe0 | (text.len() >> 8) as u8, text.len() as u8]);
            out.extend_from_slice(text);
        }
        None => {
            out.push(0xf0);
            out.extend_from_slice(&(text.len() as u32).to_le_bytes());
            out.extend_from_slice(text);
        }
    }
    let len = out.len() - start;
    push_backlen(out, len);
}

/// A listpack of these entries.
pub fn write_listpack<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = vec![0u8; 6];
    let mut count = 0usize;
    for item in items {
        push_entry(&mut out, item);
        count += 1;
    }
    out.push(0xff);
    let total = out.len() as u32;
    out[..4].copy_from_slice(&total.to_le_bytes());
    out[4..6].copy_from_slice(&(count.min(65535) as u16).to_le_bytes());
    out
}

fn take<'a>(data: &'a [u8], at: &mut usize, n: usize) -> Option<&'a [u8]> {
    let slice = data.get(*at..at.checked_add(n)?)?;
    *at += n;
    Some(slice)
}

/// A listpack's entries; `None` if it is malformed.
pub fn read_listpack(data: &[u8]) -> Option<Vec<Item>> {
    let total = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
    if total != data.len() || total < 7 || data[total - 1] != 0xff {
        return None;
    }
    let mut at = 6;
    let mut items = Vec::new();
    while data[at] != 0xff {
        let start = at;
        let b = data[at];
        at += 1;
        let sign_extend = |v: u64, bits: u32| ((v << (64 - bits)) as i64) >> (64 - bits);
        let item = if b & 0x80 == 0 {
            Item::Int(i64::from(b))
        } else if b & 0xc0 == 0x80 {
            Item::Str(take(data, &mut at, usize::from(b & 0x3f))?.to_vec())
        } else if b & 0xe0 == 0xc0 {
            let low = *take(data, &mut at, 1)?.first()?;
            Item::Int(sign_extend(u64::from(b & 0x1f) << 8 | u64::from(low), 13))
        } else if b & 0xf0 == 0xe0 {
            let low = *take(data, &mut at, 1)?.first()?;
            Item::Str(take(data, &mut at, usize::from(b & 0x0f) << 8 | usize::from(low))?.to_vec())
        } else {
            let int = |bytes: &[u8]| bytes.iter().rev().fold(0u64, |v, b| v << 8 | u64::from(*b));
            match b {
                0xf0 => {
                    let len = int(take(data, &mut at, 4)?) as usize;
                    Item::Str(take(data, &mut at, len)?.to_vec())
                }
                0xf1 => Item::Int(sign_extend(int(take(data, &mut at, 2)?), 16)),
                0xf2 => Item::Int(sign_extend(int(take(data, &mut at, 3)?), 24)),
                0xf3 => Item::Int(sign_extend(int(take(data, &mut at, 4)?), 32)),
                0xf4 => Item::Int(int(take(data, &mut at, 8)?) as i64),
                _ => return None,
            }
        };
        at += backlen_size(at - start);
        if at >= data.len() {
            return None;
        }
        items.push(item);
    }
    Some(items)
}

/// An intset of these (sorted, distinct) integers, in the narrowest width that holds them all.
pub fn write_intset(ints: &[i64]) -> Vec<u8> {
    let width: usize = if ints.iter().all(|v| i16::try_from(*v).is_ok()) {
        2
    } else if ints.iter().all(|v| i32::try_from(*v).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + width * ints.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(ints.len() as u32).to_le_bytes());
    for v in ints {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

pub fn read_intset(data: &[u8]) -> Option<Vec<i64>> {
    let width = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let len = u32::from_le_bytes(data.get(4..8)?.try_into().ok()?) as usize;
    if !matches!(width, 2 | 4 | 8) || data.len() != 8 + width.checked_mul(len)? {
        return None;
    }
    Some(
        data[8..]
            .chunks_exact(width)
            .map(|c| {
                let v = c.iter().rev().fold(0u64, |v, b| v << 8 | u64::from(*b));
                ((v << (64 - 8 * width)) as i64) >> (64 - 8 * width)
            })
            .collect(),
    )
}

/// The most output one input byte can stand for: a three-byte back reference copies at most 264.
const LZF_MAX_RATIO: usize = 88;

/// LZF decompression (liblzf's `lzf_decompress`) into exactly `len` bytes. A `len` the input could not
/// possibly expand to is refused before anything is allocated: RESTORE's payload comes from a client,
/// and its checksum is no proof of honesty (found by `broker/fuzz`'s `restore` target).
pub fn lzf_decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    if len > input.len().saturating_mul(LZF_MAX_RATIO) {
        return None;
    }
    let mut out = Vec::with_capacity(len);
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < 32 {
            out.extend_from_slice(input.get(ip..ip + ctrl + 1)?);
            ip += ctrl + 1;
        } else {
            let mut run = ctrl >> 5;
            if run == 7 {
                run += usize::from(*input.get(ip)?);
                ip += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + usize::from(*input.get(ip)?) + 1;
            ip += 1;
            let from = out.len().checked_sub(back)?;
            for i in 0..run + 2 {
                out.push(out[from + i]);
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpacks_round_trip_every_encoding() {
        let texts: Vec<&[u8]> = vec![
            b"5",
            b"-1",
            b"4095",
            b"-4096",
            b"30000",
            b"-8000000",
            b"2000000000",
            b"-9223372036854775808",
            b"abc",
            b"007",
            &[b'x'; 100],
            &[b'y'; 5000],
        ];
        let lp = write_listpack(texts.iter().copied());
        let back: Vec<Vec<u8>> = read_listpack(&lp).unwrap().into_iter().map(Item::into_bytes).collect();
        assert_eq!(back, texts.iter().map(|t| t.to_vec()).collect::<Vec<_>>());
        assert!(read_listpack(&lp[..lp.len() - 1]).is_none());
    }

    #[test]
    fn intsets_and_lzf() {
        for ints in [vec![1, 2, 3], vec![-70000, 5], vec![i64::MIN, 0, i64::MAX]] {
            assert_eq!(read_intset(&write_intset(&ints)).unwrap(), ints);
        }
        // "aaaaaaaaaa": one literal, then a back reference of 9 bytes at distance 1.
        assert_eq!(lzf_decompress(&[0x00, b'a', 0xe0, 0x00, 0x00], 10).unwrap(), b"aaaaaaaaaa");
        assert!(lzf_decompress(&[0x00, b'a'], 2).is_none());
    }
}
