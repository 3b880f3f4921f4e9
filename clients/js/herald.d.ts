// Type declarations for herald.js, the Herald broker's JavaScript client (JSON over WebSocket).

/** A command argument: strings and numbers as they are (numbers travel as their decimal text), bigints as
 * decimal text, bytes as `{"base64": ...}` on the wire. */
export type Arg = string | number | bigint | Uint8Array | ArrayBuffer | ArrayBufferView | { base64: string };

/** A reply: text, numbers, booleans, null, bytes (binary values that are not UTF-8, unless
 * `decodeBinary: false`, which leaves them as `{base64}`), arrays and maps. */
export type Reply = string | number | boolean | null | Uint8Array | Reply[] | { [key: string]: Reply };

/** The WebSocket constructor the client uses (the browser's, Node's global one, or the `ws` package's). */
/** A discovery listing's options: `MATCH` glob pattern, `COUNT` per page. */
export interface ListOptions {
  match?: string;
  count?: number;
}
/** JOB.QUEUES entry. */
export interface QueueEntry {
  queue: string;
  queued: number;
  delayed: number;
  running: number;
  dead: number;
  paused: number;
  concurrency: number;
  completed: number;
  failed: number;
}
/** BL.BOARDS entry. */
export interface BoardEntry {
  scope: string;
  board: string;
  items: number;
  leased: number;
  dead: number;
  maxlen: number;
}
/** BB.SCOPES cursor entry. */
export interface ScopeEntry {
  scope: string;
  keys: number;
  seq: number;
  journal: number;
}
/** MSG.DESTS entry: `topics` maps each topic to its waiting messages. */
export interface DestEntry {
  dest: string;
  length: number;
  maxlen: number;
  topics: Record<string, number>;
}
/** STREAM.LIST entry: `last` is null for an empty stream. */
export interface StreamEntry {
  stream: string;
  last: number | null;
  length: number;
  first: number;
  next: number;
  bytes: number;
  closed: boolean;
  epoch: number;
  maxlen: number;
  maxage: number;
}

export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ReconnectOptions {
  /** First delay in ms (default 100). */
  initialDelay?: number;
  /** Largest delay in ms (default 5000). */
  maxDelay?: number;
  /** Growth per failed attempt (default 2). */
  factor?: number;
  /** Fraction of each delay drawn at random, 0..1 (default 0.5: between half and all of it). */
  jitter?: number;
  /** Attempts before giving up and closing (default Infinity). */
  maxAttempts?: number;
}

export interface HeraldOptions {
  /** A WebSocket implementation, when there is no global one (Node 20 without --experimental-websocket). */
  WebSocket?: WebSocketConstructor;
  /** Sent as AUTH first on every connection (instead of ?password= in the URL). */
  password?: string;
  /** A signed token (JWT), or a function returning one: AUTH.TOKEN first on every connection (the function is
   * asked again for each, and `tokenRefreshMargin` ms before each token expires). */
  token?: string | (() => string | Promise<string>);
  /** With a `token` function: ms before a token's `exp` to fetch and present the next one. Default 30000. */
  tokenRefreshMargin?: number;
  user?: string;
  /** CLIENT SETNAME on every connection. */
  name?: string;
  /** true (default), false, or tuning for the exponential backoff with jitter. */
  reconnect?: boolean | ReconnectOptions;
  /** Queue requests made while disconnected and send them after the next handshake (default true);
   * false rejects them at once with ConnectionError DISCONNECTED. */
  queueWhileDisconnected?: boolean;
  /** Most requests queued while disconnected (default 1000); more reject with ConnectionError QUEUEFULL. */
  maxQueue?: number;
  /** Ms for one connection attempt to open (default 10000). */
  connectTimeout?: number;
  /** Items a subscription or watch keeps for its iterator (default 1000; the oldest are dropped). */
  maxBuffer?: number;
  /** Turn `{base64}` values into Uint8Array (default true). */
  decodeBinary?: boolean;
}

/** An error reply (`code`: ERR, WRONGTYPE, NOAUTH, CONFLICT, NOJOB, ...) or a client-side failure. */
export class HeraldError extends Error {
  code: string;
  /** The command as sent, for error replies. */
  command?: unknown[];
  constructor(code: string, message: string, extra?: object);
}

/** DISCONNECTED (the connection dropped with the request in flight: it may or may not have run; or
 * queueWhileDisconnected is off), QUEUEFULL, CLOSED (closed, or reconnecting gave up), AUTH (password
 * refused: the client stops), TIMEOUT (an attempt did not open in time; reported on "error"). */
export class ConnectionError extends HeraldError {
  /** The WebSocket close code, when the broker closed the connection (4001 for AUTH). */
  closeCode?: number;
}

/** TRIMMED (`oldest`: the first retained offset), STALE (the stream was re-created since `epoch`), LOST (the
 * blackboard journal does not reach back to `seq`). */
export class ResumeError extends HeraldError {
  /** The offset a follower could not read (TRIMMED, STALE). */
  offset?: number;
  /** The oldest offset still retained (TRIMMED). */
  oldest?: number;
  /** The last blackboard seq the watch had seen (LOST). */
  seq?: number | null;
}

