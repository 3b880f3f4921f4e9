// Resumable reads: follow() on streams, followJob() on job chunks, watch() on the blackboard, each across a
// dropped connection, and the errors when resuming is impossible.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Herald, ResumeError } from "../herald.js";
import { brokerAndClient, startBroker, killWebSocketClients, nextEvent, take } from "../testlib/broker.mjs";

const slowReconnect = { reconnect: { initialDelay: 60000 } }; // the tests reconnect by hand

const ctx = brokerAndClient(slowReconnect);

/** Drops the connection of `client` (which has a `name`) and waits until it noticed. */
async function dropConnection(client) {
  const down = nextEvent(client, "disconnect");
  assert.equal(await killWebSocketClients(ctx.broker, client.options.name), 1);
  await down;
}

async function reconnect(client) {
  const up = nextEvent(client, "reconnect");
  client.reconnect();
  await up;
}

test("follow() reads a stream to its close, with BLOCK on its own connection", async () => {
  for (const v of ["a", "b", "c"]) await ctx.h.call("STREAM.WRITE", "s1", v);
  const follower = ctx.h.follow("s1");
  const it = follower[Symbol.asyncIterator]();
  assert.deepEqual((await it.next()).value, { offset: 0, data: "a" });
  // The main connection is free while the follower blocks.
  assert.equal(await ctx.h.ping(), "PONG");
  const rest = (async () => {
    const out = [];
    for (let r = await it.next(); !r.done; r = await it.next()) out.push(r.value);
    return out;
  })();
  await ctx.h.call("STREAM.WRITE", "s1", "d");
  await ctx.h.call("STREAM.CLOSE", "s1");
  assert.deepEqual(await rest, [
    { offset: 1, data: "b" },
    { offset: 2, data: "c" },
    { offset: 3, data: "d" },
  ]);
  assert.equal(follower.offset, 4);
  assert.equal(follower.client.state, "closed");
});

test("follow() resumes from its offset after the connection drops: nothing missed, nothing twice", async () => {
  for (let i = 0; i < 3; i++) await ctx.h.call("STREAM.WRITE", "s2", `e${i}`);
  const follower = ctx.h.follow("s2", { block: 1000, clientOptions: { ...slowReconnect, name: "follower-s2" } });
  const seen = await take(follower, 3);

  await dropConnection(follower.client);
  // Written while the follower is away (through RESP).
  for (let i = 3; i < 6; i++) await ctx.broker.cli("STREAM.WRITE", "s2", `e${i}`);
  await reconnect(follower.client);
  await ctx.broker.cli("STREAM.WRITE", "s2", "e6");
  await ctx.broker.cli("STREAM.CLOSE", "s2");
  for await (const entry of follower) seen.push(entry);

  assert.deepEqual(
    seen,
    Array.from({ length: 7 }, (_, i) => ({ offset: i, data: `e${i}` })),
  );
});

test("follow({from}) starts at an offset; poll mode reads on the shared connection", async () => {
  for (let i = 0; i < 4; i++) await ctx.h.call("STREAM.WRITE", "s3", `v${i}`);
  await ctx.h.call("STREAM.CLOSE", "s3");
  const seen = [];
  for await (const e of ctx.h.follow("s3", { from: 2, poll: 50 })) seen.push(e.offset);
  assert.deepEqual(seen, [2, 3]);
  assert.equal(ctx.h.state, "open");
});

test("follow() from a trimmed offset throws ResumeError TRIMMED with the oldest retained offset", async () => {
  await ctx.h.call("STREAM.CONFIG", "s4", "MAXLEN", 2);
  for (let i = 0; i < 5; i++) await ctx.h.call("STREAM.WRITE", "s4", `t${i}`);
  const follower = ctx.h.follow("s4", { from: 0 });
  await assert.rejects(take(follower, 1), (e) => {
    assert.ok(e instanceof ResumeError);
    assert.equal(e.code, "TRIMMED");
    assert.equal(e.offset, 0);
    assert.equal(e.oldest, 3);
    return true;
  });
  assert.equal(follower.client.state, "closed");
});

test("follow() with a remembered epoch throws STALE when the stream was re-created", async () => {
  await ctx.h.call("STREAM.WRITE", "s5", "old");
  const first = await ctx.h.call("STREAM.READ", "s5");
  await ctx.h.call("STREAM.DEL", "s5");
  await ctx.h.call("STREAM.WRITE", "s5", "new");
  const follower = ctx.h.follow("s5", { from: first.next, epoch: first.epoch });
  await assert.rejects(take(follower, 1), (e) => e instanceof ResumeError && e.code === "STALE");
});

