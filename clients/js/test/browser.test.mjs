// Browser end to end: the broker serves /example and /herald.js; headless Chromium (Debian's, driven over
// the DevTools protocol with Node's WebSocket) opens the page, which subscribes; a PUBLISH from redis-cli
// must show up in the page's DOM, and a message published from the page's form too.
//
// Skipped when /usr/bin/chromium (or $CHROMIUM) is missing, unless HERALD_REQUIRE_BROWSER is set.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { startBroker, eventually } from "../testlib/broker.mjs";
import { skip, launchChromium, devtools } from "../testlib/chromium.mjs";

let broker;
let chromium;
let page;

before(async () => {
  if (skip) return;
  broker = await startBroker();
  chromium = await launchChromium();
  page = await devtools(chromium.port);
});

after(async () => {
  page?.close();
  await chromium?.close();
  await broker?.stop();
});

const messagesInPage = () => page.evaluate(`[...document.querySelectorAll("#messages li .data")].map((e) => e.textContent)`);

test("the example page renders a message published with redis-cli", { skip }, async () => {
  await page.send("Page.navigate", { url: broker.http("/example?channel=e2e-news") });
  await eventually(() => page.evaluate(`document.body?.dataset.subscribed === "e2e-news"`), "the page subscribed");
  assert.equal(await page.evaluate(`document.getElementById("state").textContent`), "open");

  assert.equal(await broker.cli("PUBLISH", "e2e-news", "hello from redis-cli"), "1");
  const shown = await eventually(async () => {
    const items = await messagesInPage();
    return items.includes("hello from redis-cli") && items;
  }, "the message in the page");
  assert.deepEqual(shown, ["hello from redis-cli"]);

  if (process.env.HERALD_SCREENSHOT) {
    const { data } = await page.send("Page.captureScreenshot", { format: "png" });
    await writeFile(process.env.HERALD_SCREENSHOT, Buffer.from(data, "base64"));
  }
});

test("a message published from the page's form comes back to the page", { skip }, async () => {
  const receivers = await page.evaluate(`(async () => {
    document.getElementById("text").value = "typed in the browser";
    document.getElementById("publish").requestSubmit();
    return window.herald.call("PUBSUB", "NUMSUB", "e2e-news");
  })()`);
  assert.deepEqual(receivers, ["e2e-news", 1]);
  await eventually(async () => (await messagesInPage()).includes("typed in the browser"), "the page's own message");
  // The newest first.
  assert.deepEqual(await messagesInPage(), ["typed in the browser", "hello from redis-cli"]);
});
