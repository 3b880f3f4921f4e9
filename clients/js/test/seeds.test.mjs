// The seeds' primitives over the WebSocket JSON channel: semaphores with fencing, request/reply, schemas,
// bounded blocking put, queue control and BB.WATCH, each with its bad input, against a real broker.
import { test } from "node:test";
import assert from "node:assert/strict";
import { brokerAndClient, eventually } from "../testlib/broker.mjs";

const ctx = brokerAndClient();

/** INFO's blocked_clients, read with redis-cli: proves a command is waiting before it is woken. */
async function blocked() {
  const info = await ctx.broker.cli("INFO", "clients");
  return Number(/blocked_clients:(\d+)/.exec(info)[1]);
}

test("a semaphore hands out growing fencing tokens and wakes a waiter on release", async () => {
  const other = ctx.h.duplicate();
  const first = await ctx.h.semAcquire("lock", 1, { lease: 60000 });
  assert.equal(typeof first, "number");
  assert.equal(await other.semAcquire("lock", 1), null);
  const waiting = other.semAcquire("lock", 1, { block: 0 });
  await eventually(async () => (await blocked()) === 1, "the waiter blocks");
  assert.ok((await ctx.h.semExtend("lock", first, 60000)) > Date.now());
  assert.equal(await ctx.h.semRelease("lock", first), "OK");
  const second = await waiting;
  assert.ok(second > first);
  await assert.rejects(ctx.h.semRelease("lock", first), { code: "LEASE" });
  await assert.rejects(ctx.h.semAcquire("lock", 0), (e) => e.code === "ERR" && /permits/.test(e.message));
  const info = await ctx.h.call("SEM.INFO", "lock");
  assert.equal(info.held, 1);
  assert.equal(info.holders[0].token, second);
  other.close();
});

test("request and reply: the receiver sees the reply address", async () => {
  const server = ctx.h.duplicate();
  const answered = ctx.h.request("calc", "add", "2+2", 5000);
  const req = await server.call("MSG.RECV", "calc", "add", "TIMEOUT", 5000);
  assert.equal(req.payload, "2+2");
  assert.equal(await server.reply(req.reply_to, "4"), true);
  assert.equal(await answered, "4");
  assert.equal(await server.reply(req.reply_to, "again"), false, "late: dropped");
  assert.equal(await ctx.h.request("nobody", "", "x", 20), null, "timeout: null");
  await assert.rejects(ctx.h.request("calc", "", "x", 0), (e) => /TIMEOUT must be a positive/.test(e.message));
  server.close();
});

test("schemas refuse writes that do not validate, naming the place", async () => {
  const schema = { type: "object", properties: { n: { type: "integer" } }, required: ["n"] };
  assert.equal(await ctx.h.setSchema("board", "typed", schema), "OK");
  assert.deepEqual(JSON.parse(await ctx.h.call("SCHEMA.GET", "board", "typed")), schema);
  await assert.rejects(ctx.h.call("BL.PUBLISH", "typed", JSON.stringify({ n: "one" })), (e) => {
    assert.equal(e.code, "SCHEMA");
    assert.match(e.message, /\/n: value is not of type "integer"/);
    return true;
  });
  assert.equal(await ctx.h.call("BL.LEN", "typed"), 0);
  assert.match(await ctx.h.call("BL.PUBLISH", "typed", JSON.stringify({ n: 1 })), /^\d+-\d+$/);
  await assert.rejects(ctx.h.setSchema("table", "x", {}), (e) => /unknown schema kind/.test(e.message));
  await assert.rejects(ctx.h.setSchema("queue", "x", "{"), (e) => /not JSON/.test(e.message));
});

test("a full board makes a publisher wait for room", async () => {
  await ctx.h.call("BL.CONFIG", "small", "MAXLEN", 1);
  await ctx.h.call("BL.PUBLISH", "small", "{}");
  const waiting = ctx.h.duplicate();
  const published = waiting.call("BL.PUBLISH", "small", '{"second": true}', "BLOCK", 5000);
  await eventually(async () => (await blocked()) === 1, "the publisher blocks");
  const item = await ctx.h.call("BL.RETRIEVE", "small", "LOCK", 1000);
  await ctx.h.call("BL.REMOVE", "small", item.id, item.token);
  assert.match(await published, /^\d+-\d+$/);
  assert.equal(await ctx.h.call("BL.PUBLISH", "small", "{}", "BLOCK", 10), null);
  waiting.close();
});

test("a paused queue keeps its jobs; join waits for the last one", async () => {
  await ctx.h.pauseQueue("jq");
  await ctx.h.call("JOB.SUBMIT", "jq", "work");
  assert.equal(await ctx.h.call("JOB.CLAIM", "jq"), null);
  assert.equal(await ctx.h.joinQueue("jq", { timeout: 10 }), false);
  await ctx.h.resumeQueue("jq");
  const job = await ctx.h.call("JOB.CLAIM", "jq");
  const joined = ctx.h.duplicate();
  const done = joined.joinQueue("jq");
  await eventually(async () => (await blocked()) === 1, "the join blocks");
  await ctx.h.call("JOB.COMPLETE", job.id, job.token);
  assert.equal(await done, true);
  joined.close();
});

test("BB.WATCH makes a transaction conditional on a scope's key", async () => {
  const other = ctx.h.duplicate();
  await ctx.h.call("BB.SET", "orders", "o1", "pending");
  await ctx.h.call("BB.WATCH", "orders", "o1");
  await other.call("BB.SET", "orders", "o1", "paid");
  await ctx.h.call("MULTI");
  await ctx.h.call("BB.SET", "orders", "o1", "shipped");
  assert.equal(await ctx.h.call("EXEC"), null);
  assert.equal((await ctx.h.call("BB.GET", "orders", "o1")).value, "paid");
  other.close();
});
