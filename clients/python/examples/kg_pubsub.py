# KayGraph "Publish-Subscribe". expect: 3 subscribers got data_update
import queue

import herald

h = herald.connect()
got: queue.Queue = queue.Queue()
for name in "ABC":  # every subscriber receives every event
    h.subscribe("events", lambda channel, event: got.put(event["type"]))


class PublisherNode:
    def post(self, exec_res):
        h.publish("events", {"type": "data_update", "data": exec_res})


PublisherNode().post({"rows": 3})
events = [got.get(timeout=10) for _ in "ABC"]
print(f"{len(events)} subscribers got {events[0]}")
