"""The seeds' ``AsyncDispatcher`` over the network, on Herald's jobs (JOB.*): submit to a queue and follow
the job (status, result with timeout, completion and chunk callbacks, resumable chunk stream, cancel), run
procedures in this process's worker pool through a Herald queue (``submit_proc``), and a ``Worker`` that
claims, heartbeats, reports progress, streams chunks, completes or fails, and stops on cancel.

``Dispatcher`` / ``Worker`` / ``Job`` block (threads); ``AsyncDispatcher`` / ``AsyncWorker`` / ``AsyncJob``
(``herald.aio.Dispatcher`` ...) are the asyncio twins. Both build their commands with ``JobsCore``."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
import uuid
from typing import Any, AsyncIterator, Callable, Iterable, Iterator, Sequence

from ._aclient import AsyncFeed, AsyncHerald
from ._aclient import default_client as default_async_client
from ._jobs import Backoff, Claim, JobHandler, JobInfo, JobsCore, RequestStatus
from ._proto import Handler
from ._workflow import JOB_READ
from .client import Feed, Herald, default_client
from .codec import Codec, to_jsonable
from .errors import CancelledError, ConnectionError, HeraldError, JobFailedError, LeaseError, NoJobError

__all__ = [
    "Dispatcher",
    "AsyncDispatcher",
    "Worker",
    "AsyncWorker",
    "Job",
    "AsyncJob",
    "RequestStatus",
    "JobInfo",
    "Backoff",
]

Done = Callable[[str, Any, RequestStatus], Any]


def _describe(proc: Any, msg: Any, callback_id: str | None) -> dict[str, Any]:
    """What a ``submit_proc`` job shows other processes: the procedure's name and its argument."""
    try:
        to_jsonable(msg)
        shown = msg
    except TypeError:
        shown = msg if isinstance(msg, (str, int, float, bool, list, dict, type(None))) else repr(msg)
    name = getattr(proc, "__qualname__", None) or type(proc).__name__
    return {"proc": name, "callback_id": callback_id, "msg": shown}


def _stream_result(chunks: list[Any]) -> Any:
    """A streamed job's result: the text when every chunk was text, else the list of chunks."""
    return "".join(chunks) if chunks and all(isinstance(c, str) for c in chunks) else chunks or None


