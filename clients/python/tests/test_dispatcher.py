from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable

import pytest

import herald
import herald.aio
from herald import Dispatcher, RequestStatus, Worker

from .conftest import Broker, aeventually, eventually, kill_listener


@pytest.fixture
def dispatcher(client: herald.Herald, name: str) -> Any:
    d = Dispatcher(max_concurrent_requests=3, queue=name, client=client)
    yield d
    d.close()


def upper(msg: dict[str, str]) -> dict[str, str]:
    return {"content": msg["content"].upper()}


def test_submit_proc_result_status_and_callback(dispatcher: Dispatcher) -> None:
    done: list[tuple[str, Any, RequestStatus]] = []
    jid = dispatcher.submit_proc(upper, {"content": "hello"}, callback=lambda j, r, s: done.append((j, r, s)), callback_id="explain")
    assert dispatcher.result(jid, timeout=10) == {"content": "HELLO"}
    status = dispatcher.status(jid)
    assert status == RequestStatus.DONE and status.is_complete()
    eventually(lambda: done, "the completion callback")
    assert done == [(jid, {"content": "HELLO"}, RequestStatus.DONE)]
    info = dispatcher.info(jid)
    assert info is not None and info.queue == dispatcher.proc_queue and info.attempt == 1


def test_callback_for_a_job_that_already_ended(dispatcher: Dispatcher) -> None:
    jid = dispatcher.submit_proc(upper, {"content": "x"})
    dispatcher.result(jid, timeout=10)
    late: list[Any] = []
    dispatcher.on_complete(jid, lambda j, r, s: late.append(s))
    eventually(lambda: late == [RequestStatus.DONE], "the late callback")


def test_failures_are_reported_with_their_status(dispatcher: Dispatcher) -> None:
    def broken(msg: Any) -> None:
        raise ValueError("bad input")

    got: list[Any] = []
    jid = dispatcher.submit_proc(broken, 1, attempts=1, callback=lambda j, r, s: got.append((r, s)))
    with pytest.raises(herald.JobDeadError) as e:
        dispatcher.result(jid, timeout=10)
    assert "bad input" in str(e.value)
    eventually(lambda: got, "the failure callback")
    assert got[0][1] == RequestStatus.DEAD and isinstance(got[0][0], herald.JobDeadError)
    with pytest.raises(herald.NoJobError):
        dispatcher.status("no-such-job")


def test_result_timeout(dispatcher: Dispatcher, name: str) -> None:
    jid = dispatcher.submit(name + "-nobody", {"x": 1})
    with pytest.raises(herald.TimeoutError):
        dispatcher.result(jid, timeout=0.1)
    with pytest.raises(TimeoutError):  # the builtin catches it too
        dispatcher.result(jid, timeout=0)
    assert dispatcher.status(jid) == RequestStatus.QUEUED
    assert dispatcher.cancel(jid) and not dispatcher.cancel(jid)
    with pytest.raises(herald.CancelledError):
        dispatcher.result(jid, timeout=1)


def test_streaming_chunks_callbacks_and_resume(dispatcher: Dispatcher) -> None:
    def tokens(prompt: str) -> Any:
        for word in prompt.split():
            yield word + " "

    chunks: list[str] = []
    final: list[Any] = []
    jid = dispatcher.submit_stream(tokens, "a b c d", chunk_callback=lambda j, c: chunks.append(c), completion_callback=lambda j, r: final.append(r))
    assert list(dispatcher.stream(jid)) == ["a ", "b ", "c ", "d "]
    assert list(dispatcher.stream(jid, from_offset=2)) == ["c ", "d "]
    assert dispatcher.result(jid, 10) == "a b c d "
    eventually(lambda: final, "the completion callback")
    assert chunks == ["a ", "b ", "c ", "d "] and final == ["a b c d "]


def test_batch_helpers(dispatcher: Dispatcher) -> None:
    ids = dispatcher.submit_proc_many(upper, [{"content": c} for c in "abcd"])
    assert dispatcher.wait_all(ids, timeout=10) == [{"content": c} for c in "ABCD"]
    finished = list(dispatcher.as_completed(ids, timeout=10))
    assert sorted(f[0] for f in finished) == sorted(ids) and all(f[2] == RequestStatus.DONE for f in finished)


def test_worker_claims_reports_progress_and_completes(client: herald.Herald, dispatcher: Dispatcher, name: str) -> None:
    def handle(job: herald.Job) -> Any:
        job.progress(50)
        job.chunk("partial")
        return {"summary": job.payload["file"]}

    jid = dispatcher.submit(name, {"file": "data.csv"})
    assert Worker(name, handle, client=client).run(max_jobs=1) == 1
    assert dispatcher.result(jid, 10) == {"summary": "data.csv"}
    info = dispatcher.info(jid)
    assert info is not None and info.progress == 50 and info.chunks == 1


