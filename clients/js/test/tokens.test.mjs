// Browser tokens (docs/security.md): the `token` option (a string, or a function that fetches one),
// refreshToken() on the open connection, expiry closing with 4005, in Node and in headless Chromium.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Herald, ConnectionError } from "../herald.js";
import { startBroker, nextEvent, signToken, eventually } from "../testlib/broker.mjs";
import { skip, launchChromium, devtools } from "../testlib/chromium.mjs";

const SECRET = "js-test-secret";
const RULES = "~tenant-a:* &tenant-a:* +@all -@dangerous";
let broker;

const token = (secs, sub = "web-a") => signToken({ sub, acl: RULES, exp: Math.floor(Date.now() / 1000) + secs }, SECRET);

before(async () => {
  broker = await startBroker({ extra: ["--requirepass", "admin"], env: { HERALD_TOKENS__HS256_SECRET: SECRET } });
});

after(async () => {
  await broker?.stop();
});

test("a token option authenticates; its tenant is confined", async () => {
  const h = new Herald(broker.url(), { token: await token(60) });
  try {
    await h.connected;
    assert.equal(await h.call("ACL", "WHOAMI"), "web-a");
    assert.equal(await h.set("tenant-a:k", "v"), "OK");
    await assert.rejects(h.get("tenant-b:k"), { code: "NOPERM" });
  } finally {
    h.close();
  }
});

test("an expired token without a way to refresh it ends the client with TOKEN_EXPIRED", async () => {
  const h = new Herald(broker.url(), { token: await token(2) });
  try {
    await h.connected;
    const closed = await nextEvent(h, "close");
    assert.ok(closed instanceof ConnectionError);
    assert.equal(closed.code, "TOKEN_EXPIRED");
    assert.equal(closed.closeCode, 4005);
  } finally {
    h.close();
  }
});

test("refreshToken() keeps the connection past the first token's expiry", async () => {
  const h = new Herald(broker.url(), { token: await token(2), name: "refreshed" });
  try {
    await h.connected;
    const id = await h.call("CLIENT", "ID");
    await h.refreshToken(await token(60));
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(await h.call("CLIENT", "ID"), id, "the same connection");
  } finally {
    h.close();
  }
});

test("a token function is asked again before expiry, on the same connection", async () => {
  let asked = 0;
  const h = new Herald(broker.url(), {
    token: async () => {
      asked++;
      return token(2, `web-${asked}`);
    },
    tokenRefreshMargin: 1000,
  });
  try {
    await h.connected;
    const id = await h.call("CLIENT", "ID");
    await eventually(async () => asked >= 3, "two refreshes", 250);
    assert.equal(await h.call("CLIENT", "ID"), id, "never reconnected");
    assert.match(await h.call("ACL", "WHOAMI"), /^web-[2-9]$/);
  } finally {
    h.close();
  }
});

// The same in a browser: the page loads /herald.js from the broker and is handed a short token; it
// refreshes once (the connection outlives the first token), then stops refreshing and sees 4005.
let chromium;
let page;

test("headless Chromium: token expiry and refresh", { skip }, async (t) => {
  chromium = await launchChromium();
  t.after(async () => {
    page?.close();
    await chromium?.close();
  });
  page = await devtools(chromium.port);
  await page.send("Page.navigate", { url: broker.http("/healthz") });
  await eventually(() => page.evaluate(`document.readyState === "complete"`), "the page loaded");
  const first = await token(2);
  const fresh = await token(60);
  const result = await page.evaluate(`(async () => {
    const { Herald } = await import("/herald.js");
    const h = new Herald("ws://" + location.host + "/ws", { token: ${JSON.stringify(first)}, reconnect: false });
    await h.connected;
    const id = await h.call("CLIENT", "ID");
    const who = await h.call("ACL", "WHOAMI");
    const refused = await h.get("tenant-b:k").then(() => "allowed", (e) => e.code);
    await h.refreshToken(${JSON.stringify(fresh)});
    await new Promise((r) => setTimeout(r, 2500));
    const sameConnection = (await h.call("CLIENT", "ID")) === id;
    h.close();
    return { who, refused, sameConnection };
  })()`);
  assert.deepEqual(result, { who: "web-a", refused: "NOPERM", sameConnection: true });
  const short = await token(2);
  const expired = await page.evaluate(`(async () => {
    const { Herald } = await import("/herald.js");
    const h = new Herald("ws://" + location.host + "/ws", { token: ${JSON.stringify(short)} });
    await h.connected;
    const closed = await new Promise((resolve) => h.once("close", resolve));
    return { code: closed.code, closeCode: closed.closeCode };
  })()`);
  assert.deepEqual(expired, { code: "TOKEN_EXPIRED", closeCode: 4005 });
});
