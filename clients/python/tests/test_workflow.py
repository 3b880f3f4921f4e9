from __future__ import annotations

import asyncio
import threading
from typing import Callable

import pytest
import redis

import herald
import herald.aio

from .conftest import Broker


def test_events(client: herald.Herald, name: str) -> None:
    assert client.get_event(name, "progress", timeout_seconds=0.1) is None
    threading.Timer(0.1, lambda: client.set_event(name, "progress", 50)).start()
    assert client.get_event(name, "progress", timeout_seconds=10) == 50
    client.set_event(name, "status", "processing")
    assert client.get_all_events(name) == {"progress": 50, "status": "processing"}
    assert client.get_event(name, "status", timeout_seconds=0) == "processing"


def test_messages_fifo_once_and_topics(client: herald.Herald, name: str) -> None:
    client.send(name, {"approved": True}, topic="approval")
    client.send(name, {"approved": False}, topic="approval")
    client.send(name, "no topic")
    assert client.recv(name, "approval", timeout_seconds=1) == {"approved": True}
    assert client.recv(name, "approval", timeout_seconds=1) == {"approved": False}
    assert client.recv(name, "approval", timeout_seconds=0.1) is None
    assert client.recv(name, timeout_seconds=1) == "no topic"
    first = client.send(name, 1, topic="t", idempotency_key="k1")
    assert client.send(name, 1, topic="t", idempotency_key="k1") == first  # delivered once
    assert client.recv(name, "t", timeout_seconds=1) == 1 and client.recv(name, "t", timeout_seconds=0) is None
    wf = client.workflow(name)
    threading.Timer(0.1, lambda: client.send(name, "late", topic="notification")).start()
    assert wf.recv("notification", timeout_seconds=10) == "late"


def test_streams_read_to_close_and_resume(client: herald.Herald, broker: Broker, name: str) -> None:
    wf = client.workflow(name)
    for msg in ("Starting...", "Processing..."):
        wf.write_stream("logs", {"msg": msg})
    reader = client.read_stream(name, "logs")
    assert next(reader) == {"msg": "Starting..."}
    # Drop every command connection of the client: the reader resumes from its offset.
    r = redis.Redis(port=broker.port, protocol=2)
    killed = 0
    for line in r.execute_command("CLIENT", "LIST").decode().splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if fields.get("cmd") == "stream.read":
            r.execute_command("CLIENT", "KILL", "ID", fields["id"])
            killed += 1
    assert killed >= 1
    threading.Timer(0.2, lambda: (wf.write_stream("logs", {"msg": "Done!"}), wf.close_stream("logs"))).start()
    assert list(reader) == [{"msg": "Processing..."}, {"msg": "Done!"}]
    assert list(client.read_stream(name, "logs", from_offset=2)) == [{"msg": "Done!"}]
    with pytest.raises(herald.ClosedError):
        wf.write_stream("logs", "after close")
    assert not wf.close_stream("logs")


def test_async_workflow(aclient: Callable[[], herald.aio.AsyncHerald], name: str) -> None:
    async def main() -> None:
        h = aclient()
        wf = h.workflow(name)
        await wf.set_event("stage", "extract")
        assert await h.get_event(name, "stage", timeout_seconds=1) == "extract"
        asyncio.get_running_loop().call_later(0.1, lambda: asyncio.ensure_future(h.send(name, {"approved": True}, topic="approval")))
        assert await wf.recv_async(topic="approval", timeout_seconds=10) == {"approved": True}
        for i in range(3):
            await wf.write_stream("progress", {"item": i + 1, "total": 3})
        await wf.close_stream("progress")
        assert [m["item"] async for m in h.read_stream(name, "progress")] == [1, 2, 3]
        await h.close()

    asyncio.run(main())
