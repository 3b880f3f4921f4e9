// Pub-sub over WebSocket: iterator and callback, patterns, publications from a RESP client, unsubscribe.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Herald } from "../herald.js";
import { brokerAndClient, nextEvent, take } from "../testlib/broker.mjs";


const ctx = brokerAndClient();

test("subscribe: messages from a WebSocket publisher, by async iterator", async () => {
  const sub = ctx.h.subscribe("news", "sports");
  await sub.ready;
  const publisher = new Herald(ctx.broker.url());
  try {
    assert.equal(await publisher.publish("news", "hello"), 1);
    assert.equal(await publisher.publish("sports", "goal"), 1);
    assert.equal(await publisher.publish("weather", "rain"), 0);
    assert.deepEqual(await take(sub, 2), [
      { channel: "news", data: "hello" },
      { channel: "sports", data: "goal" },
    ]);
  } finally {
    publisher.close();
    await sub.unsubscribe();
  }
});

test("a publication from redis-cli reaches the WebSocket subscriber, by callback", async () => {
  const sub = ctx.h.subscribe("from-resp");
  const got = nextEvent(sub, "message");
  await sub.ready;
  assert.equal(await ctx.broker.cli("PUBLISH", "from-resp", "over RESP"), "1");
  assert.deepEqual(await got, { channel: "from-resp", data: "over RESP" });
  await sub.unsubscribe();
});

test("psubscribe: pattern messages carry pattern and channel", async () => {
  const sub = ctx.h.psubscribe("n*", "s?orts");
  await sub.ready;
  await ctx.broker.cli("PUBLISH", "news", "one");
  await ctx.broker.cli("PUBLISH", "sports", "two");
  await ctx.broker.cli("PUBLISH", "other", "not delivered");
  await ctx.broker.cli("PUBLISH", "nothing", "three");
  assert.deepEqual(await take(sub, 3), [
    { pattern: "n*", channel: "news", data: "one" },
    { pattern: "s?orts", channel: "sports", data: "two" },
    { pattern: "n*", channel: "nothing", data: "three" },
  ]);
  await sub.unsubscribe();
});

test("binary publications arrive as bytes", async () => {
  const sub = ctx.h.subscribe("bytes");
  await sub.ready;
  const publisher = new Herald(ctx.broker.url());
  try {
    await publisher.publish("bytes", new Uint8Array([0xff, 0x00, 0x10]));
    const [m] = await take(sub, 1);
    assert.ok(m.data instanceof Uint8Array);
    assert.deepEqual([...m.data], [0xff, 0x00, 0x10]);
  } finally {
    publisher.close();
    await sub.unsubscribe();
  }
});

test("unsubscribe stops delivery; the broker's count follows the client's subscriptions", async () => {
  const a = ctx.h.subscribe("shared");
  const b = ctx.h.subscribe("shared");
  await Promise.all([a.ready, b.ready]);
  assert.equal(await ctx.broker.cli("PUBSUB", "NUMSUB", "shared"), "shared\n1");
  await a.unsubscribe();
  assert.ok(a.ended);
  // b still holds the channel, so the broker still delivers.
  assert.equal(await ctx.broker.cli("PUBLISH", "shared", "for b"), "1");
  assert.deepEqual(await take(b, 1), [{ channel: "shared", data: "for b" }]);
  await b.unsubscribe();
  assert.equal(await ctx.broker.cli("PUBSUB", "NUMSUB", "shared"), "shared\n0");
  assert.equal(await ctx.broker.cli("PUBLISH", "shared", "nobody"), "0");
});

test("breaking out of for-await unsubscribes", async () => {
  const sub = ctx.h.subscribe("loop");
  await sub.ready;
  await ctx.broker.cli("PUBLISH", "loop", "1");
  await ctx.broker.cli("PUBLISH", "loop", "2");
  const seen = [];
  for await (const m of sub) {
    seen.push(m.data);
    if (seen.length === 2) break;
  }
  assert.deepEqual(seen, ["1", "2"]);
  assert.ok(sub.ended);
  assert.equal(await ctx.broker.cli("PUBSUB", "NUMSUB", "loop"), "loop\n0");
});

test("client.unsubscribe(channel) removes it from every subscription; an emptied one ends", async () => {
  const sub = ctx.h.subscribe("x1", "x2");
  await sub.ready;
  const ended = nextEvent(sub, "end");
  await ctx.h.unsubscribe("x1");
  assert.deepEqual([...sub.names], ["x2"]);
  assert.equal(await ctx.broker.cli("PUBLISH", "x1", "gone"), "0");
  await ctx.h.unsubscribe();
  await ended;
  assert.ok(sub.ended);
});

test("a SUBSCRIBE of several channels answers one array of confirmations", async () => {
  const reply = await ctx.h.call("SUBSCRIBE", "c1", "c2");
  assert.deepEqual(reply, [
    ["subscribe", "c1", 1],
    ["subscribe", "c2", 2],
  ]);
  await ctx.h.call("UNSUBSCRIBE", "c1", "c2");
});

test("commands keep working on a subscribed connection", async () => {
  const sub = ctx.h.subscribe("busy");
  await sub.ready;
  assert.equal(await ctx.h.set("while-subscribed", "ok"), "OK");
  assert.equal(await ctx.h.get("while-subscribed"), "ok");
  await sub.unsubscribe();
});
