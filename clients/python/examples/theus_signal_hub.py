# Theus "SignalHub": basic, multiple receivers, async. expect: async listener received Signal(name='tick', data={'time': 1})
import asyncio

from herald import SignalHub
from herald.aio import SignalHub as AsyncSignalHub

hub = SignalHub(capacity=1000)
receiver1, receiver2 = hub.subscribe(), hub.subscribe()  # each receiver gets ALL signals
hub.send("broadcast", {"data": "value"})
print(receiver1.recv(timeout=10), receiver2.recv(timeout=10))  # blocking receive
print(receiver1.try_recv())  # non-blocking: None when empty


async def main():
    hub = AsyncSignalHub()
    receiver = await hub.subscribe()
    await hub.send("tick", {"time": 1})
    event = await receiver.recv_async(timeout=10)
    print(f"async listener received {event}")


asyncio.run(main())
