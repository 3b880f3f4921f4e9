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

criterion_group!(benches, set_get);
criterion_main!(benches);
