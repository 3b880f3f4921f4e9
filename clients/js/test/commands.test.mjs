// Commands, replies, errors, binary values, pipelining and malformed input, against a real ctx.broker.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Herald, HeraldError, ConnectionError } from "../herald.js";
import { brokerAndClient } from "../testlib/broker.mjs";


const ctx = brokerAndClient();

test("commands and helpers answer like Redis", async () => {
  assert.equal(await ctx.h.ping(), "PONG");
  assert.equal(await ctx.h.set("greeting", "hello"), "OK");
  assert.equal(await ctx.h.get("greeting"), "hello");
  assert.equal(await ctx.h.get("missing"), null);
  assert.equal(await ctx.h.incr("counter"), 1);
  assert.equal(await ctx.h.call("INCRBY", "counter", 41), 42);
  assert.deepEqual(await ctx.h.call("MGET", "greeting", "missing", "counter"), ["hello", null, "42"]);
  assert.equal(await ctx.h.set("ttl", "x", "EX", 100), "OK");
  assert.equal(await ctx.h.call("TTL", "ttl"), 100);
  assert.equal(await ctx.h.del("greeting", "missing"), 1);
  assert.equal(await ctx.h.call("EXISTS", "greeting"), 0);
});

test("domain commands answer maps as objects", async () => {
  assert.equal(await ctx.h.call("BB.SET", "agents", "task", "analyze"), 1);
  const got = await ctx.h.call("BB.GET", "agents", "task");
  assert.equal(got.value, "analyze");
  assert.equal(got.revision, 1);
  assert.equal(got.ttl, -1);
  assert.equal(await ctx.h.call("STREAM.WRITE", "log", "first"), 0);
  const read = await ctx.h.call("STREAM.READ", "log", "FROM", 0);
  assert.deepEqual(read.entries, [[0, "first"]]);
  assert.equal(read.next, 1);
  assert.equal(read.closed, false);
});

test("discovery lists queues, boards, scopes, mailboxes and streams page by page", async () => {
  for (let i = 0; i < 12; i++) await ctx.h.call("JOB.SUBMIT", `disc-q${i}`, "p");
  await ctx.h.call("JOB.SUBMIT", "disc-mail", "a", "DELAY", 60000);
  const queues = await ctx.h.queues({ match: "disc-*", count: 5 });
  assert.equal(queues.length, 13);
  const mail = queues.find((q) => q.queue === "disc-mail");
  assert.deepEqual([mail.queued, mail.delayed, mail.running, mail.dead], [0, 1, 0, 0]);
  const page = await ctx.h.listPage("JOB.QUEUES", "0", { match: "disc-*", count: 5 });
  assert.equal(page.entries.length, 5);
  assert.notEqual(page.cursor, "0");

  await ctx.h.call("BL.PUBLISH", "disc-board", '{"n":1}', "SCOPE", "disc");
  assert.deepEqual((await ctx.h.boards({ scope: "disc" })).map((b) => [b.board, b.items, b.leased]), [["disc-board", 1, 0]]);
  await ctx.h.call("BB.SET", "disc-scope", "k", "v");
  const [scope] = await ctx.h.scopes({ match: "disc-*" });
  assert.deepEqual([scope.scope, scope.keys, scope.seq], ["disc-scope", 1, 1]);
  await ctx.h.call("MSG.SEND", "disc-dest", "t", "x");
  const [dest] = await ctx.h.dests({ match: "disc-*" });
  assert.deepEqual([dest.dest, dest.length, dest.topics], ["disc-dest", 1, { t: 1 }]);
  await ctx.h.call("STREAM.WRITE", "disc-stream", "x");
  const [stream] = await ctx.h.streams({ match: "disc-*" });
  assert.deepEqual([stream.stream, stream.length, stream.last, stream.closed], ["disc-stream", 1, 0, false]);
  await assert.rejects(ctx.h.listPage("JOB.QUEUES", "nope"), { code: "ERR" });
});

