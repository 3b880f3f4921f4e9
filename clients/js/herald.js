// Herald JavaScript client: JSON over WebSocket, for browsers and Node (20 with --experimental-websocket,
// 22+ as is, or any version with `new Herald(url, {WebSocket})` from the `ws` package).
// One ES module, no dependencies. See README.md beside this file.
//
//   import { Herald } from "./herald.js";
//   const h = new Herald("ws://127.0.0.1:7379/ws", { password: "pw" });
//   await h.connected;
//   await h.set("k", "v");
//   for await (const m of h.subscribe("news")) console.log(m.channel, m.data);

/** An error reply from the broker (`code` is its first word: ERR, WRONGTYPE, NOAUTH, ...), or a client-side
 * failure with one of the codes below. */
export class HeraldError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.name = "HeraldError";
    this.code = code;
    Object.assign(this, extra);
  }
}

/** The connection could not carry the request. Codes: DISCONNECTED (the connection dropped while the request
 * was in flight or queueing was disabled: it may or may not have run), QUEUEFULL (too many requests waiting
 * for a connection), CLOSED (close() was called or reconnecting gave up), AUTH (the password or token was
 * refused), TOKEN_EXPIRED (the token expired and no `token` function can fetch a fresh one: close code 4005). */
export class ConnectionError extends HeraldError {
  constructor(code, message, extra) {
    super(code, message, extra);
    this.name = "ConnectionError";
  }
}

/** A resumable read cannot continue where it left off. Codes: TRIMMED (the offset is no longer retained;
 * `oldest` is the first one that is, when the broker said so), STALE (the stream was deleted and re-created
 * since), LOST (the blackboard journal no longer reaches back to the last seen `seq`: re-read the scope). */
export class ResumeError extends HeraldError {
  constructor(code, message, extra) {
    super(code, message, extra);
    this.name = "ResumeError";
  }
}

const DEFAULTS = {
  WebSocket: undefined,
  password: undefined,
  user: undefined,
  token: undefined,
  tokenRefreshMargin: 30000,
  name: undefined,
  reconnect: true,
  queueWhileDisconnected: true,
  maxQueue: 1000,
  connectTimeout: 10000,
  maxBuffer: 1000,
  decodeBinary: true,
};

const RECONNECT_DEFAULTS = { initialDelay: 100, maxDelay: 5000, factor: 2, jitter: 0.5, maxAttempts: Infinity };

// Close codes of the broker that mean "do not try again with the same settings".
const FATAL_CLOSE = new Map([[4001, "AUTH"]]);
// The broker closes a connection whose token expired with this code; a client that can fetch a fresh
// token (the `token` option is a function) reconnects with one, otherwise it stops (TOKEN_EXPIRED).
const TOKEN_EXPIRED_CLOSE = 4005;

/** The `exp` claim of a JWT (seconds since the epoch), or null when the token is not a readable JWT. */
function tokenExpiry(token) {
  try {
    const payload = String(token).split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(payload.padEnd(payload.length + ((4 - (payload.length % 4)) % 4), "="))).exp;
    return typeof exp === "number" ? exp : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Small pieces: events, base64, binary and glob.

/** A minimal event emitter that works the same in browsers and Node. Listeners that throw are reported on
 * the "error" event (or to the console when nobody listens), never to the emitter's caller. */
class Emitter {
  constructor() {
    this._listeners = new Map();
  }
  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return this;
  }
  off(event, fn) {
    this._listeners.get(event)?.delete(fn);
    return this;
  }
  once(event, fn) {
    const wrapper = (...args) => {
      this.off(event, wrapper);
      fn(...args);
    };
    return this.on(event, wrapper);
  }
  listenerCount(event) {
    return this._listeners.get(event)?.size ?? 0;
  }
  _emit(event, ...args) {
    for (const fn of [...(this._listeners.get(event) ?? [])]) {
      try {
        fn(...args);
      } catch (e) {
        if (event !== "error" && this.listenerCount("error") > 0) this._emit("error", e);
        else console.error(e);
      }
    }
  }
}

function bytesToBase64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function base64ToBytes(text) {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function isBinaryForm(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v) && typeof v.base64 === "string" && Object.keys(v).length === 1;
}

/** Turns the wire's `{"base64": "..."}` values into Uint8Array, everywhere in a reply. */
function decodeValue(v) {
  if (Array.isArray(v)) return v.map(decodeValue);
  if (v !== null && typeof v === "object") {
    if (isBinaryForm(v)) return base64ToBytes(v.base64);
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = decodeValue(x);
    return out;
  }
  return v;
}

/** One command argument as the wire wants it: strings and numbers as they are, bytes as {"base64": ...}. */
function encodeArg(a, i) {
  if (typeof a === "string") return a;
  if (typeof a === "number") {
    if (!Number.isFinite(a)) throw new TypeError(`argument ${i} is ${a}: not a finite number`);
    return a;
  }
  if (typeof a === "bigint") return a.toString();
  if (a instanceof Uint8Array) return { base64: bytesToBase64(a) };
  if (a instanceof ArrayBuffer) return { base64: bytesToBase64(new Uint8Array(a)) };
  if (ArrayBuffer.isView(a)) return { base64: bytesToBase64(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)) };
  if (isBinaryForm(a)) return a;
  const what = a === null ? "null" : Array.isArray(a) ? "an array" : typeof a;
  throw new TypeError(`argument ${i} is ${what}: pass a string, a number or bytes (JSON.stringify objects yourself)`);
}

