"""The blocking client: redis-py's ``redis.Redis`` for commands, one background thread and connection for
everything pushed (callbacks, watches, job followers, signal receivers), reconnecting and resubscribing."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable, Generic, Iterator, TypeVar, cast

import redis

from . import _discovery as discovery
from . import _workflow as wf
from ._common import Settings, listener_connection, resolve_url
from ._proto import Arg, Call, CallbackHandler, transaction, Cmd, Handler, ListenerCore, Op, Registration, Sleep, Txn, text
from .codec import Codec
from .errors import ConnectionError, HeraldError, from_redis
from .errors import TimeoutError as HeraldTimeout

__all__ = ["Herald", "Subscription", "Feed", "Workflow", "connect", "default_client"]

T = TypeVar("T")


class Subscription:
    """A live registration on the listener; ``cancel()`` (or leaving its ``with`` block) ends it."""

    def __init__(self, listener: Any, reg: Registration) -> None:
        self._listener = listener
        self._reg = reg
        self.active = True

    @property
    def name(self) -> str:
        return text(self._reg.name)

    def cancel(self) -> None:
        if self.active:
            self.active = False
            self._listener.unregister(self._reg)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


class _Listener:
    """The client's pub-sub connection, owned by one daemon thread. Other threads only queue requests; the
    thread applies them between reads (it polls the socket every ``poll`` seconds)."""

    poll = 0.05

    def __init__(self, client: Herald) -> None:
        self.client = client
        self.core = ListenerCore()
        self.requests: queue.SimpleQueue[tuple[str, Registration]] = queue.SimpleQueue()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.connects = 0
        self._lock = threading.Lock()

    def on_thread(self) -> bool:
        return threading.current_thread() is self.thread

    def register(self, kind: str, name: str | bytes, handler: Handler, wait: bool = True) -> Subscription:
        if self.stop.is_set():
            raise ConnectionError("the client is closed")
        reg = Registration(kind, name.encode() if isinstance(name, str) else name, handler, ready=threading.Event())
        self.requests.put(("add", reg))
        self._start()
        if wait and not self.on_thread() and not reg.ready.wait(self.client.settings.subscribe_timeout):
            self.unregister(reg)
            raise ConnectionError(f"the broker did not confirm the subscription to {text(reg.name)!r} in time")
        return Subscription(self, reg)

    def forget(self, handler: Handler) -> None:
        """Unsubscribes every registration of ``handler`` (safe from any thread, and from the handler itself)."""
        self.requests.put(("forget", Registration("channel", b"", handler)))

    def unregister(self, reg: Registration) -> None:
        self.requests.put(("remove", reg))

    def _start(self) -> None:
        with self._lock:
            if self.thread is None:
                self.thread = threading.Thread(target=self._main, name="herald-listener", daemon=True)
                self.thread.start()

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None and not self.on_thread():
            self.thread.join(5)

    def _main(self) -> None:
        attempt = 0
        while not self.stop.is_set():
            conn = None
            try:
                conn = listener_connection(self.client.redis.connection_pool)
                conn.connect()
                self.connects += 1
                for args in self.core.on_connect():
                    conn.send_command(*args)
                attempt = 0
                self._serve(conn)
            except Exception as e:  # the connection failed or dropped: report, wait, reconnect
                if not self.stop.is_set():
                    self.client.settings.report(from_redis(e) if not isinstance(e, HeraldError) else e)
            finally:
                self.core.on_disconnect()
                if conn is not None:
                    try:
                        conn.disconnect()
                    except Exception:
                        pass
            if not self.stop.is_set():
                self.stop.wait(self.client.settings.backoff(attempt))
                attempt += 1

    def _serve(self, conn: Any) -> None:
        interval = self.client.settings.ping_interval
        last_rx = time.monotonic()
        pinged = False
        while not self.stop.is_set():
            self._apply_requests(conn)
            if conn.can_read(timeout=self.poll):
                frame = conn.read_response(push_request=True, disconnect_on_error=False)
                last_rx, pinged = time.monotonic(), False
                for op in self.core.feed(frame):
                    self.client._run_reported(op)
            elif interval and time.monotonic() - last_rx > interval:
                if pinged:
                    raise ConnectionError(f"no answer from the broker for {interval * 2:.0f}s")
                conn.send_command("PING")
                pinged, last_rx = True, time.monotonic()

    def _apply_requests(self, conn: Any) -> None:
        while True:
            try:
                what, reg = self.requests.get_nowait()
            except queue.Empty:
                return
            if what == "add":
                cmds, ops = self.core.add(reg)
            elif what == "forget":
                cmds, ops = self.core.remove_handler(reg.handler), []
            else:
                cmds, ops = self.core.remove(reg), []
            for args in cmds:
                conn.send_command(*args)
            for op in ops:
                self.client._run_reported(op)


class Herald:
    """A connection to a Herald broker (RESP2 or RESP3), with the seeds' APIs built on it.

    ``url`` is a redis URL (``redis://[:password@]host:port/db``, ``rediss://`` for TLS, ``?protocol=3``);
    default ``$HERALD_URL``, else ``redis://127.0.0.1:6379/0``. ``protocol`` picks RESP2 or RESP3 (redis-py's
    default otherwise). ``codec`` turns values into stored bytes and back (JSON by default). ``on_error``
    receives what no caller is waiting for: a callback that raised, a dropped listener connection.
    Other keyword arguments go to ``redis.Redis.from_url``.
    """

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
        redis_client: redis.Redis | None = None,
        **redis_kwargs: Any,
    ) -> None:
        self.settings = Settings(codec, on_error, subscribe_timeout, reconnect_delay, ping_interval)
        if redis_client is None:
            if protocol is not None:
                redis_kwargs["protocol"] = protocol
            redis_client = redis.Redis.from_url(resolve_url(url), **redis_kwargs)
        if redis_client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("Herald needs decode_responses=False (values are decoded by its codec)")
        self.redis: redis.Redis = redis_client
        self._listener = _Listener(self)

    @property
    def codec(self) -> Codec:
        return self.settings.codec

    # ---- running operations

    def call(self, *args: Arg) -> Any:
        """Sends one command and returns its raw reply (error replies raise typed ``HeraldError`` s)."""
        try:
            return self.redis.execute_command(*args)
        except redis.RedisError as e:
            raise from_redis(e) from e

    def run(self, op: Cmd[T] | Op[T]) -> T:
        """Runs an operation of the sans-IO core to its end."""
        if isinstance(op, Cmd):
            return op.parse(self.call(*op.args))
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                instr = op.throw(error) if error is not None else op.send(value)
            except StopIteration as stop:
                return cast(T, stop.value)
            value, error = None, None
            try:
                value = self._step(instr)
            except Exception as e:
                error = e

    def _step(self, instr: Any) -> Any:
        if isinstance(instr, Cmd):
            return instr.parse(self.call(*instr.args))
        if isinstance(instr, Sleep):
            time.sleep(instr.seconds)
            return None
        if isinstance(instr, Call):
            try:
                return instr.fn(*instr.args)
            except Exception as e:
                if not instr.report:
                    raise
                self.settings.report(e)
                return None
        if isinstance(instr, Txn):
            return self._txn(instr)
        raise TypeError(f"unknown instruction {instr!r}")

    def _txn(self, t: Txn) -> Any:
        try:
            with self.redis.pipeline(transaction=True) as pipe:
                cmds = list(t.cmds)
                if t.watch:
                    pipe.watch(*t.watch)
                    checked = t.check.parse(pipe.execute_command(*t.check.args)) if t.check else None
                    built = t.build(checked) if t.build else cmds
                    if built is None:
                        pipe.unwatch()
                        return None
                    cmds = built
                    pipe.multi()
                for c in cmds:
                    pipe.execute_command(*c.args)
                raw = pipe.execute(raise_on_error=False)
        except redis.WatchError:
            return None
        except redis.RedisError as e:
            raise from_redis(e) from e
        return [from_redis(r) if isinstance(r, Exception) else c.parse(r) for c, r in zip(cmds, raw)]

    def atomic(self, *cmds: Cmd[Any]) -> list[Any]:
        """Runs commands of the core (``bb.core.set(...)``, ``board.core.publish(...)`` ...) in one MULTI/EXEC:
        all at once, across domains. Returns their parsed replies (an error reply in place, as an exception)."""
        if not cmds:
            raise ValueError("atomic needs at least one command")
        return list(self.run(transaction(cmds)))

    def _run_reported(self, op: Op[None]) -> None:
        try:
            self.run(op)
        except Exception as e:
            self.settings.report(e)

    # ---- pub-sub

    def listen(self, kind: str, name: str | bytes, handler: Handler, wait: bool = True) -> Subscription:
        """Registers a handler on the listener connection (``kind`` "channel" or "pattern"); by default
        returns once the broker confirmed the subscription."""
        if kind not in ("channel", "pattern"):
            raise ValueError("kind is 'channel' or 'pattern'")
        return self._listener.register(kind, name, handler, wait)

    def subscribe(self, channel: str, callback: Callable[[str, Any], Any]) -> Subscription:
        """Calls ``callback(channel, message)`` for each message published on ``channel`` (decoded by the codec)."""
        return self.listen("channel", channel, CallbackHandler(callback, self.codec.decode))

    def psubscribe(self, pattern: str, callback: Callable[[str, Any], Any]) -> Subscription:
        """Like ``subscribe`` for every channel matching a glob pattern (Redis's rules)."""
        return self.listen("pattern", pattern, CallbackHandler(callback, self.codec.decode))

    def publish(self, channel: str, message: Any) -> int:
        """Publishes ``message`` (encoded by the codec); returns how many subscribers received it."""
        return int(self.call("PUBLISH", channel, self.codec.encode(message)))

    def forget(self, handler: Handler) -> None:
        """Drops every subscription of ``handler``."""
        self._listener.forget(handler)

    @property
    def listener_connects(self) -> int:
        """How many times the listener connection was opened (1 + reconnects)."""
        return self._listener.connects

    # ---- discovery: what exists, with its size and state (docs/commands.md, "Discovery")

    def list_page(self, command: str, cursor: str = "0", match: str | None = None, count: int | None = None, scope: str | None = None) -> tuple[str, list[dict[str, Any]]]:
        """One page of a discovery listing: ``(next_cursor, entries)``; ``"0"`` after the last page."""
        return self.run(discovery.page(command, cursor, match, count, scope))

    def queues(self, match: str | None = None, count: int | None = None) -> list[dict[str, Any]]:
        """Job queues: ``queue queued delayed running dead paused concurrency completed failed``."""
        return self.run(discovery.listing(discovery.QUEUES, match, count))

    def boards(self, match: str | None = None, count: int | None = None, scope: str | None = None) -> list[dict[str, Any]]:
        """Bulletin boards (of every scope, or ``scope``): ``scope board items leased dead maxlen``."""
        return self.run(discovery.listing(discovery.BOARDS, match, count, scope))

    def scopes(self, match: str | None = None, count: int | None = None) -> list[dict[str, Any]]:
        """Blackboard scopes: ``scope keys seq journal``."""
        return self.run(discovery.listing(discovery.SCOPES, match, count))

    def destinations(self, match: str | None = None, count: int | None = None) -> list[dict[str, Any]]:
        """Mailbox destinations: ``dest length maxlen topics`` (topic -> waiting messages)."""
        return self.run(discovery.listing(discovery.DESTS, match, count))

    def streams(self, match: str | None = None, count: int | None = None) -> list[dict[str, Any]]:
        """Streams: ``stream length first last next bytes closed epoch maxlen maxage``."""
        return self.run(discovery.listing(discovery.STREAMS, match, count))

    # ---- workflow communication (the DBOS seed): events, messages, streams

    def set_event(self, workflow_id: str, key: str, value: Any) -> int:
        """Publishes the workflow's latest ``key`` (a blackboard key in scope ``workflow_id``); returns its revision."""
        return self.run(wf.set_event(self.codec, workflow_id, key, value))

    def get_event(self, workflow_id: str, key: str, timeout_seconds: float | None = 60) -> Any:
        """The event's value, waiting up to ``timeout_seconds`` (None: forever) for it to be set; None if it was not."""
        return self.run(wf.get_event(self.codec, workflow_id, key, timeout_seconds))

    def get_all_events(self, workflow_id: str) -> dict[str, Any]:
        return self.run(wf.get_all_events(self.codec, workflow_id))

    def send(self, destination_id: str, message: Any, topic: str | None = None, idempotency_key: str | None = None) -> int:
        """Sends to ``destination_id``'s mailbox on ``topic``; returns the message id."""
        return self.run(wf.send(self.codec, destination_id, message, topic, idempotency_key))

    def recv(self, destination_id: str, topic: str | None = None, timeout_seconds: float | None = 60) -> Any:
        """The oldest message on the topic, removed, waiting up to ``timeout_seconds``; None if none came."""
        return self.run(wf.recv(self.codec, destination_id, topic, timeout_seconds))

    def write_stream(self, workflow_id: str, key: str, value: Any) -> int:
        """Appends to the workflow's stream ``key``; returns the entry's offset."""
        return self.run(wf.write_stream(self.codec, wf.stream_name(workflow_id, key), value))

    def close_stream(self, workflow_id: str, key: str) -> bool:
        return self.run(wf.close_stream(wf.stream_name(workflow_id, key)))

    def read_stream(self, workflow_id: str, key: str, from_offset: int = 0) -> Iterator[Any]:
        """Iterates the stream's values from ``from_offset`` until it is closed, waiting for new ones and
        resuming after a dropped connection."""
        return self.follow(wf.STREAM_READ, wf.stream_name(workflow_id, key), from_offset)

    def follow(self, command: str, key: str, from_offset: int = 0, block: float = 5.0) -> Iterator[Any]:
        """Iterates ``STREAM.READ`` or ``JOB.READ`` entries (decoded) from an offset to the end, resuming."""
        cursor = wf.StreamCursor(command, key, from_offset, block=block)
        while not cursor.done:
            yield from wf.decode_entries(self.codec, self.run(cursor.step()))

    def workflow(self, workflow_id: str) -> Workflow:
        """The in-workflow side (DBOS's ``DBOS.set_event`` / ``recv`` / ``write_stream``) bound to one id."""
        return Workflow(self, workflow_id)

    # ---- life

    def close(self) -> None:
        """Stops the listener and closes every connection."""
        self._listener.close()
        self.redis.close()

    def __enter__(self) -> Herald:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_END = object()


class Feed(Generic[T]):
    """Items pushed by the listener, read by iterating (blocking) or with ``get(timeout)``. ``close()`` ends
    it (and its subscription); iteration then stops after what is already queued."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self.subscription: Subscription | None = None
        self.closed = False

    def put(self, item: T) -> None:
        if not self.closed:
            self._queue.put(item)

    def get(self, timeout: float | None = None) -> T:
        """The next item, waiting up to ``timeout`` seconds (``herald.TimeoutError`` then)."""
        if self.closed and self._queue.empty():
            raise StopIteration
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise HeraldTimeout(f"nothing arrived within {timeout}s") from None
        if item is _END:
            raise StopIteration
        return cast(T, item)

    def __iter__(self) -> Iterator[T]:
        while True:
            try:
                yield self.get()
            except StopIteration:
                return

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.subscription is not None:
                self.subscription.cancel()
            self._queue.put(_END)

    def __enter__(self) -> Feed[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Workflow:
    """One workflow's own view: ``set_event``, ``recv`` on its mailbox, ``write_stream`` / ``close_stream``."""

    def __init__(self, client: Herald, workflow_id: str) -> None:
        self.client = client
        self.workflow_id = workflow_id

    def set_event(self, key: str, value: Any) -> int:
        return self.client.set_event(self.workflow_id, key, value)

    def recv(self, topic: str | None = None, timeout_seconds: float | None = 60) -> Any:
        return self.client.recv(self.workflow_id, topic, timeout_seconds)

    def write_stream(self, key: str, value: Any) -> int:
        return self.client.write_stream(self.workflow_id, key, value)

    def close_stream(self, key: str) -> bool:
        return self.client.close_stream(self.workflow_id, key)


_default: Herald | None = None
_default_lock = threading.Lock()


def connect(url: str | None = None, **kwargs: Any) -> Herald:
    """Creates a client and makes it the default one (used by classes constructed without ``client=``)."""
    global _default
    client = Herald(url, **kwargs)
    with _default_lock:
        _default = client
    return client


def default_client(client: Herald | None = None) -> Herald:
    """``client``, else the default client (created from ``$HERALD_URL`` on first use)."""
    global _default
    if client is not None:
        return client
    with _default_lock:
        if _default is None:
            _default = Herald()
        return _default
