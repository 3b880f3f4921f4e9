// The live console at / (docs/operations.md), in headless Chromium: the broker serves the page and the
// client; the test drives the broker with redis-cli (a published message, a job claimed and moved along
// with JOB.PROGRESS, a blackboard write, board items leased and dead-lettered, mailbox messages, stream
// entries, scope key counts that change) and checks that each shows up in the page, then keeps a
// screenshot at target/console.png. With a password on the broker the page asks for it and then works.
//
// Skipped when /usr/bin/chromium (or $CHROMIUM) is missing, unless HERALD_REQUIRE_BROWSER is set.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { startBroker, eventually, signToken } from "../testlib/broker.mjs";
import { skip, launchChromium, devtools } from "../testlib/chromium.mjs";

const SCREENSHOT = fileURLToPath(new URL("../../../target/console.png", import.meta.url));

let chromium;
let page;
const brokers = [];

before(async () => {
  if (skip) return;
  chromium = await launchChromium();
  page = await devtools(chromium.port);
});

after(async () => {
  page?.close();
  await chromium?.close();
  for (const b of brokers) await b.stop();
});

async function broker(extra = [], env = {}) {
  const b = await startBroker({ extra, env });
  brokers.push(b);
  return b;
}

/** redis-cli's flat reply to a map command, as an object. */
function fields(output) {
  const lines = output.split("\n");
  const out = {};
  for (let i = 0; i + 1 < lines.length; i += 2) out[lines[i]] = lines[i + 1];
  return out;
}

const opened = () => eventually(() => page.evaluate(`document.body?.dataset.state === "open"`), "the console connected");

test("the console shows live traffic, a job's progress and blackboard changes", { skip }, async () => {
  const b = await broker();
  await page.send("Page.navigate", { url: b.http("/?tail=e2e-*") });
  await opened();
  await eventually(() => page.evaluate(`document.body.dataset.tail === "e2e-*"`), "the tail subscribed");

  // A published message appears in the tail.
  assert.equal(await b.cli("PUBLISH", "e2e-news", "hello console"), "1");
  await eventually(
    () => page.evaluate(`[...document.querySelectorAll("#tail .data")].some((e) => e.textContent === "hello console")`),
    "the message in the tail",
  );

  // A job claimed by a worker shows with a progress bar that moves with JOB.PROGRESS.
  const id = await b.cli("JOB.SUBMIT", "render", '{"page": 3}');
  const claim = fields(await b.cli("JOB.CLAIM", "render"));
  assert.equal(claim.id, id);
  const progress = () => page.evaluate(`document.querySelector('#jobs tr[data-job="${id}"]')?.dataset.progress ?? null`);
  await eventually(async () => (await progress()) === "0", "the claimed job in the page");
  assert.equal(await b.cli("JOB.PROGRESS", id, claim.token, "30"), "OK");
  await eventually(async () => (await progress()) === "0.3", "the bar at 30%");
  assert.equal(await b.cli("JOB.PROGRESS", id, claim.token, "70"), "OK");
  await eventually(async () => (await progress()) === "0.7", "the bar at 70%");
  const width = await page.evaluate(`document.querySelector('#jobs tr[data-job="${id}"] .bar > div').style.width`);
  assert.equal(width, "70%");
  // Its queue is listed with its depths (JOB.STATS), polled every second.
  await eventually(
    () => page.evaluate(`[...document.querySelectorAll("#queues td")].map((e) => e.textContent).join(",").startsWith("render,0,0,1")`),
    "the queue's depths",
  );

  // A blackboard key written from redis-cli appears with its value.
  await b.cli("BB.SET", "team", "config", '{"model": "small"}');
  await eventually(
    () => page.evaluate(`[...document.querySelectorAll("#bb td")].map((e) => e.textContent).join("|").includes("team|config|set")`),
    "the blackboard change",
  );

  // The discovery panels: a board with a leased and a dead item, a mailbox, a stream, the scope's keys.
  const row = (table, key) => `[...document.querySelectorAll("#${table} tbody tr")].find((r) => r.dataset.key === ${JSON.stringify(key)})`;
  const cells = (table, key) => page.evaluate(`${row(table, key)}?.cells ? [...${row(table, key)}.cells].map((c) => c.textContent).join("|") : null`);
  assert.equal(await b.cli("BL.CONFIG", "tasks", "SCOPE", "team", "MAXLEASES", "1"), "OK");
  for (const n of [1, 2, 3]) await b.cli("BL.PUBLISH", "tasks", JSON.stringify({ n }), "SCOPE", "team");
  const leased = fields(await b.cli("BL.RETRIEVE", "tasks", "SCOPE", "team", "LOCK", "60000"));
  await eventually(async () => (await cells("boards", "team\u0000tasks")) === "team|tasks|3|1|0|", "the board with one leased item");
  assert.equal(await b.cli("BL.RELEASE", "tasks", leased.id, leased.token, "SCOPE", "team"), "OK");
  await eventually(async () => (await cells("boards", "team\u0000tasks")) === "team|tasks|2|0|1|", "the released item dead-lettered");
  const deadWidth = await page.evaluate(`${row("boards", "team\u0000tasks")}.querySelector(".split > .dead").style.width`);
  assert.ok(parseFloat(deadWidth) > 0, `the dead part of the bar: ${deadWidth}`);
  // Clicking the board lists its dead letters (BL.DEAD): the released item, with its failed lease.
  await page.evaluate(`${row("boards", "team\u0000tasks")}.cells[1].click()`);
  const deadRows = () => page.evaluate(`[...document.querySelectorAll("#dead tbody tr")].map((r) => [...r.cells].map((c) => c.textContent).join("|"))`);
  await eventually(async () => (await deadRows()).join("\n") === `${leased.id}|1|${leased.item}`, "the dead letter listed");

  await b.cli("MSG.SEND", "worker-7", "resize", "img-1");
  await b.cli("MSG.SEND", "worker-7", "resize", "img-2");
  await eventually(async () => (await cells("mailboxes", "worker-7"))?.startsWith("worker-7|2|") === true, "the mailbox with two messages");
  assert.match(await cells("mailboxes", "worker-7"), /resize: 2$/);

  for (const chunk of ["a", "b", "c"]) await b.cli("STREAM.WRITE", "wf:render", chunk);
  await eventually(async () => (await cells("streams", "wf:render")) === "wf:render|3|0…3|3|open", "the stream's entries");
  await b.cli("STREAM.CLOSE", "wf:render");
  await eventually(async () => (await cells("streams", "wf:render"))?.endsWith("|closed") === true, "the stream closed");

  // The scope's key count and change counter move as keys are written from outside.
  await eventually(async () => (await cells("scopes", "team"))?.startsWith("team|1|") === true, "the scope with its key");
  await b.cli("BB.SET", "team", "status", "busy");
  await eventually(async () => (await cells("scopes", "team"))?.startsWith("team|2|") === true, "the scope's second key");

  // The INFO poll fills the figures and the chart's history.
  await eventually(async () => Number(await page.evaluate(`document.getElementById("clients").textContent`)) >= 1, "the client count");
  assert.match(await page.evaluate(`document.getElementById("memory").textContent`), /^[\d.]+[BKMG]$/);

  await page.send("Emulation.setDeviceMetricsOverride", { width: 1280, height: 900, deviceScaleFactor: 1, mobile: false });
  const { data } = await page.send("Page.captureScreenshot", { format: "png" });
  await mkdir(new URL("../../../target/", import.meta.url), { recursive: true });
  await writeFile(SCREENSHOT, Buffer.from(data, "base64"));
  assert.ok(data.length > 1000, "a screenshot");
});

