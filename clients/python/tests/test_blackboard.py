from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

import pytest

import herald
import herald.aio
from herald import BlackboardEventType as E

from .conftest import Broker, Errors, aeventually, eventually, kill_listener


def test_basic_scoped_crud_and_stats(client: herald.Herald, name: str) -> None:
    bb = herald.Blackboard(scope=name, client=client)
    assert bb.set("config", {"model": "gpt-4", "temperature": 0.7}) == 1
    bb.set("user_session", "user123", scope=name + "-s")
    assert bb.get("config") == {"model": "gpt-4", "temperature": 0.7}
    assert bb.get("user_session", scope=name + "-s") == "user123"
    assert bb.get("user_session") is None and bb.get("nope", default=5) == 5
    assert bb.has("config") and not bb.has("nope")
    assert bb.keys() == ["config"] and bb.keys("c*") == ["config"]
    stats = bb.get_stats()
    assert stats["count"] == 1 and stats["sets"] == 1
    entry = bb.get_entry("config")
    assert entry is not None and entry.revision == 1 and entry.ttl is None
    assert bb.delete("config") and not bb.delete("config")
    bb.set("a", 1)
    bb.set("b", 2)
    assert bb.clear() == 2 and bb.keys() == []
    assert name in bb.scopes()


def test_ttl_expires_and_bad_input_is_refused(client: herald.Herald, name: str) -> None:
    bb = herald.Blackboard(scope=name, client=client)
    bb.set_with_ttl("temp_token", "abc123", ttl_seconds=300)
    entry = bb.get_entry("temp_token")
    assert entry is not None and entry.ttl is not None and 0 < entry.ttl <= 300
    bb.set("short", 1, ttl=0.1)
    eventually(lambda: not bb.has("short"), "the key to expire")
    with pytest.raises(ValueError):
        bb.set("k", 1, ttl=0)
    with pytest.raises(ValueError):
        bb.wait("k", timeout=-1)
    with pytest.raises(TypeError):
        bb.set("k", object())


def test_compare_and_set_and_update(client: herald.Herald, name: str) -> None:
    bb = herald.Blackboard(scope=name, client=client)
    rev = bb.set("balance", 100)
    assert bb.compare_and_set("balance", 70, rev) == rev + 1
    with pytest.raises(herald.ConflictError) as e:
        bb.compare_and_set("balance", 50, rev)
    assert e.value.revision == rev + 1 and e.value.code == "CONFLICT"
    assert bb.compare_and_set("fresh", 1, 0) == 1  # revision 0: only if absent

    def bump() -> None:
        for _ in range(20):
            bb.update("counter", lambda v: (v or 0) + 1)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bb.get("counter") == 80  # no lost update


def test_wait_blocks_until_set_or_timeout(client: herald.Herald, name: str) -> None:
    bb = herald.Blackboard(scope=name, client=client)
    assert bb.wait("ready", timeout=0.2) is None
    threading.Timer(0.1, lambda: bb.set("ready", "yes")).start()
    entry = bb.wait("ready", timeout=10)
    assert entry is not None and entry.value == "yes"
    later = bb.wait("ready", timeout=10, after=entry.revision) if bb.set("ready", "again") else None
    assert later is not None and later.value == "again"


def test_callbacks_carry_values_and_filter_events(client: herald.Herald, name: str) -> None:
    bb = herald.Blackboard(scope=name, client=client)
    sets: list[tuple[str, Any, E]] = []
    expired: list[tuple[str, Any, E]] = []
    bb.register_callback("config", lambda k, v, e: sets.append((k, v, e)), events={E.ON_SET})
    bb.register_callback("cache_*", lambda k, v, e: expired.append((k, v, e)), events={E.ON_EXPIRE})
    bb.set("config", {"model": "gpt-3.5-turbo"})
    bb.set_with_ttl("cache_user_data", {"id": 123}, ttl_seconds=0.2)
    bb.delete("config")
    eventually(lambda: expired, "the expiry callback")
    assert sets == [("config", {"model": "gpt-3.5-turbo"}, E.ON_SET)]
    assert expired == [("cache_user_data", {"id": 123}, E.ON_EXPIRE)]  # the expired value is passed


