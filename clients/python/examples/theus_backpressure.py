# Theus "Backpressure: automatic queue lagging detection". expect: then got tick 9
# (How many lag notices come before it, and their counts, depend on how fast the receiver reads.)
from herald import LaggedError, SignalHub

hub = SignalHub(capacity=3)
receiver = hub.subscribe()
for i in range(10):  # a burst faster than the receiver reads
    hub.send("tick", {"i": i})
while True:
    try:
        event = receiver.recv(timeout=10)
        if event.data["i"] == 9:
            break
    except LaggedError as e:
        print(f"receiver lagged by {e.count} signals", end=", ")
print(f"then got {event.name} {event.data['i']}")
