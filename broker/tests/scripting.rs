//! Lua scripting through real clients: the `redis` crate's `Script` (EVALSHA, falling back to EVAL),
//! scripts that reach Herald's own domains, atomicity with blocked clients, -BUSY and SCRIPT KILL,
//! functions, and script writes surviving a restart.

mod common;

use std::time::Duration;

use common::{cmd, data_dir, start, start_persistent};
use redis::{Script, Value};

#[tokio::test]
async fn the_redis_crate_script_loads_and_reruns_by_sha() {
    let server = start().await;
    let mut c = server.conn().await;
    let incr = Script::new("return redis.call('INCR', KEYS[1])");
    let first: i64 = incr.key("counter").invoke_async(&mut c).await.unwrap();
    let second: i64 = incr.key("counter").invoke_async(&mut c).await.unwrap();
    assert_eq!((first, second), (1, 2));
    let exists: Vec<i64> = cmd(&mut c, &["SCRIPT", "EXISTS", incr.get_hash()]).await.unwrap();
    assert_eq!(exists, vec![1]);
    // After a flush the crate's EVALSHA meets NOSCRIPT and sends the body again.
    let _: () = cmd(&mut c, &["SCRIPT", "FLUSH"]).await.unwrap();
    let third: i64 = incr.key("counter").invoke_async(&mut c).await.unwrap();
    assert_eq!(third, 3);
}

#[tokio::test]
async fn one_script_sets_a_board_key_if_its_revision_matches_and_enqueues_a_job() {
    let server = start().await;
    let mut c = server.conn().await;
    let rev: i64 = cmd(&mut c, &["BB.SET", "orders", "o1", "pending"]).await.unwrap();
    let step = Script::new(
        r#"
        local cur = redis.call('BB.GET', 'orders', KEYS[1])
        local revision = cur[4]
        if tostring(revision) ~= ARGV[1] then return redis.error_reply('CONFLICT stale revision') end
        local rev = redis.call('BB.SET', 'orders', KEYS[1], 'paid', 'IFREV', ARGV[1])
        local id = redis.call('JOB.SUBMIT', 'ship', KEYS[1])
        return {rev, id}
        "#,
    );
    let (new_rev, id): (i64, String) = step.key("o1").arg(rev).invoke_async(&mut c).await.unwrap();
    assert_eq!(new_rev, rev + 1);
    assert!(!id.is_empty());
    let claimed: Value = cmd(&mut c, &["JOB.CLAIM", "ship"]).await.unwrap();
    assert!(format!("{claimed:?}").contains("o1"), "{claimed:?}");
    // The same revision again: the script refuses, nothing is enqueued.
    let err = step.key("o1").arg(rev).invoke_async::<Value>(&mut c).await.unwrap_err();
    assert_eq!(err.code(), Some("CONFLICT"));
    let none: Value = cmd(&mut c, &["JOB.CLAIM", "ship"]).await.unwrap();
    assert_eq!(none, Value::Nil);
}

#[tokio::test]
async fn blocked_clients_are_served_after_the_whole_script() {
    let server = start().await;
    let mut waiter = server.conn().await;
    let mut c = server.conn().await;
    let pop = tokio::spawn(async move { cmd::<Vec<String>>(&mut waiter, &["BLPOP", "l", "0"]).await.unwrap() });
    common::until_blocked(&server, 1).await;
    // Inside the script the list keeps both elements: the blocked client is served afterwards.
    let len: i64 = Script::new("redis.call('RPUSH', KEYS[1], 'a'); redis.call('RPUSH', KEYS[1], 'b'); return redis.call('LLEN', KEYS[1])")
        .key("l")
        .invoke_async(&mut c)
        .await
        .unwrap();
    assert_eq!(len, 2);
    assert_eq!(pop.await.unwrap(), vec!["l".to_owned(), "a".to_owned()]);
    let rest: Vec<String> = cmd(&mut c, &["LRANGE", "l", "0", "-1"]).await.unwrap();
    assert_eq!(rest, vec!["b".to_owned()]);
}

