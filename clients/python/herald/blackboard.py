"""The seeds' ``Blackboard``, over the network: scoped keys with revisions, TTL, callbacks with values,
compare-and-set, a blocking wait and resumable change reading. ``Blackboard`` blocks; ``AsyncBlackboard``
(``herald.aio.Blackboard``) is its asyncio twin. Both build their commands with ``BlackboardCore``."""

from __future__ import annotations

from typing import Any, Callable, Iterable

from ._aclient import AsyncFeed, AsyncHerald
from ._aclient import default_client as default_async_client
from ._blackboard import (
    BlackboardCore,
    BlackboardEventType,
    Change,
    Changes,
    Entry,
    Snapshot,
    WatchHandler,
    parse_events,
)
from .client import Feed, Herald, Subscription, default_client
from .codec import Codec
from .errors import LostError

__all__ = ["Blackboard", "AsyncBlackboard", "BlackboardEventType", "Entry", "Change", "Changes", "Snapshot"]

Events = Iterable["BlackboardEventType | str"] | None


class _Base:
    def __init__(self, client: Any, scope: str, codec: Codec | None) -> None:
        self.client = client
        self.core = BlackboardCore(codec or client.codec, scope)

    @property
    def scope(self) -> str:
        return self.core.scope

    def _callback_handler(
        self, pattern: str, fn: Callable[[str, Any, BlackboardEventType], Any], events: Events, scope: str | None
    ) -> tuple[str, WatchHandler]:
        sc = self.core.s(scope)
        handler = WatchHandler(self.core, sc, pattern, parse_events(events), lambda c: fn(c.key, c.value, c.event), self._lost)
        return self.core.watch_pattern(pattern, sc), handler

    def _feed_handler(self, feed: Any, pattern: str, events: Events, since: int | None, scope: str | None) -> tuple[str, WatchHandler]:
        sc = self.core.s(scope)
        handler = WatchHandler(self.core, sc, pattern, parse_events(events), feed.put, self._lost, since)
        return self.core.watch_pattern(pattern, sc), handler

    def _lost(self, error: LostError, snapshot: Snapshot) -> None:
        self.client.settings.report(error)


class Blackboard(_Base):
    """Shared state in a scope (``""``: the global scope, which is also Redis database 0). Every method takes
    ``scope=`` to address another scope for one call, as the seeds' ``bb.get(key, scope=...)``."""

    client: Herald

    def __init__(self, scope: str = "", *, client: Herald | None = None, codec: Codec | None = None) -> None:
        super().__init__(default_client(client), scope, codec)

    def set(self, key: str, value: Any, ttl: float | None = None, scope: str | None = None) -> int:
        """Stores ``value`` (``ttl`` seconds to live, or no expiry); returns the key's new revision."""
        return self.client.run(self.core.set(key, value, ttl, scope))

    def set_with_ttl(self, key: str, value: Any, ttl_seconds: float, scope: str | None = None) -> int:
        return self.client.run(self.core.set(key, value, ttl_seconds, scope))

    def get(self, key: str, default: Any = None, scope: str | None = None) -> Any:
        """The value, or ``default`` if the key is absent (or expired)."""
        return self.client.run(self.core.get(key, default, scope))

    def get_entry(self, key: str, scope: str | None = None) -> Entry | None:
        """Value, revision and time to live, or None."""
        return self.client.run(self.core.get_entry(key, scope))

    def has(self, key: str, scope: str | None = None) -> bool:
        return self.client.run(self.core.has(key, scope))

    def delete(self, key: str, scope: str | None = None) -> bool:
        return self.client.run(self.core.delete((key,), scope)) == 1

    def clear(self, scope: str | None = None) -> int:
        """Deletes every key of the scope; returns how many there were."""
        return self.client.run(self.core.clear(scope))

    def keys(self, pattern: str = "*", scope: str | None = None) -> list[str]:
        return self.client.run(self.core.keys(pattern, scope))

    def get_stats(self, scope: str | None = None) -> dict[str, int]:
        """``count`` (keys), ``bytes``, ``sets``, ``gets``, ``hits``, ``misses``, ``deletes``, ``expired``, ``seq``."""
        return self.client.run(self.core.stats(scope))

    def scopes(self) -> list[str]:
        return self.client.run(self.core.scopes())

    def compare_and_set(self, key: str, value: Any, revision: int, ttl: float | None = None, scope: str | None = None) -> int:
        """Writes only if the key is at ``revision`` (0: only if absent); ``ConflictError`` otherwise."""
        return self.client.run(self.core.set(key, value, ttl, scope, if_revision=revision))

    def update(self, key: str, fn: Callable[[Any], Any], ttl: float | None = None, scope: str | None = None, retries: int = 100) -> Any:
        """Replaces the value with ``fn(value)`` by compare-and-set, retrying on conflicts; returns it."""
        return self.client.run(self.core.update(key, fn, scope, ttl, retries))

    def wait(self, key: str, timeout: float | None = None, after: int | None = None, scope: str | None = None) -> Entry | None:
        """Waits until the key exists (with ``after``: until its revision passes it); None on timeout."""
        return self.client.run(self.core.wait(key, timeout, after, scope))

    def changes(self, since: int = 0, count: int = 1000, scope: str | None = None) -> Changes:
        """The scope's journaled changes after ``since`` (``LostError`` if no longer retained)."""
        return self.client.run(self.core.changes(since, count, scope))

    def snapshot(self, pattern: str = "*", scope: str | None = None) -> Snapshot:
        """Every matching key with the journal position it reflects (resume watching from ``seq``)."""
        return self.client.run(self.core.snapshot(pattern, scope))

    def register_callback(
        self,
        pattern: str,
        callback: Callable[[str, Any, BlackboardEventType], Any],
        events: Events = None,
        scope: str | None = None,
    ) -> Subscription:
        """Calls ``callback(key, value, event_type)`` for keys matching the glob ``pattern`` (expiry passes
        the expired value), from the client's listener thread; gaps after a reconnect are replayed."""
        channel, handler = self._callback_handler(pattern, callback, events, scope)
        return self.client.listen("pattern", channel, handler)

    def watch(self, pattern: str = "*", events: Events = None, since: int | None = None, scope: str | None = None) -> Feed[Change]:
        """An iterator of :class:`Change` s (``since``: replay the journal after that seq first)."""
        feed: Feed[Change] = Feed()
        channel, handler = self._feed_handler(feed, pattern, events, since, scope)
        feed.subscription = self.client.listen("pattern", channel, handler)
        return feed


