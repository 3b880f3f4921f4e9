"""The asyncio client: redis-py's ``redis.asyncio.Redis`` for commands, one listener task and connection for
everything pushed. Same operations as :mod:`herald.client` (they come from the same core); every method is a
coroutine, every callback may be a coroutine function, every iterator is an async iterator. Import it from
:mod:`herald.aio`."""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, AsyncIterator, Callable, Generic, TypeVar, cast

import redis.asyncio as aredis
from redis.exceptions import RedisError, WatchError

from . import _discovery as discovery
from . import _workflow as wf
from ._common import Settings, listener_connection, resolve_url
from ._proto import Arg, Call, CallbackHandler, transaction, Cmd, Handler, ListenerCore, Op, Registration, Sleep, Txn
from .client import _END, Subscription
from .codec import Codec
from .errors import ConnectionError, HeraldError, from_redis
from .errors import TimeoutError as HeraldTimeout

T = TypeVar("T")

__all__ = ["AsyncHerald", "AsyncWorkflow", "AsyncFeed", "connect", "default_client"]


class _AsyncListener:
    """The listener task: owns its connection; other tasks queue requests, applied between reads."""

    poll = 0.05

    def __init__(self, client: AsyncHerald) -> None:
        self.client = client
        self.core = ListenerCore()
        self.requests: list[tuple[str, Registration]] = []
        self.task: asyncio.Task[None] | None = None
        self.stopping = False
        self.connects = 0

    def on_task(self) -> bool:
        try:
            return asyncio.current_task() is self.task
        except RuntimeError:
            return False

    async def register(self, kind: str, name: str | bytes, handler: Handler, wait: bool = True) -> Subscription:
        if self.stopping:
            raise ConnectionError("the client is closed")
        reg = Registration(kind, name.encode() if isinstance(name, str) else name, handler, ready=asyncio.Event())
        self.requests.append(("add", reg))
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._main(), name="herald-listener")
        if wait and not self.on_task():
            try:
                await asyncio.wait_for(reg.ready.wait(), self.client.settings.subscribe_timeout)
            except asyncio.TimeoutError:
                self.unregister(reg)
                raise ConnectionError(f"the broker did not confirm the subscription to {reg.name.decode(errors='replace')!r} in time") from None
        return Subscription(self, reg)

    def forget(self, handler: Handler) -> None:
        """Unsubscribes every registration of ``handler`` (safe from any thread, and from the handler itself)."""
        self.requests.append(("forget", Registration("channel", b"", handler)))

    def unregister(self, reg: Registration) -> None:
        self.requests.append(("remove", reg))

    async def close(self) -> None:
        self.stopping = True
        if self.task is not None and not self.on_task():
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass

    async def _main(self) -> None:
        attempt = 0
        while not self.stopping:
            conn = None
            try:
                conn = listener_connection(self.client.redis.connection_pool)
                await conn.connect()
                self.connects += 1
                for args in self.core.on_connect():
                    await conn.send_command(*args)
                attempt = 0
                await self._serve(conn)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if not self.stopping:
                    self.client.settings.report(from_redis(e) if not isinstance(e, HeraldError) else e)
            finally:
                self.core.on_disconnect()
                if conn is not None:
                    try:
                        await conn.disconnect()
                    except Exception:
                        pass
            if not self.stopping:
                await asyncio.sleep(self.client.settings.backoff(attempt))
                attempt += 1

    async def _serve(self, conn: Any) -> None:
        interval = self.client.settings.ping_interval
        last_rx = time.monotonic()
        pinged = False
        while not self.stopping:
            await self._apply_requests(conn)
            frame = await conn.read_response(timeout=self.poll, disconnect_on_error=False, push_request=True)
            if frame is not None:
                last_rx, pinged = time.monotonic(), False
                for op in self.core.feed(frame):
                    await self.client._run_reported(op)
            elif interval and time.monotonic() - last_rx > interval:
                if pinged:
                    raise ConnectionError(f"no answer from the broker for {interval * 2:.0f}s")
                await conn.send_command("PING")
                pinged, last_rx = True, time.monotonic()

    async def _apply_requests(self, conn: Any) -> None:
        while self.requests:
            what, reg = self.requests.pop(0)
            if what == "add":
                cmds, ops = self.core.add(reg)
            elif what == "forget":
                cmds, ops = self.core.remove_handler(reg.handler), []
            else:
                cmds, ops = self.core.remove(reg), []
            for args in cmds:
                await conn.send_command(*args)
            for op in ops:
                await self.client._run_reported(op)


