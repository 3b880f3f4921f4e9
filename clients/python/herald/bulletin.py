"""The seeds' ``Bulletin[T]`` over the network: a board of typed items (pydantic models, dataclasses, plain
dicts) with filtered retrieve, leases, release / remove, callbacks, scopes, bounds and dead letters.
``Bulletin`` blocks; ``AsyncBulletin`` (``herald.aio.Bulletin``) is its asyncio twin."""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Generic, Iterable, Mapping, TypeVar

from ._aclient import AsyncHerald
from ._aclient import default_client as default_async_client
from ._bulletin import (
    BoardHandler,
    BulletinCore,
    BulletinEventType,
    Leases,
    Overflow,
    Posting,
    parse_board_events,
)
from .client import Herald, Subscription, default_client
from .codec import Codec, JsonCodec, TypedCodec

__all__ = ["Bulletin", "AsyncBulletin", "BulletinEventType", "Overflow", "Posting"]

T = TypeVar("T")
Filters = Mapping[str, Any] | None
BoardEvents = Iterable["BulletinEventType | str"] | None

_typed: dict[tuple[type, Any], type] = {}


class _Base(Generic[T]):
    """What both flavours share: the item type from ``Bulletin[Model]``, the board's name, lease memory."""

    _item_type: ClassVar[Any] = dict

    def __class_getitem__(cls, item: Any) -> Any:
        # Bulletin[TaskRequest] is a subclass that knows its item type at run time (typing erases it).
        if isinstance(item, TypeVar):
            return super().__class_getitem__(item)  # type: ignore[misc]
        key = (cls, item)
        if key not in _typed:
            name = getattr(item, "__name__", repr(item))
            _typed[key] = type(f"{cls.__name__}[{name}]", (cls,), {"_item_type": item, "__module__": cls.__module__})
        return _typed[key]

    def __init__(self, client: Any, name: str | None, scope: str, codec: Codec | None) -> None:
        item_type = type(self)._item_type
        board = name or getattr(item_type, "__name__", None) or "bulletin"
        base = codec if codec is not None else JsonCodec(strict=True)
        self.client = client
        self.core: BulletinCore[T] = BulletinCore(TypedCodec(item_type, base), board, scope)
        self._leases = Leases()

    @property
    def name(self) -> str:
        return self.core.board

    @property
    def scope(self) -> str:
        return self.core.scope

    def id_of(self, item: Any) -> str:
        """The board id of an item this Bulletin returned."""
        return self._leases.find(item)[0]

    def _held(self, posting: Posting[T] | None) -> Posting[T] | None:
        if posting is not None:
            self._leases.remember(posting)
        return posting

    def _held_all(self, postings: list[Posting[T]]) -> list[Posting[T]]:
        for p in postings:
            self._leases.remember(p)
        return postings

    def _token(self, item: Any) -> tuple[str, int]:
        item_id, token = self._leases.find(item)
        if token is None:
            raise ValueError(f"item {item_id} is not locked by this Bulletin (retrieve it with lock_duration_seconds)")
        return item_id, token

    def _handler(self, callback: Callable[[T, BulletinEventType], Any], events: BoardEvents) -> BoardHandler[T]:
        return BoardHandler(self.core.codec, parse_board_events(events), callback)