test("followJob() streams a job's chunks across a dropped connection and ends with the job", async () => {
  const id = await ctx.h.call("JOB.SUBMIT", "render", JSON.stringify({ page: 1 }));
  const claim = await ctx.h.call("JOB.CLAIM", "render");
  assert.equal(claim.id, id);
  await ctx.h.call("JOB.CHUNK", id, claim.token, "tok0");
  await ctx.h.call("JOB.CHUNK", id, claim.token, "tok1");

  const follower = ctx.h.followJob(id, { clientOptions: { ...slowReconnect, name: "follower-job" } });
  const seen = await take(follower, 2);
  await dropConnection(follower.client);
  await ctx.h.call("JOB.CHUNK", id, claim.token, "tok2");
  await reconnect(follower.client);
  await ctx.h.call("JOB.CHUNK", id, claim.token, new Uint8Array([0xff, 0x01]));
  await ctx.h.call("JOB.COMPLETE", id, claim.token, "all done");
  for await (const chunk of follower) seen.push(chunk);

  assert.deepEqual(seen.slice(0, 3), [
    { offset: 0, data: "tok0" },
    { offset: 1, data: "tok1" },
    { offset: 2, data: "tok2" },
  ]);
  assert.equal(seen[3].offset, 3);
  assert.deepEqual([...seen[3].data], [0xff, 0x01]);
  assert.equal(seen.length, 4);
  assert.equal(await ctx.h.call("JOB.RESULT", id), "all done");
});

test("watch() delivers blackboard events with their values", async () => {
  const w = ctx.h.watch("team", "task:*");
  await w.ready;
  assert.equal(await ctx.broker.cli("BB.SET", "team", "task:1", "draft"), "1");
  await ctx.h.call("BB.SET", "team", "other", "not watched");
  await ctx.h.call("BB.SET", "team", "task:1", "final");
  await ctx.h.call("BB.DEL", "team", "task:1");
  const events = await take(w, 3);
  assert.deepEqual(
    events.map((e) => [e.scope, e.key, e.event, e.revision, e.value]),
    [
      ["team", "task:1", "set", 1, "draft"],
      ["team", "task:1", "set", 2, "final"],
      ["team", "task:1", "del", 2, "final"],
    ],
  );
  assert.ok(events[0].seq < events[1].seq && events[1].seq < events[2].seq);
  assert.equal(w.seq, events[2].seq);
  await w.close();
});

test("watch() on the global scope sees plain Redis writes, by callback", async () => {
  const w = ctx.h.watch("", "cfg*");
  const got = nextEvent(w, "change");
  await w.ready;
  await ctx.broker.cli("SET", "cfg-model", "gpt");
  const ev = await got;
  assert.deepEqual([ev.scope, ev.key, ev.event, ev.value], ["", "cfg-model", "set", "gpt"]);
  await w.close();
});

test("watch() fills the gap after a reconnect from the journal (BB.CHANGES)", async () => {
  const c = new Herald(ctx.broker.url(), { ...slowReconnect, name: "watcher" });
  try {
    const w = c.watch("gap", "*");
    await w.ready;
    await c.call("BB.SET", "gap", "k1", "v1");
    const [first] = await take(w, 1);
    assert.equal(first.replayed, undefined);

    await dropConnection(c);
    await ctx.broker.cli("BB.SET", "gap", "k2", "v2");
    await ctx.broker.cli("BB.SET", "gap", "k1", "v1b");
    await reconnect(c);
    await ctx.broker.cli("BB.SET", "gap", "k3", "v3");

    const rest = await take(w, 3);
    assert.deepEqual(
      rest.map((e) => [e.key, e.value, e.replayed ?? false]),
      [
        ["k2", "v2", true],
        ["k1", "v1b", true],
        ["k3", "v3", false],
      ],
    );
    assert.deepEqual(
      [first, ...rest].map((e) => e.seq),
      [first.seq, first.seq + 1, first.seq + 2, first.seq + 3],
    );
  } finally {
    c.close();
  }
});

/**
 * Runs `during(watch, restarted)` after a watch on a broker saw some events and that broker was restarted on
 * the same ports (so its journal is gone), before the client reconnects; then reconnects.
 */
async function acrossRestart(watchOptions, during) {
  const first = await startBroker();
  const c = new Herald(first.url(), slowReconnect);
  let again;
  try {
    const w = c.watch("lost", "k*", watchOptions);
    await w.ready;
    for (let i = 0; i < 3; i++) await c.call("BB.SET", "lost", `k${i}`, "v");
    await take(w, 3);
    const down = nextEvent(c, "disconnect");
    await first.stop();
    await down;
    again = await startBroker({ port: first.port, httpPort: first.httpPort });
    await again.cli("BB.SET", "lost", "k9", "fresh");
    await reconnect(c);
    await during(w, again);
  } finally {
    c.close();
    await again?.stop();
  }
}

test("watch() reports LOST when the journal no longer reaches back (the broker restarted)", async () => {
  await acrossRestart({}, async (w) => {
    await assert.rejects(take(w, 1), (e) => e instanceof ResumeError && e.code === "LOST");
    assert.ok(w.ended);
  });
});

test("watch({onLost: 'resync'}) delivers a snapshot from BB.GETALL instead", async () => {
  await acrossRestart({ onLost: "resync" }, async (w, again) => {
    const [snap] = await take(w, 1);
    assert.equal(snap.event, "snapshot");
    assert.equal(snap.scope, "lost");
    assert.deepEqual(
      snap.entries.map((e) => [e.key, e.value]),
      [["k9", "fresh"]],
    );
    await again.cli("BB.SET", "lost", "k9", "later");
    const [next] = await take(w, 1);
    assert.deepEqual([next.key, next.value, next.seq > snap.seq], ["k9", "later", true]);
  });
});