class AsyncBlackboard(_Base):
    """The asyncio ``Blackboard``: the same methods, as coroutines."""

    client: AsyncHerald

    def __init__(self, scope: str = "", *, client: AsyncHerald | None = None, codec: Codec | None = None) -> None:
        super().__init__(default_async_client(client), scope, codec)

    async def set(self, key: str, value: Any, ttl: float | None = None, scope: str | None = None) -> int:
        return await self.client.run(self.core.set(key, value, ttl, scope))

    async def set_with_ttl(self, key: str, value: Any, ttl_seconds: float, scope: str | None = None) -> int:
        return await self.client.run(self.core.set(key, value, ttl_seconds, scope))

    async def get(self, key: str, default: Any = None, scope: str | None = None) -> Any:
        return await self.client.run(self.core.get(key, default, scope))

    async def get_entry(self, key: str, scope: str | None = None) -> Entry | None:
        return await self.client.run(self.core.get_entry(key, scope))

    async def has(self, key: str, scope: str | None = None) -> bool:
        return await self.client.run(self.core.has(key, scope))

    async def delete(self, key: str, scope: str | None = None) -> bool:
        return await self.client.run(self.core.delete((key,), scope)) == 1

    async def clear(self, scope: str | None = None) -> int:
        return await self.client.run(self.core.clear(scope))

    async def keys(self, pattern: str = "*", scope: str | None = None) -> list[str]:
        return await self.client.run(self.core.keys(pattern, scope))

    async def get_stats(self, scope: str | None = None) -> dict[str, int]:
        return await self.client.run(self.core.stats(scope))

    async def scopes(self) -> list[str]:
        return await self.client.run(self.core.scopes())

    async def compare_and_set(self, key: str, value: Any, revision: int, ttl: float | None = None, scope: str | None = None) -> int:
        return await self.client.run(self.core.set(key, value, ttl, scope, if_revision=revision))

    async def update(self, key: str, fn: Callable[[Any], Any], ttl: float | None = None, scope: str | None = None, retries: int = 100) -> Any:
        return await self.client.run(self.core.update(key, fn, scope, ttl, retries))

    async def wait(self, key: str, timeout: float | None = None, after: int | None = None, scope: str | None = None) -> Entry | None:
        return await self.client.run(self.core.wait(key, timeout, after, scope))

    async def changes(self, since: int = 0, count: int = 1000, scope: str | None = None) -> Changes:
        return await self.client.run(self.core.changes(since, count, scope))

    async def snapshot(self, pattern: str = "*", scope: str | None = None) -> Snapshot:
        return await self.client.run(self.core.snapshot(pattern, scope))

    async def register_callback(
        self,
        pattern: str,
        callback: Callable[[str, Any, BlackboardEventType], Any],
        events: Events = None,
        scope: str | None = None,
    ) -> Subscription:
        channel, handler = self._callback_handler(pattern, callback, events, scope)
        return await self.client.listen("pattern", channel, handler)

    async def watch(self, pattern: str = "*", events: Events = None, since: int | None = None, scope: str | None = None) -> AsyncFeed[Change]:
        feed: AsyncFeed[Change] = AsyncFeed()
        channel, handler = self._feed_handler(feed, pattern, events, since, scope)
        feed.subscription = await self.client.listen("pattern", channel, handler)
        return feed