test("error replies reject with HeraldError carrying code and message", async () => {
  await ctx.h.call("RPUSH", "a-list", "x");
  await assert.rejects(ctx.h.get("a-list"), (e) => {
    assert.ok(e instanceof HeraldError);
    assert.equal(e.code, "WRONGTYPE");
    assert.equal(e.message, "Operation against a key holding the wrong kind of value");
    assert.deepEqual(e.command, ["GET", "a-list"]);
    return true;
  });
  await assert.rejects(ctx.h.call("NO-SUCH-COMMAND"), (e) => e.code === "ERR" && /unknown command/i.test(e.message));
  await assert.rejects(ctx.h.call("BB.SET", "agents", "task", "x", "IFREV", 7), { code: "CONFLICT" });
  // The connection carries on after errors.
  assert.equal(await ctx.h.ping("still here"), "still here");
});

test("bad arguments are refused by the client before sending", async () => {
  await assert.rejects(ctx.h.call("SET", "k", { a: 1 }), TypeError);
  await assert.rejects(ctx.h.call("SET", "k", null), TypeError);
  await assert.rejects(ctx.h.call("SET", "k", Number.NaN), TypeError);
  await assert.rejects(ctx.h.call(), TypeError);
});

test("binary values round-trip as Uint8Array; numbers go as decimal text", async () => {
  const bytes = new Uint8Array([0, 1, 2, 0xff, 0xfe, 0x80, 0x0a]);
  assert.equal(await ctx.h.set("bin", bytes), "OK");
  const back = await ctx.h.get("bin");
  assert.ok(back instanceof Uint8Array, `expected bytes, got ${typeof back}`);
  assert.deepEqual([...back], [...bytes]);
  assert.equal(await ctx.h.call("STRLEN", "bin"), bytes.length);
  // Text stays text, including non-ASCII.
  await ctx.h.set("text", "héllo ✓");
  assert.equal(await ctx.h.get("text"), "héllo ✓");
  // A Node Buffer and an ArrayBuffer are bytes too.
  await ctx.h.set("buf", Buffer.from([0xc3, 0x28]));
  assert.deepEqual([...(await ctx.h.get("buf"))], [0xc3, 0x28]);
  await ctx.h.set("ab", new Uint8Array([0x80]).buffer);
  assert.deepEqual([...(await ctx.h.get("ab"))], [0x80]);
  await ctx.h.set("num", 12.5);
  assert.equal(await ctx.h.get("num"), "12.5");
  await ctx.h.set("big", 12345678901234567890n);
  assert.equal(await ctx.h.get("big"), "12345678901234567890");
});

test("binary values are left as {base64} with decodeBinary: false", async () => {
  const raw = new Herald(ctx.broker.url(), { decodeBinary: false });
  try {
    await raw.set("bin2", new Uint8Array([0xff, 0x00]));
    assert.deepEqual(await raw.get("bin2"), { base64: "/wA=" });
  } finally {
    raw.close();
  }
});

test("pipelined requests answer in order", async () => {
  const replies = await Promise.all(Array.from({ length: 200 }, () => ctx.h.incr("pipelined")));
  assert.deepEqual(replies, Array.from({ length: 200 }, (_, i) => i + 1));
  const mixed = await Promise.all([
    ctx.h.set("p1", "a"),
    ctx.h.get("p1"),
    ctx.h.call("APPEND", "p1", "b").catch((e) => e.code),
    ctx.h.get("p1"),
    ctx.h.call("LPUSH", "p1", "x").catch((e) => e.code),
    ctx.h.get("p1"),
  ]);
  assert.deepEqual(mixed, ["OK", "a", 2, "ab", "WRONGTYPE", "ab"]);
});

test("requests made before the connection opens are queued and sent", async () => {
  const early = new Herald(ctx.broker.url());
  try {
    assert.equal(early.state, "connecting");
    const replies = await Promise.all([early.set("early", "1"), early.get("early")]);
    assert.deepEqual(replies, ["OK", "1"]);
    assert.equal(early.state, "open");
  } finally {
    early.close();
  }
});

