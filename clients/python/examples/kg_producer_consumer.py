# KayGraph "Producer-Consumer". expect: consumed {'data': 0}
import herald

h = herald.connect()


class ProducerNode:  # post(): shared["queue"].append(...) becomes a mailbox send
    def post(self, data):
        h.send("consumer", {"data": data}, topic="queue")


class ConsumerNode:  # prep(): shared["queue"].pop(0) becomes a receive (None when empty)
    def prep(self):
        return h.recv("consumer", topic="queue", timeout_seconds=1)


ProducerNode().post(0)
print("consumed", ConsumerNode().prep())
