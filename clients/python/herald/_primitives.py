"""Distributed primitives (the async-primitives and Theus seeds) as sans-IO operations on existing commands:

- ``Event``: a blackboard key; ``wait`` is BB.WAIT, so every waiter wakes when it is set.
- ``Future``: a blackboard key written once (``IFREV 0``): result, error or cancellation; ``result(timeout)``
  is BB.WAIT. Request/response is MSG.REQUEST (the broker correlates and times out) / MSG.RECV / MSG.REPLY.
- ``Queue``: a bulletin board (bounded with ``reject-new`` for ``maxsize``) plus an unfinished-task counter
  for ``task_done`` / ``join``; a ``put`` on a full queue waits in the broker (BL.PUBLISH ... BLOCK).
- ``Semaphore``: SEM.ACQUIRE / SEM.EXTEND / SEM.RELEASE: each permit is held under a lease with a fencing
  token, so a holder that dies gives its permit back when the lease runs out.
- ``SignalHub``: pub-sub channels ``<hub>:<signal>``; receivers buffer up to ``capacity`` and report lag.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple

from ._proto import Cmd, Op, Txn, as_map, ms, text
from ._blackboard import BlackboardCore
from ._bulletin import BulletinCore
from .codec import Codec, JsonCodec, TypedCodec
from .errors import CancelledError, ConflictError, FullError, HeraldError, LeaseError
from .errors import TimeoutError as HeraldTimeout

SCOPE = "herald"
"""The blackboard scope and bulletin scope the primitives keep their state in."""


class EventCore:
    def __init__(self, codec: Codec, name: str, scope: str = SCOPE) -> None:
        self.bb = BlackboardCore(codec, scope)
        self.key = f"event:{name}"

    def set(self) -> Cmd[int]:
        return self.bb.set(self.key, True)

    def clear(self) -> Cmd[int]:
        return self.bb.delete((self.key,))

    def is_set(self) -> Cmd[bool]:
        return self.bb.has(self.key)

    def wait(self, timeout: float | None) -> Cmd[bool]:
        if timeout == 0:
            return self.is_set()
        cmd = self.bb.wait(self.key, timeout)
        return Cmd(cmd.args, lambda r: r is not None)


class FutureError(HeraldError):
    """The other side resolved the Future with an error (``set_exception``)."""

    default_code = "FUTURE"


class FutureCore:
    """One value, written once: ``{"result": v}``, ``{"error": message}`` or ``{"cancelled": true}``."""

    def __init__(self, codec: Codec, name: str, ttl: float | None, scope: str = SCOPE) -> None:
        self.codec = codec
        self.bb = BlackboardCore(JsonCodec(strict=True), scope)
        self.name = name
        self.key = f"future:{name}"
        self.ttl = ttl

    def _resolve(self, envelope: dict[str, Any]) -> Op[bool]:
        try:
            yield self.bb.set(self.key, envelope, self.ttl, if_revision=0)
            return True
        except ConflictError:
            return False

    def set_result(self, value: Any) -> Op[bool]:
        return self._resolve({"result": json.loads(self.codec.encode(value))})

    def set_exception(self, message: str) -> Op[bool]:
        return self._resolve({"error": str(message)})

    def cancel(self) -> Op[bool]:
        return self._resolve({"cancelled": True})

    def done(self) -> Cmd[bool]:
        return self.bb.has(self.key)

    def _outcome(self, envelope: Any) -> Any:
        if "result" in envelope:
            return envelope["result"]
        if envelope.get("cancelled"):
            raise CancelledError(f"future {self.name} was cancelled")
        raise FutureError(str(envelope.get("error")))

    def result(self, timeout: float | None) -> Cmd[Any]:
        def parse(reply: Any) -> Any:
            if reply is None:
                raise HeraldTimeout(f"future {self.name} was not resolved" + (f" within {timeout}s" if timeout else ""))
            return self._outcome(self.bb.codec.decode(as_map(reply)["value"]))

        if timeout == 0:
            return Cmd(("BB.GET", self.bb.scope, self.key), parse)
        return Cmd(self.bb.wait(self.key, timeout).args, parse)


@dataclass
class Request:
    """A message taken from a mailbox: ``body``, and ``reply_to`` when it is a request (MSG.REQUEST) that
    ``reply(value)`` answers."""

    body: Any
    reply_to: str | None

    def reply_cmd(self, codec: Codec, value: Any) -> Cmd[bool]:
        if not self.reply_to:
            raise ValueError("this message carries no reply address: it was sent with send(), not request()")
        return Cmd(("MSG.REPLY", self.reply_to, codec.encode(value)), lambda r: int(r) == 1)


REQUEST_FOREVER = 24 * 3600.0
"""MSG.REQUEST always has a deadline: ``timeout=None`` waits a day."""


def request_cmd(codec: Codec, destination: str, body: Any, topic: str | None, timeout: float | None) -> Cmd[Any]:
    """MSG.REQUEST: sends ``body`` with a reply address and waits for the reply (``TimeoutError`` without one)."""
    wait = REQUEST_FOREVER if timeout is None else timeout
    if wait <= 0:
        raise ValueError("a request needs a positive timeout")

    def parse(reply: Any) -> Any:
        if reply is None:
            raise HeraldTimeout(f"no reply from {destination} within {wait}s")
        return codec.decode(reply)

    return Cmd(("MSG.REQUEST", destination, "" if topic is None else topic, codec.encode(body), "TIMEOUT", ms(wait)), parse)


def parse_request(codec: Codec, message: Any) -> Request | None:
    """What MSG.RECV returned: nothing, a plain message (its payload) or a request (``payload``, ``reply_to``)."""
    if message is None:
        return None
    if isinstance(message, (dict, list, tuple)):
        m = as_map(message)
        return Request(codec.decode(m["payload"]), text(m["reply_to"]))
    return Request(codec.decode(message), None)


class QueueCore:
    def __init__(self, codec: Codec, name: str, maxsize: int, lease: float = 60.0, scope: str = SCOPE) -> None:
        if maxsize < 0:
            raise ValueError("maxsize must be >= 0 (0: unbounded)")
        self.board: BulletinCore[Any] = BulletinCore(TypedCodec(Any, codec if isinstance(codec, JsonCodec) else JsonCodec(strict=True)), f"queue:{name}", scope)
        self.counter = f"{scope}:queue:{name}:unfinished"
        self.maxsize = maxsize
        self.lease = lease

    def configure(self) -> Cmd[None]:
        return self.board.configure(self.maxsize, "reject-new", 0)

    def put(self, item: Any, timeout: float | None) -> Op[None]:
        """Counts the item as unfinished, then publishes it; on a full queue the broker holds the publish until
        there is room (BL.PUBLISH ... BLOCK), up to ``timeout`` (None: as long as it takes; 0: not at all).
        Counting first keeps ``task_done`` from running ahead of the count."""
        yield Cmd(("INCR", self.counter), int)
        try:
            publish = self.board.publish(item)
            args = publish.args if timeout == 0 else (*publish.args, "BLOCK", ms(timeout))
            published = yield Cmd(args, lambda r: None if r is None else text(r))
        except BaseException:
            yield Cmd(("DECR", self.counter), int)
            raise
        if published is None:
            yield Cmd(("DECR", self.counter), int)
            raise FullError(f"queue {self.board.board} is full ({self.maxsize} items)")

    def get(self, timeout: float | None) -> Op[Any]:
        """Takes the oldest item (locked, then removed), waiting up to ``timeout`` (0: not at all)."""
        while True:
            block = None if timeout == 0 else (5.0 if timeout is None else timeout)
            posting = yield self.board.retrieve(None, self.lease, block)
            if posting is None:
                if timeout == 0:
                    raise QueueEmpty(f"queue {self.board.board} is empty")
                if timeout is not None:
                    raise HeraldTimeout(f"queue {self.board.board} stayed empty for {timeout}s")
                continue
            try:
                yield self.board.remove(posting.id, posting.token)
            except LeaseError:
                continue  # our lease ran out before the remove: someone else may have it now
            return posting.item

    def task_done(self) -> Op[None]:
        left = yield Cmd(("DECR", self.counter), int)
        if left < 0:
            yield Cmd(("INCR", self.counter), int)
            raise ValueError("task_done() called more times than there were items")

    def unfinished(self) -> Cmd[int]:
        return Cmd(("GET", self.counter), lambda r: 0 if r is None else int(r))

    def join(self, timeout: float | None, clock: Any) -> Op[None]:
        """Waits until every item put was marked done, woken by each change of the counter (BB.WAIT AFTER)."""
        deadline = None if timeout is None else clock() + timeout
        while True:
            entry = yield Cmd(("BB.GET", "", self.counter), lambda r: None if r is None else as_map(r))
            if entry is None or int(entry["value"]) <= 0:
                return
            left = None if deadline is None else deadline - clock()
            if left is not None and left <= 0:
                raise HeraldTimeout(f"queue {self.board.board} still has {int(entry['value'])} unfinished tasks")
            yield Cmd(("BB.WAIT", "", self.counter, "AFTER", int(entry["revision"]), "TIMEOUT", ms(left)))


class QueueEmpty(HeraldError):
    default_code = "EMPTY"


class SemaphoreCore:
    """``value`` permits of the broker's semaphore ``name`` (SEM.*), each held under a lease; a permit is its
    fencing token."""

    def __init__(self, name: str, value: int, lease: float) -> None:
        if value < 1:
            raise ValueError("a semaphore needs at least one permit")
        if lease <= 0:
            raise ValueError("the lease must be a positive number of seconds")
        self.name = name
        self.value = value
        self.lease = lease

    def check(self) -> Cmd[None]:
        """Refuses a size other than the one the semaphore's current holders use."""

        def parse(reply: Any) -> None:
            info = as_map(reply)
            if int(info["held"]) > 0 and int(info["permits"]) != self.value:
                raise ValueError(f"semaphore {self.name} is in use with {int(info['permits'])} permits, not {self.value}")

        return Cmd(("SEM.INFO", self.name), parse)

    def acquire(self, timeout: float | None) -> Op[int | None]:
        """A permit's fencing token, waiting up to ``timeout`` (None: until one is free; 0: not at all)."""
        while True:
            args: tuple[Any, ...] = ("SEM.ACQUIRE", self.name, self.value, "LEASE", ms(self.lease))
            if timeout != 0:
                args += ("BLOCK", ms(5.0 if timeout is None else timeout))
            token: int | None = yield Cmd(args, lambda r: None if r is None else int(r))
            if token is not None or timeout is not None:
                return token

    def extend(self, token: int) -> Cmd[int]:
        return Cmd(("SEM.EXTEND", self.name, token, ms(self.lease)), int)

    def release(self, token: int) -> Cmd[None]:
        return Cmd(("SEM.RELEASE", self.name, token), lambda r: None)

    def locked(self) -> Cmd[bool]:
        return Cmd(("SEM.INFO", self.name), lambda r: int(as_map(r)["held"]) >= self.value)


class Signal(NamedTuple):
    name: str
    data: Any


class SignalBuffer:
    """A receiver's bounded buffer: past ``capacity`` the oldest signal is dropped and counted as lag."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.items: deque[Signal] = deque()
        self.capacity = capacity
        self.lagged = 0

    def add(self, signal: Signal | None, lagged: int = 0) -> None:
        """A signal from the listener, or (None) the broker's notice that ``lagged`` pushes were dropped."""
        if signal is None:
            self.lagged += lagged
        else:
            self.push(signal)

    def push(self, signal: Signal) -> None:
        self.items.append(signal)
        if len(self.items) > self.capacity:
            self.items.popleft()
            self.lagged += 1

    def take(self) -> Signal | None:
        """The next signal; raises ``LaggedError`` first if signals were dropped since the last call."""
        from .errors import LaggedError

        if self.lagged:
            n, self.lagged = self.lagged, 0
            raise LaggedError(n)
        return self.items.popleft() if self.items else None


def signal_of(hub: str, channel: str, data: Any) -> Signal:
    prefix = hub + ":"
    return Signal(channel[len(prefix) :] if channel.startswith(prefix) else channel, data)