class AsyncHerald:
    """The asyncio twin of :class:`herald.Herald` (same arguments)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        protocol: int | None = None,
        codec: Codec | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
        subscribe_timeout: float = 10.0,
        reconnect_delay: tuple[float, float] = (0.05, 2.0),
        ping_interval: float = 15.0,
        redis_client: aredis.Redis | None = None,
        **redis_kwargs: Any,
    ) -> None:
        self.settings = Settings(codec, on_error, subscribe_timeout, reconnect_delay, ping_interval)
        if redis_client is None:
            if protocol is not None:
                redis_kwargs["protocol"] = protocol
            redis_client = aredis.Redis.from_url(resolve_url(url), **redis_kwargs)
        if redis_client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("Herald needs decode_responses=False (values are decoded by its codec)")
        self.redis: aredis.Redis = redis_client
        self._listener = _AsyncListener(self)

    @property
    def codec(self) -> Codec:
        return self.settings.codec

    async def call(self, *args: Arg) -> Any:
        try:
            return await self.redis.execute_command(*args)
        except RedisError as e:
            raise from_redis(e) from e

    async def run(self, op: Cmd[T] | Op[T]) -> T:
        if isinstance(op, Cmd):
            return op.parse(await self.call(*op.args))
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                instr = op.throw(error) if error is not None else op.send(value)
            except StopIteration as stop:
                return cast(T, stop.value)
            value, error = None, None
            try:
                value = await self._step(instr)
            except Exception as e:
                error = e

    async def _step(self, instr: Any) -> Any:
        if isinstance(instr, Cmd):
            return instr.parse(await self.call(*instr.args))
        if isinstance(instr, Sleep):
            await asyncio.sleep(instr.seconds)
            return None
        if isinstance(instr, Call):
            try:
                result = instr.fn(*instr.args)
                return (await result) if inspect.isawaitable(result) else result
            except Exception as e:
                if not instr.report:
                    raise
                self.settings.report(e)
                return None
        if isinstance(instr, Txn):
            return await self._txn(instr)
        raise TypeError(f"unknown instruction {instr!r}")

    async def _txn(self, t: Txn) -> Any:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                cmds = list(t.cmds)
                if t.watch:
                    await pipe.watch(*t.watch)
                    checked = t.check.parse(await pipe.execute_command(*t.check.args)) if t.check else None
                    built = t.build(checked) if t.build else cmds
                    if built is None:
                        await pipe.unwatch()
                        return None
                    cmds = built
                    pipe.multi()
                for c in cmds:
                    pipe.execute_command(*c.args)
                raw = await pipe.execute(raise_on_error=False)
        except WatchError:
            return None
        except RedisError as e:
            raise from_redis(e) from e
        return [from_redis(r) if isinstance(r, Exception) else c.parse(r) for c, r in zip(cmds, raw)]

    async def atomic(self, *cmds: Cmd[Any]) -> list[Any]:
        """Runs commands of the core (``bb.core.set(...)``, ``board.core.publish(...)`` ...) in one MULTI/EXEC:
        all at once, across domains. Returns their parsed replies (an error reply in place, as an exception)."""
        if not cmds:
            raise ValueError("atomic needs at least one command")
        return list(await self.run(transaction(cmds)))

    async def _run_reported(self, op: Op[None]) -> None:
        try:
            await self.run(op)
        except Exception as e:
            self.settings.report(e)

    # ---- pub-sub

    async def listen(self, kind: str, name: str | bytes, handler: Handler, wait: bool = True) -> Subscription:
        if kind not in ("channel", "pattern"):
            raise ValueError("kind is 'channel' or 'pattern'")
        return await self._listener.register(kind, name, handler, wait)

    async def subscribe(self, channel: str, callback: Callable[[str, Any], Any]) -> Subscription:
        return await self.listen("channel", channel, CallbackHandler(callback, self.codec.decode))

    async def psubscribe(self, pattern: str, callback: Callable[[str, Any], Any]) -> Subscription:
        return await self.listen("pattern", pattern, CallbackHandler(callback, self.codec.decode))

    async def publish(self, channel: str, message: Any) -> int:
        return int(await self.call("PUBLISH", channel, self.codec.encode(message)))

    def forget(self, handler: Handler) -> None:
        """Drops every subscription of ``handler``."""
        self._listener.forget(handler)

    @property
    def listener_connects(self) -> int:
        return self._listener.connects

    # ---- workflow communication

    # ---- discovery: what exists, with its size and state (docs/commands.md, "Discovery")

    async def list_page(self, command: str, cursor: str = "0", match: str | None = None, count: int | None = None, scope: str | None = None) -> tuple[str, list[dict[str, Any]]]:
        """One page of a discovery listing: ``(next_cursor, entries)``; ``"0"`` after the last page."""
        return await self.run(discovery.page(command, cursor, match, count, scope))

    async def queues(self, match: str | None = None, count: int | None = None) -> list[dict[str, Any]]:
        """Job queues: ``queue queued delayed running dead paused concurrency completed failed``."""
        return await self.run(discovery.listing(discovery.QUEUES, match, count))

    async def boards(self, match: str | None = None, count: int | None = None, scope: str | None = None) -> list[dict[str, Any]]:
        """Bulletin boards (of every scope, or ``scope``): ``scope board items leased dead maxlen``."""
        return await self.run(discovery.listing(discovery.BOARDS, match, count, scope))

    async def scopes(self, match: str | None = None, count: int | None = None) -> list[dict[str, Any]]:
        """Blackboard scopes: ``scope keys seq journal``."""
        return await self.run(discovery.listing(discovery.SCOPES, match, count))

    async def destinations(self, match: str | None = None, count: int | None = None) -> list[dict[str, Any]]:
        """Mailbox destinations: ``dest length maxlen topics`` (topic -> waiting messages)."""
        return await self.run(discovery.listing(discovery.DESTS, match, count))

    async def streams(self, match: str | None = None, count: int | None = None) -> list[dict[str, Any]]:
        """Streams: ``stream length first last next bytes closed epoch maxlen maxage``."""
        return await self.run(discovery.listing(discovery.STREAMS, match, count))


    async def set_event(self, workflow_id: str, key: str, value: Any) -> int:
        return await self.run(wf.set_event(self.codec, workflow_id, key, value))

    async def get_event(self, workflow_id: str, key: str, timeout_seconds: float | None = 60) -> Any:
        return await self.run(wf.get_event(self.codec, workflow_id, key, timeout_seconds))

    async def get_all_events(self, workflow_id: str) -> dict[str, Any]:
        return await self.run(wf.get_all_events(self.codec, workflow_id))

    async def send(self, destination_id: str, message: Any, topic: str | None = None, idempotency_key: str | None = None) -> int:
        return await self.run(wf.send(self.codec, destination_id, message, topic, idempotency_key))

    async def recv(self, destination_id: str, topic: str | None = None, timeout_seconds: float | None = 60) -> Any:
        return await self.run(wf.recv(self.codec, destination_id, topic, timeout_seconds))

    recv_async = recv

    async def write_stream(self, workflow_id: str, key: str, value: Any) -> int:
        return await self.run(wf.write_stream(self.codec, wf.stream_name(workflow_id, key), value))

    async def close_stream(self, workflow_id: str, key: str) -> bool:
        return await self.run(wf.close_stream(wf.stream_name(workflow_id, key)))

    def read_stream(self, workflow_id: str, key: str, from_offset: int = 0) -> AsyncIterator[Any]:
        return self.follow(wf.STREAM_READ, wf.stream_name(workflow_id, key), from_offset)

    async def follow(self, command: str, key: str, from_offset: int = 0, block: float = 5.0) -> AsyncIterator[Any]:
        cursor = wf.StreamCursor(command, key, from_offset, block=block)
        while not cursor.done:
            for value in wf.decode_entries(self.codec, await self.run(cursor.step())):
                yield value

    def workflow(self, workflow_id: str) -> AsyncWorkflow:
        return AsyncWorkflow(self, workflow_id)

    async def close(self) -> None:
        await self._listener.close()
        await self.redis.aclose() if hasattr(self.redis, "aclose") else await self.redis.close()

    async def __aenter__(self) -> AsyncHerald:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncFeed(Generic[T]):
    """Items pushed by the listener, read with ``async for`` or ``await get(timeout)``. ``close()`` ends it
    (and its subscription)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self.subscription: Subscription | None = None
        self.closed = False

    def put(self, item: T) -> None:
        if not self.closed:
            self._queue.put_nowait(item)

    async def get(self, timeout: float | None = None) -> T:
        """The next item, waiting up to ``timeout`` seconds (``herald.TimeoutError`` then)."""
        if self.closed and self._queue.empty():
            raise StopAsyncIteration
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            raise HeraldTimeout(f"nothing arrived within {timeout}s") from None
        if item is _END:
            raise StopAsyncIteration
        return cast(T, item)

    def __aiter__(self) -> AsyncFeed[T]:
        return self

    async def __anext__(self) -> T:
        return await self.get()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.subscription is not None:
                self.subscription.cancel()
            self._queue.put_nowait(_END)


class AsyncWorkflow:
    def __init__(self, client: AsyncHerald, workflow_id: str) -> None:
        self.client = client
        self.workflow_id = workflow_id

    async def set_event(self, key: str, value: Any) -> int:
        return await self.client.set_event(self.workflow_id, key, value)

    async def recv(self, topic: str | None = None, timeout_seconds: float | None = 60) -> Any:
        return await self.client.recv(self.workflow_id, topic, timeout_seconds)

    recv_async = recv

    async def write_stream(self, key: str, value: Any) -> int:
        return await self.client.write_stream(self.workflow_id, key, value)

    async def close_stream(self, key: str) -> bool:
        return await self.client.close_stream(self.workflow_id, key)


_default: AsyncHerald | None = None


def connect(url: str | None = None, **kwargs: Any) -> AsyncHerald:
    """Creates an asyncio client and makes it the default one."""
    global _default
    _default = AsyncHerald(url, **kwargs)
    return _default


def default_client(client: AsyncHerald | None = None) -> AsyncHerald:
    global _default
    if client is not None:
        return client
    if _default is None:
        _default = AsyncHerald()
    return _default