test("with a password the console asks for it, refuses a wrong one and then works", { skip }, async () => {
  const b = await broker(["--requirepass", "s3cret"]);
  await page.evaluate(`sessionStorage.clear()`).catch(() => {});
  await page.send("Page.navigate", { url: b.http("/") });
  await eventually(() => page.evaluate(`document.getElementById("login")?.hidden === false`), "the login form");
  const login = (password) =>
    page.evaluate(`(() => {
      document.getElementById("password").value = ${JSON.stringify(password)};
      document.getElementById("login").requestSubmit();
    })()`);
  await login("wrong");
  await eventually(() => page.evaluate(`document.getElementById("login-error").textContent !== ""`), "the refusal");
  await login("s3cret");
  await opened();
  assert.equal(await b.cli("PUBLISH", "__job__:x", '{"id": "x", "event": "claimed", "queue": "q"}'), "1");
  await eventually(() => page.evaluate(`document.querySelector('#jobs tr[data-job="x"]') !== null`), "events after login");
});

test("the slow log and latency panels show what the broker recorded, without the console's own calls", { skip }, async () => {
  const b = await broker();
  // Every command is slow at 0 µs: the console's own INFO and listings would flood the log if not left out.
  assert.equal(await b.cli("CONFIG", "SET", "slowlog-log-slower-than", "0"), "OK");
  assert.equal(await b.cli("CONFIG", "SET", "latency-monitor-threshold", "1"), "OK");
  await page.send("Page.navigate", { url: b.http("/") });
  await opened();
  await b.cli("SET", "slow-key", "slow value");
  const rows = () => page.evaluate(`[...document.querySelectorAll("#slowlog tbody tr")].map((r) => [...r.cells].map((c) => c.textContent).join("|"))`);
  await eventually(async () => (await rows()).some((r) => r.includes("|SET slow-key slow value|")), "the SET in the slow log");
  assert.ok(!(await rows()).some((r) => r.includes("herald-console")), "the console's own calls are left out");
  // A busy script is a latency event ("command") over the 1 ms threshold, as in Redis.
  await b.cli("EVAL", "local i = 0 while i < 3000000 do i = i + 1 end return i", "0");
  const events = () => page.evaluate(`[...document.querySelectorAll("#latency tbody tr")].map((r) => r.cells[0].textContent)`);
  await eventually(async () => (await events()).includes("command"), "the latency event");
});

test("the console logs in with a token, and asks again when it expires", { skip }, async () => {
  const secret = "console-secret";
  const b = await broker(["--requirepass", "admin"], { HERALD_TOKENS__HS256_SECRET: secret });
  const token = (secs) => signToken({ sub: "viewer", acl: "+@all ~* &*", exp: Math.floor(Date.now() / 1000) + secs }, secret);
  await page.send("Page.navigate", { url: b.http("/") });
  await eventually(() => page.evaluate(`document.getElementById("login")?.hidden === false`), "the login form");
  // A token pasted into the form: the console opens as the token's user.
  await page.evaluate(`(() => {
    document.getElementById("token").value = ${JSON.stringify(await token(3))};
    document.getElementById("login").requestSubmit();
  })()`);
  await opened();
  assert.equal(await page.evaluate(`window.herald.call("ACL", "WHOAMI")`), "viewer");
  // It expires: the broker closes the connection (4005) and the page asks for a fresh one.
  await eventually(() => page.evaluate(`document.getElementById("login").hidden === false`), "the form back after expiry");
  assert.match(await page.evaluate(`document.getElementById("login-error").textContent`), /expired/);
  // ?token= opens with one.
  await page.send("Page.navigate", { url: b.http(`/?token=${await token(60)}`) });
  await opened();
});