/** A reply that is a map, whether the broker sent it as an object or as a flat [k, v, k, v] array. */
function asMap(v) {
  if (!Array.isArray(v)) return v;
  const out = {};
  for (let i = 0; i + 1 < v.length; i += 2) out[v[i]] = v[i + 1];
  return out;
}

const utf8 = new TextEncoder();

/** Redis's glob rules (`*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\` escapes), for filtering replayed changes the
 * way the broker filters pattern subscriptions. A port of Redis's `stringmatchlen` (as the broker's
 * `engine/glob.rs`): it matches the UTF-8 bytes of both sides, not characters, so `?` is one byte (`caf?`
 * does not match `café`, whose `é` is two), ranges compare bytes as C's signed `char`, and `*` never matches
 * an empty text, exactly as the live subscription the broker filters would. Strings or Uint8Arrays. */
export function globMatch(pattern, text) {
  const p = typeof pattern === "string" ? utf8.encode(pattern) : pattern;
  const s = typeof text === "string" ? utf8.encode(text) : text;
  const signed = (b) => (b > 127 ? b - 256 : b);
  let skipLonger = false;
  const match = (pi, si, nesting) => {
    if (nesting > 1000) return false;
    while (pi < p.length && si < s.length) {
      const c = p[pi];
      if (c === 0x2a /* * */) {
        while (pi + 1 < p.length && p[pi + 1] === 0x2a) pi++;
        if (pi + 1 === p.length) return true;
        for (; si < s.length; si++) {
          if (match(pi + 1, si, nesting + 1)) return true;
          if (skipLonger) return false;
        }
        skipLonger = true;
        return false;
      } else if (c === 0x3f /* ? */) {
        si++;
      } else if (c === 0x5b /* [ */) {
        pi++;
        const negate = pi < p.length && p[pi] === 0x5e; /* ^ */
        if (negate) pi++;
        const ch = s[si];
        let hit = false;
        for (;;) {
          if (pi < p.length && p[pi] === 0x5c /* \ */ && p.length - pi >= 2) {
            pi++;
            if (p[pi] === ch) hit = true;
          } else if (pi < p.length && p[pi] === 0x5d /* ] */) {
            break;
          } else if (pi >= p.length) {
            pi--; // an unterminated class matches what it has seen
            break;
          } else if (p.length - pi >= 3 && p[pi + 1] === 0x2d /* - */) {
            let lo = signed(p[pi]);
            let hi = signed(p[pi + 2]);
            if (lo > hi) [lo, hi] = [hi, lo];
            pi += 2;
            if (signed(ch) >= lo && signed(ch) <= hi) hit = true;
          } else if (p[pi] === ch) {
            hit = true;
          }
          pi++;
        }
        if (hit === negate) return false;
        si++;
      } else {
        if (c === 0x5c /* \ */ && p.length - pi >= 2) pi++;
        if (p[pi] !== s[si]) return false;
        si++;
      }
      pi++;
      if (si === s.length) {
        while (pi < p.length && p[pi] === 0x2a) pi++;
        break;
      }
    }
    return pi >= p.length && si === s.length;
  };
  return match(0, 0, 0);
}

/** Escapes glob metacharacters so a literal name can sit inside a pattern. */
function escapeGlob(s) {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done);
  });
}

/** Resolves once the client is open (at once if it is) or closed. */
function untilOpen(client) {
  if (client.state === "open" || client.state === "closed") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      client.off("connect", done).off("reconnect", done).off("close", done);
      resolve();
    };
    client.on("connect", done).on("reconnect", done).on("close", done);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Feeds: what subscriptions and watches share (callbacks plus a bounded async-iterator buffer).

/** Items pushed by the client, delivered to `on(itemEvent, fn)` listeners and to async iteration. Items are
 * buffered for iteration once iteration started, or while nobody listens (so nothing is lost between
 * subscribing and the first `for await`); the buffer keeps the newest `maxBuffer` items (counted in
 * `dropped`). */
class Feed extends Emitter {
  constructor(itemEvent, maxBuffer) {
    super();
    this._itemEvent = itemEvent;
    this._maxBuffer = maxBuffer;
    this._buffer = [];
    this._waiters = [];
    this._iterating = false;
    this._ended = false;
    this._endError = null;
    this.dropped = 0;
  }

  get ended() {
    return this._ended;
  }

  _deliver(item) {
    if (this._ended) return;
    this._emit(this._itemEvent, item);
    if (this._waiters.length) {
      this._waiters.shift().resolve({ value: item, done: false });
    } else if (this._iterating || this.listenerCount(this._itemEvent) === 0) {
      this._buffer.push(item);
      if (this._buffer.length > this._maxBuffer) {
        this._buffer.shift();
        this.dropped++;
      }
    }
  }

  /** Ends the feed: iterators finish after the buffered items (or throw `error`), "end" fires. */
  _end(error = null) {
    if (this._ended) return;
    this._ended = true;
    this._endError = error;
    if (error) this._emit("error", error);
    for (const w of this._waiters.splice(0)) {
      if (error) w.reject(error);
      else w.resolve({ value: undefined, done: true });
    }
    this._emit("end", error);
  }

