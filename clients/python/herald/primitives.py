"""Distributed ``Event``, ``Future``, ``Queue``, ``Semaphore`` and ``SignalHub`` (blocking), their asyncio twins
``AsyncEvent`` ... (``herald.aio.Event`` ...), and request/response over mailboxes. How each is built on the
broker's commands is said in ``herald._primitives``."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable

from ._aclient import AsyncHerald
from ._aclient import default_client as default_async_client
from ._primitives import (
    EventCore,
    FutureCore,
    FutureError,
    QueueCore,
    QueueEmpty,
    Request,
    SemaphoreCore,
    Signal,
    SignalBuffer,
    parse_request,
    request_cmd,
    signal_of,
)
from ._proto import Handler, Op, deliver
from ._workflow import recv_raw
from .client import Herald, Subscription, default_client
from .codec import Codec
from .errors import ConnectionError, LeaseError
from .errors import TimeoutError as HeraldTimeout
from .glob import glob_escape

__all__ = [
    "Event",
    "Future",
    "Queue",
    "Semaphore",
    "SignalHub",
    "SignalReceiver",
    "Signal",
    "Request",
    "FutureError",
    "QueueEmpty",
    "request",
    "next_request",
    "reply",
    "AsyncEvent",
    "AsyncFuture",
    "AsyncQueue",
    "AsyncSemaphore",
    "AsyncSignalHub",
    "AsyncSignalReceiver",
    "arequest",
    "anext_request",
    "areply",
]


class Event:
    """A flag shared by every process: ``set()`` wakes every ``wait()`` er, ``clear()`` resets it."""

    def __init__(self, name: str, *, client: Herald | None = None) -> None:
        self.client = default_client(client)
        self.core = EventCore(self.client.codec, name)

    def set(self) -> None:
        self.client.run(self.core.set())

    def clear(self) -> None:
        self.client.run(self.core.clear())

    def is_set(self) -> bool:
        return self.client.run(self.core.is_set())

    def wait(self, timeout: float | None = None) -> bool:
        """True once set; False if ``timeout`` seconds passed first."""
        return self.client.run(self.core.wait(timeout))


class Future:
    """One value for one name, resolved once by anyone (``set_result`` / ``set_exception`` / ``cancel``
    return False if it was already resolved) and read by anyone with ``result(timeout)``."""

    def __init__(self, name: str, *, client: Herald | None = None, ttl: float | None = 3600) -> None:
        self.client = default_client(client)
        self.core = FutureCore(self.client.codec, name, ttl)
        self.name = name

    def set_result(self, value: Any) -> bool:
        return self.client.run(self.core.set_result(value))

    def set_exception(self, message: str | BaseException) -> bool:
        return self.client.run(self.core.set_exception(str(message)))

    def cancel(self) -> bool:
        return self.client.run(self.core.cancel())

    def done(self) -> bool:
        return self.client.run(self.core.done())

    def result(self, timeout: float | None = None) -> Any:
        """The value; ``TimeoutError`` after ``timeout`` seconds, ``CancelledError``, or ``FutureError``."""
        return self.client.run(self.core.result(timeout))


def request(destination: str, body: Any, topic: str | None = None, timeout: float | None = 60, *, client: Herald | None = None) -> Any:
    """Sends ``body`` to ``destination``'s mailbox as a request and waits for the reply (MSG.REQUEST: the broker
    correlates and times out); ``TimeoutError`` if none came within ``timeout`` seconds."""
    c = default_client(client)
    return c.run(request_cmd(c.codec, destination, body, topic, timeout))


def next_request(destination: str, topic: str | None = None, timeout: float | None = 60, *, client: Herald | None = None) -> Request | None:
    """The next request (or plain message) in the mailbox, waiting up to ``timeout``; None if none came."""
    c = default_client(client)
    return parse_request(c.codec, c.run(recv_raw(destination, topic, timeout)))


def reply(req: Request, value: Any, *, client: Herald | None = None) -> bool:
    """Answers a request taken with ``next_request`` (MSG.REPLY); False if it came too late (the broker drops it)."""
    c = default_client(client)
    return c.run(req.reply_cmd(c.codec, value))


class Queue:
    """A FIFO queue shared by every process, ``maxsize`` items at most (0: unbounded). ``get`` removes an item
    for one consumer; ``task_done`` / ``join`` count unfinished items as ``asyncio.Queue`` does."""

    def __init__(self, name: str, maxsize: int = 0, *, client: Herald | None = None) -> None:
        self.client = default_client(client)
        self.core = QueueCore(self.client.codec, name, maxsize)
        self.maxsize = maxsize
        self.client.run(self.core.configure())

    def put(self, item: Any, timeout: float | None = None) -> None:
        """Adds ``item``, waiting while the queue is full (``FullError`` after ``timeout``)."""
        self.client.run(self.core.put(item, timeout))

    def put_nowait(self, item: Any) -> None:
        self.client.run(self.core.put(item, 0))

    def get(self, timeout: float | None = None) -> Any:
        """Removes and returns the oldest item, waiting for one (``TimeoutError`` after ``timeout``)."""
        return self.client.run(self.core.get(timeout))

    def get_nowait(self) -> Any:
        """The oldest item, or ``QueueEmpty``."""
        return self.client.run(self.core.get(0))

    def task_done(self) -> None:
        self.client.run(self.core.task_done())

    def join(self, timeout: float | None = None) -> None:
        """Waits until every item put has been marked ``task_done``."""
        self.client.run(self.core.join(timeout, time.monotonic))

    def qsize(self) -> int:
        return self.client.run(self.core.board.length())

    def empty(self) -> bool:
        return self.qsize() == 0

    def full(self) -> bool:
        return self.maxsize > 0 and self.qsize() >= self.maxsize

    def unfinished_tasks(self) -> int:
        return self.client.run(self.core.unfinished())


class Semaphore:
    """``value`` permits shared by every process (the broker's SEM.*); a permit is held under a lease that this
    client renews while it holds it, so a process that dies frees its permits when their lease runs out.
    ``token`` is the fencing token of the permit acquired last: pass it to what the semaphore guards."""

    def __init__(self, name: str, value: int = 1, *, client: Herald | None = None, lease: float = 30.0) -> None:
        self.client = default_client(client)
        self.core = SemaphoreCore(name, value, lease)
        self.client.run(self.core.check())
        self._held: list[tuple[int, threading.Event]] = []
        self._lock = threading.Lock()
        self.token: int | None = None

    def acquire(self, timeout: float | None = None) -> bool:
        """Takes a permit, waiting up to ``timeout`` seconds (None: until one is free); False if none came."""
        permit = self.client.run(self.core.acquire(timeout))
        if permit is None:
            return False
        stop = threading.Event()
        threading.Thread(target=self._renew, args=(permit, stop), daemon=True, name="herald-semaphore").start()
        with self._lock:
            self._held.append((permit, stop))
            self.token = permit
        return True

    def _renew(self, permit: int, stop: threading.Event) -> None:
        while not stop.wait(self.core.lease / 3):
            try:
                self.client.run(self.core.extend(permit))
            except LeaseError as e:
                self.client.settings.report(e)
                return
            except ConnectionError:
                continue

    def release(self) -> None:
        with self._lock:
            if not self._held:
                raise ValueError("release() without a held permit")
            permit, stop = self._held.pop()
        stop.set()
        self.client.run(self.core.release(permit))

    def locked(self) -> bool:
        """True when no permit is free."""
        return self.client.run(self.core.locked())

    def __enter__(self) -> Semaphore:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class _HubHandler(Handler):
    def __init__(self, hub: str, codec: Codec, push: Callable[[Signal], Any]) -> None:
        self.hub = hub
        self.codec = codec
        self.push = push

    def on_message(self, channel: bytes, data: bytes) -> Op[None] | None:
        return deliver(self.push, signal_of(self.hub, channel.decode(), self.codec.decode(data)))

    def on_lagged(self, count: int) -> Op[None] | None:
        return deliver(self.push, None, count)


class SignalReceiver:
    """Signals in order; ``recv`` raises ``LaggedError(n)`` once when ``n`` were dropped for it (its buffer
    overflowed, or the broker's drop-oldest policy dropped pushes), then goes on with the oldest kept."""

    def __init__(self, capacity: int) -> None:
        self._buf = SignalBuffer(capacity)
        self._cond = threading.Condition()
        self.subscription: Subscription | None = None

    def _push(self, signal: Signal | None, lagged: int = 0) -> None:
        with self._cond:
            self._buf.add(signal, lagged)
            self._cond.notify_all()

    def recv(self, timeout: float | None = None) -> Signal:
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._buf.items and not self._buf.lagged:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise HeraldTimeout(f"no signal within {timeout}s")
                self._cond.wait(left)
            signal = self._buf.take()
            assert signal is not None
            return signal

    def try_recv(self) -> Signal | None:
        with self._cond:
            return self._buf.take()

    def close(self) -> None:
        if self.subscription is not None:
            self.subscription.cancel()


class SignalHub:
    """Named signals broadcast to every receiver, in every process (pub-sub on ``<name>:<signal>``)."""

    def __init__(self, capacity: int = 1000, *, name: str = "signals", client: Herald | None = None) -> None:
        self.client = default_client(client)
        self.name = name
        self.capacity = capacity

    def send(self, signal: str, data: Any = None) -> int:
        """Broadcasts; returns how many connections received it."""
        return self.client.publish(f"{self.name}:{signal}", data)

    def subscribe(self, pattern: str = "*") -> SignalReceiver:
        """A receiver of the signals whose names match ``pattern`` (glob), from now on."""
        r = SignalReceiver(self.capacity)
        r.subscription = self.client.listen("pattern", f"{glob_escape(self.name)}:{pattern}", _HubHandler(self.name, self.client.codec, r._push))
        return r


# ---------------------------------------------------------------------------------------------------------
# asyncio flavour


class AsyncEvent:
    def __init__(self, name: str, *, client: AsyncHerald | None = None) -> None:
        self.client = default_async_client(client)
        self.core = EventCore(self.client.codec, name)

    async def set(self) -> None:
        await self.client.run(self.core.set())

    async def clear(self) -> None:
        await self.client.run(self.core.clear())

    async def is_set(self) -> bool:
        return await self.client.run(self.core.is_set())

    async def wait(self, timeout: float | None = None) -> bool:
        return await self.client.run(self.core.wait(timeout))


class AsyncFuture:
    def __init__(self, name: str, *, client: AsyncHerald | None = None, ttl: float | None = 3600) -> None:
        self.client = default_async_client(client)
        self.core = FutureCore(self.client.codec, name, ttl)
        self.name = name

    async def set_result(self, value: Any) -> bool:
        return await self.client.run(self.core.set_result(value))

    async def set_exception(self, message: str | BaseException) -> bool:
        return await self.client.run(self.core.set_exception(str(message)))

    async def cancel(self) -> bool:
        return await self.client.run(self.core.cancel())

    async def done(self) -> bool:
        return await self.client.run(self.core.done())

    async def result(self, timeout: float | None = None) -> Any:
        return await self.client.run(self.core.result(timeout))


async def arequest(destination: str, body: Any, topic: str | None = None, timeout: float | None = 60, *, client: AsyncHerald | None = None) -> Any:
    c = default_async_client(client)
    return await c.run(request_cmd(c.codec, destination, body, topic, timeout))


async def anext_request(destination: str, topic: str | None = None, timeout: float | None = 60, *, client: AsyncHerald | None = None) -> Request | None:
    c = default_async_client(client)
    return parse_request(c.codec, await c.run(recv_raw(destination, topic, timeout)))


async def areply(req: Request, value: Any, *, client: AsyncHerald | None = None) -> bool:
    c = default_async_client(client)
    return await c.run(req.reply_cmd(c.codec, value))


class AsyncQueue:
    """The asyncio ``Queue``; call ``await queue.setup()`` once, or let the first ``put`` do it."""

    def __init__(self, name: str, maxsize: int = 0, *, client: AsyncHerald | None = None) -> None:
        self.client = default_async_client(client)
        self.core = QueueCore(self.client.codec, name, maxsize)
        self.maxsize = maxsize
        self._ready = False

    async def setup(self) -> AsyncQueue:
        if not self._ready:
            await self.client.run(self.core.configure())
            self._ready = True
        return self

    async def put(self, item: Any, timeout: float | None = None) -> None:
        await self.setup()
        await self.client.run(self.core.put(item, timeout))

    async def put_nowait(self, item: Any) -> None:
        await self.setup()
        await self.client.run(self.core.put(item, 0))

    async def get(self, timeout: float | None = None) -> Any:
        return await self.client.run(self.core.get(timeout))

    async def get_nowait(self) -> Any:
        return await self.client.run(self.core.get(0))

    async def task_done(self) -> None:
        await self.client.run(self.core.task_done())

    async def join(self, timeout: float | None = None) -> None:
        await self.client.run(self.core.join(timeout, time.monotonic))

    async def qsize(self) -> int:
        return await self.client.run(self.core.board.length())

    async def empty(self) -> bool:
        return await self.qsize() == 0

    async def unfinished_tasks(self) -> int:
        return await self.client.run(self.core.unfinished())


class AsyncSemaphore:
    """The asyncio ``Semaphore``: ``async with sem:``."""

    def __init__(self, name: str, value: int = 1, *, client: AsyncHerald | None = None, lease: float = 30.0) -> None:
        self.client = default_async_client(client)
        self.core = SemaphoreCore(name, value, lease)
        self._ready = False
        self._held: list[tuple[int, asyncio.Task[None]]] = []
        self.token: int | None = None

    async def acquire(self, timeout: float | None = None) -> bool:
        if not self._ready:
            await self.client.run(self.core.check())
            self._ready = True
        permit = await self.client.run(self.core.acquire(timeout))
        if permit is None:
            return False
        self._held.append((permit, asyncio.ensure_future(self._renew(permit))))
        self.token = permit
        return True

    async def _renew(self, permit: int) -> None:
        while True:
            await asyncio.sleep(self.core.lease / 3)
            try:
                await self.client.run(self.core.extend(permit))
            except LeaseError as e:
                self.client.settings.report(e)
                return
            except ConnectionError:
                continue

    async def release(self) -> None:
        if not self._held:
            raise ValueError("release() without a held permit")
        permit, renew = self._held.pop()
        renew.cancel()
        await self.client.run(self.core.release(permit))

    async def locked(self) -> bool:
        return await self.client.run(self.core.locked())

    async def __aenter__(self) -> AsyncSemaphore:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()


class AsyncSignalReceiver:
    def __init__(self, capacity: int) -> None:
        self._buf = SignalBuffer(capacity)
        self._wake = asyncio.Event()
        self.subscription: Subscription | None = None

    def _push(self, signal: Signal | None, lagged: int = 0) -> None:
        self._buf.add(signal, lagged)
        self._wake.set()

    async def recv_async(self, timeout: float | None = None) -> Signal:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._buf.items and not self._buf.lagged:
            self._wake.clear()
            left = None if deadline is None else deadline - time.monotonic()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except asyncio.TimeoutError:
                raise HeraldTimeout(f"no signal within {timeout}s") from None
        signal = self._buf.take()
        assert signal is not None
        return signal

    recv = recv_async

    def try_recv(self) -> Signal | None:
        return self._buf.take()

    def close(self) -> None:
        if self.subscription is not None:
            self.subscription.cancel()


class AsyncSignalHub:
    def __init__(self, capacity: int = 1000, *, name: str = "signals", client: AsyncHerald | None = None) -> None:
        self.client = default_async_client(client)
        self.name = name
        self.capacity = capacity

    async def send(self, signal: str, data: Any = None) -> int:
        return await self.client.publish(f"{self.name}:{signal}", data)

    async def subscribe(self, pattern: str = "*") -> AsyncSignalReceiver:
        r = AsyncSignalReceiver(self.capacity)
        r.subscription = await self.client.listen("pattern", f"{glob_escape(self.name)}:{pattern}", _HubHandler(self.name, self.client.codec, r._push))
        return r


