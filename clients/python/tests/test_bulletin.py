from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

import pytest
from pydantic import BaseModel

import herald
import herald.aio
from herald import Bulletin, BulletinEventType

from .conftest import aeventually, eventually


class TaskRequest(BaseModel):
    task_id: str
    action: str
    params: dict[str, Any]
    status: str = "pending"


def test_publish_retrieve_filters_and_models(client: herald.Herald, name: str) -> None:
    requests = Bulletin[TaskRequest](scope=name, client=client)
    assert requests.name == "TaskRequest"
    requests.publish(TaskRequest(task_id="t1", action="analyze", params={"file": "a.csv"}))
    requests.publish(TaskRequest(task_id="t2", action="process_data", params={"n": 3}))
    got = requests.retrieve_first(filters={"action": "process_data"})
    assert isinstance(got, TaskRequest) and got.task_id == "t2"
    assert requests.retrieve_first(filters={"params.n": (">=", 3)}) == got
    assert requests.retrieve_first(filters={"action": "none"}) is None
    assert [r.task_id for r in requests.retrieve_all()] == ["t1", "t2"]
    assert requests.count() == 2
    with pytest.raises(ValueError):
        requests.retrieve_first(filters={"a": ("~", 1)})
    with pytest.raises(Exception):
        requests.publish({"not": "a TaskRequest"})  # type: ignore[arg-type]


def test_locks_release_remove_extend_and_lease_expiry(client: herald.Herald, name: str) -> None:
    board = Bulletin[dict](name, client=client)
    board.publish({"n": 1})
    held = board.retrieve_first(lock_duration_seconds=60)
    assert held == {"n": 1}
    assert board.retrieve_first(lock_duration_seconds=60) is None  # two workers never hold the same item
    assert board.extend(held, 120) > 0
    board.release(held)
    again = board.retrieve_first(lock_duration_seconds=0.2)
    assert again == {"n": 1}
    # The lease runs out: the item comes back on its own, and the stale lease is refused.
    back = board.retrieve_first(lock_duration_seconds=60, timeout=10)
    assert back == {"n": 1}
    with pytest.raises(herald.LeaseError):
        board.release(again)
    assert board.remove(back) and board.count() == 0
    with pytest.raises(ValueError):
        board.release({"never": "retrieved"})


def test_blocking_retrieve_wakes_on_publish(client: herald.Herald, name: str) -> None:
    board = Bulletin[dict](name, client=client)
    threading.Timer(0.1, lambda: board.publish({"late": True})).start()
    assert board.retrieve_first(lock_duration_seconds=5, timeout=10) == {"late": True}
    assert board.retrieve_first(timeout=0.1) is None


def test_callbacks_scopes_bounds_and_dead_letters(client: herald.Herald, name: str) -> None:
    a = Bulletin[dict]("req", scope=name + "a", client=client)
    b = Bulletin[dict]("req", scope=name + "b", client=client)
    events: list[tuple[Any, BulletinEventType]] = []
    a.register_callback(lambda item, ev: events.append((item, ev)), events={BulletinEventType.ON_PUBLISH, BulletinEventType.ON_REMOVE})
    a.publish({"id": "a1"})
    b.publish({"id": "b1"})
    assert a.retrieve_all() == [{"id": "a1"}] and b.retrieve_all() == [{"id": "b1"}]
    a.remove(a.retrieve_all()[0])
    eventually(lambda: len(events) == 2, "publish and remove events")
    assert events == [({"id": "a1"}, BulletinEventType.ON_PUBLISH), ({"id": "a1"}, BulletinEventType.ON_REMOVE)]

    bounded = Bulletin[dict](name + "bounded", client=client, maxlen=2, overflow="reject-new")
    bounded.publish({"i": 1})
    bounded.publish({"i": 2})
    with pytest.raises(herald.FullError):
        bounded.publish({"i": 3})
    bounded.configure(overflow="drop-oldest")
    bounded.publish({"i": 3})
    assert bounded.retrieve_all() == [{"i": 2}, {"i": 3}]

    flaky = Bulletin[dict](name + "flaky", client=client, max_leases=1)
    flaky.publish({"poison": True})
    flaky.release(flaky.retrieve_first(lock_duration_seconds=30))
    assert flaky.count() == 0
    dead = flaky.dead_letters()
    assert [p.item for p in dead] == [{"poison": True}]
    flaky.redrive(dead[0])
    assert flaky.retrieve_all() == [{"poison": True}]


def test_three_workers_share_a_queue(client: herald.Herald, name: str) -> None:
    tasks = Bulletin[dict](name, client=client)
    for i in range(12):
        tasks.publish({"i": i, "status": "pending"})
    taken: list[tuple[str, int]] = []
    lock = threading.Lock()

    def worker(wid: str) -> None:
        while (t := tasks.retrieve_first(filters={"status": "pending"}, lock_duration_seconds=30)) is not None:
            with lock:
                taken.append((wid, t["i"]))
            tasks.remove(t)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(i for _, i in taken) == list(range(12))  # each exactly once


def test_async_bulletin(aclient: Callable[[], herald.aio.AsyncHerald], name: str) -> None:
    async def main() -> None:
        h = aclient()
        board = herald.aio.Bulletin[TaskRequest](scope=name, client=h)
        seen: list[str] = []
        await board.register_callback(lambda item, ev: seen.append(item.task_id), events=["publish"])
        await board.publish(TaskRequest(task_id="x", action="a", params={}))
        item = await board.retrieve_first(lock_duration_seconds=30)
        assert item is not None and item.task_id == "x"
        await board.release(item)
        item = await board.retrieve_first(lock_duration_seconds=30, timeout=5)
        assert item is not None and await board.remove(item)
        await aeventually(lambda: seen == ["x"], "the async callback")
        await h.close()

    asyncio.run(main())
