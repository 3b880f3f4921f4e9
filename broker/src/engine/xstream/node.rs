//! One node of a stream: up to 100 entries packed into one byte buffer, as Redis packs them into a
//! listpack, so a million small entries cost about what they cost in Redis rather than a heap object
//! each.
//!
//! Layout: the *master fields* (the first entry's field names: count, then each name), then the
//! entries in ID order. An entry is a flags byte (deleted, same-fields-as-master), its ID as deltas
//! from the node's master ID (the node's first ID, its key in the stream's tree), and its values,
//! preceded by its field names unless they are the master fields. Numbers are LEB128 varints; the
//! sequence delta is zigzagged because it may be negative (`5-9` then `6-0`). A deleted entry stays
//! as a tombstone until its whole node goes, as in Redis.
//!
//! The node also tracks the size Redis's listpack for the same entries would have (`lp_bytes`), so
//! the stream opens a new node exactly where Redis would (4096 bytes or 100 entries): approximate
//! trimming (`~`) removes whole nodes, and with the same node boundaries it removes what Redis
//! removes.

use bytes::Bytes;

use super::StreamId;

pub(super) const DELETED: u8 = 1;
pub(super) const SAME_FIELDS: u8 = 2;

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn get_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let b = buf[*pos];
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_varint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

fn get_bytes<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let len = get_varint(buf, pos) as usize;
    let out = &buf[*pos..*pos + len];
    *pos += len;
    out
}

/// [`get_varint`] for bytes that may be damaged: `None` past the end or for an overlong number.
fn checked_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let b = *buf.get(*pos)?;
        *pos += 1;
        if shift > 63 {
            return None;
        }
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
        shift += 7;
    }
}

fn checked_bytes<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let len = usize::try_from(checked_varint(buf, pos)?).ok()?;
    let out = buf.get(*pos..pos.checked_add(len)?)?;
    *pos += len;
    Some(out)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Bytes a listpack element of `len` encoded bytes takes with its back-length.
fn lp_element(len: usize) -> usize {
    let back = match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    };
    len + back
}

/// A listpack integer element.
pub(super) fn lp_int(v: i64) -> usize {
    lp_element(match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8388608..=8388607 => 4,
        -2147483648..=2147483647 => 5,
        _ => 9,
    })
}

/// A listpack string element (strings that read as integers are stored as integers).
fn lp_str(s: &[u8]) -> usize {
    if let Some(v) = herald_protocol::number::parse_i64(s) {
        return lp_int(v);
    }
    lp_element(match s.len() {
        0..=63 => 1 + s.len(),
        64..=4095 => 2 + s.len(),
        _ => 5 + s.len(),
    })
}

/// An entry as stored: where it is in the buffer and what its header says.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub id: StreamId,
    pub deleted: bool,
    /// Offset of the flags byte.
    flags_at: usize,
    /// Offset of the field data (after the ID).
    body_at: usize,
    /// The entry's field names are the master's (only its values are stored).
    pub same: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Node {
    buf: Vec<u8>,
    /// Where the entries start (after the master fields).
    entries_at: u32,
    master_fields: u32,
    pub live: u32,
    pub deleted: u32,
    /// Redis's listpack size for the entries (the master entry is added by [`Node::lp_bytes`]).
    lp_entries: u32,
    lp_master_fields: u32,
}

impl Node {
    /// A node whose first entry is `id` (its master ID) with these fields.
    pub fn new(id: StreamId, fields: &[Bytes]) -> Node {
        // Room for about 8 entries like this one; growth quadruples after that (see `reserve`), so a
        // full node is reached in two reallocations rather than five.
        let entry: usize = fields.iter().map(|f| f.len() + 1).sum::<usize>() + 4;
        let mut buf = Vec::with_capacity((entry * 8).clamp(64, 1024));
        let names: Vec<&Bytes> = fields.iter().step_by(2).collect();
        put_varint(&mut buf, names.len() as u64);
        for name in &names {
            put_bytes(&mut buf, name);
        }
        let lp_master_fields = names.iter().map(|n| lp_str(n)).sum::<usize>() as u32;
        let mut node = Node {
            entries_at: buf.len() as u32,
            buf,
            master_fields: names.len() as u32,
            live: 0,
            deleted: 0,
            lp_entries: 0,
            lp_master_fields,
        };
        node.push(id, id, fields);
        node
    }

    /// The size Redis's listpack for this node would have.
    pub fn lp_bytes(&self) -> usize {
        // Header and terminator, then the master entry: count, deleted, field count, names, 0.
        7 + lp_int(i64::from(self.live))
            + lp_int(i64::from(self.deleted))
            + lp_int(i64::from(self.master_fields))
            + self.lp_master_fields as usize
            + lp_int(0)
            + self.lp_entries as usize
    }

    /// Entries stored, live and tombstones: what Redis compares with `stream-node-max-entries`.
    pub fn stored(&self) -> u32 {
        self.live + self.deleted
    }

