//! Strings through a real client: values, options, counters, ranges, errors.

mod common;

use common::{cmd, start};
use redis::Value;

#[tokio::test]
async fn set_get_and_options() {
    let server = start().await;
    let mut c = server.conn().await;
    let ok: String = cmd(&mut c, &["SET", "k", "v"]).await.unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(cmd::<String>(&mut c, &["GET", "k"]).await.unwrap(), "v");
    assert_eq!(cmd::<Option<String>>(&mut c, &["GET", "missing"]).await.unwrap(), None);
    assert_eq!(cmd::<Option<String>>(&mut c, &["SET", "k", "w", "NX"]).await.unwrap(), None);
    assert_eq!(cmd::<String>(&mut c, &["SET", "k", "w", "XX", "GET"]).await.unwrap(), "v");
    assert_eq!(cmd::<String>(&mut c, &["SET", "k", "x", "EX", "100"]).await.unwrap(), "OK");
    assert_eq!(cmd::<i64>(&mut c, &["TTL", "k"]).await.unwrap(), 100);
    assert_eq!(cmd::<String>(&mut c, &["SET", "k", "y", "KEEPTTL"]).await.unwrap(), "OK");
    assert_eq!(cmd::<i64>(&mut c, &["TTL", "k"]).await.unwrap(), 100);
    let err = cmd::<String>(&mut c, &["SET", "k", "v", "EX", "0"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("invalid expire time in 'set' command"));
    let err = cmd::<String>(&mut c, &["SET", "k", "v", "NX", "XX"]).await.unwrap_err();
    assert_eq!(err.code(), Some("ERR"));
    assert_eq!(err.detail(), Some("syntax error"));
}

#[tokio::test]
async fn binary_safe_values() {
    let server = start().await;
    let mut c = server.conn().await;
    let value: Vec<u8> = (0..=255u8).collect();
    let _: () = redis::cmd("SET").arg("bin").arg(&value).query_async(&mut c).await.unwrap();
    let got: Vec<u8> = redis::cmd("GET").arg("bin").query_async(&mut c).await.unwrap();
    assert_eq!(got, value);
}

#[tokio::test]
async fn counters_and_ranges() {
    let server = start().await;
    let mut c = server.conn().await;
    assert_eq!(cmd::<i64>(&mut c, &["INCR", "n"]).await.unwrap(), 1);
    assert_eq!(cmd::<i64>(&mut c, &["INCRBY", "n", "41"]).await.unwrap(), 42);
    assert_eq!(cmd::<i64>(&mut c, &["DECRBY", "n", "2"]).await.unwrap(), 40);
    assert_eq!(cmd::<String>(&mut c, &["INCRBYFLOAT", "f", "10.5"]).await.unwrap(), "10.5");
    let _: () = cmd(&mut c, &["SET", "s", "notanumber"]).await.unwrap();
    let err = cmd::<i64>(&mut c, &["INCR", "s"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("value is not an integer or out of range"));
    assert_eq!(cmd::<i64>(&mut c, &["APPEND", "s", "!"]).await.unwrap(), 11);
    assert_eq!(cmd::<String>(&mut c, &["GETRANGE", "s", "-4", "-1"]).await.unwrap(), "ber!");
    assert_eq!(cmd::<i64>(&mut c, &["SETRANGE", "pad", "2", "x"]).await.unwrap(), 3);
    let v: Vec<u8> = cmd(&mut c, &["GET", "pad"]).await.unwrap();
    assert_eq!(v, b"\0\0x");
    let _: () = cmd(&mut c, &["MSET", "a", "1", "b", "2"]).await.unwrap();
    let got: Vec<Option<String>> = cmd(&mut c, &["MGET", "a", "nope", "b"]).await.unwrap();
    assert_eq!(got, vec![Some("1".into()), None, Some("2".into())]);
    assert_eq!(cmd::<i64>(&mut c, &["MSETNX", "a", "x", "z", "y"]).await.unwrap(), 0);
    let raw: Value = cmd(&mut c, &["GET", "z"]).await.unwrap();
    assert_eq!(raw, Value::Nil);
}