def _error_text(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


class _Followers:
    """Shared by both dispatchers: completion / chunk handlers that unsubscribe themselves when the job ends."""

    client: Any
    core: JobsCore

    def _follow(self, job_id: str, on_done: Done | None, on_chunk: Callable[[str, Any], Any] | None, from_offset: int = 0) -> Handler:
        holder: list[Handler] = []
        handler = JobHandler(self.core, job_id, on_done=on_done, on_chunk=on_chunk, finished=lambda: self.client.forget(holder[0]), from_offset=from_offset)
        holder.append(handler)
        return handler


# ---------------------------------------------------------------------------------------------------------
# Blocking flavour


class _Claimed:
    """What both flavours of job know from their claim."""

    def __init__(self, core: JobsCore, claim: Claim) -> None:
        self.core = core
        self.id = claim.id
        self.queue = claim.queue
        self.attempt = claim.attempt
        self.token = claim.token
        self.lease = claim.lease
        self.payload: Any = core.codec.decode(claim.payload)
        self.finished = False


class _WorkerSettings:
    """What both flavours of worker are configured with."""

    def __init__(self, core: JobsCore, queues: str | Sequence[str], lease: float, concurrency: int, watch_cancel: bool) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.core = core
        self.queues = [queues] if isinstance(queues, str) else list(queues)
        if not self.queues:
            raise ValueError("a worker needs at least one queue")
        self.lease = lease
        self.concurrency = concurrency
        self.watch_cancel = watch_cancel
        self.processed = 0


class Job(_Claimed):
    """A claimed job, held under a lease by this worker. ``payload`` is decoded; ``cancelled`` is set as soon
    as the job is cancelled (the worker's heartbeat or its job channel tells it); ``progress`` / ``chunk`` /
    ``heartbeat`` raise ``CancelledError`` once it is."""

    def __init__(self, client: Herald, core: JobsCore, claim: Claim) -> None:
        super().__init__(core, claim)
        self.client = client
        self.cancelled = threading.Event()

    def _guard(self, op: Any) -> Any:
        try:
            return self.client.run(op)
        except CancelledError:
            self.cancelled.set()
            raise

    def heartbeat(self) -> int:
        """Extends the lease by its length; returns the new expiry (unix ms)."""
        return int(self._guard(self.core.heartbeat(self.id, self.token, self.lease)))

    def progress(self, value: Any) -> None:
        self._guard(self.core.progress(self.id, self.token, value))

    def chunk(self, data: Any) -> int:
        """Appends a result chunk; returns its offset."""
        return int(self._guard(self.core.chunk(self.id, self.token, data)))

    def complete(self, result: Any = None) -> None:
        self._guard(self.core.complete(self.id, self.token, result))
        self.finished = True

    def fail(self, error: str, retry: bool = True) -> RequestStatus:
        """Fails this attempt: retried after the backoff while attempts remain (``retry=False``: no retry)."""
        status: RequestStatus = self._guard(self.core.fail(self.id, self.token, error, retry))
        self.finished = True
        return status


class Worker(_WorkerSettings):
    """Claims jobs from ``queues`` (tried in order) and runs ``handler(job)`` for each: its return value
    completes the job (a generator's items are streamed as chunks first), an exception fails it (retried
    per the job's attempts). The lease is renewed every third of itself while the handler runs; a cancel
    sets ``job.cancelled`` at once and stops the job's heartbeats, chunks and completion."""

    def __init__(
        self,
        queues: str | Sequence[str],
        handler: Callable[[Job], Any] | None = None,
        *,
        client: Herald | None = None,
        codec: Codec | None = None,
        lease: float = 30.0,
        concurrency: int = 1,
        watch_cancel: bool = True,
    ) -> None:
        self.client = default_client(client)
        super().__init__(JobsCore(codec or self.client.codec), queues, lease, concurrency, watch_cancel)
        self.handler = handler
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def claim(self, timeout: float | None = None) -> Job | None:
        """The next job, waiting up to ``timeout`` seconds (None: until one comes); None if none came."""
        claim = self.client.run(self.core.claim(self.queues, timeout, self.lease))
        return None if claim is None else Job(self.client, self.core, claim)

    def process(self, job: Job, handler: Callable[[Job], Any] | None = None) -> None:
        """Runs the handler on one claimed job, with heartbeats, and completes or fails it."""
        fn = handler or self.handler
        if fn is None:
            raise ValueError("no handler: pass one to Worker(...) or process(job, handler)")
        beat = threading.Event()
        threading.Thread(target=self._beat, args=(job, beat), daemon=True, name=f"herald-heartbeat-{job.id}").start()
        watcher = JobHandler(self.core, job.id, on_cancel=job.cancelled.set) if self.watch_cancel else None
        if watcher is not None:
            self.client.listen("channel", f"__job__:{job.id}", watcher, wait=False)
        try:
            result = fn(job)
            if inspect.isgenerator(result):
                chunks = []
                for c in result:
                    job.chunk(c)
                    chunks.append(c)
                result = _stream_result(chunks)
            if not job.finished and not job.cancelled.is_set():
                job.complete(result)
        except (CancelledError, LeaseError) as e:
            if isinstance(e, LeaseError):
                self.client.settings.report(e)  # the lease ran out: the job went back to the queue
        except Exception as e:
            if not job.finished and not job.cancelled.is_set():
                try:
                    job.fail(_error_text(e))
                except HeraldError as e2:
                    self.client.settings.report(e2)
        finally:
            beat.set()
            if watcher is not None:
                self.client.forget(watcher)
            self.processed += 1

    def _beat(self, job: Job, stop: threading.Event) -> None:
        while not stop.wait(max(job.lease / 3, 0.05)):
            try:
                job.heartbeat()
            except (CancelledError, LeaseError, NoJobError):
                return
            except ConnectionError:
                continue

    def run(self, max_jobs: int | None = None, idle_timeout: float | None = None) -> int:
        """Claims and processes jobs in this thread until ``stop()``, ``max_jobs`` jobs, or ``idle_timeout``
        seconds without one; returns how many it processed."""
        if self.handler is None:
            raise ValueError("no handler: pass one to Worker(queue, handler)")
        done = 0
        idle_since = time.monotonic()
        while not self._stop.is_set() and (max_jobs is None or done < max_jobs):
            job = self.claim(timeout=0.5)
            if job is None:
                if idle_timeout is not None and time.monotonic() - idle_since > idle_timeout:
                    break
                continue
            self.process(job)
            done += 1
            idle_since = time.monotonic()
        return done

    def start(self) -> Worker:
        """Runs ``concurrency`` claim loops in background threads until ``stop()``."""
        for i in range(self.concurrency):
            t = threading.Thread(target=self._loop, daemon=True, name=f"herald-worker-{i}")
            t.start()
            self._threads.append(t)
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run()
            except ConnectionError as e:
                self.client.settings.report(e)
                self._stop.wait(0.5)

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        if wait:
            for t in self._threads:
                if t is not threading.current_thread():
                    t.join(10)


class Dispatcher(_Followers):
    """Submits jobs and follows them. ``max_concurrent_requests`` bounds how many of this dispatcher's
    procedures run at once (its worker pool) and how many jobs of its ``queue`` run at once across all
    workers (``JOB.QUEUE queue CONCURRENCY n``)."""

    client: Herald

    def __init__(
        self,
        max_concurrent_requests: int | None = None,
        *,
        queue: str = "default",
        client: Herald | None = None,
        codec: Codec | None = None,
        lease: float = 30.0,
    ) -> None:
        self.client = default_client(client)
        self.core = JobsCore(codec or self.client.codec)
        self.queue = queue
        self.max_concurrent_requests = max_concurrent_requests or 4
        self.proc_queue = f"herald.proc.{uuid.uuid4().hex[:16]}"
        self._procs: dict[str, Callable[[Job], Any]] = {}
        self._lock = threading.Lock()
        self._pool = Worker(self.proc_queue, self._run_proc, client=self.client, codec=self.core.codec, lease=lease, concurrency=self.max_concurrent_requests)
        self._started = False
        if max_concurrent_requests is not None:
            self.client.run(self.core.concurrency(queue, max_concurrent_requests))

    # ---- submitting

    def submit(self, queue: str | None, payload: Any, *, callback: Done | None = None, **options: Any) -> str:
        """Submits ``payload`` to ``queue`` (None: this dispatcher's); returns the job id. Options: ``job_id``
        (idempotent), ``priority``, ``delay``, ``attempts``, ``backoff`` (:class:`Backoff`), ``lease``,
        ``result_ttl`` (seconds)."""
        job_id = self.client.run(self.core.submit(queue or self.queue, payload, **options))
        if callback is not None:
            self.on_complete(job_id, callback)
        return job_id

    def submit_proc(self, proc: Callable[[Any], Any], msg: Any, *, callback: Done | None = None, callback_id: str | None = None, **options: Any) -> str:
        """Runs ``proc(msg)`` in this process's worker pool through a Herald job (so other processes can follow
        it); its return value is the result, a generator's items are chunks. ``callback(job_id, result,
        status)`` when it ends."""
        job_id = options.pop("job_id", None) or uuid.uuid4().hex
        with self._lock:
            self._procs[job_id] = lambda job: proc(msg)
            if not self._started:
                self._pool.start()
                self._started = True
        try:
            self.client.run(self.core.submit(self.proc_queue, _describe(proc, msg, callback_id), job_id=job_id, **options))
        except Exception:
            self._procs.pop(job_id, None)
            raise
        if callback is not None:
            self.on_complete(job_id, callback)
        return job_id

    def submit_stream(
        self,
        proc: Callable[[Any], Iterable[Any]],
        msg: Any,
        chunk_callback: Callable[[str, Any], Any] | None = None,
        completion_callback: Callable[[str, Any], Any] | None = None,
        **options: Any,
    ) -> str:
        """``submit_proc`` for a generator: ``chunk_callback(job_id, chunk)`` for each item in order,
        ``completion_callback(job_id, final_result)`` at the end (the joined text, for text chunks)."""
        job_id = self.submit_proc(proc, msg, **options)
        done: Done | None = None
        if completion_callback is not None:
            cb = completion_callback
            done = lambda jid, result, status: cb(jid, result)  # noqa: E731
        self.client.listen("channel", f"__job__:{job_id}", self._follow(job_id, done, chunk_callback))
        return job_id

    def submit_many(self, queue: str | None, payloads: Iterable[Any], **options: Any) -> list[str]:
        return [self.submit(queue, p, **options) for p in payloads]

    def submit_proc_many(self, proc: Callable[[Any], Any], msgs: Iterable[Any], **options: Any) -> list[str]:
        return [self.submit_proc(proc, m, **options) for m in msgs]

    def _run_proc(self, job: Job) -> Any:
        with self._lock:
            fn = self._procs.pop(job.id, None)
        if fn is None:
            raise JobFailedError(f"no procedure for job {job.id} in this process")
        return fn(job)

    # ---- following

    def status(self, job_id: str) -> RequestStatus:
        info = self.info(job_id)
        if info is None:
            raise NoJobError(f"no job {job_id}")
        return info.status

    def info(self, job_id: str) -> JobInfo | None:
        return self.client.run(self.core.status(job_id))

    def result(self, job_id: str, timeout: float | None = None) -> Any:
        """The job's result, waiting up to ``timeout`` seconds (None: until it ends). A job that did not
        succeed raises ``CancelledError`` / ``JobFailedError`` / ``JobDeadError``; time out: ``TimeoutError``."""
        return self.client.run(self.core.result(job_id, timeout))

    def on_complete(self, job_id: str, callback: Done) -> None:
        """``callback(job_id, result_or_error, status)`` once the job ends (at once if it already has)."""
        self.client.listen("channel", f"__job__:{job_id}", self._follow(job_id, callback, None))

    def on_chunk(self, job_id: str, callback: Callable[[str, Any], Any], from_offset: int = 0) -> None:
        self.client.listen("channel", f"__job__:{job_id}", self._follow(job_id, None, callback, from_offset))

    def stream(self, job_id: str, from_offset: int = 0) -> Iterator[Any]:
        """The job's chunks from ``from_offset`` as they come, until it ends; resumes after a dropped connection."""
        return self.client.follow(JOB_READ, job_id, from_offset)

    def cancel(self, job_id: str) -> bool:
        return self.client.run(self.core.cancel(job_id))

    def wait_all(self, job_ids: Sequence[str], timeout: float | None = None) -> list[Any]:
        """Every job's result, in order (the first failure raises); ``timeout`` bounds the whole wait."""
        deadline = None if timeout is None else time.monotonic() + timeout
        return [self.result(j, None if deadline is None else max(0.001, deadline - time.monotonic())) for j in job_ids]

    def as_completed(self, job_ids: Sequence[str], timeout: float | None = None) -> Iterator[tuple[str, Any, RequestStatus]]:
        """``(job_id, result_or_error, status)`` for each job, in the order they finish."""
        feed: Feed[tuple[str, Any, RequestStatus]] = Feed()
        for j in job_ids:
            self.on_complete(j, lambda jid, r, s: feed.put((jid, r, s)))
        deadline = None if timeout is None else time.monotonic() + timeout
        for _ in job_ids:
            yield feed.get(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def stats(self, queue: str | None = None) -> dict[str, int]:
        return self.client.run(self.core.stats(queue or self.queue))

    def set_concurrency(self, n: int, queue: str | None = None) -> None:
        self.client.run(self.core.concurrency(queue or self.queue, n))

    def pause(self, queue: str | None = None) -> None:
        """Workers claim nothing more from the queue (those running go on); submissions are still taken."""
        self.client.run(self.core.pause(queue or self.queue, True))

    def resume(self, queue: str | None = None) -> None:
        self.client.run(self.core.pause(queue or self.queue, False))

    def join(self, timeout: float | None = None, queue: str | None = None) -> None:
        """Waits until the queue has no job queued, delayed or running (``TimeoutError`` after ``timeout``)."""
        self.client.run(self.core.join(queue or self.queue, timeout))

    def close(self) -> None:
        """Stops this dispatcher's worker pool (jobs it holds go back to the queue when their lease ends)."""
        self._pool.stop()


# ---------------------------------------------------------------------------------------------------------
# asyncio flavour


class AsyncJob(_Claimed):
    """The asyncio ``Job``."""

    def __init__(self, client: AsyncHerald, core: JobsCore, claim: Claim) -> None:
        super().__init__(core, claim)
        self.client = client
        self.cancelled = asyncio.Event()

    async def _guard(self, op: Any) -> Any:
        try:
            return await self.client.run(op)
        except CancelledError:
            self.cancelled.set()
            raise

    async def heartbeat(self) -> int:
        return int(await self._guard(self.core.heartbeat(self.id, self.token, self.lease)))

    async def progress(self, value: Any) -> None:
        await self._guard(self.core.progress(self.id, self.token, value))

    async def chunk(self, data: Any) -> int:
        return int(await self._guard(self.core.chunk(self.id, self.token, data)))

    async def complete(self, result: Any = None) -> None:
        await self._guard(self.core.complete(self.id, self.token, result))
        self.finished = True

    async def fail(self, error: str, retry: bool = True) -> RequestStatus:
        status: RequestStatus = await self._guard(self.core.fail(self.id, self.token, error, retry))
        self.finished = True
        return status


async def _items(source: Any) -> AsyncIterator[Any]:
    """An async generator's items, or a plain generator's (each step in a thread: it may block)."""
    if inspect.isasyncgen(source):
        async for item in source:
            yield item
        return
    end = object()
    while (item := await asyncio.to_thread(next, source, end)) is not end:
        yield item


async def _invoke(fn: Callable[..., Any], *args: Any) -> Any:
    """Calls a handler: coroutine functions are awaited, plain functions run in a thread (they may block)."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    result = await asyncio.to_thread(fn, *args)
    return await result if inspect.isawaitable(result) else result


class AsyncWorker(_WorkerSettings):
    """The asyncio ``Worker``. A cancel cancels the handler's task at once (a plain function running in a
    thread is left to finish; its result is dropped)."""

    def __init__(
        self,
        queues: str | Sequence[str],
        handler: Callable[[AsyncJob], Any] | None = None,
        *,
        client: AsyncHerald | None = None,
        codec: Codec | None = None,
        lease: float = 30.0,
        concurrency: int = 1,
        watch_cancel: bool = True,
    ) -> None:
        self.client = default_async_client(client)
        super().__init__(JobsCore(codec or self.client.codec), queues, lease, concurrency, watch_cancel)
        self.handler = handler
        self._stopping = False
        self._tasks: list[asyncio.Task[Any]] = []

    async def claim(self, timeout: float | None = None) -> AsyncJob | None:
        claim = await self.client.run(self.core.claim(self.queues, timeout, self.lease))
        return None if claim is None else AsyncJob(self.client, self.core, claim)

    async def process(self, job: AsyncJob, handler: Callable[[AsyncJob], Any] | None = None) -> None:
        fn = handler or self.handler
        if fn is None:
            raise ValueError("no handler: pass one to AsyncWorker(...) or process(job, handler)")
        watcher = JobHandler(self.core, job.id, on_cancel=job.cancelled.set) if self.watch_cancel else None
        if watcher is not None:
            await self.client.listen("channel", f"__job__:{job.id}", watcher, wait=False)
        work = asyncio.ensure_future(self._work(job, fn))
        beat = asyncio.ensure_future(self._beat(job))
        cancel = asyncio.ensure_future(job.cancelled.wait())
        try:
            await asyncio.wait({work, cancel}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                work.cancel()
            await asyncio.gather(work, return_exceptions=True)
        finally:
            for t in (beat, cancel):
                t.cancel()
            if watcher is not None:
                self.client.forget(watcher)
            self.processed += 1

    async def _work(self, job: AsyncJob, fn: Callable[[AsyncJob], Any]) -> None:
        try:
            result = await _invoke(fn, job)
            if inspect.isasyncgen(result) or inspect.isgenerator(result):
                chunks = []
                async for c in _items(result):
                    await job.chunk(c)
                    chunks.append(c)
                result = _stream_result(chunks)
            if not job.finished and not job.cancelled.is_set():
                await job.complete(result)
        except (CancelledError, LeaseError) as e:
            if isinstance(e, LeaseError):
                self.client.settings.report(e)
        except Exception as e:
            if not job.finished and not job.cancelled.is_set():
                try:
                    await job.fail(_error_text(e))
                except HeraldError as e2:
                    self.client.settings.report(e2)

    async def _beat(self, job: AsyncJob) -> None:
        while True:
            await asyncio.sleep(max(job.lease / 3, 0.05))
            try:
                await job.heartbeat()
            except (CancelledError, LeaseError, NoJobError):
                return
            except ConnectionError:
                continue

    async def run(self, max_jobs: int | None = None, idle_timeout: float | None = None) -> int:
        if self.handler is None:
            raise ValueError("no handler: pass one to AsyncWorker(queue, handler)")
        done = 0
        idle_since = time.monotonic()
        while not self._stopping and (max_jobs is None or done < max_jobs):
            job = await self.claim(timeout=0.5)
            if job is None:
                if idle_timeout is not None and time.monotonic() - idle_since > idle_timeout:
                    break
                continue
            await self.process(job)
            done += 1
            idle_since = time.monotonic()
        return done

    def start(self) -> AsyncWorker:
        for _ in range(self.concurrency):
            self._tasks.append(asyncio.ensure_future(self._loop()))
        return self

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await self.run()
            except ConnectionError as e:
                self.client.settings.report(e)
                await asyncio.sleep(0.5)

    async def stop(self) -> None:
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class AsyncDispatcher(_Followers):
    """The asyncio ``Dispatcher`` (the seeds' name). Procedures may be coroutine functions, async generators,
    or plain functions and generators (run in a thread)."""

    client: AsyncHerald

    def __init__(
        self,
        max_concurrent_requests: int | None = None,
        *,
        queue: str = "default",
        client: AsyncHerald | None = None,
        codec: Codec | None = None,
        lease: float = 30.0,
    ) -> None:
        self.client = default_async_client(client)
        self.core = JobsCore(codec or self.client.codec)
        self.queue = queue
        self._limit = max_concurrent_requests
        self.max_concurrent_requests = max_concurrent_requests or 4
        self.proc_queue = f"herald.proc.{uuid.uuid4().hex[:16]}"
        self._procs: dict[str, Callable[[AsyncJob], Any]] = {}
        self._pool = AsyncWorker(self.proc_queue, self._run_proc, client=self.client, codec=self.core.codec, lease=lease, concurrency=self.max_concurrent_requests)
        self._started = False

    async def _start(self) -> None:
        if not self._started:
            self._started = True
            if self._limit is not None:
                await self.client.run(self.core.concurrency(self.queue, self._limit))
            self._pool.start()

    async def submit(self, queue: str | None, payload: Any, *, callback: Done | None = None, **options: Any) -> str:
        await self._start()
        job_id = await self.client.run(self.core.submit(queue or self.queue, payload, **options))
        if callback is not None:
            await self.on_complete(job_id, callback)
        return job_id

    async def submit_proc(self, proc: Callable[[Any], Any], msg: Any, *, callback: Done | None = None, callback_id: str | None = None, **options: Any) -> str:
        await self._start()
        job_id = options.pop("job_id", None) or uuid.uuid4().hex
        self._procs[job_id] = lambda job: _invoke(proc, msg)
        try:
            await self.client.run(self.core.submit(self.proc_queue, _describe(proc, msg, callback_id), job_id=job_id, **options))
        except Exception:
            self._procs.pop(job_id, None)
            raise
        if callback is not None:
            await self.on_complete(job_id, callback)
        return job_id

    async def submit_stream(
        self,
        proc: Callable[[Any], Any],
        msg: Any,
        chunk_callback: Callable[[str, Any], Any] | None = None,
        completion_callback: Callable[[str, Any], Any] | None = None,
        **options: Any,
    ) -> str:
        job_id = await self.submit_proc(proc, msg, **options)
        done: Done | None = None
        if completion_callback is not None:
            cb = completion_callback
            done = lambda jid, result, status: cb(jid, result)  # noqa: E731
        await self.client.listen("channel", f"__job__:{job_id}", self._follow(job_id, done, chunk_callback))
        return job_id

    async def submit_many(self, queue: str | None, payloads: Iterable[Any], **options: Any) -> list[str]:
        return [await self.submit(queue, p, **options) for p in payloads]

    async def submit_proc_many(self, proc: Callable[[Any], Any], msgs: Iterable[Any], **options: Any) -> list[str]:
        return [await self.submit_proc(proc, m, **options) for m in msgs]

    async def _run_proc(self, job: AsyncJob) -> Any:
        fn = self._procs.pop(job.id, None)
        if fn is None:
            raise JobFailedError(f"no procedure for job {job.id} in this process")
        return await fn(job)

    async def status(self, job_id: str) -> RequestStatus:
        info = await self.info(job_id)
        if info is None:
            raise NoJobError(f"no job {job_id}")
        return info.status

    async def info(self, job_id: str) -> JobInfo | None:
        return await self.client.run(self.core.status(job_id))

    async def result(self, job_id: str, timeout: float | None = None) -> Any:
        return await self.client.run(self.core.result(job_id, timeout))

    async def on_complete(self, job_id: str, callback: Done) -> None:
        await self.client.listen("channel", f"__job__:{job_id}", self._follow(job_id, callback, None))

    async def on_chunk(self, job_id: str, callback: Callable[[str, Any], Any], from_offset: int = 0) -> None:
        await self.client.listen("channel", f"__job__:{job_id}", self._follow(job_id, None, callback, from_offset))

    def stream(self, job_id: str, from_offset: int = 0) -> AsyncIterator[Any]:
        return self.client.follow(JOB_READ, job_id, from_offset)

    async def cancel(self, job_id: str) -> bool:
        return await self.client.run(self.core.cancel(job_id))

    async def wait_all(self, job_ids: Sequence[str], timeout: float | None = None) -> list[Any]:
        return list(await asyncio.gather(*(self.result(j, timeout) for j in job_ids)))

    async def as_completed(self, job_ids: Sequence[str], timeout: float | None = None) -> AsyncIterator[tuple[str, Any, RequestStatus]]:
        feed: AsyncFeed[tuple[str, Any, RequestStatus]] = AsyncFeed()
        for j in job_ids:
            await self.on_complete(j, lambda jid, r, s: feed.put((jid, r, s)))
        deadline = None if timeout is None else time.monotonic() + timeout
        for _ in job_ids:
            yield await feed.get(None if deadline is None else max(0.0, deadline - time.monotonic()))

    async def stats(self, queue: str | None = None) -> dict[str, int]:
        return await self.client.run(self.core.stats(queue or self.queue))

    async def set_concurrency(self, n: int, queue: str | None = None) -> None:
        await self.client.run(self.core.concurrency(queue or self.queue, n))

    async def pause(self, queue: str | None = None) -> None:
        await self.client.run(self.core.pause(queue or self.queue, True))

    async def resume(self, queue: str | None = None) -> None:
        await self.client.run(self.core.pause(queue or self.queue, False))

    async def join(self, timeout: float | None = None, queue: str | None = None) -> None:
        await self.client.run(self.core.join(queue or self.queue, timeout))

    async def close(self) -> None:
        await self._pool.stop()

