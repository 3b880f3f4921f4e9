// Test helpers: start a real herald binary on free ports, drive it with redis-cli, wait for events.
// Kept out of test/ so that `node --test clients/js/test/` does not count it as a test file.
import { spawn, execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { before, after } from "node:test";
import { Herald } from "../herald.js";

const execFileP = promisify(execFile);

/** The broker binary: $HERALD_BIN, or target/debug/herald of this repository. */
export const HERALD_BIN = process.env.HERALD_BIN || fileURLToPath(new URL("../../../target/debug/herald", import.meta.url));

/**
 * Starts herald with `--port 0 --http-port 0` (or the given ports, to restart on the same ones) and resolves
 * once both listeners are reported in its log. `extra` are more flags (`["--requirepass", "pw"]`), `env` more
 * environment variables (configuration as HERALD_<KEY>, e.g. `{ HERALD_TOKENS__HS256_SECRET: "s" }`).
 */
export async function startBroker({ port = 0, httpPort = 0, extra = [], env = {} } = {}) {
  if (!existsSync(HERALD_BIN)) {
    throw new Error(`no broker binary at ${HERALD_BIN}: run 'cargo build --bin herald' or set HERALD_BIN`);
  }
  const proc = spawn(HERALD_BIN, ["--port", String(port), "--http-port", String(httpPort), ...extra], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...brokerEnv(), ...env },
  });
  let log = "";
  const ports = await new Promise((resolve, reject) => {
    const onData = (chunk) => {
      log += chunk;
      const resp = /listening for RESP on [^\s]*:(\d+)/.exec(log);
      const ws = /listening for WebSocket on [^\s]*:(\d+)/.exec(log);
      if (resp && ws) resolve({ port: Number(resp[1]), httpPort: Number(ws[1]) });
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", onData);
    proc.on("exit", (code, signal) => reject(new Error(`herald exited at start (${code ?? signal}):\n${log}`)));
    proc.on("error", reject);
  });
  proc.removeAllListeners("exit");
  const exited = new Promise((resolve) => proc.on("exit", resolve));
  const pw = extra.indexOf("--requirepass");
  const auth = pw >= 0 ? ["-a", extra[pw + 1], "--no-auth-warning"] : [];
  return {
    ...ports,
    proc,
    log: () => log,
    url: (query = "") => `ws://127.0.0.1:${ports.httpPort}/ws${query}`,
    http: (path) => `http://127.0.0.1:${ports.httpPort}${path}`,
    cli: (...args) => redisCli(ports.port, ...auth, ...args),
    /** Stops the broker (SIGTERM, graceful: WebSocket clients see 1001) and waits for it to exit. */
    async stop(signal = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
  };
}

/** The test's environment without HERALD_* variables (HERALD_BIN, HERALD_REQUIRE_BROWSER, ...): the broker
 * reads HERALD_<KEY> variables as configuration, and a test's broker should run on its defaults. */
function brokerEnv() {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("HERALD_")));
  return { ...env, NO_COLOR: "1" };
}

/** Runs redis-cli against the broker; resolves with its trimmed output. */
export async function redisCli(port, ...args) {
  const { stdout } = await execFileP("redis-cli", ["-p", String(port), ...args.map(String)]);
  return stdout.trim();
}

/** Drops the broker's WebSocket connections (those named `name`, or all) with CLIENT KILL (close 4004). */
export async function killWebSocketClients(broker, name) {
  const list = await broker.cli("CLIENT", "LIST");
  const ids = list
    .split("\n")
    .filter((l) => /transport=websocket/.test(l) && (name === undefined || l.includes(` name=${name} `)))
    .map((l) => /(?:^|\s)id=(\d+)/.exec(l)[1]);
  for (const id of ids) await broker.cli("CLIENT", "KILL", "ID", id);
  return ids.length;
}

/** Resolves with the arguments of the next `event` emitted by `emitter` (Herald, Subscription, ...). */
export function nextEvent(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args.length > 1 ? args : args[0])));
}

/** Takes the next `n` items of an async iterable without ending it (no `break`, which would close it). */
export async function take(iterable, n) {
  const it = iterable[Symbol.asyncIterator]();
  const out = [];
  while (out.length < n) {
    const { value, done } = await it.next();
    if (done) throw new Error(`the iterator ended after ${out.length} of ${n} items`);
    out.push(value);
  }
  return out;
}

/** Polls `fn` until it returns a truthy value (every 20 ms; fails after `tries`, so a test never hangs). */
export async function eventually(fn, what = "condition", tries = 500) {
  for (let i = 0; i < tries; i++) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`never happened: ${what}`);
}

/**
 * For a test file: starts a broker before its tests and a connected client on it, stops both after.
 * Returns the context the tests read them from: `ctx.broker`, `ctx.h`.
 */
export function brokerAndClient(clientOptions = {}) {
  const ctx = {};
  before(async () => {
    ctx.broker = await startBroker();
    ctx.h = new Herald(ctx.broker.url(), clientOptions);
    await ctx.h.connected;
  });
  after(async () => {
    ctx.h?.close();
    await ctx.broker?.stop();
  });
  return ctx;
}

/** An HS256 JWT signed with `secret`, as an application server would issue one (node:crypto). */
export async function signToken(claims, secret) {
  const { createHmac } = await import("node:crypto");
  const part = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const body = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}
