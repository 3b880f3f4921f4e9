// Reconnecting: a broker restarted on the same ports, resubscribe, queued and in-flight requests.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Herald, ConnectionError } from "../herald.js";
import { startBroker, killWebSocketClients, nextEvent, take } from "../testlib/broker.mjs";

const brokers = [];
async function start(opts) {
  const b = await startBroker(opts);
  brokers.push(b);
  return b;
}

after(async () => {
  for (const b of brokers) await b.stop("SIGKILL");
});

test("after the broker restarts on the same ports the client reconnects and resubscribes", async () => {
  const first = await start();
  const h = new Herald(first.url(), { reconnect: { initialDelay: 20, maxDelay: 200 } });
  const events = [];
  for (const e of ["connect", "disconnect", "reconnect"]) h.on(e, () => events.push(e));
  try {
    await h.connected;
    const sub = h.subscribe("restart-news");
    const pat = h.psubscribe("restart-*");
    await Promise.all([sub.ready, pat.ready]);
    await first.cli("PUBLISH", "restart-news", "before");
    assert.deepEqual(await take(sub, 1), [{ channel: "restart-news", data: "before" }]);
    assert.equal((await take(pat, 1))[0].data, "before");

    const down = nextEvent(h, "disconnect");
    await first.stop(); // graceful: the client sees 1001
    assert.equal((await down).code, 1001);
    assert.equal(h.state, "reconnecting");
    // Requests made while the broker is away wait for the next connection.
    const queued = h.set("made-while-down", "yes");

    const up = nextEvent(h, "reconnect");
    const second = await start({ port: first.port, httpPort: first.httpPort });
    await up;
    assert.equal(h.state, "open");
    assert.equal(await queued, "OK");
    assert.equal(await second.cli("GET", "made-while-down"), "yes");
    // Subscribed again on the new broker, before the reconnect event.
    assert.equal(await second.cli("PUBLISH", "restart-news", "after"), "2");
    assert.deepEqual(await take(sub, 1), [{ channel: "restart-news", data: "after" }]);
    assert.deepEqual(await take(pat, 1), [{ pattern: "restart-*", channel: "restart-news", data: "after" }]);
    assert.deepEqual(events, ["connect", "disconnect", "reconnect"]);
  } finally {
    h.close();
  }
});

test("a request in flight when the connection drops rejects with DISCONNECTED; the client carries on", async () => {
  const b = await start();
  const h = new Herald(b.url(), { reconnect: { initialDelay: 60000 } });
  try {
    await h.connected;
    const blocked = assert.rejects(h.call("BLPOP", "nothing-here", 0), (e) => e instanceof ConnectionError && e.code === "DISCONNECTED");
    await killWebSocketClients(b);
    await blocked;
    const up = nextEvent(h, "reconnect");
    h.reconnect();
    await up;
    assert.equal(await h.ping(), "PONG");
  } finally {
    h.close();
  }
});

test("the queue while disconnected is bounded: QUEUEFULL past maxQueue", async () => {
  const b = await start();
  const h = new Herald(b.url(), { maxQueue: 2, reconnect: { initialDelay: 60000 } });
  try {
    await h.connected;
    const down = nextEvent(h, "disconnect");
    await killWebSocketClients(b);
    await down;
    const a = h.ping("a");
    const c = h.ping("b");
    await assert.rejects(h.ping("c"), (e) => e instanceof ConnectionError && e.code === "QUEUEFULL");
    h.reconnect();
    assert.deepEqual(await Promise.all([a, c]), ["a", "b"]);
  } finally {
    h.close();
  }
});

test("with reconnect: false the client closes on disconnect", async () => {
  const b = await start();
  const h = new Herald(b.url(), { reconnect: false });
  await h.connected;
  const closed = nextEvent(h, "close");
  await killWebSocketClients(b);
  const reason = await closed;
  assert.equal(reason.code, "CLOSED");
  assert.equal(h.state, "closed");
  await assert.rejects(h.ping(), { code: "CLOSED" });
});
