// Overflow under the drop-oldest policy: the client hears how many pushes it lost, then gets the rest.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Herald } from "../herald.js";
import { startBroker, nextEvent, eventually } from "../testlib/broker.mjs";

test("a drop-oldest overflow reaches the subscription as a lagged event with the count", async () => {
  const dir = await mkdtemp(join(tmpdir(), "herald-lagged-"));
  const config = join(dir, "herald.toml");
  await writeFile(config, '[pubsub]\noverflow = "drop-oldest"\nhard_limit = 4096\nsoft_limit = 0\n');
  const broker = await startBroker({ extra: ["--config", config] });
  const subscriber = new Herald(broker.url());
  const publisher = new Herald(broker.url());
  try {
    const sub = subscriber.subscribe("c");
    await sub.ready;
    const received = [];
    sub.on("message", (m) => received.push(m.data));
    const lagged = nextEvent(sub, "lagged");
    // 200 publications inside one EXEC: the broker handles the whole transaction before the
    // subscriber's connection can drain, so its 4 KiB outbox overflows and drops the oldest.
    const payload = (i) => String(i).padStart(100, "0");
    const replies = [publisher.call("MULTI")];
    for (let i = 0; i < 200; i++) replies.push(publisher.call("PUBLISH", "c", payload(i)));
    replies.push(publisher.call("EXEC"));
    await Promise.all(replies);
    const lost = await lagged;
    assert.ok(lost > 0 && lost < 200, `lost ${lost}`);
    await eventually(() => received.length + lost === 200, "the surviving messages");
    // What survived is the newest, in order.
    assert.deepEqual(received, Array.from({ length: 200 - lost }, (_, k) => payload(lost + k)));
  } finally {
    subscriber.close();
    publisher.close();
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