  [Symbol.asyncIterator]() {
    this._iterating = true;
    const feed = this;
    return {
      next() {
        if (feed._buffer.length) return Promise.resolve({ value: feed._buffer.shift(), done: false });
        if (feed._ended) {
          if (feed._endError) {
            const e = feed._endError;
            feed._endError = null;
            return Promise.reject(e);
          }
          return Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => feed._waiters.push({ resolve, reject }));
      },
      async return() {
        await feed.close();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }
}

const SUB_KINDS = {
  channel: { subscribe: "SUBSCRIBE", unsubscribe: "UNSUBSCRIBE", push: "message" },
  pattern: { subscribe: "PSUBSCRIBE", unsubscribe: "PUNSUBSCRIBE", push: "pmessage" },
  shard: { subscribe: "SSUBSCRIBE", unsubscribe: "SUNSUBSCRIBE", push: "smessage" },
};

/** Channels, patterns or shard channels subscribed together. Messages are `{channel, data, pattern?}`;
 * listen with `on("message", fn)` or iterate with `for await`. Breaking out of the loop unsubscribes. */
export class Subscription extends Feed {
  constructor(client, kind, names) {
    super("message", client.options.maxBuffer);
    this.client = client;
    this.kind = kind;
    this.names = new Set(names);
    let resolve;
    let reject;
    /** Settles when the broker first confirmed these names (after a reconnect if sent while disconnected). */
    this.ready = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.ready.catch(() => {});
    this._ready = { resolve, reject };
  }

  /** Unsubscribes every name of this subscription (the broker is told only about names no other
   * subscription of the client still holds) and ends it. */
  async close() {
    if (this._ended) return;
    this._end();
    await this.client._dropSubscription(this);
  }

  unsubscribe() {
    return this.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// The client.

/** A connection to a Herald broker's WebSocket endpoint that reconnects by itself. */
export class Herald extends Emitter {
  /**
   * @param {string} url ws://host:port/ws (credentials may also be given as ?password=...&user=...)
   * @param {object} [options] see README.md and herald.d.ts
   */
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.options = { ...DEFAULTS, ...options };
    const r = this.options.reconnect;
    this._reconnect = r === false ? null : { ...RECONNECT_DEFAULTS, ...(r === true ? {} : r) };
    this._WS = this.options.WebSocket ?? globalThis.WebSocket;
    if (typeof this._WS !== "function") {
      throw new TypeError(
        "no WebSocket implementation: run Node 20 with --experimental-websocket (Node 22+ has one built in), " +
          "or pass one: new Herald(url, { WebSocket }) with WebSocket from the 'ws' package",
      );
    }
    this._auth = this.options.password !== undefined ? { user: this.options.user, password: this.options.password } : null;
    // A token (or a function that returns one, maybe a promise): AUTH.TOKEN on every connection, and
    // again before it expires when a function can fetch a fresh one.
    this._tokenSource = typeof this.options.token === "function" ? this.options.token : null;
    this._token = this._tokenSource ? null : (this.options.token ?? null);
    this._refreshTimer = null;
    this._db = null;
    this._ws = null;
    this._state = "connecting"; // connecting | handshake | open | waiting | closed
    this._nextId = 1;
    this._inflight = new Map(); // id -> {resolve, reject, cmd}
    this._queue = []; // requests waiting for a connection: {frame..., resolve, reject}
    this._subs = { channel: new Map(), pattern: new Map(), shard: new Map() }; // name -> Set<Subscription>
    this._watches = new Set();
    this._children = new Set();
    this._attempt = 0;
    this._timer = null;
    this._everConnected = false;
    this._quitting = false;
    let resolve;
    let reject;
    /** Resolves on the first successful connection (authenticated and resubscribed); rejects if the client
     * is closed or gives up first. */
    this.connected = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.connected.catch(() => {});
    this._connected = { resolve, reject };
    this._open();
  }

  /** "connecting" (first attempt), "open", "reconnecting" (between attempts or during one) or "closed". */
  get state() {
    if (this._state === "open" || this._state === "closed") return this._state;
    return this._everConnected ? "reconnecting" : "connecting";
  }

  /** A socket is open (serving, or in its handshake): (un)subscriptions go out now, not at the next one. */
  get _live() {
    return this._state === "open" || this._state === "handshake";
  }

  // ---- commands

  /** Sends one command; resolves with its reply, rejects with a HeraldError. */
  call(...args) {
    return this.command(args);
  }

  /** Like call(), with the command as one array. */
  command(args) {
    let cmd;
    try {
      if (!Array.isArray(args) || args.length === 0) throw new TypeError("a command needs at least its name");
      cmd = args.map(encodeArg);
    } catch (e) {
      return Promise.reject(e);
    }
    const name = String(args[0]).toUpperCase();
    const p = this._request(cmd);
    if (name === "QUIT") this._quitting = true;
    if (name === "AUTH") {
      // Remembered so that a reconnect authenticates again.
      p.then(() => {
        this._auth = args.length >= 3 ? { user: args[1], password: args[2] } : { password: args[1] };
        this._token = null;
        this._tokenSource = null;
      }, () => {});
    }
    if (name === "AUTH.TOKEN") {
      p.then(() => {
        this._token = args[1];
        this._auth = null;
      }, () => {});
    }
    if (name === "SELECT") p.then(() => (this._db = args[1]), () => {});
    return p;
  }

  ping(message) {
    return message === undefined ? this.call("PING") : this.call("PING", message);
  }
  get(key) {
    return this.call("GET", key);
  }
  /** set("k", "v"), set("k", "v", "EX", 10), set("k", "v", "NX") ... as Redis's SET. */
  set(key, value, ...options) {
    return this.call("SET", key, value, ...options);
  }
  del(...keys) {
    return this.call("DEL", ...keys);
  }
  incr(key) {
    return this.call("INCR", key);
  }
  /** Resolves with the number of clients that received the message. */
  publish(channel, message) {
    return this.call("PUBLISH", channel, message);
  }

  // ---- thin helpers for the seeds' primitives (each is one command; docs/commands.md has the details)

  /** SEM.ACQUIRE: one of `permits` permits under a lease; resolves with its fencing token, or null when none
   * was free (within `block` ms, if given; 0 waits as long as it takes). */
  semAcquire(name, permits, { lease, block } = {}) {
    const args = ["SEM.ACQUIRE", name, permits];
    if (lease !== undefined) args.push("LEASE", lease);
    if (block !== undefined) args.push("BLOCK", block);
    return this.command(args);
  }
  /** SEM.EXTEND: the lease ends `ms` from now; resolves with its new end (unix ms). */
  semExtend(name, token, ms) {
    return this.call("SEM.EXTEND", name, token, ms);
  }
  semRelease(name, token) {
    return this.call("SEM.RELEASE", name, token);
  }
  /** MSG.REQUEST: sends a request and resolves with the reply, or null if none came within `timeout` ms. */
  request(dest, topic, payload, timeout) {
    return this.call("MSG.REQUEST", dest, topic, payload, "TIMEOUT", timeout);
  }
  /** MSG.REPLY to the `reply_to` of a request received with MSG.RECV; resolves false if it came too late. */
  reply(replyTo, payload) {
    return this.call("MSG.REPLY", replyTo, payload).then((n) => n === 1);
  }
  /** SCHEMA.SET: `schema` as an object (or JSON text); `scope` for a board's scope. */
  setSchema(kind, name, schema, { scope } = {}) {
    const args = ["SCHEMA.SET", kind, name, typeof schema === "string" ? schema : JSON.stringify(schema)];
    if (scope !== undefined) args.push("SCOPE", scope);
    return this.command(args);
  }
  /** JOB.QUEUE queue PAUSE / RESUME. */
  pauseQueue(queue) {
    return this.call("JOB.QUEUE", queue, "PAUSE");
  }
  resumeQueue(queue) {
    return this.call("JOB.QUEUE", queue, "RESUME");
  }
  /** JOB.JOIN: resolves true once the queue has no job queued, delayed or running; false on timeout. */
  joinQueue(queue, { timeout } = {}) {
    const args = ["JOB.JOIN", queue];
    if (timeout !== undefined) args.push("TIMEOUT", timeout);
    return this.command(args).then((r) => r !== null);
  }

  // ---- discovery (JOB.QUEUES, BL.BOARDS, BB.SCOPES, MSG.DESTS, STREAM.LIST; docs/commands.md#discovery)

  /** One page of a discovery listing: resolves with { cursor, entries }; cursor "0" means the end. */
  async listPage(command, cursor = "0", { match, count, scope } = {}) {
    const args = [command, cursor];
    if (match !== undefined) args.push("MATCH", match);
    if (count !== undefined) args.push("COUNT", count);
    if (scope !== undefined) args.push("SCOPE", scope);
    const [next, entries] = await this.command(args);
    return { cursor: String(next), entries };
  }
  /** Every entry of a discovery listing, page by page (`count` per page). */
  async listAll(command, options = {}) {
    const all = [];
    let cursor = "0";
    do {
      const page = await this.listPage(command, cursor, options);
      all.push(...page.entries);
      cursor = page.cursor;
    } while (cursor !== "0");
    return all;
  }
  /** Job queues with queued / delayed / running / dead counts, paused and concurrency. */
  queues(options = {}) {
    return this.listAll("JOB.QUEUES", options);
  }
  /** Bulletin boards with items / leased / dead (every scope, or `scope`). */
  boards(options = {}) {
    return this.listAll("BL.BOARDS", options);
  }
  /** Blackboard scopes with keys, journal seq and journal entries. */
  scopes(options = {}) {
    return this.listAll("BB.SCOPES", options);
  }
  /** Mailbox destinations with their length and waiting messages per topic. */
  dests(options = {}) {
    return this.listAll("MSG.DESTS", options);
  }
  /** Streams with length, first / last offset and closed. */
  streams(options = {}) {
    return this.listAll("STREAM.LIST", options);
  }

  _request(cmd, { internal = false } = {}) {
    return new Promise((resolve, reject) => {
      const req = { cmd, resolve, reject };
      if (this._state === "closed") {
        reject(this._closedBy);
      } else if (this._state === "open" || (internal && this._state === "handshake")) {
        this._send(req);
      } else if (!this.options.queueWhileDisconnected) {
        reject(new ConnectionError("DISCONNECTED", "not connected (queueWhileDisconnected is off)"));
      } else if (this._queue.length >= this.options.maxQueue) {
        reject(new ConnectionError("QUEUEFULL", `not connected and ${this._queue.length} requests already wait`));
      } else {
        this._queue.push(req);
      }
    });
  }

  _send(req) {
    const id = this._nextId++;
    this._inflight.set(id, req);
    try {
      this._ws.send(JSON.stringify({ id, cmd: req.cmd }));
    } catch {
      // The socket is going away: its close handler rejects everything in flight, this one included.
    }
  }

  // ---- connection lifecycle

  _open() {
    this._timer = null;
    this._state = "connecting";
    let ws;
    try {
      ws = new this._WS(this.url);
    } catch (e) {
      this._emit("error", e);
      this._retry();
      return;
    }
    this._ws = ws;
    const timeout = setTimeout(() => {
      if (this._ws === ws && this._state === "connecting") {
        this._emit("error", new ConnectionError("TIMEOUT", `no connection within ${this.options.connectTimeout} ms`));
        this._abandon(ws);
      }
    }, this.options.connectTimeout);
    ws.onopen = () => {
      clearTimeout(timeout);
      if (this._ws === ws) this._handshake();
    };
    ws.onmessage = (ev) => {
      if (this._ws === ws) this._onFrame(ev.data);
    };
    ws.onerror = () => {}; // a close event follows, with the code
    ws.onclose = (ev) => {
      clearTimeout(timeout);
      if (this._ws === ws) this._onClose(ev.code, ev.reason);
    };
  }

  /** Drops a socket that will not be used (its events are ignored from now on) and retries. */
  _abandon(ws) {
    this._ws = null;
    try {
      ws.close();
    } catch {
      // already closing
    }
    this._failInflight();
    this._retry();
  }

  /** On every (re)connect, before any queued request: authenticate, select the database, resubscribe. */
  async _handshake() {
    this._state = "handshake";
    const steps = [];
    if (this._tokenSource) {
      // A fresh token for every connection, fetched before anything is sent on it.
      const ws = this._ws;
      try {
        this._token = await this._tokenSource();
      } catch (e) {
        this._fatal(new ConnectionError("AUTH", `the token function failed: ${e.message}`));
        return;
      }
      if (this._ws !== ws) return;
    }
    if (this._token) {
      steps.push(
        this._request(["AUTH.TOKEN", this._token], { internal: true }).then(
          () => this._scheduleRefresh(),
          (e) => {
            throw e instanceof ConnectionError ? e : new ConnectionError("AUTH", `authentication failed: ${e.code} ${e.message}`);
          },
        ),
      );
    } else if (this._auth) {
      const a = this._auth;
      const auth = a.user !== undefined ? ["AUTH", a.user, a.password] : ["AUTH", a.password];
      steps.push(
        this._request(auth, { internal: true }).catch((e) => {
          throw e instanceof ConnectionError ? e : new ConnectionError("AUTH", `authentication failed: ${e.code} ${e.message}`);
        }),
      );
    }
    if (this._db !== null) steps.push(this._request(["SELECT", this._db], { internal: true }));
    if (this.options.name) steps.push(this._request(["CLIENT", "SETNAME", this.options.name], { internal: true }));
    const resubs = [];
    for (const [kind, map] of Object.entries(this._subs)) {
      if (map.size === 0) continue;
      const names = [...map.keys()];
      const p = this._request([SUB_KINDS[kind].subscribe, ...names], { internal: true });
      resubs.push(
        p.then(
          () => this._confirm(kind, names),
          (e) => {
            if (e instanceof ConnectionError) throw e; // dropped again: the next handshake resubscribes
            this._subscribeFailed(kind, names, e);
          },
        ),
      );
    }
    // Connected means the broker answered (credentials in the URL are checked before any reply).
    if (steps.length + resubs.length === 0) steps.push(this._request(["PING"], { internal: true }));
    const ws = this._ws;
    try {
      await Promise.all([...steps, ...resubs]);
    } catch (e) {
      if (this._ws !== ws) return; // the connection dropped meanwhile: the close handler retries
      if (e instanceof ConnectionError && e.code === "AUTH") {
        this._fatal(e);
        return;
      }
      this._emit("error", e);
    }
    if (this._ws !== ws) return;
    this._state = "open";
    this._attempt = 0;
    for (const req of this._queue.splice(0)) this._send(req);
    const first = !this._everConnected;
    this._everConnected = true;
    if (first) {
      this._connected.resolve();
      this._emit("connect");
    } else {
      this._emit("reconnect");
    }
    for (const w of this._watches) w._resume();
  }

  _onClose(code, reason) {
    const wasOpen = this._state === "open" || this._state === "handshake";
    this._ws = null;
    clearTimeout(this._refreshTimer);
    this._failInflight();
    if (this._state === "closed") return;
    for (const w of this._watches) w._hold();
    if (wasOpen) this._emit("disconnect", { code, reason });
    if (this._quitting) {
      this._shutdown(new ConnectionError("CLOSED", "the connection was closed by QUIT"));
      return;
    }
    if (code === TOKEN_EXPIRED_CLOSE && !this._tokenSource) {
      this._fatal(new ConnectionError("TOKEN_EXPIRED", "the token expired: refresh it with refreshToken() before it does", { closeCode: code }));
      return;
    }
    const fatal = FATAL_CLOSE.get(code);
    if (fatal) {
      this._fatal(new ConnectionError(fatal, `the broker closed the connection: ${code} ${reason || ""}`.trim(), { closeCode: code }));
      return;
    }
    this._retry();
  }

  _failInflight(error = new ConnectionError("DISCONNECTED", "the connection dropped before the reply (the command may or may not have run)")) {
    const inflight = [...this._inflight.values()];
    this._inflight.clear();
    for (const req of inflight) req.reject(error);
  }

  _retry() {
    if (this._state === "closed") return;
    const r = this._reconnect;
    if (!r || this._attempt >= r.maxAttempts) {
      this._shutdown(new ConnectionError("CLOSED", r ? `gave up after ${this._attempt} reconnect attempts` : "disconnected (reconnect is off)"));
      return;
    }
    const base = Math.min(r.maxDelay, r.initialDelay * r.factor ** this._attempt);
    const delay = base * (1 - r.jitter * Math.random());
    this._attempt++;
    this._state = "waiting";
    this._timer = setTimeout(() => this._open(), delay);
  }

  /** Reconnects now instead of waiting for the backoff (for instance on the browser's "online" event).
   * Does nothing while connected or connecting. */
  reconnect() {
    if (this._state !== "waiting") return;
    clearTimeout(this._timer);
    this._open();
  }

  /**
   * Presents a fresh token on the open connection (AUTH.TOKEN), so the broker does not close it when the
   * current one expires; later reconnects use it too. Without an argument, the `token` function is asked
   * for one (which the client also does by itself, `tokenRefreshMargin` ms before each token expires).
   */
  async refreshToken(token) {
    const fresh = token ?? (this._tokenSource ? await this._tokenSource() : null);
    if (!fresh) throw new TypeError("refreshToken() needs a token, or a `token` function in the options");
    await this._request(["AUTH.TOKEN", fresh]);
    this._token = fresh;
    this._auth = null;
    this._scheduleRefresh();
  }

  /** With a `token` function: fetches and presents a fresh token a margin before the current one expires. */
  _scheduleRefresh() {
    clearTimeout(this._refreshTimer);
    const exp = tokenExpiry(this._token);
    if (!this._tokenSource || exp === null || this._state === "closed") return;
    const left = exp * 1000 - Date.now();
    const delay = Math.max(0, left - Math.min(this.options.tokenRefreshMargin, left / 2));
    this._refreshTimer = setTimeout(() => {
      this.refreshToken().catch((e) => this._emit("error", e));
    }, delay);
  }

  _fatal(error) {
    this._emit("error", error);
    this._shutdown(error);
  }

  /** Stops for good: rejects everything waiting, ends subscriptions, closes followers. */
  _shutdown(error) {
    if (this._state === "closed") return;
    this._state = "closed";
    this._closedBy = error;
    clearTimeout(this._timer);
    clearTimeout(this._refreshTimer);
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
    }
    this._failInflight(error);
    for (const req of this._queue.splice(0)) req.reject(error);
    this._connected.reject(error);
    for (const map of Object.values(this._subs)) {
      for (const subs of map.values()) {
        for (const s of subs) {
          s._ready.reject(error);
          s._end();
        }
      }
      map.clear();
    }
    for (const w of this._watches) w._end();
    this._watches.clear();
    for (const c of this._children) c.close();
    this._emit("close", error);
  }

  /** Closes the connection for good; pending requests reject with ConnectionError CLOSED. */
  close() {
    this._shutdown(new ConnectionError("CLOSED", "the client is closed"));
  }

  /** A new client with the same URL, options and credentials (for blocking commands, which hold the replies
   * of later requests on their connection). Closed with this one. */
  duplicate(overrides = {}) {
    const token = this._tokenSource ?? this._token ?? undefined;
    const c = new Herald(this.url, { ...this.options, ...(this._auth ?? {}), token, ...overrides });
    if (this._db !== null) c._db = this._db;
    this._children.add(c);
    c.on("close", () => this._children.delete(c));
    return c;
  }

  // ---- frames

  _onFrame(data) {
    let msg;
    try {
      msg = JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data));
    } catch (e) {
      this._emit("error", new HeraldError("PROTOCOL", `unparsable frame from the broker: ${e.message}`));
      return;
    }
    if (msg === null || typeof msg !== "object") return;
    if (typeof msg.push === "string") {
      this._onPush(msg);
      return;
    }
    const req = this._inflight.get(msg.id);
    if (!req) {
      if (msg.error) this._emit("error", new HeraldError(msg.error.code ?? "ERR", msg.error.message ?? "", { id: msg.id }));
      return;
    }
    this._inflight.delete(msg.id);
    if (msg.error) {
      req.reject(new HeraldError(msg.error.code ?? "ERR", msg.error.message ?? "", { command: req.cmd }));
    } else {
      req.resolve(this.options.decodeBinary ? decodeValue(msg.result) : msg.result);
    }
  }

