"""The sans-IO core shared by the sync and asyncio clients.

Every operation of the client is written once, here and in the domain modules, as either a :class:`Cmd` (one
command and the function that parses its reply) or a generator that yields instructions (``Cmd``,
:class:`Sleep`, :class:`Call`, :class:`Txn`) and receives their results. ``herald.client`` runs them with
redis-py's blocking client, ``herald.aio`` with its asyncio client; neither knows what a command means.
Replies are normalised here so that RESP2 (maps as flat arrays, booleans as 0/1) and RESP3 (maps, booleans)
parse alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Generic, TypeVar, Union

T = TypeVar("T")

#: The drop-oldest overflow notice arrives over RESP as ``["message", "__herald__:lagged", "<count>"]``,
#: a message every Redis client library parses (the broker's ``server/resp.rs``).
LAGGED_CHANNEL = b"__herald__:lagged"

Arg = Union[str, bytes, int, float]


def _identity(reply: Any) -> Any:
    return reply


@dataclass(frozen=True)
class Cmd(Generic[T]):
    """One command; the runner sends ``args`` and returns ``parse(reply)``. Error replies raise the typed
    exception of ``herald.errors`` instead."""

    args: tuple[Arg, ...]
    parse: Callable[[Any], T] = _identity


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Call:
    """Calls ``fn(*args)`` (awaiting it under asyncio if it returns an awaitable). With ``report``, an
    exception is handed to the client's error handler instead of the operation (user callbacks)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    report: bool = False


@dataclass(frozen=True)
class Txn:
    """MULTI/EXEC of ``cmds`` on one connection. With ``watch``: WATCH those keys first, run ``check`` and
    pass its reply to ``build``, which returns the commands to run atomically, or None to run none (the
    runner then returns None). A watched key changed meanwhile makes the runner return None as well.
    Returns the list of parsed replies; an error reply inside EXEC is returned in place, as an exception."""

    cmds: tuple[Cmd[Any], ...] = ()
    watch: tuple[str, ...] = ()
    check: Cmd[Any] | None = None
    build: Callable[[Any], list[Cmd[Any]] | None] | None = None


Instr = Union[Cmd[Any], Sleep, Call, Txn]
Op = Generator[Instr, Any, T]
"""A multi-step operation: yields instructions, receives their results, returns its value."""


def transaction(cmds: tuple[Cmd[Any], ...]) -> Op[list[Any]]:
    """The commands in one MULTI/EXEC; their parsed replies (an error reply in place, as an exception)."""
    replies = yield Txn(cmds)
    return list(replies)


# ---------------------------------------------------------------------------------------------------------
# Reply normalisation


def text(v: Any) -> str:
    """A reply element as text (bulk strings arrive as bytes)."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    return str(v)


def opt_text(v: Any) -> str | None:
    return None if v is None else text(v)


def opt_int(v: Any) -> int | None:
    return None if v is None else int(v)


def as_bool(v: Any) -> bool:
    """RESP3 booleans and RESP2's 0/1 integers alike."""
    if isinstance(v, bytes):
        return v not in (b"0", b"", b"false")
    return bool(v)


def as_map(reply: Any) -> dict[str, Any]:
    """A map reply, whether RESP3 sent a map or RESP2 a flat ``[k, v, k, v]`` array; keys as text."""
    if isinstance(reply, dict):
        return {text(k): v for k, v in reply.items()}
    if isinstance(reply, (list, tuple)):
        return {text(reply[i]): reply[i + 1] for i in range(0, len(reply) - 1, 2)}
    raise TypeError(f"expected a map reply, got {reply!r}")


def as_list(reply: Any) -> list[Any]:
    return [] if reply is None else list(reply)


def ms(seconds: float | None) -> int:
    """Seconds (fractions allowed) as whole milliseconds; ``None`` means forever (0 for blocking commands)."""
    if seconds is None:
        return 0
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative: {seconds}")
    return max(1, round(seconds * 1000)) if seconds > 0 else 0


def require_positive(name: str, seconds: float | None) -> None:
    if seconds is not None and seconds <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, not {seconds!r}")


# ---------------------------------------------------------------------------------------------------------
# The listener: one pub-sub connection per client, shared by every callback, watch and receiver.


class Handler:
    """What a subscription does with what arrives. Each method may return an operation, which the listener
    runs (commands on the client's command connections, callbacks through :class:`Call`) before it reads
    on. Defaults do nothing."""

    def on_ready(self, resumed: bool) -> Op[None] | None:
        """The broker confirmed the subscription: first (``resumed`` False) or after a reconnect."""
        return None

    def on_message(self, channel: bytes, data: bytes) -> Op[None] | None:
        return None

    def on_lagged(self, count: int) -> Op[None] | None:
        """The broker's drop-oldest policy discarded ``count`` pushes for this connection."""
        return None


