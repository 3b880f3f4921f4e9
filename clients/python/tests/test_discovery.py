"""Discovery through the client: queues, boards, scopes, destinations and streams, page by page."""

from __future__ import annotations

import asyncio
from typing import Callable

import pytest

import herald
import herald.aio


def test_listings_show_what_exists_with_sizes(client: herald.Herald, name: str) -> None:
    for i in range(12):
        client.call("JOB.SUBMIT", f"{name}-q{i}", "p")
    client.call("JOB.SUBMIT", f"{name}-mail", "a", "DELAY", 60000)
    queues = client.queues(match=f"{name}-*", count=5)
    assert len(queues) == 13
    mail = next(q for q in queues if q["queue"] == f"{name}-mail")
    assert (mail["queued"], mail["delayed"], mail["running"], mail["dead"], mail["paused"]) == (0, 1, 0, 0, 0)
    cursor, page = client.list_page("JOB.QUEUES", "0", match=f"{name}-*", count=5)
    assert len(page) == 5 and cursor != "0"

    client.call("BL.PUBLISH", "tasks", '{"n": 1}', "SCOPE", name)
    assert [(b["board"], b["items"], b["leased"]) for b in client.boards(scope=name)] == [("tasks", 1, 0)]
    client.call("BB.SET", name, "k", "v")
    assert client.scopes(match=name) == [{"scope": name, "keys": 1, "seq": 1, "journal": 1}]
    client.call("MSG.SEND", name, "t", "x")
    client.call("MSG.SEND", name, "t", "y")
    [dest] = client.destinations(match=name)
    assert (dest["length"], dest["topics"]) == (2, {"t": 2})
    client.call("STREAM.WRITE", name, "x")
    client.call("STREAM.CLOSE", name)
    [stream] = client.streams(match=name)
    assert (stream["length"], stream["first"], stream["last"], stream["closed"]) == (1, 0, 0, True)
    with pytest.raises(herald.HeraldError):
        client.list_page("JOB.QUEUES", "not-a-cursor")


def test_async_listings(aclient: Callable[[], herald.aio.AsyncHerald], name: str) -> None:
    async def main() -> None:
        h = aclient()
        await h.call("JOB.SUBMIT", name, "p")
        [queue] = await h.queues(match=name)
        assert (queue["queue"], queue["queued"]) == (name, 1)
        await h.call("STREAM.WRITE", name, "x")
        assert [s["stream"] for s in await h.streams(match=name)] == [name]
        assert await h.destinations(match=name) == []
        await h.close()

    asyncio.run(main())
