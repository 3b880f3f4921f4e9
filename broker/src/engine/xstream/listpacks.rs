//! A stream's nodes as Redis 7.0 serializes them (DUMP, RESTORE): each node one listpack whose
//! elements are the master entry (live count, deleted count, the master field names, a 0
//! terminator), then every entry, tombstones included: flags, the ID as deltas from the node's key,
//! the field count and names unless they are the master's (`SAMEFIELDS`), the values, and the
//! entry's element count (so Redis can walk a listpack backwards).
//!
//! Elements are given as text (an integer element as its decimal text, as the listpack writer reads
//! them back into integers), so this file knows Redis's layout and nothing of the listpack bytes.

use bytes::Bytes;
use herald_protocol::number::parse_i64;

use super::node::{DELETED, Node, SAME_FIELDS};
use super::{Group, StreamId, XStream};

fn int(v: i64) -> Vec<u8> {
    v.to_string().into_bytes()
}

impl Node {
    /// The elements of Redis's listpack for this node, whose key is `master`.
    fn listpack_elements(&self, master: StreamId) -> Vec<Vec<u8>> {
        let names = self.master_names();
        let mut out = vec![int(i64::from(self.live)), int(i64::from(self.deleted)), int(names.len() as i64)];
        out.extend(names.iter().map(|n| n.to_vec()));
        out.push(int(0));
        for slot in self.slots(master) {
            let flags = if slot.deleted { DELETED } else { 0 } | if slot.same { SAME_FIELDS } else { 0 };
            out.push(int(i64::from(flags)));
            out.push(int(slot.id.ms.wrapping_sub(master.ms) as i64));
            out.push(int(slot.id.seq.wrapping_sub(master.seq) as i64));
            let fields = self.fields(&slot);
            let n = fields.len() / 2;
            if slot.same {
                out.extend(fields.iter().skip(1).step_by(2).map(|v| v.to_vec()));
            } else {
                out.push(int(n as i64));
                out.extend(fields.iter().map(|f| f.to_vec()));
            }
            out.push(int((3 + n + if slot.same { 0 } else { n + 1 }) as i64));
        }
        out
    }

    /// A node rebuilt from Redis's listpack elements; `None` unless they are exactly what Redis
    /// writes for the entries they hold (counts, flags, element counts), the first entry at `master`.
    fn from_listpack_elements(master: StreamId, elements: &[Vec<u8>]) -> Option<Node> {
        let mut it = elements.iter();
        let mut next_int = || parse_i64(it.next()?);
        let (_live, _deleted, n_names) = (next_int()?, next_int()?, usize::try_from(next_int()?).ok()?);
        let names: Vec<Bytes> = elements.get(3..3 + n_names)?.iter().map(|n| Bytes::copy_from_slice(n)).collect();
        let mut it = elements.get(3 + n_names..)?.iter();
        if parse_i64(it.next()?)? != 0 {
            return None;
        }
        let mut node: Option<Node> = None;
        while let Some(flags) = it.next() {
            let flags = u8::try_from(parse_i64(flags)?).ok()?;
            let ms = master.ms.wrapping_add(parse_i64(it.next()?)? as u64);
            let seq = master.seq.wrapping_add(parse_i64(it.next()?)? as u64);
            let id = StreamId::new(ms, seq);
            let fields: Vec<Bytes> = if flags & SAME_FIELDS != 0 {
                names.iter().flat_map(|name| [Some(name.clone()), it.next().map(|v| Bytes::copy_from_slice(v))]).collect::<Option<_>>()?
            } else {
                let n = usize::try_from(parse_i64(it.next()?)?).ok()?;
                (0..n * 2).map(|_| it.next().map(|v| Bytes::copy_from_slice(v))).collect::<Option<_>>()?
            };
            it.next()?;
            match &mut node {
                None if id == master => node = Some(Node::new(id, &fields)),
                Some(n) if n.last_id(master) < id => n.push(master, id, &fields),
                _ => return None,
            }
            let n = node.as_mut()?;
            if flags & DELETED != 0 {
                let slot = n.slots(master).last()?;
                n.mark_deleted(&slot);
            }
        }
        // Only what Redis writes is accepted: the node written back must be the same elements.
        node.filter(|n| n.listpack_elements(master) == elements)
    }
}

/// A stream's counters as Redis 7.0 serializes them beside its nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub len: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted: StreamId,
    pub entries_added: u64,
}

impl XStream {
    /// Each node's key and the elements of Redis's listpack for it, in ID order.
    pub fn listpack_nodes(&self) -> impl Iterator<Item = (StreamId, Vec<Vec<u8>>)> + '_ {
        self.nodes.iter().map(|(master, node)| (*master, node.listpack_elements(*master)))
    }

    pub fn counters(&self) -> Counters {
        Counters {
            len: self.len,
            last_id: self.last_id,
            first_id: self.first_id,
            max_deleted: self.max_deleted,
            entries_added: self.entries_added,
        }
    }

    /// A stream from Redis's serialized nodes, counters and groups; `None` if a node is malformed,
    /// the nodes are out of order, or the length disagrees with the entries.
    pub fn from_listpack_nodes(nodes: Vec<(StreamId, Vec<Vec<u8>>)>, counters: Counters, groups: Vec<(Bytes, Group)>) -> Option<XStream> {
        let nodes = nodes.into_iter().map(|(master, elements)| Some((master, Node::from_listpack_elements(master, &elements)?)));
        let s = XStream::assemble(nodes, counters, groups)?;
        (s.len == counters.len).then_some(s)
    }
}