def test_callback_errors_go_to_on_error(client: herald.Herald, errors: Errors, name: str) -> None:
    bb = herald.Blackboard(scope=name, client=client)

    def boom(k: str, v: Any, e: E) -> None:
        raise RuntimeError("callback failed")

    bb.register_callback("*", boom)
    bb.set("k", 1)
    eventually(lambda: any("callback failed" in str(e) for e in errors), "the reported error")


def test_changes_and_snapshot(client: herald.Herald, name: str) -> None:
    bb = herald.Blackboard(scope=name, client=client)
    bb.set("a", 1)
    bb.set("b", 2)
    bb.delete("a")
    ch = bb.changes(since=0)
    assert [(c.key, c.event, c.value) for c in ch.changes] == [("a", E.ON_SET, 1), ("b", E.ON_SET, 2), ("a", E.ON_DELETE, 1)]
    snap = bb.snapshot()
    assert snap.seq == ch.seq and {k: e.value for k, e in snap.entries.items()} == {"b": 2}


def test_watch_resumes_after_the_listener_is_killed(client: herald.Herald, broker: Broker, name: str) -> None:
    bb = herald.Blackboard(scope=name, client=client)
    watch = bb.watch("job:*")
    bb.set("job:1", "first")
    assert watch.get(10).value == "first"
    before = client.listener_connects
    assert kill_listener(client, broker.port) >= 1
    # Written while the listener may be reconnecting: replayed from the journal, nothing lost or repeated.
    for i in range(2, 6):
        bb.set(f"job:{i}", i)
    bb.set("other", "not matched")
    got = [watch.get(10) for _ in range(4)]
    assert [c.key for c in got] == ["job:2", "job:3", "job:4", "job:5"]
    eventually(lambda: client.listener_connects > before, "the listener to reconnect")
    bb.set("job:6", 6)
    assert watch.get(10).key == "job:6"
    watch.close()
    assert list(watch) == []


def test_callbacks_survive_a_reconnect(client: herald.Herald, broker: Broker, name: str) -> None:
    bb = herald.Blackboard(scope=name, client=client)
    seen: list[str] = []
    bb.register_callback("*", lambda k, v, e: seen.append(k))
    bb.set("before", 1)
    eventually(lambda: seen == ["before"], "the first event")
    kill_listener(client, broker.port)
    bb.set("during", 2)
    eventually(lambda: seen == ["before", "during"], "the event written around the reconnect")


def test_async_blackboard(broker: Broker, aclient: Callable[[], herald.aio.AsyncHerald], name: str) -> None:
    async def main() -> None:
        h = aclient()
        bb = herald.aio.Blackboard(scope=name, client=h)
        seen: list[tuple[str, Any]] = []

        async def on_change(k: str, v: Any, e: E) -> None:
            seen.append((k, v))

        await bb.register_callback("*", on_change)
        watch = await bb.watch("w*")
        assert await bb.set("w1", {"x": 1}) == 1
        assert await bb.get("w1") == {"x": 1}
        assert (await watch.get(10)).value == {"x": 1}
        await aeventually(lambda: seen == [("w1", {"x": 1})], "the async callback")
        assert await bb.wait("none", timeout=0.1) is None
        kill_listener(h, broker.port)
        await bb.set("w2", 2)
        assert (await watch.get(10)).key == "w2"
        assert await bb.update("n", lambda v: (v or 0) + 5) == 5
        with pytest.raises(herald.ConflictError):
            await bb.compare_and_set("n", 0, 99)
        watch.close()
        await h.close()

    asyncio.run(main())
