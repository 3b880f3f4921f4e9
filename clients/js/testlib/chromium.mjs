// Headless Chromium for browser end-to-end tests: Debian's Chromium (never downloaded), driven over the
// DevTools protocol with Node's WebSocket. Shared by the JavaScript client's browser tests and the HTTP
// API's EventSource tests (tests/e2e/http.sh). Kept out of test/ so that `node --test` does not count it.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually } from "./broker.mjs";

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const missing = !existsSync(CHROMIUM);
if (missing && process.env.HERALD_REQUIRE_BROWSER) {
  throw new Error(`HERALD_REQUIRE_BROWSER is set but there is no Chromium at ${CHROMIUM} (apt-get install chromium)`);
}
/** For `test(..., { skip })`: false when Chromium is there, else why the test is skipped. */
export const skip = missing ? `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)` : false;

/** Headless Chromium with a fresh profile; resolves with the DevTools HTTP port once it is listening. */
export async function launchChromium() {
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
export async function devtools(port) {
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