/** Redis's glob matching (`*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\` escapes). */
export function globMatch(pattern: string | Uint8Array, text: string | Uint8Array): boolean;

type Listener<T extends unknown[]> = (...args: T) => void;

declare class Emitter<Events extends Record<string, unknown[]>> {
  on<E extends keyof Events & string>(event: E, fn: Listener<Events[E]>): this;
  once<E extends keyof Events & string>(event: E, fn: Listener<Events[E]>): this;
  off<E extends keyof Events & string>(event: E, fn: Listener<Events[E]>): this;
  listenerCount(event: keyof Events & string): number;
}

export interface Message {
  channel: string;
  data: string | Uint8Array;
  /** The matching pattern, for psubscribe. */
  pattern?: string;
}

export interface SubscriptionEvents extends Record<string, unknown[]> {
  message: [Message];
  /** The broker dropped `count` pushes for this connection (drop-oldest overflow policy). */
  lagged: [count: number];
  error: [HeraldError];
  end: [HeraldError | null];
}

/** Channels (or patterns, or shard channels) subscribed together: callbacks and async iteration.
 * Ending a `for await` loop early unsubscribes. */
export class Subscription extends Emitter<SubscriptionEvents> implements AsyncIterable<Message> {
  readonly client: Herald;
  readonly kind: "channel" | "pattern" | "shard";
  readonly names: Set<string>;
  /** Resolves when the broker confirmed the subscription; rejects if it refused it (NOPERM ...). */
  readonly ready: Promise<void>;
  readonly ended: boolean;
  /** Messages dropped from the iterator's buffer (maxBuffer). */
  readonly dropped: number;
  close(): Promise<void>;
  unsubscribe(): Promise<void>;
  [Symbol.asyncIterator](): AsyncIterator<Message>;
}

export interface Entry {
  offset: number;
  data: string | Uint8Array;
}

export interface FollowOptions {
  /** The first offset to read (default 0); after a reconnect the follower goes on from its own `offset`. */
  from?: number;
  /** Entries per read (default 100). */
  count?: number;
  /** BLOCK ms per read on the follower's own connection (default 5000). */
  block?: number;
  /** Poll every `poll` ms on the main connection instead of blocking on a connection of its own. */
  poll?: number;
  /** The stream's epoch from an earlier read: a re-created stream then fails with ResumeError STALE. */
  epoch?: number;
  /** Options for the follower's own connection (merged over the client's). */
  clientOptions?: HeraldOptions;
}

/** Entries of a stream (STREAM.READ) or chunks of a job (JOB.READ) from an offset, to the close. */
export class Follower implements AsyncIterable<Entry> {
  readonly command: "STREAM.READ" | "JOB.READ";
  readonly key: string;
  /** The next offset to read. */
  readonly offset: number;
  readonly epoch: number | null;
  /** The connection it reads on (its own unless `poll`). */
  readonly client: Herald;
  close(): Promise<void>;
  [Symbol.asyncIterator](): AsyncIterator<Entry>;
}

export interface WatchEvent {
  scope: string;
  key: string;
  event: "set" | "del" | "expire";
  seq: number;
  revision: number;
  /** The new value (set) or the value the key held (del, expire); null for a non-string value. */
  value: string | Uint8Array | null;
  /** True when it was read from the journal after a reconnect rather than pushed live. */
  replayed?: true;
}

export interface WatchSnapshot {
  event: "snapshot";
  scope: string;
  seq: number;
  entries: { key: string; value: string | Uint8Array | null; revision: number; ttl: number }[];
}

export interface WatchOptions {
  /** Resume from this seq (BB.CHANGES SINCE) instead of starting from now. */
  since?: number;
  /** On LOST: "throw" (default: the watch ends with ResumeError LOST) or "resync" (deliver a snapshot from
   * BB.GETALL and go on from its seq). */
  onLost?: "throw" | "resync";
}

export interface WatchEvents extends Record<string, unknown[]> {
  change: [WatchEvent | WatchSnapshot];
  /** With onLost: "resync", before the snapshot. */
  lost: [ResumeError];
  error: [HeraldError];
  end: [HeraldError | null];
}

/** Blackboard events of a scope's keys matching a pattern, gap-free across reconnects while the journal
 * reaches back. */
export class Watch extends Emitter<WatchEvents> implements AsyncIterable<WatchEvent | WatchSnapshot> {
  readonly client: Herald;
  readonly scope: string;
  readonly pattern: string;
  /** The last change seen (null until known). */
  readonly seq: number | null;
  /** Resolves once subscribed and positioned. */
  readonly ready: Promise<void>;
  readonly ended: boolean;
  readonly dropped: number;
  close(): Promise<void>;
  [Symbol.asyncIterator](): AsyncIterator<WatchEvent | WatchSnapshot>;
}

