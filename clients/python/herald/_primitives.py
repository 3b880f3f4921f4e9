"""Distributed primitives (the async-primitives and Theus seeds) as sans-IO operations on existing commands:

- ``Event``: a blackboard key; ``wait`` is BB.WAIT, so every waiter wakes when it is set.
- ``Future``: a blackboard key written once (``IFREV 0``): result, error or cancellation; ``result(timeout)``
  is BB.WAIT. Request/response puts a reply-to Future in a mailbox message (stand-in for MSG.REQUEST/REPLY).
- ``Queue``: a bulletin board (bounded with ``reject-new`` for ``maxsize``) plus an unfinished-task counter
  for ``task_done`` / ``join``; a ``put`` on a full queue polls (the broker has no blocking publish yet).
- ``Semaphore``: a board of N permit items; ``acquire`` locks one under a lease (BL.RETRIEVE LOCK BLOCK), so a
  holder that dies gives its permit back when the lease runs out (stand-in for SEM.*).
- ``SignalHub``: pub-sub channels ``<hub>:<signal>``; receivers buffer up to ``capacity`` and report lag.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple

from ._proto import Cmd, Op, Sleep, Txn, as_map, ms
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
    """A request taken from a mailbox: ``body``, and ``reply(value)`` to answer the requester."""

    body: Any
    reply_to: str | None

    def reply_future(self, codec: Codec, ttl: float | None) -> FutureCore:
        if not self.reply_to:
            raise ValueError("this message carries no reply_to: it was sent with send(), not request()")
        return FutureCore(codec, self.reply_to, ttl)


def request_envelope(body: Any) -> tuple[str, dict[str, Any]]:
    reply_to = f"reply:{uuid.uuid4().hex}"
    return reply_to, {"reply_to": reply_to, "body": body}


def parse_request(message: Any) -> Request | None:
    if message is None:
        return None
    if isinstance(message, dict) and "reply_to" in message:
        return Request(message.get("body"), message["reply_to"])
    return Request(message, None)


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

    def put(self, item: Any, timeout: float | None, clock: Any) -> Op[None]:
        """Publishes and counts the item in one transaction; on a full queue waits (polling) up to ``timeout``."""
        deadline = None if timeout is None else clock() + timeout
        delay = 0.005
        while True:
            published, _ = yield Txn((self.board.publish(item), Cmd(("INCR", self.counter), int)))
            if not isinstance(published, FullError):
                if isinstance(published, Exception):
                    yield Cmd(("DECR", self.counter), int)
                    raise published
                return
            yield Cmd(("DECR", self.counter), int)
            if timeout == 0 or (deadline is not None and clock() >= deadline):
                raise FullError(f"queue {self.board.board} is full ({self.maxsize} items)")
            yield Sleep(delay if deadline is None else min(delay, max(0.0, deadline - clock())))
            delay = min(delay * 2, 0.2)

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
    """N permits as items of a board, each held under a lease."""

    def __init__(self, name: str, value: int, lease: float, scope: str = SCOPE) -> None:
        if value < 1:
            raise ValueError("a semaphore needs at least one permit")
        self.board: BulletinCore[dict[str, Any]] = BulletinCore(TypedCodec(dict, JsonCodec(strict=True)), f"sem:{name}", scope)
        self.guard = f"{scope}:sem:{name}"
        self.value = value
        self.lease = lease

    def init(self) -> Op[None]:
        """Publishes the permits exactly once across every process (WATCH on the guard key)."""
        while True:
            existing = yield Cmd(("GET", self.guard), lambda r: None if r is None else int(r))
            if existing is not None:
                if existing != self.value:
                    raise ValueError(f"semaphore {self.board.board} exists with {existing} permits, not {self.value}")
                return

            def build(current: Any) -> list[Cmd[Any]] | None:
                if current is not None:
                    return None
                permits = [self.board.publish({"permit": i}) for i in range(self.value)]
                return [Cmd(("SET", self.guard, self.value)), self.board.configure(None, None, 0), *permits]

            yield Txn(watch=(self.guard,), check=Cmd(("GET", self.guard)), build=build)

    def acquire(self, timeout: float | None) -> Op[tuple[str, int] | None]:
        """A permit ``(id, token)``, waiting up to ``timeout`` (None: until one is free; 0: not at all)."""
        while True:
            p = yield self.board.retrieve(None, self.lease, 5.0 if timeout is None else (timeout or None))
            if p is not None:
                return (p.id, p.token or 0)
            if timeout is not None:
                return None

    def extend(self, permit: tuple[str, int]) -> Cmd[int]:
        return self.board.extend(permit[0], permit[1], self.lease)

    def release(self, permit: tuple[str, int]) -> Cmd[None]:
        return self.board.release(permit[0], permit[1])

    def locked(self) -> Cmd[bool]:
        return Cmd(self.board.retrieve(None, None, None).args, lambda r: r is None)


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

