// node-redis against Herald: the data types, pub-sub, a transaction, a blocking pop and the lagged notice.
// Run by tests/e2e/clients.sh with PORT and FLOOD in the environment (NODE_PATH=/usr/share/nodejs: Debian's
// node-redis, no npm registry).
const { createClient } = require("redis");
const { execFileSync } = require("child_process");
const assert = require("assert/strict");

const url = `redis://127.0.0.1:${process.env.PORT}`;
const ok = (what) => console.log(`ok - node-redis: ${what}`);

(async () => {
  const c = createClient({ url });
  await c.connect();
  await c.flushAll();
  await c.set("s", "v");
  assert.equal(await c.get("s"), "v");
  ok("SET / GET");
  await c.rPush("l", ["a", "b", "c"]);
  assert.deepEqual(await c.lRange("l", 0, -1), ["a", "b", "c"]);
  ok("RPUSH / LRANGE");
  await c.hSet("h", { f: "1", g: "2" });
  assert.deepEqual({ ...(await c.hGetAll("h")) }, { f: "1", g: "2" });
  ok("HSET / HGETALL");
  await c.sAdd("st", ["x", "y"]);
  assert.deepEqual((await c.sMembers("st")).sort(), ["x", "y"]);
  ok("SADD / SMEMBERS");
  assert.deepEqual(await c.multi().set("t", "1").incr("t").get("t").exec(), ["OK", 2, "2"]);
  ok("MULTI / EXEC");

  // A blocking pop on its own connection, woken once the broker reports it blocked.
  const waiter = c.duplicate();
  await waiter.connect();
  const popped = waiter.blPop("queue", 10);
  while (!/blocked_clients:1\r\n/.test(await c.info("clients"))) await new Promise((r) => setTimeout(r, 10));
  await c.rPush("queue", "job");
  assert.deepEqual({ ...(await popped) }, { key: "queue", element: "job" });
  ok("BLPOP woken by RPUSH");

  // Pub-sub, then the lagged notice: the flood runs synchronously, so this process reads nothing meanwhile.
  const sub = c.duplicate();
  await sub.connect();
  let lost = 0;
  let done;
  const finished = new Promise((resolve) => (done = resolve));
  const seen = [];
  await sub.subscribe("__herald__:lagged", (n) => (lost += Number(n)));
  await sub.subscribe("firehose", (m) => {
    seen.push(m);
    if (m.startsWith("09999")) done();
  });
  assert.equal(await c.publish("firehose", "first"), 1);
  while (seen.length === 0) await new Promise((r) => setTimeout(r, 10));
  assert.equal(seen[0], "first");
  ok("SUBSCRIBE / PUBLISH / message");
  execFileSync(process.env.FLOOD);
  await finished;
  assert.ok(lost > 0, "a lagged notice with the count");
  ok(`the lagged notice is a message on __herald__:lagged (${lost} lost)`);
  await Promise.all([c.quit(), waiter.quit(), sub.quit()]);
})().catch((e) => {
  console.error("FAIL node-redis:", e);
  process.exit(1);
});
