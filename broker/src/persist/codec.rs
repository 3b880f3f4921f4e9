//! The byte layout of persistence files: a header, then framed records.
//!
//! ```text
//! file   := magic (8 bytes) version (u16 LE) frame*
//! frame  := length (u32 LE) crc32 (u32 LE, of the payload) payload (length bytes)
//! ```
//!
//! A frame whose length runs past the end of the file, or whose checksum does not match, is how a
//! torn write (a crash in the middle of appending) looks at the end of a log: the reader reports where
//! the good part ends so recovery can cut the tail off. The same damage before the last frame is
//! corruption, not a torn write, and recovery refuses to guess.
//!
//! Inside a payload, [`Writer`] and [`Reader`] put and take little-endian integers and
//! length-prefixed byte strings; a reader that runs out of bytes fails with [`Malformed`].

/// Most bytes one record may hold (a sanity bound for the reader: a length beyond it is damage).
pub const MAX_FRAME: usize = 1 << 30;

pub const LOG_MAGIC: &[u8; 8] = b"HRLDLOG\0";
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"HRLDSNP\0";
/// The format version this Herald writes and reads.
pub const VERSION: u16 = 1;
pub const HEADER_LEN: usize = 10;

pub fn header(magic: &[u8; 8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(magic);
    h[8..].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// Checks a file's header: `Ok(())`, or why the file cannot be read by this Herald.
pub fn check_header(bytes: &[u8], magic: &[u8; 8]) -> Result<(), String> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != magic {
        return Err("not a Herald persistence file of this kind (bad magic)".into());
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != VERSION {
        return Err(format!("format version {version}; this Herald reads version {VERSION}"));
    }
    Ok(())
}

/// Appends one frame holding `payload` (written by `fill`) to `out`.
pub fn frame(out: &mut Vec<u8>, fill: impl FnOnce(&mut Writer<'_>)) {
    let start = out.len();
    out.extend_from_slice(&[0u8; 8]);
    fill(&mut Writer(out));
    let payload = &out[start + 8..];
    let len = payload.len() as u32;
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What scanning the frames of a file found.
#[derive(Debug)]
pub enum Scan<'a> {
    /// A whole, valid frame's payload, at this offset in the file.
    Frame(usize, &'a [u8]),
    /// The bytes from this offset on are not a valid frame; `last` says whether any valid frame
    /// follows (false: a torn tail; true: damage in the middle).
    Damaged { at: usize, last: bool },
}

/// Iterates over the frames of `bytes` (the whole file, header included).
pub fn frames(bytes: &[u8]) -> impl Iterator<Item = Scan<'_>> {
    frames_from(bytes, HEADER_LEN)
}

/// Iterates over the frames of `bytes` from offset `at` (a group record's inner frames start at 0).
pub fn frames_from(bytes: &[u8], at: usize) -> impl Iterator<Item = Scan<'_>> {
    let mut at = at;
    let mut done = false;
    std::iter::from_fn(move || {
        if done || at >= bytes.len() {
            return None;
        }
        match frame_at(bytes, at) {
            Some((payload, next)) => {
                let found = Scan::Frame(at, payload);
                at = next;
                Some(found)
            }
            None => {
                done = true;
                Some(Scan::Damaged { at, last: !any_frame_after(bytes, at + 1) })
            }
        }
    })
}

fn frame_at(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let head = bytes.get(at..at + 8)?;
    let len = u32::from_le_bytes(head[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(head[4..].try_into().ok()?);
    // Records are never empty: eight zero bytes (a zero-filled tail) are not a frame.
    if len == 0 || len > MAX_FRAME {
        return None;
    }
    let payload = bytes.get(at + 8..at + 8 + len)?;
    (crc32fast::hash(payload) == crc).then_some((payload, at + 8 + len))
}

/// Whether a valid frame starts anywhere at or after `from`: tells a torn tail (nothing valid
/// follows) from corruption in the middle (valid records follow the damage).
fn any_frame_after(bytes: &[u8], from: usize) -> bool {
    (from..bytes.len().saturating_sub(8)).any(|at| frame_at(bytes, at).is_some())
}

pub struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub fn bool(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }

    pub fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }

    /// Bytes without a length (what follows fills the rest of the payload).
    pub fn raw(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }

    pub fn opt_bytes(&mut self, v: Option<&[u8]>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.bytes(v);
            }
            None => self.u8(0),
        }
    }

    pub fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.u64(v);
            }
            None => self.u8(0),
        }
    }
}

/// A payload ended early or held an impossible value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.bytes.len() < n {
            return Err(Malformed("record ends early"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, Malformed> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    pub fn u64(&mut self) -> Result<u64, Malformed> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    pub fn i64(&mut self) -> Result<i64, Malformed> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    pub fn bool(&mut self) -> Result<bool, Malformed> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Malformed("bad boolean")),
        }
    }

    pub fn bytes(&mut self) -> Result<bytes::Bytes, Malformed> {
        let len = self.u32()? as usize;
        Ok(bytes::Bytes::copy_from_slice(self.take(len)?))
    }

    pub fn opt_bytes(&mut self) -> Result<Option<bytes::Bytes>, Malformed> {
        Ok(if self.bool()? { Some(self.bytes()?) } else { None })
    }

    pub fn opt_u64(&mut self) -> Result<Option<u64>, Malformed> {
        Ok(if self.bool()? { Some(self.u64()?) } else { None })
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(records: &[&[u8]]) -> Vec<u8> {
        let mut out = header(LOG_MAGIC).to_vec();
        for r in records {
            frame(&mut out, |w| w.bytes(r));
        }
        out
    }

    #[test]
    fn frames_round_trip_and_torn_tails_are_told_from_corruption() {
        let file = file_of(&[b"one", b"two", b"three"]);
        assert!(check_header(&file, LOG_MAGIC).is_ok());
        let payloads: Vec<_> = frames(&file)
            .map(|s| match s {
                Scan::Frame(_, p) => Reader::new(p).bytes().unwrap(),
                Scan::Damaged { .. } => panic!("no damage"),
            })
            .collect();
        assert_eq!(payloads, vec!["one", "two", "three"]);

        let torn = &file[..file.len() - 3];
        let last = frames(torn).last().unwrap();
        assert!(matches!(last, Scan::Damaged { last: true, .. }), "{last:?}");

        let mut corrupt = file.clone();
        corrupt[HEADER_LEN + 9] ^= 0xff;
        let scans: Vec<_> = frames(&corrupt).collect();
        assert!(matches!(scans[0], Scan::Damaged { at: HEADER_LEN, last: false }), "{scans:?}");
    }

    #[test]
    fn headers_say_what_is_wrong() {
        assert!(check_header(b"nonsense!!", LOG_MAGIC).unwrap_err().contains("magic"));
        let mut h = header(LOG_MAGIC);
        h[8] = 9;
        assert!(check_header(&h, LOG_MAGIC).unwrap_err().contains("version 9"));
    }
}