  _onPush(msg) {
    if (msg.push === "lagged") {
      this._emit("lagged", msg.count);
      for (const w of this._watches) w._resume(); // the journal has what the dropped pushes carried
      for (const map of Object.values(this._subs)) for (const subs of map.values()) for (const s of subs) s._emit("lagged", msg.count);
      return;
    }
    const kind = Object.keys(SUB_KINDS).find((k) => SUB_KINDS[k].push === msg.push);
    if (!kind) {
      this._emit("push", msg);
      return;
    }
    const data = this.options.decodeBinary ? decodeValue(msg.data) : msg.data;
    const message = kind === "pattern" ? { pattern: msg.pattern, channel: msg.channel, data } : { channel: msg.channel, data };
    const key = kind === "pattern" ? msg.pattern : msg.channel;
    for (const s of this._subs[kind].get(key) ?? []) s._deliver(message);
  }

  // ---- pub-sub

  /** Subscribes to channels; returns a Subscription (async iterator and event emitter). */
  subscribe(...channels) {
    return this._subscribe("channel", channels);
  }
  /** Subscribes to glob patterns (Redis's rules); messages carry `pattern` and `channel`. */
  psubscribe(...patterns) {
    return this._subscribe("pattern", patterns);
  }
  /** Subscribes to shard channels (SSUBSCRIBE; published with SPUBLISH). */
  ssubscribe(...channels) {
    return this._subscribe("shard", channels);
  }

