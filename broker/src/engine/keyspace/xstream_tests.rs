//! Stream operations through the keyspace: Redis's order of checks, and the typed changes they emit
//! replaying into an identical stream (what the persistence log relies on).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::test_support::keyspace;
use super::*;
use crate::engine::change::{Change, ChangeSink, KeyEffect};
use crate::engine::xstream::{AddId, StreamId, Trim, XStream};

fn b(items: &[&str]) -> Vec<Bytes> {
    items.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
}

fn id(ms: u64, seq: u64) -> StreamId {
    StreamId::new(ms, seq)
}

fn add(ks: &mut Keyspace, key: &[u8], id: Option<AddId>, trim: Option<Trim>, now: u64) -> Result<Option<StreamId>, Error> {
    let fields = b(&["f", "v"]);
    ks.xadd(0, key, XAddArgs { id, no_mkstream: false, trim, fields: &fields }, now)
}

fn at<'a>(raw: &'a [u8]) -> GroupPosition<'a> {
    GroupPosition { raw_id: raw, entries_read: None, excess: None }
}

/// Applies every stream change it sees to streams of its own.
#[derive(Default)]
struct Shadow(Mutex<HashMap<Vec<u8>, XStream>>);

impl ChangeSink for Shadow {
    fn emit(&self, change: &Change<'_>) {
        let Change::Key(k) = change else { return };
        let mut streams = self.0.lock().unwrap();
        match &k.effect {
            KeyEffect::XStream(effect) => streams.entry(k.key.to_vec()).or_default().apply(effect),
            KeyEffect::Removed => {
                streams.remove(k.key);
            }
            _ => {}
        }
    }

    fn listening(&self) -> bool {
        false
    }
}

