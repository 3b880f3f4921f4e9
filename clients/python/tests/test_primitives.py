from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable

import pytest

import herald
import herald.aio

from .conftest import eventually


def test_event_wakes_every_waiter(client: herald.Herald, name: str) -> None:
    ev = herald.Event(name, client=client)
    assert not ev.is_set() and not ev.wait(timeout=0.1)
    woke: list[bool] = []
    waiters = [threading.Thread(target=lambda: woke.append(ev.wait(timeout=20))) for _ in range(3)]
    for t in waiters:
        t.start()
    time.sleep(0.1)
    ev.set()
    for t in waiters:
        t.join()
    assert woke == [True, True, True] and ev.is_set()
    ev.clear()
    assert not ev.is_set()


def test_future_resolves_once(client: herald.Herald, name: str) -> None:
    fut = herald.Future(name, client=client)
    with pytest.raises(herald.TimeoutError):
        fut.result(timeout=0.1)
    threading.Timer(0.1, lambda: herald.Future(name, client=client).set_result({"approved": True})).start()
    assert fut.result(timeout=10) == {"approved": True}
    assert not fut.set_result("again") and fut.done()
    err = herald.Future(name + "e", client=client)
    err.set_exception("rejected")
    with pytest.raises(herald.FutureError, match="rejected"):
        err.result(1)
    c = herald.Future(name + "c", client=client)
    assert c.cancel()
    with pytest.raises(herald.CancelledError):
        c.result(1)


def test_request_response(client: herald.Herald, name: str) -> None:
    def server() -> None:
        req = herald.next_request(name, timeout=10, client=client)
        assert req is not None
        herald.reply(req, {"echo": req.body["query"]}, client=client)

    threading.Thread(target=server).start()
    assert herald.request(name, {"query": "process this"}, timeout=10, client=client) == {"echo": "process this"}
    with pytest.raises(herald.TimeoutError):
        herald.request(name + "-nobody", {}, timeout=0.1, client=client)
    late = herald.next_request(name + "-nobody", timeout=0, client=client)
    assert late is None  # the expired request was dropped by the broker
    client.send(name, "plain")
    plain = herald.next_request(name, timeout=1, client=client)
    assert plain is not None and plain.body == "plain" and plain.reply_to is None
    with pytest.raises(ValueError):
        herald.reply(plain, "no address", client=client)


def test_bounded_queue_task_done_and_join(client: herald.Herald, name: str) -> None:
    q = herald.Queue(name, maxsize=2, client=client)
    q.put({"n": 1})
    q.put({"n": 2})
    assert q.full() and q.qsize() == 2
    with pytest.raises(herald.FullError):
        q.put_nowait({"n": 3})
    with pytest.raises(herald.FullError):
        q.put({"n": 3}, timeout=0.1)
    threading.Timer(0.2, q.get).start()
    q.put({"n": 3}, timeout=10)  # waits until the consumer made room
    assert q.unfinished_tasks() == 3
    assert q.get(timeout=1) == {"n": 2} and q.get(timeout=1) == {"n": 3}
    with pytest.raises(herald.QueueEmpty):
        q.get_nowait()
    with pytest.raises(herald.TimeoutError):
        q.get(timeout=0.1)
    with pytest.raises(herald.TimeoutError):
        q.join(timeout=0.1)
    for _ in range(3):
        threading.Timer(0.05, q.task_done).start()
    q.join(timeout=10)
    with pytest.raises(ValueError):
        q.task_done()


def test_semaphore_limits_concurrency_across_clients(client: herald.Herald, broker: Any, name: str) -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    def task() -> None:
        nonlocal running, peak
        with herald.Herald(broker.url(2)) as own:
            sem = herald.Semaphore(name, 2, client=own)
            with sem:
                with lock:
                    running += 1
                    peak = max(peak, running)
                time.sleep(0.05)
                with lock:
                    running -= 1

    threads = [threading.Thread(target=task) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == 2
    held = herald.Semaphore(name, 2, client=client)
    assert held.acquire(timeout=1) and held.token is not None
    with pytest.raises(ValueError):
        herald.Semaphore(name, 3, client=client)  # in use with 2 permits
    first = held.token
    held.release()
    assert held.acquire(timeout=1) and held.token is not None and held.token > first  # fencing tokens grow
    held.release()


def test_semaphore_permit_of_a_dead_holder_comes_back(client: herald.Herald, name: str) -> None:
    sem = herald.Semaphore(name, 1, client=client, lease=0.3)
    assert sem.acquire(timeout=1)
    sem._held[0][1].set()  # the holder stops renewing, as if its process died
    other = herald.Semaphore(name, 1, client=client, lease=30)
    assert other.acquire(timeout=10)  # the lease ran out: the permit came back
    assert other.locked()
    other.release()
    assert not other.locked()


def test_signal_hub_broadcast_and_lag(client: herald.Herald, name: str) -> None:
    hub = herald.SignalHub(capacity=2, name=name, client=client)
    r1, r2 = hub.subscribe(), hub.subscribe()
    assert r1.try_recv() is None
    assert hub.send("broadcast", {"n": 0}) >= 1
    assert r1.recv(10) == ("broadcast", {"n": 0}) and r2.recv(10).name == "broadcast"
    for i in range(5):
        hub.send("tick", {"time": i})
    eventually(lambda: r1._buf.lagged == 3, "the receiver to overflow")
    with pytest.raises(herald.LaggedError) as e:
        r1.recv(1)
    assert e.value.count == 3
    assert [r1.recv(1).data["time"] for _ in range(2)] == [3, 4]  # the newest were kept
    with pytest.raises(herald.TimeoutError):
        r1.recv(timeout=0.05)
    r1.close()
    r2.close()


def test_async_primitives(aclient: Callable[[], herald.aio.AsyncHerald], name: str) -> None:
    async def main() -> None:
        h = aclient()
        ev = herald.aio.Event(name, client=h)
        waiter = asyncio.ensure_future(ev.wait(timeout=10))
        await asyncio.sleep(0.05)
        await ev.set()
        assert await waiter
        fut = herald.aio.Future(name, client=h)
        asyncio.get_running_loop().call_later(0.05, lambda: asyncio.ensure_future(herald.aio.Future(name, client=h).set_result(7)))
        assert await fut.result(timeout=10) == 7
        q = herald.aio.Queue(name, maxsize=10, client=h)
        for i in range(3):
            await q.put({"i": i})
        assert [(await q.get(1))["i"] for _ in range(3)] == [0, 1, 2]
        for _ in range(3):
            await q.task_done()
        await q.join(timeout=5)
        sem = herald.aio.Semaphore(name, 1, client=h)
        async with sem:
            assert await sem.locked()
        hub = herald.aio.SignalHub(name=name, client=h)
        r = await hub.subscribe()
        await hub.send("tick", {"time": 1})
        assert await r.recv_async(10) == ("tick", {"time": 1})

        async def serve() -> None:
            req = await herald.aio.next_request(name + "-rr", timeout=10, client=h)
            assert req is not None
            await herald.aio.reply(req, req.body * 2, client=h)

        server = asyncio.ensure_future(serve())
        assert await herald.aio.request(name + "-rr", 21, timeout=10, client=h) == 42
        await server
        await h.close()

    asyncio.run(main())