    fn same_as_master(&self, fields: &[Bytes]) -> bool {
        if fields.len() / 2 != self.master_fields as usize {
            return false;
        }
        let mut pos = 0;
        get_varint(&self.buf, &mut pos);
        fields.iter().step_by(2).all(|name| get_bytes(&self.buf, &mut pos) == &name[..])
    }

    /// Appends an entry (`master` is the node's key). IDs only grow, except after XSETID moved an
    /// emptied stream's last ID back below a node of tombstones: then, as in Redis, the deltas wrap.
    pub fn push(&mut self, master: StreamId, id: StreamId, fields: &[Bytes]) {
        self.reserve(fields);
        let same = self.live + self.deleted == 0 || self.same_as_master(fields);
        let ms_delta = id.ms.wrapping_sub(master.ms);
        let seq_delta = id.seq.wrapping_sub(master.seq) as i64;
        self.buf.push(if same { SAME_FIELDS } else { 0 });
        put_varint(&mut self.buf, ms_delta);
        put_varint(&mut self.buf, zigzag(seq_delta));
        let n = fields.len() / 2;
        let mut lp = lp_int(i64::from(same as u8 * SAME_FIELDS)) + lp_int(ms_delta as i64) + lp_int(seq_delta);
        if !same {
            put_varint(&mut self.buf, n as u64);
            lp += lp_int(n as i64);
        }
        for (i, item) in fields.iter().enumerate() {
            if i % 2 == 1 || !same {
                put_bytes(&mut self.buf, item);
                lp += lp_str(item);
            }
        }
        // The entry's own element count, which lets Redis walk a listpack backwards.
        let elements = 3 + n + if same { 0 } else { n + 1 };
        lp += lp_int(elements as i64);
        self.lp_entries += lp as u32;
        self.live += 1;
    }

    /// The node as stored, for a snapshot ([`Node::from_raw`] reads it back).
    pub fn raw(&self) -> &[u8] {
        &self.buf
    }

    /// A node read back from [`Node::raw`]'s bytes, its counters and sizes recomputed; `None` if the
    /// bytes are not a well-formed node.
    pub fn from_raw(master: StreamId, buf: Vec<u8>) -> Option<Node> {
        let mut pos = 0;
        let master_fields = checked_varint(&buf, &mut pos)?;
        let mut names = Vec::new();
        for _ in 0..master_fields {
            names.push(Bytes::copy_from_slice(checked_bytes(&buf, &mut pos)?));
        }
        let mut rebuilt = Node {
            buf: buf[..pos].to_vec(),
            entries_at: pos as u32,
            master_fields: master_fields as u32,
            lp_master_fields: names.iter().map(|n| lp_str(n)).sum::<usize>() as u32,
            live: 0,
            deleted: 0,
            lp_entries: 0,
        };
        while pos < buf.len() {
            let flags = buf[pos];
            pos += 1;
            // The first entry is always written against the master's names (`push`); one that is not
            // would be pushed as if it were and leave a buffer its own walk cannot read.
            if rebuilt.stored() == 0 && flags & SAME_FIELDS == 0 {
                return None;
            }
            let ms = master.ms.wrapping_add(checked_varint(&buf, &mut pos)?);
            let seq = master.seq.wrapping_add(unzigzag(checked_varint(&buf, &mut pos)?) as u64);
            let mut fields = Vec::new();
            if flags & SAME_FIELDS != 0 {
                for name in &names {
                    fields.push(name.clone());
                    fields.push(Bytes::copy_from_slice(checked_bytes(&buf, &mut pos)?));
                }
            } else {
                for _ in 0..checked_varint(&buf, &mut pos)? * 2 {
                    fields.push(Bytes::copy_from_slice(checked_bytes(&buf, &mut pos)?));
                }
            }
            rebuilt.push(master, StreamId::new(ms, seq), &fields);
            if flags & DELETED != 0 {
                let slot = rebuilt.slots(master).last()?;
                rebuilt.mark_deleted(&slot);
            }
        }
        // Only the bytes this code writes are accepted: the rebuilt node must be the same.
        if rebuilt.buf != buf || rebuilt.stored() == 0 {
            return None;
        }
        rebuilt.buf.shrink_to_fit();
        Some(rebuilt)
    }

    /// Makes room for an entry of `fields` (at most its own size, plus headers), growing the buffer
    /// fourfold when it must grow.
    fn reserve(&mut self, fields: &[Bytes]) {
        let needed = fields.iter().map(|f| f.len() + 10).sum::<usize>() + 30;
        if self.buf.capacity() - self.buf.len() < needed {
            self.buf.reserve((self.buf.capacity() * 3).max(needed));
        }
    }

    /// Gives back spare capacity once the node is full (the stream moved on to a new one).
    pub fn seal(&mut self) {
        self.buf.shrink_to_fit();
    }

    /// What the node's buffer costs the allocator.
    pub fn memory(&self) -> usize {
        crate::engine::memory::chunk(self.buf.capacity())
    }

