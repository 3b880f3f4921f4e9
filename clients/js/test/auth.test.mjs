// Authentication with requirepass: by URL query, by AUTH (option or command), refusals, re-auth on reconnect.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Herald, ConnectionError } from "../herald.js";
import { startBroker, killWebSocketClients, nextEvent, take } from "../testlib/broker.mjs";

let broker;

before(async () => {
  broker = await startBroker({ extra: ["--requirepass", "s3cret"] });
});

after(async () => {
  await broker?.stop();
});

test("password in the URL query", async () => {
  const h = new Herald(broker.url("?password=s3cret"));
  try {
    await h.connected;
    assert.equal(await h.set("q", "1"), "OK");
  } finally {
    h.close();
  }
});

test("user and password in the URL query", async () => {
  const h = new Herald(broker.url("?user=default&password=s3cret"));
  try {
    assert.equal(await h.ping(), "PONG");
  } finally {
    h.close();
  }
});

test("password option: AUTH is the first request", async () => {
  const h = new Herald(broker.url(), { password: "s3cret" });
  try {
    await h.connected;
    assert.equal(await h.get("q"), "1");
  } finally {
    h.close();
  }
});

test("without a password, commands are refused with NOAUTH; AUTH then works", async () => {
  const h = new Herald(broker.url());
  try {
    await h.connected;
    await assert.rejects(h.get("q"), { code: "NOAUTH" });
    await assert.rejects(h.call("AUTH", "wrong"), { code: "WRONGPASS" });
    assert.equal(await h.call("AUTH", "s3cret"), "OK");
    assert.equal(await h.get("q"), "1");
  } finally {
    h.close();
  }
});

test("a wrong password in the query closes with 4001 and the client gives up", async () => {
  const h = new Herald(broker.url("?password=nope"), { reconnect: { initialDelay: 10 } });
  const errors = [];
  h.on("error", (e) => errors.push(e));
  await assert.rejects(h.connected, (e) => e instanceof ConnectionError && e.code === "AUTH" && e.closeCode === 4001);
  assert.equal(h.state, "closed");
  assert.ok(errors.some((e) => e.code === "AUTH"));
});

test("a wrong password option fails the connection with AUTH", async () => {
  const h = new Herald(broker.url(), { password: "nope" });
  await assert.rejects(h.connected, (e) => e instanceof ConnectionError && e.code === "AUTH");
  await assert.rejects(h.get("q"), { code: "AUTH" }); // later requests are told why the client closed
  assert.equal(h.state, "closed");
});

test("credentials given by an AUTH command are used again after a reconnect", async () => {
  const h = new Herald(broker.url(), { reconnect: { initialDelay: 60000 } });
  try {
    await h.connected;
    await h.call("AUTH", "s3cret");
    const sub = h.subscribe("auth-news");
    await sub.ready;
    const down = nextEvent(h, "disconnect");
    assert.equal(await killWebSocketClients(broker), 1);
    assert.equal((await down).code, 4004);
    const up = nextEvent(h, "reconnect");
    h.reconnect();
    await up;
    assert.equal(await h.get("q"), "1");
    assert.equal(await broker.cli("PUBLISH", "auth-news", "back"), "1");
    assert.deepEqual(await take(sub, 1), [{ channel: "auth-news", data: "back" }]);
  } finally {
    h.close();
  }
});