  _subscribe(kind, names) {
    if (names.length === 0) throw new TypeError("subscribe needs at least one name");
    if (this._state === "closed") throw new ConnectionError("CLOSED", "the client is closed");
    const sub = new Subscription(this, kind, names);
    const map = this._subs[kind];
    const fresh = names.filter((n) => !map.has(n));
    for (const n of names) {
      if (!map.has(n)) map.set(n, new Set());
      map.get(n).add(sub);
    }
    if (this._live && fresh.length) {
      // While disconnected or connecting, the next handshake subscribes everything in the maps instead.
      this._request([SUB_KINDS[kind].subscribe, ...fresh], { internal: true }).then(
        () => this._confirm(kind, names),
        (e) => {
          if (!(e instanceof ConnectionError)) this._subscribeFailed(kind, fresh, e);
        },
      );
    } else if (this._live) {
      sub._ready.resolve();
    }
    return sub;
  }

  _confirm(kind, names) {
    for (const n of names) for (const s of this._subs[kind].get(n) ?? []) s._ready.resolve();
  }

  _subscribeFailed(kind, names, error) {
    const ended = new Set();
    for (const n of names) for (const s of this._subs[kind].get(n) ?? []) ended.add(s);
    for (const s of ended) {
      s._ready.reject(error);
      s._end(error);
      this._dropSubscription(s).catch(() => {});
    }
  }