fn stream(ks: &Keyspace, key: &[u8]) -> XStream {
    match &ks.db(0).get(key).expect("the stream exists").value {
        Value::XStream(s) => (**s).clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_change_replays_into_the_same_stream() {
    let shadow = Arc::new(Shadow::default());
    let mut ks = keyspace();
    ks.sink = shadow.clone();
    let maxlen = |n, approx| Some(Trim { max_len: Some(n), min_id: None, approx, limit: if approx { 10_000 } else { 0 } });
    for i in 0..330u64 {
        // The clock stalls and goes back now and then: IDs keep growing all the same.
        let now = 1_000 + i / 3 - (i % 7 == 0) as u64 * 5;
        add(&mut ks, b"s", None, if i % 50 == 49 { maxlen(200, true) } else { None }, now).unwrap();
    }
    add(&mut ks, b"s", Some(AddId::Ms(5_000)), maxlen(250, false), 2_000).unwrap();
    let ids: Vec<StreamId> =
        ks.xrange(0, b"s", (StreamId::MIN, StreamId::MAX), 0, false, 2_000).unwrap().unwrap().into_iter().map(|e| e.0).collect();
    let raw: Vec<Bytes> = ids.iter().step_by(9).map(|i| Bytes::from(i.to_string())).collect();
    assert!(ks.xdel(0, b"s", &raw, 2_000).unwrap() > 20);
    ks.xtrim(0, b"s", &Trim { max_len: None, min_id: Some(ids[40]), approx: false, limit: 0 }, 2_001).unwrap();

    ks.xgroup_create(0, b"s", b"g", at(b"0"), false, 3_000).unwrap();
    ks.xgroup_create(0, b"s", b"h", at(b"$"), false, 3_000).unwrap();
    let keys = b(&["s"]);
    let new = [GroupReadId::New];
    ks.xreadgroup(0, b"g", b"alice", &keys, &new, 30, false, false, 3_100).unwrap();
    ks.xreadgroup(0, b"g", b"bob", &keys, &new, 30, false, false, 3_200).unwrap();
    ks.xreadgroup(0, b"g", b"carol", &keys, &new, 10, true, false, 3_300).unwrap();
    ks.xreadgroup(0, b"g", b"alice", &keys, &[GroupReadId::After(StreamId::MIN)], 5, false, false, 3_400).unwrap();
    let acks: Vec<Bytes> = ids[41..60].iter().map(|i| Bytes::from(i.to_string())).collect();
    ks.xack(0, b"s", b"g", &acks, 3_500).unwrap();
    let claim = ClaimSpec {
        min_idle: 0,
        ids: ids[60..70].to_vec(),
        time: Some(ClaimTime::Idle(50)),
        retry_count: Some(7),
        force: true,
        just_id: false,
        last_id: Some(id(9_999, 0)),
    };
    ks.xclaim(0, b"s", b"g", b"dave", Ok(claim), 3_600).unwrap();
    let more: Vec<Bytes> = ids[61..80].iter().step_by(2).map(|i| Bytes::from(i.to_string())).collect();
    ks.xdel(0, b"s", &more, 3_650).unwrap();
    let claimed = ks.xautoclaim(0, b"s", b"g", b"erin", 10, StreamId::MIN, 25, false, 3_700).unwrap();
    assert!(!claimed.deleted.is_empty(), "pending entries of deleted IDs leave the PEL");
    ks.xgroup_create_consumer(0, b"s", b"g", b"frank", 3_800).unwrap();
    ks.xgroup_del_consumer(0, b"s", b"g", b"bob", 3_800).unwrap();
    ks.xgroup_setid(0, b"s", b"h", GroupPosition { raw_id: b"-", entries_read: Some(3), excess: None }, 3_900).unwrap();
    ks.xgroup_create(0, b"s", b"gone", at(b"0"), false, 3_900).unwrap();
    ks.xgroup_destroy(0, b"s", b"gone", 3_900).unwrap();
    ks.xsetid(0, b"s", id(10_000, 0), Some(500), Some(id(9_000, 0)), 4_000).unwrap();
    ks.xgroup_create(0, b"fresh", b"g", at(b"$"), true, 4_100).unwrap();

    let shadow = shadow.0.lock().unwrap();
    assert_eq!(shadow[&b"s"[..]], stream(&ks, b"s"));
    assert_eq!(shadow[&b"fresh"[..]], stream(&ks, b"fresh"));
}

#[test]
fn checks_come_in_redis_order() {
    let mut ks = keyspace();
    ks.mset(0, &[(Bytes::from_static(b"str"), Bytes::from_static(b"x"))], false, 0);
    assert_eq!(
        add(&mut ks, b"str", Some(AddId::Explicit(StreamId::MIN)), None, 0),
        Err(Error::fixed("ERR The ID specified in XADD must be greater than 0-0"))
    );
    assert_eq!(add(&mut ks, b"str", None, None, 0), Err(Error::wrong_type()));
    assert_eq!(ks.xdel(0, b"missing", &b(&["bad"]), 0), Ok(0), "no key: the IDs are not read");
    assert_eq!(ks.xdel(0, b"str", &b(&["bad"]), 0), Err(Error::wrong_type()));
    add(&mut ks, b"s", Some(AddId::Explicit(id(1, 1))), None, 0).unwrap();
    assert_eq!(ks.xack(0, b"s", b"nogroup", &b(&["bad"]), 0), Ok(0), "no group: the IDs are not read");
    let missing = ks.xgroup_setid(0, b"s", b"g", at(b"bad"), 0).unwrap_err();
    assert_eq!(missing.text(), "NOGROUP No such consumer group 'g' for key name 's'");
    let claim = ks.xclaim(0, b"s", b"g", b"c", Err(Error::fixed("ERR later")), 0).unwrap_err();
    assert!(claim.text().starts_with("NOGROUP No such key 's'"), "NOGROUP before the options: {claim:?}");
    ks.xgroup_create(0, b"s", b"g", at(b"0"), false, 0).unwrap();
    assert_eq!(ks.xclaim(0, b"s", b"g", b"c", Err(Error::fixed("ERR later")), 0), Err(Error::fixed("ERR later")));
    assert_eq!(ks.xgroup_create(0, b"s", b"g", at(b"0"), false, 0), Err(Error::fixed("BUSYGROUP Consumer Group name already exists")));
    assert_eq!(ks.type_of(0, b"s", 0), "stream");
    assert_eq!(ks.object(0, b"s", 0).map(|o| o.0), Some("stream"));
}
