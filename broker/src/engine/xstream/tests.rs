use bytes::Bytes;

use super::*;

fn id(ms: u64, seq: u64) -> StreamId {
    StreamId::new(ms, seq)
}

fn fv(v: &str) -> Vec<Bytes> {
    vec![Bytes::from_static(b"f"), Bytes::copy_from_slice(v.as_bytes())]
}

/// A stream of entries `1-0 .. n-0` with field `f`.
fn filled(n: u64) -> XStream {
    let mut s = XStream::default();
    for i in 1..=n {
        s.append(id(i, 0), &fv(&i.to_string()));
    }
    s
}

fn ids(entries: &[XEntry]) -> Vec<StreamId> {
    entries.iter().map(|(id, _)| *id).collect()
}

#[test]
fn ids_follow_redis_rules() {
    let mut s = XStream::default();
    assert_eq!(s.next_id(None, 1000), Ok(id(1000, 0)));
    s.append(id(1000, 0), &fv("a"));
    assert_eq!(s.next_id(None, 1000), Ok(id(1000, 1)), "same millisecond: next sequence");
    assert_eq!(s.next_id(None, 900), Ok(id(1000, 1)), "clock behind: keep the last ms, bump the sequence");
    assert_eq!(s.next_id(Some(AddId::Ms(1000)), 0), Ok(id(1000, 1)));
    assert_eq!(s.next_id(Some(AddId::Ms(999)), 0), Err(NoId::NotAbove));
    assert_eq!(s.next_id(Some(AddId::Ms(2000)), 0), Ok(id(2000, 0)));
    assert_eq!(s.next_id(Some(AddId::Explicit(id(1000, 0))), 0), Err(NoId::NotAbove), "equal to the top item");
    s.last_id = id(5, u64::MAX);
    assert_eq!(s.next_id(Some(AddId::Ms(5)), 0), Err(NoId::TooLarge), "the sequence cannot overflow within a millisecond");
    assert_eq!(s.next_id(None, 0), Ok(id(6, 0)));
    s.last_id = StreamId::MAX;
    assert_eq!(s.next_id(None, 0), Err(NoId::Exhausted));
}

#[test]
fn nodes_split_where_redis_splits_them() {
    let s = filled(250);
    assert_eq!(s.node_count(), 3, "100 entries per node");
    let mut big = XStream::default();
    let value = "x".repeat(1000);
    for i in 1..=10 {
        big.append(id(i, 0), &fv(&value));
    }
    // Redis opens a node when the listpack plus the new entry's strings would reach 4096 bytes: four
    // 1000-byte entries per node (redis-server 7.0 reports 3 radix-tree keys for these 10).
    assert_eq!(big.node_count(), 3);
    assert_eq!(XStream::default().radix_nodes(), 1);
    assert_eq!(filled(1).radix_nodes(), 2);
}

#[test]
fn ranges_cross_nodes_both_ways() {
    let s = filled(250);
    assert_eq!(ids(&s.range(id(99, 0), id(102, 0), 0, false)), [id(99, 0), id(100, 0), id(101, 0), id(102, 0)]);
    assert_eq!(ids(&s.range(id(99, 0), id(250, 0), 2, true)), [id(250, 0), id(249, 0)]);
    assert_eq!(ids(&s.range(id(0, 5), id(1, 0), 0, true)), [id(1, 0)]);
    assert!(s.range(id(5, 0), id(4, 0), 0, false).is_empty());
    assert_eq!(s.get(id(150, 0)), Some(fv("150")));
    assert_eq!(s.first_entry().map(|e| e.0), Some(id(1, 0)));
    assert_eq!(s.last_entry().map(|e| e.0), Some(id(250, 0)));
}

#[test]
fn deletions_leave_tombstones_and_empty_nodes_go() {
    let mut s = filled(150);
    assert!(s.delete(id(1, 0)));
    assert!(!s.delete(id(1, 0)));
    assert_eq!((s.len(), s.first_id, s.max_deleted), (149, id(2, 0), id(1, 0)));
    for i in 101..=150 {
        s.delete(id(i, 0));
    }
    assert_eq!(s.node_count(), 1, "the node whose last live entry went is gone");
    assert_eq!(s.last_valid_id(), id(100, 0));
    assert_eq!(s.last_id, id(150, 0), "the last ID does not move back");
    assert_eq!(ids(&s.range(StreamId::MIN, StreamId::MAX, 2, true)), [id(100, 0), id(99, 0)]);
}