    /// The entry starting at `pos`, and where the next one starts.
    fn slot_at(&self, master: StreamId, pos: usize) -> Option<(Slot, usize)> {
        if pos >= self.buf.len() {
            return None;
        }
        let flags = self.buf[pos];
        let mut p = pos + 1;
        let ms = master.ms.wrapping_add(get_varint(&self.buf, &mut p));
        let seq = master.seq.wrapping_add(unzigzag(get_varint(&self.buf, &mut p)) as u64);
        let same = flags & SAME_FIELDS != 0;
        let body_at = p;
        let n = if same { self.master_fields as u64 } else { get_varint(&self.buf, &mut p) };
        let items = if same { n } else { n * 2 };
        for _ in 0..items {
            let len = get_varint(&self.buf, &mut p) as usize;
            p += len;
        }
        let slot = Slot { id: StreamId::new(ms, seq), deleted: flags & DELETED != 0, flags_at: pos, body_at, same };
        Some((slot, p))
    }

    /// Every entry, tombstones included, in ID order.
    pub fn slots(&self, master: StreamId) -> impl Iterator<Item = Slot> + '_ {
        let mut pos = self.entries_at as usize;
        std::iter::from_fn(move || {
            let (slot, next) = self.slot_at(master, pos)?;
            pos = next;
            Some(slot)
        })
    }

    /// The last entry's ID (tombstone or not): what MINID trimming compares whole nodes by.
    pub fn last_id(&self, master: StreamId) -> StreamId {
        self.slots(master).last().map_or(master, |s| s.id)
    }

    /// The master field names (the node's first entry's).
    pub fn master_names(&self) -> Vec<Bytes> {
        let mut pos = 0;
        let n = get_varint(&self.buf, &mut pos);
        (0..n).map(|_| Bytes::copy_from_slice(get_bytes(&self.buf, &mut pos))).collect()
    }

    /// An entry's fields and values, flat (`[f1, v1, f2, v2...]`).
    pub fn fields(&self, slot: &Slot) -> Vec<Bytes> {
        let mut p = slot.body_at;
        let mut out;
        if slot.same {
            out = Vec::with_capacity(self.master_fields as usize * 2);
            let mut names = 0;
            get_varint(&self.buf, &mut names);
            for _ in 0..self.master_fields {
                out.push(Bytes::copy_from_slice(get_bytes(&self.buf, &mut names)));
                out.push(Bytes::copy_from_slice(get_bytes(&self.buf, &mut p)));
            }
        } else {
            let n = get_varint(&self.buf, &mut p) as usize;
            out = Vec::with_capacity(n * 2);
            for _ in 0..n * 2 {
                out.push(Bytes::copy_from_slice(get_bytes(&self.buf, &mut p)));
            }
        }
        out
    }

    /// Marks an entry deleted (its bytes stay until the node goes).
    pub fn mark_deleted(&mut self, slot: &Slot) {
        debug_assert!(!slot.deleted);
        self.buf[slot.flags_at] |= DELETED;
        self.live -= 1;
        self.deleted += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(items: &[&str]) -> Vec<Bytes> {
        items.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn entries_round_trip_with_and_without_master_fields() {
        let m = StreamId::new(5, 9);
        let mut node = Node::new(m, &b(&["a", "1", "b", "2"]));
        node.push(m, StreamId::new(6, 0), &b(&["a", "x", "b", "y"]));
        node.push(m, StreamId::new(6, 1), &b(&["other", "z"]));
        let slots: Vec<Slot> = node.slots(m).collect();
        assert_eq!(slots.iter().map(|s| s.id).collect::<Vec<_>>(), [m, StreamId::new(6, 0), StreamId::new(6, 1)]);
        assert!(slots[1].same && !slots[2].same);
        assert_eq!(node.fields(&slots[1]), b(&["a", "x", "b", "y"]));
        assert_eq!(node.fields(&slots[2]), b(&["other", "z"]));
        node.mark_deleted(&slots[1]);
        assert_eq!((node.live, node.deleted), (2, 1));
        assert_eq!(Node::from_raw(m, node.raw().to_vec()), Some(node.clone()), "a node reads back from its bytes");
        assert_eq!(Node::from_raw(m, node.raw()[..node.raw().len() - 1].to_vec()), None);
        assert!(node.slots(m).nth(1).unwrap().deleted);
        assert_eq!(node.last_id(m), StreamId::new(6, 1));
    }

    #[test]
    fn listpack_sizes_follow_redis() {
        // XADD s 1-1 f v: header 6+1, master [1, 0, 1, "f", 0] = 2+2+2+3+2, entry [2, 0, 0, "v", 4] = 2+2+2+3+2.
        let node = Node::new(StreamId::new(1, 1), &b(&["f", "v"]));
        assert_eq!(node.lp_bytes(), 7 + 11 + 11);
        assert_eq!(lp_str(b"12345"), 4, "an integer-looking value is stored as an integer");
        assert_eq!(lp_str(&[b'x'; 64]), 2 + 64 + 1);
        assert_eq!(lp_str(&[b'x'; 200]), 2 + 200 + 2);
    }
}
