"""redis-py against Herald: the data types, pub-sub, a transaction, a blocking pop and the lagged notice.
Usage: redis_py.py 2|3 (the RESP version), with PORT and FLOOD in the environment (tests/e2e/clients.sh)."""
import os
import subprocess
import sys
import threading

import redis

PROTOCOL = int(sys.argv[1])
PORT = int(os.environ["PORT"])


def connect():
    kwargs = {"protocol": 3} if PROTOCOL == 3 else {}
    return redis.Redis(port=PORT, decode_responses=True, **kwargs)


def check(what, expected, got):
    if expected != got:
        sys.exit(f"FAIL {what}: expected {expected!r}, got {got!r}")
    print(f"ok - redis-py RESP{PROTOCOL}: {what}")


r = connect()
r.flushall()
check("SET / GET", "v", (r.set("s", "v"), r.get("s"))[1])
check("INCRBY", 12, (r.set("n", 10), r.incrby("n", 2))[1])
check("RPUSH / LRANGE", ["a", "b", "c"], (r.rpush("l", "a", "b", "c"), r.lrange("l", 0, -1))[1])
check("HSET / HGETALL", {"f": "1", "g": "2"}, (r.hset("h", mapping={"f": 1, "g": 2}), r.hgetall("h"))[1])
check("SADD / SMEMBERS", {"x", "y"}, (r.sadd("st", "x", "y"), r.smembers("st"))[1])
# redis-py gives (member, score) tuples over RESP2 and lists over RESP3, with redis-server as with Herald.
check("ZADD / ZRANGE WITHSCORES", [["a", 1.0], ["b", 2.0]], [list(p) for p in (r.zadd("z", {"a": 1, "b": 2}), r.zrange("z", 0, -1, withscores=True))[1]])
pipe = r.pipeline(transaction=True)
pipe.set("t", 1).incr("t").get("t")
check("MULTI / EXEC", [True, 2, "2"], pipe.execute())

# A blocking pop, woken by another connection once the broker reports the client blocked.
result = {}
waiter = threading.Thread(target=lambda: result.update(v=connect().blpop(["queue"], timeout=10)))
waiter.start()
while int(r.info("clients")["blocked_clients"]) != 1:
    pass
r.rpush("queue", "job")
waiter.join()
check("BLPOP woken by RPUSH", ["queue", "job"], list(result["v"]))

# Pub-sub, then the lagged notice: the subscriber does not read while the flood runs.
p = r.pubsub()
p.subscribe("firehose")
check("SUBSCRIBE", "subscribe", p.get_message(timeout=5)["type"])
check("PUBLISH", 1, r.publish("firehose", "first"))
check("message", "first", p.get_message(timeout=5)["data"])
subprocess.run([os.environ["FLOOD"]], check=True)
lost, last = 0, None
while last is None or not last.startswith("09999"):
    m = p.get_message(timeout=5)
    if m is None:
        sys.exit("FAIL: the flood's last message never came")
    if m["channel"] == "__herald__:lagged":
        lost += int(m["data"])
    else:
        last = m["data"]
if lost <= 0:
    sys.exit("FAIL: no lagged notice")
print(f"ok - redis-py RESP{PROTOCOL}: the lagged notice is a message on __herald__:lagged ({lost} lost)")