def test_pause_resume_and_join(client: herald.Herald, dispatcher: Dispatcher, name: str) -> None:
    dispatcher.pause()
    ids = [dispatcher.submit(None, {"n": i}) for i in range(3)]
    assert dispatcher.stats()["paused"] == 1 and dispatcher.stats()["queued"] == 3
    worker = Worker(name, client=client)
    assert worker.claim(timeout=0.1) is None  # paused: nothing handed out
    with pytest.raises(herald.TimeoutError):
        dispatcher.join(timeout=0.1)
    dispatcher.resume()
    for _ in ids:
        job = worker.claim(timeout=5)
        assert job is not None
        job.complete({"ok": True})
    dispatcher.join(timeout=10)
    assert dispatcher.stats()["done"] == 3


def test_cancel_reaches_the_worker(client: herald.Herald, dispatcher: Dispatcher, name: str) -> None:
    started = threading.Event()
    outcome: list[str] = []

    def slow(job: herald.Job) -> str:
        started.set()
        outcome.append("cancelled" if job.cancelled.wait(20) else "not cancelled")
        return "too late"

    worker = Worker(name, slow, client=client, lease=30)
    t = threading.Thread(target=worker.run, kwargs={"max_jobs": 1})
    t.start()
    jid = dispatcher.submit(name, {})
    assert started.wait(10)
    assert dispatcher.cancel(jid)
    t.join(20)
    assert outcome == ["cancelled"]  # well before the lease's first heartbeat (10 s)
    assert dispatcher.status(jid) == RequestStatus.CANCELLED


def test_lease_running_out_requeues_and_fences(client: herald.Herald, dispatcher: Dispatcher, name: str) -> None:
    jid = dispatcher.submit(name, {"n": 1}, attempts=3)
    worker = Worker(name, client=client, lease=0.2)
    first = worker.claim(timeout=5)
    assert first is not None and first.attempt == 1
    # No heartbeat: the lease runs out and the job is claimable again, as attempt 2.
    second = worker.claim(timeout=10)
    assert second is not None and second.id == jid and second.attempt == 2
    with pytest.raises(herald.LeaseError):
        first.complete("stale worker")  # fencing: the lost lease cannot complete the job
    second.complete("ok")
    assert dispatcher.result(jid, 5) == "ok"


def test_failed_attempt_is_retried(client: herald.Herald, dispatcher: Dispatcher, name: str) -> None:
    attempts: list[int] = []

    def flaky(job: herald.Job) -> str:
        attempts.append(job.attempt)
        if job.attempt == 1:
            raise RuntimeError("transient")
        return "second time lucky"

    jid = dispatcher.submit(name, {}, attempts=2, backoff=herald.Backoff("fixed", 0.01))
    Worker(name, flaky, client=client).run(max_jobs=2, idle_timeout=10)
    assert dispatcher.result(jid, 10) == "second time lucky" and attempts == [1, 2]


def test_completion_callback_survives_listener_reconnect(client: herald.Herald, broker: Broker, dispatcher: Dispatcher, name: str) -> None:
    done: list[Any] = []
    jid = dispatcher.submit(name, {"x": 1}, callback=lambda j, r, s: done.append(r))
    kill_listener(client, broker.port)
    job = Worker(name, client=client).claim(timeout=5)
    assert job is not None
    job.complete("finished while the listener reconnected")
    eventually(lambda: done, "the completion callback after the reconnect")
    assert done == ["finished while the listener reconnected"]


def test_async_dispatcher_worker_and_cancel(aclient: Callable[[], herald.aio.AsyncHerald], name: str) -> None:
    async def main() -> None:
        h = aclient()
        d = herald.aio.Dispatcher(max_concurrent_requests=2, queue=name, client=h)

        async def double(x: int) -> int:
            await asyncio.sleep(0.01)
            return x * 2

        ids = await d.submit_proc_many(double, [1, 2, 3])
        assert await d.wait_all(ids, 10) == [2, 4, 6]

        async def tokens(prompt: str) -> Any:
            for w in prompt.split():
                yield w

        jid = await d.submit_proc(tokens, "x y")
        assert [c async for c in d.stream(jid)] == ["x", "y"] and await d.result(jid, 10) == "xy"

        cancelled = asyncio.Event()

        async def forever(job: herald.aio.Job) -> None:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()  # a cancel cancels the handler's task
                raise

        worker = herald.aio.Worker(name + "-w", forever, client=h)
        run = asyncio.ensure_future(worker.run(max_jobs=1))
        jid = await d.submit(name + "-w", {})
        await aeventually(lambda: True, "")
        while (await d.status(jid)) != RequestStatus.RUNNING:
            await asyncio.sleep(0.02)
        assert await d.cancel(jid)
        await asyncio.wait_for(cancelled.wait(), 10)
        await asyncio.wait_for(run, 10)
        done: list[Any] = []
        jid = await d.submit_proc(double, 21, callback=lambda j, r, s: done.append(r))
        await aeventually(lambda: done == [42], "the async completion callback")
        await d.close()
        await h.close()

    asyncio.run(main())
