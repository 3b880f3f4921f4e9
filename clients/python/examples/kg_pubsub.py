# KayGraph "Publish-Subscribe". expect: 3 subscribers got data_update
import threading

import herald

h = herald.connect()
got = []
done = threading.Semaphore(0)
for name in "ABC":  # every subscriber receives every event
    h.subscribe("events", lambda ch, event, name=name: (got.append((name, event["type"])), done.release()))


class PublisherNode:
    def post(self, exec_res):
        h.publish("events", {"type": "data_update", "data": exec_res})


PublisherNode().post({"rows": 3})
for _ in range(3):
    done.acquire(timeout=10)
print(f"{len(got)} subscribers got {got[0][1]}")