  async _dropSubscription(sub) {
    const map = this._subs[sub.kind];
    const gone = [];
    for (const n of sub.names) {
      const set = map.get(n);
      if (!set) continue;
      set.delete(sub);
      if (set.size === 0) {
        map.delete(n);
        gone.push(n);
      }
    }
    if (gone.length && this._live) {
      await this._request([SUB_KINDS[sub.kind].unsubscribe, ...gone], { internal: true }).catch(() => {});
    }
  }

  /** Unsubscribes these channels (all channels without arguments) from every subscription holding them;
   * subscriptions left with no channel end. */
  unsubscribe(...channels) {
    return this._unsubscribeNames("channel", channels);
  }
  punsubscribe(...patterns) {
    return this._unsubscribeNames("pattern", patterns);
  }
  sunsubscribe(...channels) {
    return this._unsubscribeNames("shard", channels);
  }

  async _unsubscribeNames(kind, names) {
    const map = this._subs[kind];
    const targets = names.length ? names.filter((n) => map.has(n)) : [...map.keys()];
    const touched = new Set();
    for (const n of targets) {
      for (const s of map.get(n)) {
        s.names.delete(n);
        touched.add(s);
      }
      map.delete(n);
    }
    for (const s of touched) if (s.names.size === 0) s._end();
    if (targets.length && this._live) {
      await this._request([SUB_KINDS[kind].unsubscribe, ...targets], { internal: true }).catch(() => {});
    }
  }