#[tokio::test]
async fn a_slow_script_answers_others_busy_until_script_kill_stops_it() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["CONFIG", "SET", "busy-reply-threshold", "50"]).await.unwrap();
    let mut runner = server.conn().await;
    let looping = tokio::spawn(async move { cmd::<Value>(&mut runner, &["EVAL", "while true do end", "0"]).await });
    let mut other = server.conn().await;
    let busy = loop {
        match cmd::<String>(&mut other, &["PING"]).await {
            Err(e) if e.code() == Some("BUSY") => break e,
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    assert!(busy.to_string().contains("SCRIPT KILL"), "{busy}");
    let _: () = cmd(&mut other, &["SCRIPT", "KILL"]).await.unwrap();
    let killed = looping.await.unwrap().unwrap_err();
    assert!(killed.to_string().contains("Script killed by user with SCRIPT KILL"), "{killed}");
    let pong: String = cmd(&mut other, &["PING"]).await.unwrap();
    assert_eq!(pong, "PONG");
    let not_busy = cmd::<()>(&mut other, &["SCRIPT", "KILL"]).await.unwrap_err();
    assert_eq!(not_busy.code(), Some("NOTBUSY"));
}

#[tokio::test]
async fn a_script_that_wrote_cannot_be_killed() {
    let server = start().await;
    let mut c = server.conn().await;
    let _: () = cmd(&mut c, &["CONFIG", "SET", "busy-reply-threshold", "50"]).await.unwrap();
    let mut runner = server.conn().await;
    // Writes, then spins for a while: a long but finite script.
    let body = "redis.call('SET', 'w', '1') local n = 0 while n < 30000000 do n = n + 1 end return n";
    let writing = tokio::spawn(async move { cmd::<i64>(&mut runner, &["EVAL", body, "0"]).await });
    let refused = loop {
        match cmd::<()>(&mut c, &["SCRIPT", "KILL"]).await {
            Err(e) if e.code() == Some("UNKILLABLE") => break e,
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    };
    assert!(refused.to_string().contains("already executed write commands"), "{refused}");
    assert_eq!(writing.await.unwrap().unwrap(), 30000000);
}

#[tokio::test]
async fn functions_load_list_and_call() {
    let server = start().await;
    let mut c = server.conn().await;
    let lib =
        "#!lua name=counters\nredis.register_function('bump', function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)";
    let name: String = cmd(&mut c, &["FUNCTION", "LOAD", lib]).await.unwrap();
    assert_eq!(name, "counters");
    let n: i64 = cmd(&mut c, &["FCALL", "bump", "1", "k", "5"]).await.unwrap();
    assert_eq!(n, 5);
    let ro = cmd::<i64>(&mut c, &["FCALL_RO", "bump", "1", "k", "5"]).await.unwrap_err();
    assert!(ro.to_string().contains("write flag"), "{ro}");
    let dump: Vec<u8> = cmd(&mut c, &["FUNCTION", "DUMP"]).await.unwrap();
    let _: () = cmd(&mut c, &["FUNCTION", "FLUSH"]).await.unwrap();
    let gone = cmd::<i64>(&mut c, &["FCALL", "bump", "1", "k", "1"]).await.unwrap_err();
    assert!(gone.to_string().contains("Function not found"), "{gone}");
    let _: () = redis::cmd("FUNCTION").arg("RESTORE").arg(dump).query_async(&mut c).await.unwrap();
    let n: i64 = cmd(&mut c, &["FCALL", "bump", "1", "k", "1"]).await.unwrap();
    assert_eq!(n, 6);
}

#[tokio::test]
async fn script_writes_and_functions_survive_a_restart() {
    let dir = data_dir("scripting");
    let server = start_persistent(&dir).await;
    let mut c = server.conn().await;
    let _: Value = Script::new("redis.call('SET', KEYS[1], ARGV[1]); redis.call('RPUSH', KEYS[2], ARGV[1])")
        .key("s")
        .key("l")
        .arg("v")
        .invoke_async(&mut c)
        .await
        .unwrap();
    let lib = "#!lua name=kept\nredis.register_function('hello', function() return 'hi' end)";
    let _: String = cmd(&mut c, &["FUNCTION", "LOAD", lib]).await.unwrap();
    server.stop().await;
    let server = start_persistent(&dir).await;
    let mut c = server.conn().await;
    let s: String = cmd(&mut c, &["GET", "s"]).await.unwrap();
    let l: Vec<String> = cmd(&mut c, &["LRANGE", "l", "0", "-1"]).await.unwrap();
    assert_eq!((s.as_str(), l), ("v", vec!["v".to_owned()]));
    let hi: String = cmd(&mut c, &["FCALL", "hello", "0"]).await.unwrap();
    assert_eq!(hi, "hi");
    // And from a snapshot.
    common::rewrite(&mut c).await;
    server.stop().await;
    let server = start_persistent(&dir).await;
    let mut c = server.conn().await;
    let hi: String = cmd(&mut c, &["FCALL", "hello", "0"]).await.unwrap();
    assert_eq!(hi, "hi");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// EVAL reuses its KEYS and ARGV tables between calls and replaces them every 1024 calls: across
/// that boundary, and whatever a script leaves in them, each call sees exactly its own arguments.
#[tokio::test]
async fn every_call_sees_only_its_own_keys_and_args_across_table_reuse() {
    let server = start().await;
    let mut c = server.conn().await;
    let probe = Script::new(
        "local n = 0; for _ in pairs(KEYS) do n = n + 1 end; for _ in pairs(ARGV) do n = n + 1 end
         local seen = {#KEYS, #ARGV, n, tostring(getmetatable(KEYS) == nil and getmetatable(ARGV) == nil)}
         for _, k in ipairs(KEYS) do table.insert(seen, k) end
         for _, a in ipairs(ARGV) do table.insert(seen, a) end
         KEYS.left = 'x'; KEYS[#KEYS + 3] = 'y'; table.insert(ARGV, 'z'); setmetatable(KEYS, {__index = KEYS})
         return seen",
    );
    for i in 0..1100usize {
        let (nkeys, nargs) = (i % 4, i % 3);
        let mut inv = probe.prepare_invoke();
        let keys: Vec<String> = (0..nkeys).map(|k| format!("k{i}-{k}")).collect();
        let args: Vec<String> = (0..nargs).map(|a| format!("a{i}-{a}")).collect();
        for k in &keys {
            inv.key(k);
        }
        for a in &args {
            inv.arg(a);
        }
        let seen: Vec<String> = inv.invoke_async(&mut c).await.unwrap();
        let mut expected = vec![nkeys.to_string(), nargs.to_string(), (nkeys + nargs).to_string(), "true".to_owned()];
        expected.extend(keys.into_iter().chain(args));
        assert_eq!(seen, expected, "call {i}");
    }
}
