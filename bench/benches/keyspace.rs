//! The keyspace engine in-process (no sockets): what one SET or GET costs under the state lock.

use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use herald_broker::engine::change::Discard;
use herald_broker::engine::keyspace::strings::{SetArgs, SetCondition};
use herald_broker::engine::keyspace::{BlackboardSettings, Keyspace, KeyspaceSettings};

fn keyspace() -> Keyspace {
    let settings = KeyspaceSettings {
        databases: 16,
        max_string_len: 512 << 20,
        blackboard: BlackboardSettings { max_scopes: 100, journal_max_entries: 10_000, journal_max_bytes: 16 << 20 },
    };
    Keyspace::new(settings, Arc::new(Discard), 0)
}

fn set_get(c: &mut Criterion) {
    let mut ks = keyspace();
    let keys: Vec<Bytes> = (0..100_000).map(|i| Bytes::from(format!("key:{i:012}"))).collect();
    let value = Bytes::from(vec![b'x'; 100]);
    let mut i = 0;
    c.bench_function("keyspace SET (100k keys, 100-byte values)", |b| {
        b.iter(|| {
            let args = SetArgs {
                key: keys[i % keys.len()].clone(),
                value: value.clone(),
                condition: SetCondition::Always,
                get: false,
                expiry: None,
                keep_ttl: false,
            };
            i += 1;
            ks.set(0, &args, 1).unwrap()
        })
    });
    c.bench_function("keyspace GET (hit)", |b| {
        b.iter(|| {
            i += 1;
            ks.get(0, &keys[i % keys.len()], 1).unwrap()
        })
    });
    c.bench_function("keyspace INCR", |b| b.iter(|| ks.incr_by(0, b"counter", 1, 1).unwrap()));
}

/// HSET, SADD and ZADD on one key of 100,000 fields or members (redis-benchmark -r 100000), and
/// ZPOPMIN + ZADD on it: what one command costs in the engine beside SET.
fn collections(c: &mut Criterion) {
    use herald_broker::engine::keyspace::zsets::ZaddFlags;
    let mut ks = keyspace();
    let members: Vec<Bytes> = (0..100_000).map(|i| Bytes::from(format!("element:{i:012}"))).collect();
    let value = Bytes::from_static(b"xxx");
    let mut i = 0usize;
    let mut next = move || {
        i = (i + 7919) % 100_000;
        i
    };
    for m in &members {
        ks.hset(0, b"h", &[(m.clone(), value.clone())], 1).unwrap();
        ks.sadd(0, b"s", std::slice::from_ref(m), 1).unwrap();
        ks.zadd(0, b"z", ZaddFlags::default(), &[(0.0, m.clone())], 1).unwrap();
    }
    c.bench_function("HSET (existing field of 100k)", |b| {
        b.iter(|| ks.hset(0, b"h", &[(members[next()].clone(), value.clone())], 1).unwrap())
    });
    c.bench_function("SADD (existing member of 100k)", |b| b.iter(|| ks.sadd(0, b"s", std::slice::from_ref(&members[next()]), 1).unwrap()));
    c.bench_function("ZADD (existing member of 100k, new score)", |b| {
        b.iter(|| {
            let n = next();
            ks.zadd(0, b"z", ZaddFlags::default(), &[(n as f64, members[n].clone())], 1).unwrap()
        })
    });
    c.bench_function("ZPOPMIN + ZADD (100k)", |b| {
        b.iter(|| {
            let (_, popped) = ks.zpop(0, &[Bytes::from_static(b"z")], false, 1, false, 1).unwrap().unwrap();
            ks.zadd(0, b"z", ZaddFlags::default(), &[(1e9, popped[0].0.clone())], 1).unwrap()
        })
    });
}

criterion_group!(benches, set_get, collections);
criterion_main!(benches);