export interface HeraldEvents extends Record<string, unknown[]> {
  /** The first connection is open (authenticated, subscribed). */
  connect: [];
  /** A later connection is open, re-authenticated and resubscribed; queued requests were sent. */
  reconnect: [];
  /** An open connection dropped (`code`: the WebSocket close code, 1006 for a network failure). */
  disconnect: [{ code: number; reason: string }];
  /** The client stopped for good (close(), QUIT, a refused password, or reconnecting gave up). */
  close: [ConnectionError];
  error: [Error];
  /** The broker dropped `count` pushes for this connection (drop-oldest overflow policy). */
  lagged: [count: number];
  /** A push of a kind the client does not handle itself. */
  push: [Record<string, unknown>];
}

export class Herald extends Emitter<HeraldEvents> {
  constructor(url: string, options?: HeraldOptions);
  readonly url: string;
  readonly options: Required<Omit<HeraldOptions, "WebSocket" | "password" | "user" | "name" | "token">> & HeraldOptions;
  /** Resolves on the first successful connection; rejects if the client closes or gives up first. */
  readonly connected: Promise<void>;
  readonly state: "connecting" | "open" | "reconnecting" | "closed";

  /** One command; resolves with its reply, rejects with HeraldError (or ConnectionError). */
  call(...args: Arg[]): Promise<any>;
  command(args: Arg[]): Promise<any>;
  ping(message?: string): Promise<string>;
  get(key: Arg): Promise<string | Uint8Array | null>;
  set(key: Arg, value: Arg, ...options: Arg[]): Promise<string | Uint8Array | null>;
  del(...keys: Arg[]): Promise<number>;
  incr(key: Arg): Promise<number>;
  /** Resolves with the number of receivers. */
  publish(channel: Arg, message: Arg): Promise<number>;

  /** SEM.ACQUIRE: resolves with the permit's fencing token, or null when none was free (in `block` ms). */
  semAcquire(name: Arg, permits: number, options?: { lease?: number; block?: number }): Promise<number | null>;
  /** SEM.EXTEND: resolves with the lease's new end (unix ms); rejects with code LEASE once the permit is lost. */
  semExtend(name: Arg, token: number, ms: number): Promise<number>;
  semRelease(name: Arg, token: number): Promise<"OK">;
  /** MSG.REQUEST: resolves with the reply, or null if none came within `timeout` ms. */
  request(dest: Arg, topic: Arg, payload: Arg, timeout: number): Promise<string | Uint8Array | null>;
  /** MSG.REPLY: false if the reply came too late (dropped by the broker). */
  reply(replyTo: Arg, payload: Arg): Promise<boolean>;
  /** SCHEMA.SET kind name schema [SCOPE s]; a write that does not validate then rejects with code SCHEMA. */
  setSchema(kind: "board" | "queue" | "topic" | "scope", name: Arg, schema: object | string, options?: { scope?: string }): Promise<"OK">;
  /** One page of a discovery listing (JOB.QUEUES, BL.BOARDS, BB.SCOPES, MSG.DESTS, STREAM.LIST); cursor "0" ends. */
  listPage<T = Record<string, unknown>>(command: string, cursor?: string, options?: ListOptions): Promise<{ cursor: string; entries: T[] }>;
  /** Every entry of a discovery listing, page by page. */
  listAll<T = Record<string, unknown>>(command: string, options?: ListOptions): Promise<T[]>;
  queues(options?: ListOptions): Promise<QueueEntry[]>;
  boards(options?: ListOptions & { scope?: string }): Promise<BoardEntry[]>;
  scopes(options?: ListOptions): Promise<ScopeEntry[]>;
  dests(options?: ListOptions): Promise<DestEntry[]>;
  streams(options?: ListOptions): Promise<StreamEntry[]>;
  pauseQueue(queue: Arg): Promise<"OK">;
  resumeQueue(queue: Arg): Promise<"OK">;
  /** JOB.JOIN: true once nothing is queued, delayed or running in the queue; false on timeout (ms). */
  joinQueue(queue: Arg, options?: { timeout?: number }): Promise<boolean>;

  subscribe(...channels: string[]): Subscription;
  psubscribe(...patterns: string[]): Subscription;
  ssubscribe(...channels: string[]): Subscription;
  /** Removes these channels (all without arguments) from every subscription. */
  unsubscribe(...channels: string[]): Promise<void>;
  punsubscribe(...patterns: string[]): Promise<void>;
  sunsubscribe(...channels: string[]): Promise<void>;

  follow(streamKey: string, options?: FollowOptions): Follower;
  followJob(jobId: string, options?: Omit<FollowOptions, "epoch">): Follower;
  watch(scope: string, pattern?: string, options?: WatchOptions): Watch;

  /** A new client with the same URL, options and credentials, closed with this one. */
  duplicate(overrides?: HeraldOptions): Herald;
  /** Skip the backoff wait and reconnect now (no-op unless waiting to reconnect). */
  reconnect(): void;
  /** AUTH.TOKEN with a fresh token on the open connection (without one: asks the `token` function), so the
   * broker does not close it (4005) when the current token expires; reconnects use it too. */
  refreshToken(token?: string): Promise<void>;
  close(): void;
}

export default Herald;
