// Browser end to end: the broker serves /example and /herald.js; headless Chromium (Debian's, driven over
// the DevTools protocol with Node's WebSocket) opens the page, which subscribes; a PUBLISH from redis-cli
// must show up in the page's DOM, and a message published from the page's form too.
//
// Skipped when /usr/bin/chromium (or $CHROMIUM) is missing, unless HERALD_REQUIRE_BROWSER is set.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBroker, eventually } from "../testlib/broker.mjs";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const missing = !existsSync(CHROMIUM);
if (missing && process.env.HERALD_REQUIRE_BROWSER) {
  throw new Error(`HERALD_REQUIRE_BROWSER is set but there is no Chromium at ${CHROMIUM} (apt-get install chromium)`);
}
const skip = missing ? `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)` : false;

/** Headless Chromium with a fresh profile; resolves with the DevTools HTTP port once it is listening. */
async function launchChromium() {
  const profile = await mkdtemp(join(tmpdir(), "herald-chromium-"));
  const proc = spawn(
    CHROMIUM,
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile}`,
      "--remote-debugging-port=0",
      "about:blank",
    ],
    { stdio: ["ignore", "ignore", "pipe"], detached: true },
  );
  let stderr = "";
  proc.stderr.on("data", (c) => (stderr += c));
  const exited = new Promise((resolve) => proc.on("exit", resolve));
  const portFile = join(profile, "DevToolsActivePort");
  const port = await eventually(async () => {
    if (proc.exitCode !== null) throw new Error(`chromium exited (${proc.exitCode}):\n${stderr}`);
    const text = await readFile(portFile, "utf8").catch(() => "");
    return /^\d+\n/.test(text) ? Number(text.split("\n")[0]) : 0;
  }, "chromium's DevToolsActivePort");
  return {
    port,
    async close() {
      // Chromium's helpers share its process group (detached: a group of its own), so end them together.
      try {
        process.kill(-proc.pid, "SIGKILL");
      } catch {
        // already gone
      }
      await exited;
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** A DevTools protocol session on one page target. */
async function devtools(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const page = targets.find((t) => t.type === "page");
  assert.ok(page, `no page target in ${JSON.stringify(targets)}`);
  const ws = new WebSocket(page.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("cannot connect to the DevTools page target"));
  });
  let nextId = 1;
  const pending = new Map();
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.error) p.reject(new Error(`${msg.error.message} (${msg.error.code})`));
    else p.resolve(msg.result);
  };
  const send = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  return {
    send,
    /** Evaluates an expression in the page (awaiting promises) and returns its value. */
    async evaluate(expression) {
      const r = await send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
      if (r.exceptionDetails) throw new Error(`page threw: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
      return r.result.value;
    },
    close: () => ws.close(),
  };
}

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