class Bulletin(_Base[T]):
    """A board of ``T`` items. ``name`` defaults to the item type's name (``Bulletin[TaskRequest]`` is the
    board ``TaskRequest``); ``scope`` isolates boards of the same name. ``maxlen`` / ``overflow`` /
    ``max_leases`` configure the board (bound, overflow policy, dead letter after that many failed leases)."""

    client: Herald

    def __init__(
        self,
        name: str | None = None,
        *,
        scope: str = "",
        client: Herald | None = None,
        codec: Codec | None = None,
        maxlen: int | None = None,
        overflow: Overflow | str | None = None,
        max_leases: int | None = None,
    ) -> None:
        super().__init__(default_client(client), name, scope, codec)
        if maxlen is not None or overflow is not None or max_leases is not None:
            self.configure(maxlen, overflow, max_leases)

    def publish(self, item: T, ttl: float | None = None) -> str:
        """Posts ``item`` (``ttl`` seconds to live); returns its id. ``FullError`` on a full reject-new board."""
        return self.client.run(self.core.publish(item, ttl))

    def retrieve_first(self, filters: Filters = None, lock_duration_seconds: float | None = None, timeout: float | None = None) -> T | None:
        """The oldest item matching every filter (``{"field": value}`` or ``{"field": (">=", 3)}``), locked for
        ``lock_duration_seconds`` if given, waiting up to ``timeout`` seconds for one; None if none."""
        p = self.retrieve_posting(filters, lock_duration_seconds, timeout)
        return None if p is None else p.item

    def retrieve_posting(self, filters: Filters = None, lock_duration_seconds: float | None = None, timeout: float | None = None) -> Posting[T] | None:
        """Like ``retrieve_first`` with the item's id, lease token and counters."""
        return self._held(self.client.run(self.core.retrieve(filters, lock_duration_seconds, timeout)))

    def retrieve_all(self, filters: Filters = None, limit: int | None = None) -> list[T]:
        """Every matching item (locked ones too), oldest first."""
        return [p.item for p in self.postings(filters, limit)]

    def postings(self, filters: Filters = None, limit: int | None = None) -> list[Posting[T]]:
        return self._held_all(self.client.run(self.core.all(filters, limit)))

    def get(self, item_id: str) -> T | None:
        p = self._held(self.client.run(self.core.get(item_id)))
        return None if p is None else p.item

    def count(self) -> int:
        return self.client.run(self.core.length())

    def release(self, item: Any) -> None:
        """Puts a locked item back on the board (counted as a failed lease). ``LeaseError`` if the lease was lost."""
        self.client.run(self.core.release(*self._token(item)))
        self._leases.forget(item)

    def remove(self, item: Any) -> bool:
        """Removes the item (the ack): pass what ``retrieve_*`` returned, or an id."""
        item_id, token = self._leases.find(item)
        removed = self.client.run(self.core.remove(item_id, token))
        self._leases.forget(item)
        return removed

    def extend(self, item: Any, seconds: float) -> int:
        """Extends a held lease by ``seconds`` from now; returns the new expiry (unix ms)."""
        expires = self.client.run(self.core.extend(*self._token(item), seconds))
        self._leases.extended(item, expires)
        return expires

    def register_callback(self, callback: Callable[[T, BulletinEventType], Any], events: BoardEvents = None) -> Subscription:
        """Calls ``callback(item, event_type)`` on the listener thread for each board event of those types."""
        return self.client.listen("channel", self.core.channel, self._handler(callback, events))

    def configure(self, maxlen: int | None = None, overflow: Overflow | str | None = None, max_leases: int | None = None) -> None:
        self.client.run(self.core.configure(maxlen, overflow, max_leases))

    def dead_letters(self) -> list[Posting[T]]:
        return self._held_all(self.client.run(self.core.dead()))

    def redrive(self, item: Any) -> None:
        """Moves a dead letter back to the board with its lease count reset."""
        self.client.run(self.core.redrive(self._leases.find(item)[0]))


class AsyncBulletin(_Base[T]):
    """The asyncio ``Bulletin``: the same methods, as coroutines."""

    client: AsyncHerald

    def __init__(
        self,
        name: str | None = None,
        *,
        scope: str = "",
        client: AsyncHerald | None = None,
        codec: Codec | None = None,
    ) -> None:
        super().__init__(default_async_client(client), name, scope, codec)

    async def publish(self, item: T, ttl: float | None = None) -> str:
        return await self.client.run(self.core.publish(item, ttl))

    async def retrieve_first(self, filters: Filters = None, lock_duration_seconds: float | None = None, timeout: float | None = None) -> T | None:
        p = await self.retrieve_posting(filters, lock_duration_seconds, timeout)
        return None if p is None else p.item

    async def retrieve_posting(self, filters: Filters = None, lock_duration_seconds: float | None = None, timeout: float | None = None) -> Posting[T] | None:
        return self._held(await self.client.run(self.core.retrieve(filters, lock_duration_seconds, timeout)))

    async def retrieve_all(self, filters: Filters = None, limit: int | None = None) -> list[T]:
        return [p.item for p in await self.postings(filters, limit)]

    async def postings(self, filters: Filters = None, limit: int | None = None) -> list[Posting[T]]:
        return self._held_all(await self.client.run(self.core.all(filters, limit)))

    async def get(self, item_id: str) -> T | None:
        p = self._held(await self.client.run(self.core.get(item_id)))
        return None if p is None else p.item

    async def count(self) -> int:
        return await self.client.run(self.core.length())

    async def release(self, item: Any) -> None:
        await self.client.run(self.core.release(*self._token(item)))
        self._leases.forget(item)

    async def remove(self, item: Any) -> bool:
        item_id, token = self._leases.find(item)
        removed = await self.client.run(self.core.remove(item_id, token))
        self._leases.forget(item)
        return removed

    async def extend(self, item: Any, seconds: float) -> int:
        expires = await self.client.run(self.core.extend(*self._token(item), seconds))
        self._leases.extended(item, expires)
        return expires

    async def register_callback(self, callback: Callable[[T, BulletinEventType], Any], events: BoardEvents = None) -> Subscription:
        return await self.client.listen("channel", self.core.channel, self._handler(callback, events))

    async def configure(self, maxlen: int | None = None, overflow: Overflow | str | None = None, max_leases: int | None = None) -> None:
        await self.client.run(self.core.configure(maxlen, overflow, max_leases))

    async def dead_letters(self) -> list[Posting[T]]:
        return self._held_all(await self.client.run(self.core.dead()))

    async def redrive(self, item: Any) -> None:
        await self.client.run(self.core.redrive(self._leases.find(item)[0]))
