"""Scripts through Python clients against Herald: redis-py's register_script and Lock (which runs on
Lua scripts), and dramatiq's Redis broker (its dispatch is one Lua script) processing real messages
end to end with an in-process worker. Usage: clients.py PORT"""
import sys
import time

import redis

port = int(sys.argv[1])
r = redis.Redis(port=port, decode_responses=True)

# register_script: EVALSHA, NOSCRIPT, EVAL fallback, then EVALSHA again.
incr_by = r.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
assert incr_by(keys=["py:n"], args=[5]) == 5
r.script_flush()
assert incr_by(keys=["py:n"], args=[2]) == 7
print("ok - redis-py register_script (with NOSCRIPT fallback)")

# redis-py's Lock: acquire, contention, extend, release (each a Lua script).
lock = r.lock("py:lock", timeout=5)
assert lock.acquire(blocking=False)
other = r.lock("py:lock", timeout=5)
assert not other.acquire(blocking=False)
assert lock.extend(5)
assert r.pttl("py:lock") > 5000
lock.release()
assert other.acquire(blocking=False)
other.release()
try:
    other.release()
    raise AssertionError("releasing an unowned lock must fail")
except redis.exceptions.LockError:
    pass
print("ok - redis-py Lock acquire/extend/release")

# dramatiq's Redis broker: enqueue, a worker consumes, acks, results land in Herald.
import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq import Worker

broker = RedisBroker(host="127.0.0.1", port=port, namespace="e2e-dramatiq")
dramatiq.set_broker(broker)


@dramatiq.actor(max_retries=0)
def add(key, n):
    redis.Redis(port=port).incrby(key, n)


r.delete("dramatiq:total")
for i in range(1, 21):
    add.send("dramatiq:total", i)
worker = Worker(broker, worker_threads=2, worker_timeout=100)
worker.start()
deadline = time.time() + 30
while time.time() < deadline and r.get("dramatiq:total") != "210":
    time.sleep(0.1)
worker.stop()
broker.close()
assert r.get("dramatiq:total") == "210", r.get("dramatiq:total")
print("ok - dramatiq's Redis broker processed 20 messages through Herald")