class Flag:
    """A settable flag (the sync client swaps in ``threading.Event``, the async one ``asyncio.Event``)."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


@dataclass(eq=False)
class Registration:
    kind: str  # "channel" or "pattern"
    name: bytes
    handler: Handler
    ready: Any = field(default_factory=Flag)
    ready_generation: int = 0
    was_ready: bool = False

    @property
    def key(self) -> tuple[str, bytes]:
        return (self.kind, self.name)


_SUBSCRIBE = {"channel": "SUBSCRIBE", "pattern": "PSUBSCRIBE"}
_UNSUBSCRIBE = {"channel": "UNSUBSCRIBE", "pattern": "PUNSUBSCRIBE"}


class ListenerCore:
    """The listener's state, without I/O: which names are subscribed for whom, what to send on (re)connect,
    and what each frame read from the connection means. Only the listener's own thread or task calls it."""

    def __init__(self) -> None:
        self.regs: dict[tuple[str, bytes], list[Registration]] = {}
        self.generation = 0
        self.connected = False
        self._confirmed: set[tuple[str, bytes]] = set()

    def on_connect(self) -> list[tuple[Arg, ...]]:
        """A new connection is open: the commands that subscribe everything registered."""
        self.generation += 1
        self.connected = True
        self._confirmed.clear()
        out: list[tuple[Arg, ...]] = []
        for kind in ("channel", "pattern"):
            names = [name for (k, name) in self.regs if k == kind]
            for i in range(0, len(names), 256):
                out.append((_SUBSCRIBE[kind], *names[i : i + 256]))
        return out

    def on_disconnect(self) -> None:
        self.connected = False

    def add(self, reg: Registration) -> tuple[list[tuple[Arg, ...]], list[Op[None]]]:
        """Registers; returns the commands to send now and the operations to run now."""
        fresh = reg.key not in self.regs
        self.regs.setdefault(reg.key, []).append(reg)
        if not self.connected:
            return [], []
        if fresh:
            return [(_SUBSCRIBE[reg.kind], reg.name)], []
        if reg.key in self._confirmed:
            return [], [self._ready(reg)]
        return [], []

    def remove(self, reg: Registration) -> list[tuple[Arg, ...]]:
        regs = self.regs.get(reg.key)
        if not regs or reg not in regs:
            return []
        regs.remove(reg)
        if regs:
            return []
        del self.regs[reg.key]
        self._confirmed.discard(reg.key)
        return [(_UNSUBSCRIBE[reg.kind], reg.name)] if self.connected else []

    def remove_handler(self, handler: Handler) -> list[tuple[Arg, ...]]:
        """Removes every registration of ``handler`` (a handler that finished its job)."""
        out: list[tuple[Arg, ...]] = []
        for regs in list(self.regs.values()):
            for reg in [r for r in regs if r.handler is handler]:
                out += self.remove(reg)
        return out

    def _ready(self, reg: Registration) -> Op[None]:
        reg.ready_generation = self.generation
        resumed, reg.was_ready = reg.was_ready, True
        try:
            inner = reg.handler.on_ready(resumed)
            if inner is not None:
                yield from inner
        finally:
            reg.ready.set()

    def feed(self, frame: Any) -> list[Op[None]]:
        """One frame from the connection: the operations it calls for, in order."""
        if not isinstance(frame, (list, tuple)) or not frame:
            return []
        kind = text(frame[0]).lower()
        ops: list[Op[None]] = []
        if kind in ("subscribe", "psubscribe") and len(frame) >= 2:
            key = ("channel" if kind == "subscribe" else "pattern", bytes(frame[1]))
            self._confirmed.add(key)
            for reg in list(self.regs.get(key, ())):
                if reg.ready_generation < self.generation:
                    ops.append(self._ready(reg))
        elif kind == "message" and len(frame) >= 3 and bytes(frame[1]) == LAGGED_CHANNEL:
            seen: set[int] = set()
            for regs in list(self.regs.values()):
                for reg in regs:
                    if id(reg.handler) not in seen:
                        seen.add(id(reg.handler))
                        op = reg.handler.on_lagged(int(frame[2]))
                        if op is not None:
                            ops.append(op)
        elif kind == "message" and len(frame) >= 3:
            ops.extend(self._deliver(("channel", bytes(frame[1])), bytes(frame[1]), frame[2]))
        elif kind == "pmessage" and len(frame) >= 4:
            ops.extend(self._deliver(("pattern", bytes(frame[1])), bytes(frame[2]), frame[3]))
        return ops

    def _deliver(self, key: tuple[str, bytes], channel: bytes, data: Any) -> list[Op[None]]:
        payload = data if isinstance(data, bytes) else text(data).encode()
        ops = []
        for reg in list(self.regs.get(key, ())):
            op = reg.handler.on_message(channel, payload)
            if op is not None:
                ops.append(op)
        return ops


class CallbackHandler(Handler):
    """Plain pub-sub: calls ``fn(channel, data)`` for each message (data decoded by ``decode``)."""

    def __init__(self, fn: Callable[[str, Any], Any], decode: Callable[[bytes], Any]) -> None:
        self.fn = fn
        self.decode = decode

    def on_message(self, channel: bytes, data: bytes) -> Op[None] | None:
        return _call(self.fn, text(channel), self.decode(data))


def _call(fn: Callable[..., Any], *args: Any) -> Op[None]:
    yield Call(fn, args, report=True)


def deliver(fn: Callable[..., Any], *args: Any) -> Op[None]:
    """An operation that calls a user callback (errors go to the client's error handler)."""
    return _call(fn, *args)