test("close() rejects waiting requests and later ones with ConnectionError CLOSED", async () => {
  const c = new Herald(ctx.broker.url());
  await c.connected;
  const blocked = c.call("BLPOP", "never-pushed", 0);
  c.close();
  await assert.rejects(blocked, (e) => e instanceof ConnectionError && e.code === "CLOSED");
  await assert.rejects(c.get("x"), (e) => e instanceof ConnectionError && e.code === "CLOSED");
  assert.equal(c.state, "closed");
});

test("QUIT closes the client for good (no reconnect)", async () => {
  const c = new Herald(ctx.broker.url(), { reconnect: { initialDelay: 10 } });
  await c.connected;
  const closed = new Promise((resolve) => c.once("close", resolve));
  assert.equal(await c.call("QUIT"), "OK");
  assert.equal((await closed).code, "CLOSED");
  assert.equal(c.state, "closed");
});

test("queueWhileDisconnected: false rejects at once instead of queueing", async () => {
  const c = new Herald(ctx.broker.url(), { queueWhileDisconnected: false });
  try {
    await assert.rejects(c.get("x"), (e) => e instanceof ConnectionError && e.code === "DISCONNECTED");
    await c.connected;
    assert.equal(await c.get("x"), null);
  } finally {
    c.close();
  }
});

/** A raw WebSocket to the broker, with a queue of parsed frames. */
async function rawSocket() {
  const ws = new WebSocket(ctx.broker.url());
  const frames = [];
  const waiters = [];
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (waiters.length) waiters.shift()(msg);
    else frames.push(msg);
  };
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  return {
    ws,
    send: (text) => ws.send(text),
    next: () => (frames.length ? Promise.resolve(frames.shift()) : new Promise((r) => waiters.push(r))),
  };
}

test("malformed frames get an ERR reply and the connection keeps working", async () => {
  const raw = await rawSocket();
  try {
    raw.send("{this is not json");
    let reply = await raw.next();
    assert.equal(reply.id, null);
    assert.equal(reply.error.code, "ERR");

    raw.send(JSON.stringify({ id: 1 })); // no cmd
    reply = await raw.next();
    assert.equal(reply.id, 1);
    assert.equal(reply.error.code, "ERR");

    raw.send(JSON.stringify({ id: "two", cmd: "PING" })); // cmd not an array
    reply = await raw.next();
    assert.equal(reply.id, "two");
    assert.equal(reply.error.code, "ERR");

    raw.send(JSON.stringify({ id: 3, cmd: ["PING"], extra: true })); // unknown field
    reply = await raw.next();
    assert.equal(reply.id, 3);
    assert.equal(reply.error.code, "ERR");

    raw.send(JSON.stringify({ cmd: ["PING"] })); // no id
    reply = await raw.next();
    assert.equal(reply.id, null);
    assert.equal(reply.error.code, "ERR");

    raw.send(JSON.stringify({ id: 4, cmd: ["SET", "raw", { base64: "/wA=" }] }));
    assert.deepEqual(await raw.next(), { id: 4, result: "OK" });
    raw.send(JSON.stringify({ id: 5, cmd: ["GET", "raw"] }));
    assert.deepEqual(await raw.next(), { id: 5, result: { base64: "/wA=" } });
    raw.send(JSON.stringify({ id: 6, cmd: ["INCRBY", "rawn", 5] }));
    assert.deepEqual(await raw.next(), { id: 6, result: 5 });
  } finally {
    raw.ws.close();
  }
});

test("a binary frame closes the connection with 1003", async () => {
  const raw = await rawSocket();
  const closed = new Promise((resolve) => (raw.ws.onclose = (ev) => resolve(ev.code)));
  raw.ws.send(new Uint8Array([1, 2, 3]));
  assert.equal(await closed, 1003);
});
