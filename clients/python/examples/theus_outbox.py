# Theus "Outbox Pattern": data and message committed atomically, relayed by a worker. expect: relayed email for order 42
import herald
from herald import Bulletin

h = herald.connect()
orders, outbox = herald.Blackboard(scope="domain"), Bulletin[dict]("outbox")


def create_order(order):  # one MULTI/EXEC: the order and its outbox message, or neither
    current = orders.get("orders", default=[])
    h.atomic(orders.core.set("orders", current + [order]), outbox.core.publish({"topic": "email", "payload": order}))


def relay():  # the system relay: takes each message, performs the side effect, removes it
    while (msg := outbox.retrieve_first(lock_duration_seconds=30)) is not None:
        print(f"relayed {msg['topic']} for order {msg['payload']['id']}")
        outbox.remove(msg)


create_order({"id": 42, "item": "book"})
relay()
assert orders.get("orders") == [{"id": 42, "item": "book"}] and outbox.count() == 0
