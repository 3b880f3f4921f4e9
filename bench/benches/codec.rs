//! RESP codec: decoding pipelined requests and encoding replies, per request.

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use herald_protocol::command::parse_request;
use herald_protocol::resp::{Protocol, encode};
use herald_protocol::{DecodeLimits, Reply, RequestDecoder};

fn pipeline(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let key = format!("key:{i:012}");
        out.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$100\r\n{}\r\n", key.len(), "x".repeat(100)).as_bytes());
    }
    out
}

fn decode(c: &mut Criterion) {
    let input = pipeline(16);
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(16));
    group.bench_function("herald: 16 pipelined SETs -> Request", |b| {
        let mut decoder = RequestDecoder::new(DecodeLimits::default());
        b.iter(|| {
            let mut buf = BytesMut::from(&input[..]);
            let mut n = 0;
            while let Some(req) = decoder.decode(&mut buf).unwrap() {
                n += req.len();
            }
            n
        })
    });
    group.bench_function("herald: 16 pipelined SETs -> typed Command", |b| {
        let mut decoder = RequestDecoder::new(DecodeLimits::default());
        b.iter(|| {
            let mut buf = BytesMut::from(&input[..]);
            let mut n = 0;
            while let Some(req) = decoder.decode(&mut buf).unwrap() {
                n += parse_request(req).is_ok() as usize;
            }
            n
        })
    });
    group.bench_function("redis-protocol alone: 16 frames (no limits, no typing)", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&input[..]);
            let mut n = 0;
            while let Some((frame, _, _)) = redis_protocol::resp2::decode::decode_bytes_mut(&mut buf).unwrap() {
                n += matches!(frame, redis_protocol::resp2::types::BytesFrame::Array(_)) as usize;
            }
            n
        })
    });
    group.finish();
}

fn encode_replies(c: &mut Criterion) {
    let value = Reply::Bulk(Bytes::from(vec![b'x'; 100]));
    let array = Reply::Array((0..10).map(|i| Reply::Bulk(Bytes::from(format!("value-{i}")))).collect());
    let map = Reply::fields(vec![("server", Reply::text("redis")), ("proto", Reply::Int(3)), ("id", Reply::Int(7))]);
    let mut group = c.benchmark_group("encode");
    for (name, reply) in [("+OK", Reply::ok()), ("100-byte bulk", value), ("array of 10 bulks", array), ("3-field map", map)] {
        for proto in [Protocol::Resp2, Protocol::Resp3] {
            group.bench_function(format!("{name} {proto:?}"), |b| {
                let mut out = BytesMut::with_capacity(4096);
                b.iter(|| {
                    out.clear();
                    encode(&reply, proto, &mut out);
                    out.len()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, decode, encode_replies);
criterion_main!(benches);