  // ---- resumable reads

  /** Follows a stream (STREAM.READ) from an offset: an async iterator of `{offset, data}` that ends when the
   * stream is closed, resumes from the last offset after reconnects, and throws ResumeError TRIMMED or
   * STALE when it cannot. */
  follow(key, options = {}) {
    return new Follower(this, "STREAM.READ", key, options);
  }

  /** Follows a job's result chunks (JOB.READ) like follow(); ends once the job ended and every chunk was
   * read (then JOB.RESULT has the result). */
  followJob(id, options = {}) {
    return new Follower(this, "JOB.READ", id, options);
  }

  /** Watches a blackboard scope's keys matching a glob pattern: set / del / expire events with their values,
   * gaps after a reconnect filled from the scope's journal (BB.CHANGES), LOST reported as ResumeError. */
  watch(scope, pattern = "*", options = {}) {
    if (this._state === "closed") throw new ConnectionError("CLOSED", "the client is closed");
    return new Watch(this, scope, pattern, options);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Follower: STREAM.READ / JOB.READ from an offset, resumed across reconnects.

const OLDEST_RE = /oldest retained offset is (\d+)/;

/** An async iterator of `{offset, data}`. `offset` is the next offset it will read, `epoch` the stream's
 * epoch once known. By default it reads with BLOCK on a connection of its own (`client`), so it never
 * holds up the main connection; with `{poll: ms}` it polls on the main connection instead. */
export class Follower {
  constructor(parent, command, key, options) {
    this.command = command;
    this.key = key;
    this.offset = options.from ?? 0;
    this.epoch = options.epoch ?? null;
    this._count = options.count ?? 100;
    this._block = options.block ?? 5000;
    this._poll = options.poll ?? null;
    this.client = this._poll ? parent : parent.duplicate({ ...options.clientOptions, queueWhileDisconnected: true });
    this._ownClient = !this._poll;
    this._stop = new AbortController();
    this._gen = null;
  }

  [Symbol.asyncIterator]() {
    this._gen ??= this._run();
    return this._gen;
  }

  /** Stops following: a pending read is abandoned and the iterator finishes. */
  async close() {
    this._stop.abort();
    if (this._ownClient) this.client.close();
  }

  _readArgs() {
    const args = [this.command, this.key, "FROM", this.offset, "COUNT", this._count];
    if (!this._poll) args.push("BLOCK", this._block);
    if (this.epoch !== null && this.command === "STREAM.READ") args.push("EPOCH", this.epoch);
    return args;
  }

  async *_run() {
    try {
      while (!this._stop.signal.aborted) {
        let reply;
        try {
          reply = await this.client.command(this._readArgs());
        } catch (e) {
          if (this._stop.signal.aborted) return;
          if (e instanceof ConnectionError && e.code === "DISCONNECTED") {
            await untilOpen(this.client); // then read again from the same offset
            continue;
          }
          if (e.code === "TRIMMED" || e.code === "STALE") {
            const oldest = OLDEST_RE.exec(e.message);
            throw new ResumeError(e.code, `${this.command} ${this.key} cannot resume at offset ${this.offset}: ${e.message}`, {
              offset: this.offset,
              ...(oldest ? { oldest: Number(oldest[1]) } : {}),
            });
          }
          throw e;
        }
        if (reply === null) continue; // BLOCK timed out
        const r = asMap(reply);
        if (r.epoch !== undefined && r.epoch !== null) this.epoch = r.epoch;
        for (const [offset, data] of r.entries ?? []) {
          if (offset < this.offset) continue;
          this.offset = offset + 1;
          yield { offset, data };
          if (this._stop.signal.aborted) return;
        }
        if (typeof r.next === "number") this.offset = Math.max(this.offset, r.next);
        if (r.closed) return;
        if (this._poll && !(r.entries ?? []).length) await sleep(this._poll, this._stop.signal);
      }
    } finally {
      if (this._ownClient) this.client.close();
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Watch: blackboard events for a scope and key pattern, resumed from the journal.

/** Blackboard events `{scope, key, event, seq, revision, value, replayed?}` in seq order, on
 * `on("change", fn)` and async iteration. `seq` is the last change seen. After a reconnect the gap is read
 * with BB.CHANGES; if the journal no longer reaches back, the watch ends with ResumeError LOST, or, with
 * `{onLost: "resync"}`, delivers `{event: "snapshot", scope, seq, entries}` from BB.GETALL and goes on. */
export class Watch extends Feed {
  constructor(client, scope, pattern, options) {
    super("change", client.options.maxBuffer);
    this.client = client;
    this.scope = scope;
    this.pattern = pattern;
    this.seq = options.since ?? null;
    this._onLost = options.onLost ?? "throw";
    this._holding = true;
    this._held = [];
    this._chain = Promise.resolve();
    this._sub = client.psubscribe(`__bb:*@${escapeGlob(scope)}__:${pattern}`);
    this._sub.on("message", (m) => this._onMessage(m));
    this._sub.on("end", (e) => this._end(e));
    client._watches.add(this);
    /** Settles once the watch is subscribed and knows its starting seq (or caught up from `since`). */
    this.ready = this._sub.ready.then(() => {
      if (client.state === "open") return this._resume();
    });
    this.ready.catch(() => {});
  }

  async close() {
    if (this._ended) return;
    this.client._watches.delete(this);
    this._end();
    await this._sub.close();
  }

  _onMessage(m) {
    let ev;
    try {
      ev = typeof m.data === "string" ? JSON.parse(m.data) : null;
    } catch {
      ev = null;
    }
    if (!ev || typeof ev.seq !== "number") {
      this._emit("error", new HeraldError("PROTOCOL", `unexpected watch message on ${m.channel}`));
      return;
    }
    if (this.client.options.decodeBinary) ev.value = decodeValue(ev.value);
    if (this._holding) this._held.push(ev);
    else this._accept(ev);
  }

  _accept(ev) {
    if (this.seq !== null && ev.seq <= this.seq) return; // already delivered (replay and push overlap)
    this.seq = ev.seq;
    this._deliver(ev);
  }

  /** The connection dropped: hold pushes until the gap is filled. */
  _hold() {
    this._holding = true;
  }

  /** After a (re)connect: fill the gap since `seq`, then release the held pushes. Serialized. */
  _resume() {
    this._holding = true;
    this._chain = this._chain.then(() => this._fill());
    return this._chain;
  }

  async _fill() {
    if (this._ended) return;
    const c = this.client;
    try {
      if (this.seq === null) {
        // First start: what arrived since subscribing is delivered, and the scope's position is the start.
        const stats = asMap(await c.call("BB.STATS", this.scope));
        for (const ev of this._held.splice(0)) this._accept(ev);
        this.seq = Math.max(this.seq ?? 0, stats.seq ?? 0);
      } else {
        await this._replay();
      }
    } catch (e) {
      if (e instanceof ConnectionError) {
        this._held = []; // the next connection's resume reads them again from the journal
        return;
      }
      if (e.code === "LOST") {
        await this._lost(e);
        if (this._ended) return;
      } else {
        this._emit("error", e);
      }
    }
    this._holding = false;
    for (const ev of this._held.splice(0)) this._accept(ev);
  }

  async _replay() {
    for (;;) {
      const from = this.seq;
      const r = asMap(await this.client.call("BB.CHANGES", this.scope, "SINCE", from, "COUNT", 1000));
      if (typeof r.seq === "number" && r.seq < from) {
        throw new HeraldError("LOST", `the scope's journal is at ${r.seq}, behind the last seen ${from} (the broker lost its state)`);
      }
      const changes = (r.changes ?? []).map(asMap);
      for (const ch of changes) {
        if (globMatch(this.pattern, ch.key)) {
          const value = this.client.options.decodeBinary ? decodeValue(ch.value) : ch.value;
          this._accept({ scope: this.scope, key: ch.key, event: ch.event, seq: ch.seq, revision: ch.revision, value, replayed: true });
        }
      }
      const last = changes.length ? changes[changes.length - 1].seq : r.seq;
      this.seq = Math.max(this.seq, last ?? this.seq);
      if (changes.length === 0 || this.seq >= r.seq) return;
    }
  }

  async _lost(e) {
    const err = new ResumeError("LOST", `watch ${this.scope}/${this.pattern} cannot resume after seq ${this.seq}: ${e.message}`, { seq: this.seq });
    if (this._onLost !== "resync") {
      this.client._watches.delete(this);
      this._end(err);
      await this._sub.close();
      return;
    }
    const all = asMap(await this.client.call("BB.GETALL", this.scope, this.pattern));
    const entries = (all.entries ?? []).map(asMap);
    this.seq = all.seq;
    this._held = this._held.filter((ev) => ev.seq > this.seq);
    this._emit("lost", err);
    this._deliver({ event: "snapshot", scope: this.scope, seq: all.seq, entries: decodeValue(entries) });
  }
}
export default Herald;
