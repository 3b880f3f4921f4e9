// The HTTP API's event streams in a real browser: headless Chromium (clients/js/testlib/chromium.mjs) opens
// a page served by the broker and reads /v1/... with the browser's own EventSource: pub-sub pushes, a
// stream that is cut mid-way and resumed by EventSource's own reconnect (Last-Event-ID) without loss or
// duplicates, and a job's progress, chunks and result. Run by tests/e2e/http.sh.
//
// Skipped when Chromium is missing, unless HERALD_REQUIRE_BROWSER is set.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startBroker, eventually } from "../../clients/js/testlib/broker.mjs";
import { skip, launchChromium, devtools } from "../../clients/js/testlib/chromium.mjs";

let broker;
let chromium;
let page;

before(async () => {
  if (skip) return;
  broker = await startBroker();
  chromium = await launchChromium();
  page = await devtools(chromium.port);
  // A page of the broker's own origin: same-origin requests need no CORS entry.
  await page.send("Page.navigate", { url: broker.http("/healthz") });
  await eventually(() => page.evaluate(`document.readyState === "complete"`), "the page loaded");
  // What every EventSource of the page received, by name.
  await page.evaluate(`window.got = {}; window.follow = (name, url, kinds = ["message"]) => {
    const es = new EventSource(url);
    window.got[name] = [];
    for (const kind of kinds) es.addEventListener(kind, (e) => {
      window.got[name].push({ kind, id: e.lastEventId, data: JSON.parse(e.data) });
      if (kind === "end") es.close();
    });
    window[name] = es;
    return new Promise((resolve, reject) => { es.onopen = () => resolve(true); setTimeout(() => reject(new Error("no open")), 5000); });
  }; true`);
});

after(async () => {
  page?.close();
  await chromium?.close();
  await broker?.stop();
});

const got = (name) => page.evaluate(`window.got[${JSON.stringify(name)}]`);

test("an EventSource receives pub-sub pushes published with redis-cli", { skip }, async () => {
  assert.equal(await page.evaluate(`follow("news", "/v1/subscribe?channel=news")`), true);
  assert.equal(await broker.cli("PUBLISH", "news", "hello browser"), "1");
  const events = await eventually(async () => ((await got("news")).length ? got("news") : null), "the push in the page");
  assert.deepEqual(events, [{ kind: "message", id: "", data: { push: "message", channel: "news", data: "hello browser" } }]);
  await page.evaluate(`news.close(); true`);
});

test("an EventSource cut mid-stream resumes by itself from Last-Event-ID, losing and repeating nothing", { skip }, async () => {
  for (const entry of ["e0", "e1", "e2"]) await broker.cli("STREAM.WRITE", "log", entry);
  await page.evaluate(`follow("log", "/v1/streams/log", ["message", "end"])`);
  await eventually(async () => (await got("log")).length === 3, "the first three entries");
  // Cut every HTTP connection (the stream's): the browser reconnects a second later on its own.
  const list = await broker.cli("CLIENT", "LIST");
  for (const line of list.split("\n").filter((l) => /transport=http/.test(l))) {
    await broker.cli("CLIENT", "KILL", "ID", /(?:^|\s)id=(\d+)/.exec(line)[1]);
  }
  for (const entry of ["e3", "e4"]) await broker.cli("STREAM.WRITE", "log", entry);
  await broker.cli("STREAM.CLOSE", "log");
  const events = await eventually(async () => {
    const all = await got("log");
    return all.at(-1)?.kind === "end" ? all : null;
  }, "the end of the stream");
  assert.deepEqual(
    events.map((e) => [e.kind, e.id, e.data]),
    [
      ["message", "0", "e0"],
      ["message", "1", "e1"],
      ["message", "2", "e2"],
      ["message", "3", "e3"],
      ["message", "4", "e4"],
      ["end", "4", { next: 5 }],
    ],
  );
});

test("an EventSource follows a job's progress, chunks and result", { skip }, async () => {
  await broker.cli("JOB.SUBMIT", "q", "work", "ID", "browser-job");
  await page.evaluate(`follow("job", "/v1/jobs/browser-job/events", ["status", "progress", "chunk", "result", "error", "end"])`);
  const claim = (await broker.cli("JOB.CLAIM", "q")).split("\n");
  const token = claim[claim.indexOf("token") + 1];
  await broker.cli("JOB.PROGRESS", "browser-job", token, "50%");
  await broker.cli("JOB.CHUNK", "browser-job", token, "first");
  await broker.cli("JOB.CHUNK", "browser-job", token, "second");
  await broker.cli("JOB.COMPLETE", "browser-job", token, "all done");
  const events = await eventually(async () => {
    const all = await got("job");
    return all.at(-1)?.kind === "end" ? all : null;
  }, "the job's end");
  assert.deepEqual(
    events.map((e) => e.kind),
    ["status", "progress", "chunk", "chunk", "result", "end"],
  );
  assert.equal(events[1].data.value, "50%");
  assert.deepEqual(
    events.slice(2, 5).map((e) => [e.id, e.data]),
    [
      ["0", "first"],
      ["1", "second"],
      ["2", "all done"],
    ],
  );
});
