"""The blackboard (BB.*) as sans-IO operations, and the watch handler that turns ``__bb:...`` pushes into
callbacks, filling any gap after a reconnect or a ``lagged`` notice from the scope's journal (BB.CHANGES)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Iterable

from ._proto import Call, Cmd, Handler, Op, as_list, as_map, deliver, ms, opt_int, text
from .codec import Codec
from .errors import ConflictError, LostError
from .glob import glob_escape, glob_match


class BlackboardEventType(str, Enum):
    """What happened to a key (the seeds' names; the value is the broker's event name)."""

    ON_SET = "set"
    ON_DELETE = "del"
    ON_EXPIRE = "expire"


ALL_EVENTS = frozenset(BlackboardEventType)


@dataclass(frozen=True)
class Entry:
    """A key's value with its revision and time to live (seconds; None without expiry)."""

    value: Any
    revision: int
    ttl: float | None


@dataclass(frozen=True)
class Change:
    """One change of a key: ``value`` is the new value for ``ON_SET``, the value it held for ``ON_DELETE`` /
    ``ON_EXPIRE``; ``seq`` its place in the scope's journal; ``replayed`` when read back after a gap."""

    scope: str
    key: str
    event: BlackboardEventType
    seq: int
    revision: int
    value: Any
    replayed: bool = False


@dataclass(frozen=True)
class Changes:
    seq: int
    changes: list[Change]


@dataclass(frozen=True)
class Snapshot:
    seq: int
    entries: dict[str, Entry] = field(default_factory=dict)


def _ttl(v: Any) -> float | None:
    t = opt_int(v)
    return None if t is None or t < 0 else t / 1000


def event_value(codec: Codec, v: Any) -> Any:
    """A value as watch events and BB.CHANGES carry it: text, ``{"base64": ...}``, or null."""
    if v is None:
        return None
    if isinstance(v, dict) and set(v) == {"base64"}:
        return codec.decode(base64.b64decode(v["base64"]))
    if isinstance(v, str):
        return codec.decode(v.encode())
    return codec.decode(v if isinstance(v, bytes) else text(v).encode())


def parse_events(events: Iterable[BlackboardEventType | str] | None) -> frozenset[BlackboardEventType]:
    if events is None:
        return ALL_EVENTS
    out = frozenset(BlackboardEventType(e) for e in events)
    if not out:
        raise ValueError("events is empty: pass None for every event")
    return out


class BlackboardCore:
    """Builds the BB.* commands of one default scope (``""`` is the global scope, Redis database 0)."""

    def __init__(self, codec: Codec, scope: str = "") -> None:
        self.codec = codec
        self.scope = scope

    def s(self, scope: str | None) -> str:
        return self.scope if scope is None else scope

    def set(
        self,
        key: str,
        value: Any,
        ttl: float | None = None,
        scope: str | None = None,
        *,
        if_revision: int | None = None,
        only_if_absent: bool = False,
        only_if_present: bool = False,
        keep_ttl: bool = False,
    ) -> Cmd[int]:
        args: tuple[Any, ...] = ("BB.SET", self.s(scope), key, self.codec.encode(value))
        if ttl is not None:
            if ttl <= 0:
                raise ValueError(f"ttl must be a positive number of seconds, not {ttl!r}")
            args += ("PX", ms(ttl))
        elif keep_ttl:
            args += ("KEEPTTL",)
        if sum((if_revision is not None, only_if_absent, only_if_present)) > 1:
            raise ValueError("pass at most one of if_revision, only_if_absent, only_if_present")
        if if_revision is not None:
            if if_revision < 0:
                raise ValueError("a revision is >= 0 (0: the key must be absent)")
            args += ("IFREV", if_revision)
        elif only_if_absent:
            args += ("NX",)
        elif only_if_present:
            args += ("XX",)
        return Cmd(args, int)

    def parse_entry(self, reply: Any) -> Entry | None:
        if reply is None:
            return None
        m = as_map(reply)
        return Entry(self.codec.decode(m["value"]), int(m["revision"]), _ttl(m.get("ttl")))

    def get_entry(self, key: str, scope: str | None = None) -> Cmd[Entry | None]:
        return Cmd(("BB.GET", self.s(scope), key), self.parse_entry)

    def get(self, key: str, default: Any = None, scope: str | None = None) -> Cmd[Any]:
        return Cmd(("BB.GET", self.s(scope), key), lambda r: default if r is None else self.codec.decode(as_map(r)["value"]))

    def has(self, key: str, scope: str | None = None) -> Cmd[bool]:
        return Cmd(("BB.HAS", self.s(scope), key), lambda r: int(r) == 1)

    def delete(self, keys: tuple[str, ...], scope: str | None = None) -> Cmd[int]:
        if not keys:
            raise ValueError("delete needs at least one key")
        return Cmd(("BB.DEL", self.s(scope), *keys), int)

    def clear(self, scope: str | None = None) -> Cmd[int]:
        return Cmd(("BB.CLEAR", self.s(scope)), int)

    def keys(self, pattern: str = "*", scope: str | None = None) -> Cmd[list[str]]:
        return Cmd(("BB.KEYS", self.s(scope), pattern), lambda r: sorted(text(k) for k in as_list(r)))

    def stats(self, scope: str | None = None) -> Cmd[dict[str, int]]:
        def parse(r: Any) -> dict[str, int]:
            out = {k: int(v) for k, v in as_map(r).items()}
            out["count"] = out.get("keys", 0)  # the seeds' name for the number of items
            return out

        return Cmd(("BB.STATS", self.s(scope)), parse)

    def scopes(self) -> Cmd[list[str]]:
        return Cmd(("BB.SCOPES",), lambda r: [text(s) for s in as_list(r)])

    def wait(self, key: str, timeout: float | None, after: int | None = None, scope: str | None = None) -> Cmd[Entry | None]:
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive (None waits forever)")
        args: tuple[Any, ...] = ("BB.WAIT", self.s(scope), key)
        if after is not None:
            args += ("AFTER", after)
        return Cmd(args + ("TIMEOUT", ms(timeout)), self.parse_entry)

    def parse_change(self, scope: str, m: dict[str, Any], replayed: bool) -> Change:
        return Change(
            scope,
            text(m["key"]),
            BlackboardEventType(text(m["event"])),
            int(m["seq"]),
            int(m.get("revision") or 0),
            event_value(self.codec, m.get("value")),
            replayed,
        )

    def changes(self, since: int, count: int = 1000, scope: str | None = None) -> Cmd[Changes]:
        sc = self.s(scope)

        def parse(r: Any) -> Changes:
            m = as_map(r)
            return Changes(int(m["seq"]), [self.parse_change(sc, as_map(c), True) for c in as_list(m.get("changes"))])

        return Cmd(("BB.CHANGES", sc, "SINCE", since, "COUNT", count), parse)

    def snapshot(self, pattern: str = "*", scope: str | None = None) -> Cmd[Snapshot]:
        def parse(r: Any) -> Snapshot:
            m = as_map(r)
            entries = {}
            for e in map(as_map, as_list(m.get("entries"))):
                entries[text(e["key"])] = Entry(self.codec.decode(e["value"]), int(e["revision"]), _ttl(e.get("ttl")))
            return Snapshot(int(m["seq"]), entries)

        return Cmd(("BB.GETALL", self.s(scope), pattern), parse)

    def update(self, key: str, fn: Callable[[Any], Any], scope: str | None, ttl: float | None, retries: int) -> Op[Any]:
        """Compare-and-set loop: reads the key, writes ``fn(value)`` only if nobody wrote since, retries on
        ``CONFLICT``. ``fn`` gets None for an absent key. Returns the value written."""
        for _ in range(retries):
            entry = yield self.get_entry(key, scope)
            new = fn(None if entry is None else entry.value)
            try:
                yield self.set(key, new, ttl, scope, if_revision=0 if entry is None else entry.revision)
                return new
            except ConflictError:
                continue
        raise ConflictError(f"{key!r} changed under {retries} attempts in a row")

    def watch_pattern(self, pattern: str, scope: str | None = None) -> str:
        return f"__bb:*@{glob_escape(self.s(scope))}__:{pattern}"