#[test]
fn trimming_exact_approximate_and_limited() {
    let exact = Trim { max_len: Some(120), min_id: None, approx: false, limit: 0 };
    let mut s = filled(250);
    assert_eq!(s.trim(&exact), Some(Trimmed { removed: 130, through: id(130, 0) }));
    assert_eq!((s.len(), s.first_id), (120, id(131, 0)));

    let approx = Trim { approx: true, ..exact };
    let mut s = filled(250);
    assert_eq!(s.trim(&approx).map(|t| t.removed), Some(100), "only whole nodes: 150 remain");
    assert_eq!(s.len(), 150);

    let limited = Trim { max_len: Some(0), min_id: None, approx: true, limit: 150 };
    let mut s = filled(250);
    assert_eq!(s.trim(&limited).map(|t| t.removed), Some(100), "a second node would pass the limit");

    let min_id = Trim { max_len: None, min_id: Some(id(150, 0)), approx: false, limit: 0 };
    let mut s = filled(250);
    assert_eq!(s.trim(&min_id).map(|t| t.removed), Some(149));
    assert_eq!(s.first_id, id(150, 0));
    assert_eq!(s.trim(&min_id), None, "nothing more to trim");
}

#[test]
fn replayed_trims_match() {
    let mut s = filled(250);
    s.delete(id(205, 0));
    for trim in [
        Trim { max_len: Some(180), min_id: None, approx: false, limit: 0 },
        Trim { max_len: None, min_id: Some(id(210, 0)), approx: true, limit: 0 },
        Trim { max_len: None, min_id: Some(id(230, 0)), approx: false, limit: 0 },
    ] {
        let mut replay = s.clone();
        let trimmed = s.trim(&trim).expect("trims something");
        replay.trim_through(trimmed.through);
        assert_eq!(replay, s);
    }
}

#[test]
fn groups_deliver_track_and_count_reads() {
    let mut s = filled(5);
    assert!(s.create_group(b"g", StreamId::MIN, Some(0)));
    assert!(!s.create_group(b"g", StreamId::MIN, None));
    let (alice, _) = s.group_mut(b"g").unwrap().consumer(b"alice", 10);
    let read = s.read_new(b"g", &alice, 2, false, 20);
    assert_eq!(read.entries.len(), 2);
    assert!(read.advanced);
    let g = s.group(b"g").unwrap();
    assert_eq!((g.last_id, g.entries_read, g.pel.len()), (id(2, 0), Some(2), 2));
    assert_eq!(s.lag(s.group(b"g").unwrap()), Some(3));

    let history = s.read_history(b"g", b"alice", StreamId::MIN, 0, 30);
    assert_eq!(history.deliveries, [(id(1, 0), 30, 2), (id(2, 0), 30, 2)]);
    s.delete(id(2, 0));
    let history = s.read_history(b"g", b"alice", StreamId::MIN, 0, 40);
    assert_eq!(history.entries[1], (id(2, 0), None), "a deleted pending entry reads as nil");
    assert!(s.group_mut(b"g").unwrap().ack(id(1, 0)));
    assert_eq!(s.group(b"g").unwrap().consumers[&alice].pending.len(), 1);

    // The tombstone at 2-0 lies behind the group: the counter stays exact.
    let (bob, _) = s.group_mut(b"g").unwrap().consumer(b"bob", 50);
    s.read_new(b"g", &bob, 0, true, 50);
    let g = s.group(b"g").unwrap();
    assert_eq!((g.last_id, g.entries_read, g.pel.len()), (id(5, 0), Some(5), 1), "NOACK reads leave no pending entry");
    assert_eq!(s.lag(g), Some(0));
    assert_eq!(s.group_mut(b"g").unwrap().delete_consumer(b"alice"), Some(1));
    assert!(s.group(b"g").unwrap().pel.is_empty());
}
