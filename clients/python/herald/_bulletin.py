"""Bulletin boards (BL.*) as sans-IO operations, and the handler that turns board events into callbacks."""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Generic, Iterable, Mapping, TypeVar

from ._proto import Cmd, Handler, Op, as_list, as_map, deliver, ms, opt_int, text
from .codec import TypedCodec

T = TypeVar("T")


class BulletinEventType(str, Enum):
    ON_PUBLISH = "publish"
    ON_LOCK = "lock"
    ON_RELEASE = "release"
    ON_LEASE_EXPIRED = "lease-expired"
    ON_REMOVE = "remove"
    ON_EXPIRE = "expire"
    ON_DEAD = "dead"
    ON_DROPPED = "dropped"


class Overflow(str, Enum):
    DROP_OLDEST = "drop-oldest"
    REJECT_NEW = "reject-new"


@dataclass(frozen=True)
class Posting(Generic[T]):
    """An item on a board with its id; ``token`` and ``lease_expires`` (unix ms) when this caller holds its lease."""

    id: str
    item: T
    published: int
    failed_leases: int
    token: int | None = None
    lease_expires: int | None = None


OPS = ("=", "!=", "<", "<=", ">", ">=")


def where(filters: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """``{"status": "pending", "priority": (">=", 3)}`` as ``WHERE status = "pending" priority >= 3``."""
    if not filters:
        return ()
    out: list[Any] = ["WHERE"]
    for field, cond in filters.items():
        op, value = cond if isinstance(cond, tuple) else ("=", cond)
        if op == "==":
            op = "="
        if op not in OPS:
            raise ValueError(f"filter on {field!r}: operator {op!r} is not one of {', '.join(OPS)}")
        out += [field, op, json.dumps(value)]
    return tuple(out)


class BulletinCore(Generic[T]):
    """Builds the BL.* commands of one board in one scope, with items validated into ``T``."""

    def __init__(self, codec: TypedCodec[T], board: str, scope: str = "") -> None:
        if not board:
            raise ValueError("a board needs a name")
        self.codec = codec
        self.board = board
        self.scope = scope

    def _scope(self) -> tuple[Any, ...]:
        return ("SCOPE", self.scope) if self.scope else ()

    def posting(self, reply: Any) -> Posting[T] | None:
        if reply is None:
            return None
        m = as_map(reply)
        return Posting(
            text(m["id"]),
            self.codec.decode(m["item"]),
            int(m.get("published") or 0),
            int(m.get("failed_leases") or 0),
            opt_int(m.get("token")),
            opt_int(m.get("lease_expires")),
        )

    def postings(self, reply: Any) -> list[Posting[T]]:
        return [p for p in map(self.posting, as_list(reply)) if p is not None]

    def publish(self, item: T, ttl: float | None = None) -> Cmd[str]:
        args: tuple[Any, ...] = ("BL.PUBLISH", self.board, self.codec.encode(item), *self._scope())
        if ttl is not None:
            if ttl <= 0:
                raise ValueError("ttl must be a positive number of seconds")
            args += ("TTL", ms(ttl))
        return Cmd(args, text)

    def retrieve(self, filters: Mapping[str, Any] | None, lock: float | None, timeout: float | None) -> Cmd[Posting[T] | None]:
        args: tuple[Any, ...] = ("BL.RETRIEVE", self.board, *self._scope(), *where(filters))
        if lock is not None:
            if lock <= 0:
                raise ValueError("lock_duration_seconds must be positive")
            args += ("LOCK", ms(lock))
        if timeout is not None:
            if timeout < 0:
                raise ValueError("timeout cannot be negative")
            if timeout > 0:
                args += ("BLOCK", ms(timeout))
        return Cmd(args, self.posting)

    def all(self, filters: Mapping[str, Any] | None = None, limit: int | None = None) -> Cmd[list[Posting[T]]]:
        args: tuple[Any, ...] = ("BL.ALL", self.board, *self._scope(), *where(filters))
        if limit is not None:
            args += ("LIMIT", limit)
        return Cmd(args, self.postings)

    def get(self, item_id: str) -> Cmd[Posting[T] | None]:
        return Cmd(("BL.GET", self.board, item_id, *self._scope()), self.posting)

    def length(self) -> Cmd[int]:
        return Cmd(("BL.LEN", self.board, *self._scope()), int)

    def extend(self, item_id: str, token: int, seconds: float) -> Cmd[int]:
        return Cmd(("BL.EXTEND", self.board, item_id, token, ms(seconds), *self._scope()), int)

    def release(self, item_id: str, token: int) -> Cmd[None]:
        return Cmd(("BL.RELEASE", self.board, item_id, token, *self._scope()), lambda r: None)

    def remove(self, item_id: str, token: int | None) -> Cmd[bool]:
        tok: tuple[Any, ...] = () if token is None else (token,)
        return Cmd(("BL.REMOVE", self.board, item_id, *tok, *self._scope()), lambda r: int(r) == 1)

    def configure(self, maxlen: int | None, overflow: Overflow | str | None, max_leases: int | None) -> Cmd[None]:
        args: tuple[Any, ...] = ("BL.CONFIG", self.board, *self._scope())
        if maxlen is not None:
            args += ("MAXLEN", maxlen)
        if overflow is not None:
            args += ("OVERFLOW", Overflow(overflow).value)
        if max_leases is not None:
            args += ("MAXLEASES", max_leases)
        return Cmd(args, lambda r: None)

    def dead(self) -> Cmd[list[Posting[T]]]:
        return Cmd(("BL.DEAD", self.board, *self._scope()), self.postings)

    def redrive(self, item_id: str) -> Cmd[None]:
        return Cmd(("BL.REDRIVE", self.board, item_id, *self._scope()), lambda r: None)

    @property
    def channel(self) -> str:
        return f"__bl@{self.scope}__:{self.board}"


class Leases:
    """What a Bulletin handed out, so that ``remove(item)`` / ``release(item)`` find the item's id and lease
    token from the item object itself (the seeds pass items around, not ids). Bounded: the oldest are
    forgotten past ``limit``."""

    def __init__(self, limit: int = 10000) -> None:
        self.limit = limit
        self._by_obj: OrderedDict[int, tuple[Any, Posting[Any]]] = OrderedDict()

    def remember(self, posting: Posting[Any]) -> None:
        self._by_obj[id(posting.item)] = (posting.item, posting)
        while len(self._by_obj) > self.limit:
            self._by_obj.popitem(last=False)

    def find(self, item_or_id: Any) -> tuple[str, int | None]:
        held = self._by_obj.get(id(item_or_id))
        if held is not None and held[0] is item_or_id:
            return held[1].id, held[1].token
        if isinstance(item_or_id, Posting):
            return item_or_id.id, item_or_id.token
        if isinstance(item_or_id, str):
            for _, p in reversed(self._by_obj.values()):
                if p.id == item_or_id:
                    return p.id, p.token
            return item_or_id, None
        raise ValueError("not an item this Bulletin retrieved: pass the item it returned, its Posting, or its id")

    def forget(self, item_or_id: Any) -> None:
        self._by_obj.pop(id(item_or_id), None)
        if isinstance(item_or_id, str):
            for key in [k for k, (_, p) in self._by_obj.items() if p.id == item_or_id]:
                del self._by_obj[key]

    def extended(self, item_or_id: Any, expires: int) -> None:
        held = self._by_obj.get(id(item_or_id))
        if held is not None:
            p = held[1]
            self._by_obj[id(item_or_id)] = (held[0], Posting(p.id, p.item, p.published, p.failed_leases, p.token, expires))


class BoardHandler(Handler, Generic[T]):
    """Board events to ``callback(item, event_type)`` for the chosen event types."""

    def __init__(self, codec: TypedCodec[T], events: frozenset[BulletinEventType], callback: Callable[[T, BulletinEventType], Any]) -> None:
        self.codec = codec
        self.events = events
        self.callback = callback

    def on_message(self, channel: bytes, data: bytes) -> Op[None] | None:
        m = json.loads(data)
        event = BulletinEventType(m["event"])
        if event not in self.events:
            return None
        return deliver(self.callback, self.codec.from_json(m.get("item")), event)


def parse_board_events(events: Iterable[BulletinEventType | str] | None) -> frozenset[BulletinEventType]:
    if events is None:
        return frozenset(BulletinEventType)
    out = frozenset(BulletinEventType(e) for e in events)
    if not out:
        raise ValueError("events is empty: pass None for every event")
    return out