class WatchHandler(Handler):
    """Blackboard events of one scope and key pattern, each delivered once, in journal order, to ``sink``;
    after a reconnect or ``lagged`` the gap is read with BB.CHANGES. If the journal no longer reaches back,
    ``on_lost(LostError, Snapshot)`` is called and the watch goes on from the snapshot's position."""

    def __init__(
        self,
        core: BlackboardCore,
        scope: str,
        pattern: str,
        events: frozenset[BlackboardEventType],
        sink: Callable[[Change], Any],
        on_lost: Callable[[LostError, Snapshot], Any],
        since: int | None = None,
    ) -> None:
        self.core = core
        self.scope = scope
        self.pattern = pattern
        self.events = events
        self.sink = sink
        self.on_lost = on_lost
        self.seq = since

    def on_ready(self, resumed: bool) -> Op[None] | None:
        if self.seq is None:
            return self._start()
        return self._replay()

    def _start(self) -> Op[None]:
        stats = yield self.core.stats(self.scope)
        if self.seq is None:
            self.seq = stats["seq"]

    def on_lagged(self, count: int) -> Op[None] | None:
        return self._replay() if self.seq is not None else None

    def on_message(self, channel: bytes, data: bytes) -> Op[None] | None:
        m = json.loads(data)
        return self._accept(self.core.parse_change(self.scope, m, False))

    def _accept(self, change: Change) -> Op[None] | None:
        if self.seq is not None and change.seq <= self.seq:
            return None  # already delivered (a replay and the live pushes overlap)
        self.seq = change.seq
        if change.event in self.events and glob_match(self.pattern, change.key):
            return deliver(self.sink, change)
        return None

    def _replay(self) -> Op[None]:
        while True:
            since = self.seq or 0
            try:
                batch = yield self.core.changes(since, 1000, self.scope)
                if batch.seq < since:
                    raise LostError(f"the scope's journal is at {batch.seq}, behind the last seen {since} (the broker lost its state)")
            except LostError as e:
                snap = yield self.core.snapshot(self.pattern, self.scope)
                self.seq = snap.seq
                yield Call(self.on_lost, (e, snap), report=True)
                return
            for change in batch.changes:
                op = self._accept(change)
                if op is not None:
                    yield from op
            self.seq = max(self.seq or 0, batch.changes[-1].seq if batch.changes else batch.seq)
            if not batch.changes or self.seq >= batch.seq:
                return
