"""Jobs (JOB.*) as sans-IO operations, and the handler that follows one job: completion callbacks, chunk
callbacks resumed with JOB.READ after a gap or a reconnect, and cancel notices for the worker holding it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Sequence

from ._blackboard import event_value
from ._proto import Call, Cmd, Handler, Op, as_list, as_map, ms, opt_int, opt_text, text
from ._workflow import JOB_READ, StreamCursor
from .codec import Codec
from .errors import CancelledError, HeraldError, JobDeadError, JobFailedError, NoJobError
from .errors import TimeoutError as HeraldTimeout
from .errors import TimeoutError as HeraldTimeout


class RequestStatus(str, Enum):
    """A job's state (the seeds' ``RequestStatus``); ``is_complete()`` once it will not run again."""

    QUEUED = "queued"
    DELAYED = "delayed"
    RUNNING = "running"
    STREAMING = "streaming"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"
    DEAD = "dead"

    def is_complete(self) -> bool:
        return self in (RequestStatus.DONE, RequestStatus.ERROR, RequestStatus.CANCELLED, RequestStatus.DEAD)


@dataclass(frozen=True)
class JobInfo:
    id: str
    queue: str
    status: RequestStatus
    attempt: int
    max_attempts: int
    priority: int
    progress: Any
    error: str | None
    chunks: int
    created: int | None
    started: int | None
    finished: int | None
    run_at: int | None
    lease_expires: int | None


@dataclass(frozen=True)
class Claim:
    id: str
    queue: str
    payload: bytes
    attempt: int
    token: int
    lease: float


@dataclass(frozen=True)
class Backoff:
    """Retry delays: ``fixed`` seconds each time, or ``exponential`` (seconds, 2x, 4x, ...), optionally jittered."""

    kind: str
    seconds: float
    jitter: bool = False

    def args(self) -> tuple[Any, ...]:
        if self.kind not in ("fixed", "exponential"):
            raise ValueError("backoff kind is 'fixed' or 'exponential'")
        return ("BACKOFF", self.kind, ms(self.seconds)) + (("JITTER",) if self.jitter else ())


class JobsCore:
    def __init__(self, codec: Codec) -> None:
        self.codec = codec

    def submit(
        self,
        queue: str,
        payload: Any,
        *,
        job_id: str | None = None,
        priority: int | None = None,
        delay: float | None = None,
        attempts: int | None = None,
        backoff: Backoff | None = None,
        lease: float | None = None,
        result_ttl: float | None = None,
    ) -> Cmd[str]:
        if not queue:
            raise ValueError("a job needs a queue name")
        args: tuple[Any, ...] = ("JOB.SUBMIT", queue, self.codec.encode(payload))
        for name, value in (("ID", job_id), ("PRIORITY", priority), ("ATTEMPTS", attempts)):
            if value is not None:
                args += (name, value)
        for name, seconds in (("DELAY", delay), ("LEASE", lease), ("RESULT-TTL", result_ttl)):
            if seconds is not None:
                if seconds < 0:
                    raise ValueError(f"{name.lower()} cannot be negative")
                args += (name, ms(seconds))
        if backoff is not None:
            args += backoff.args()
        return Cmd(args, text)

    def info(self, reply: Any) -> JobInfo | None:
        if reply is None:
            return None
        m = as_map(reply)
        progress = m.get("progress")
        return JobInfo(
            text(m["id"]),
            text(m["queue"]),
            RequestStatus(text(m["state"])),
            int(m.get("attempt") or 0),
            int(m.get("max_attempts") or 0),
            int(m.get("priority") or 0),
            None if progress is None else self.codec.decode(progress),
            opt_text(m.get("error")),
            int(m.get("chunks") or 0),
            opt_int(m.get("created")),
            opt_int(m.get("started")),
            opt_int(m.get("finished")),
            opt_int(m.get("run_at")),
            opt_int(m.get("lease_expires")),
        )

    def status(self, job_id: str) -> Cmd[JobInfo | None]:
        return Cmd(("JOB.STATUS", job_id), self.info)

    def decode_result(self, reply: Any) -> Any:
        return None if reply in (b"", "") else self.codec.decode(reply)

    def result(self, job_id: str, timeout: float | None) -> Cmd[Any]:
        """The result, waiting up to ``timeout`` seconds (None: forever, 0: not at all). Raises the job's own
        failure (``CancelledError``, ``JobFailedError``, ``JobDeadError``, ``NoJobError``), or ``TimeoutError``."""
        args: tuple[Any, ...] = ("JOB.RESULT", job_id)
        if timeout != 0:
            args += ("BLOCK", ms(timeout))

        def parse(reply: Any) -> Any:
            if reply is None:
                raise HeraldTimeout(f"job {job_id} has not finished" + (f" within {timeout}s" if timeout else ""))
            return self.decode_result(reply)

        return Cmd(args, parse)

    def cancel(self, job_id: str) -> Cmd[bool]:
        return Cmd(("JOB.CANCEL", job_id), lambda r: int(r) == 1)

    def claim(self, queues: Sequence[str], block: float | None, lease: float | None) -> Cmd[Claim | None]:
        if not queues:
            raise ValueError("claim needs at least one queue")
        args: tuple[Any, ...] = ("JOB.CLAIM", *queues)
        if block is not None:
            args += ("BLOCK", ms(block) or 1)
        if lease is not None:
            args += ("LEASE", ms(lease))

        def parse(reply: Any) -> Claim | None:
            if reply is None:
                return None
            m = as_map(reply)
            return Claim(text(m["id"]), text(m["queue"]), bytes(m["payload"]), int(m["attempt"]), int(m["token"]), int(m["lease"]) / 1000)

        return Cmd(args, parse)

    def heartbeat(self, job_id: str, token: int, lease: float | None) -> Cmd[int]:
        args: tuple[Any, ...] = ("JOB.HEARTBEAT", job_id, token)
        return Cmd(args + (("LEASE", ms(lease)) if lease else ()), int)

    def progress(self, job_id: str, token: int, value: Any) -> Cmd[None]:
        return Cmd(("JOB.PROGRESS", job_id, token, self.codec.encode(value)), lambda r: None)

    def chunk(self, job_id: str, token: int, data: Any) -> Cmd[int]:
        return Cmd(("JOB.CHUNK", job_id, token, self.codec.encode(data)), int)

    def complete(self, job_id: str, token: int, result: Any) -> Cmd[None]:
        tail: tuple[Any, ...] = () if result is None else (self.codec.encode(result),)
        return Cmd(("JOB.COMPLETE", job_id, token, *tail), lambda r: None)

    def fail(self, job_id: str, token: int, error: str, retry: bool = True) -> Cmd[RequestStatus]:
        args: tuple[Any, ...] = ("JOB.FAIL", job_id, token, error or "failed")
        return Cmd(args + (() if retry else ("NORETRY",)), lambda r: RequestStatus(text(r)))

    def stats(self, queue: str) -> Cmd[dict[str, int]]:
        return Cmd(("JOB.STATS", queue), lambda r: {k: int(v) for k, v in as_map(r).items()})

    def concurrency(self, queue: str, n: int) -> Cmd[None]:
        if n < 0:
            raise ValueError("concurrency is >= 0 (0: no limit)")
        return Cmd(("JOB.QUEUE", queue, "CONCURRENCY", n), lambda r: None)

    def pause(self, queue: str, paused: bool) -> Cmd[None]:
        """JOB.QUEUE queue PAUSE | RESUME: claims stop (or start again); submissions go on."""
        return Cmd(("JOB.QUEUE", queue, "PAUSE" if paused else "RESUME"), lambda r: None)

    def join(self, queue: str, timeout: float | None) -> Cmd[None]:
        """JOB.JOIN: waits until the queue has no job queued, delayed or running (``TimeoutError`` after
        ``timeout`` seconds; None: as long as it takes)."""

        def parse(r: Any) -> None:
            if r is None:
                raise HeraldTimeout(f"queue {queue} still has unfinished jobs after {timeout}s")

        args: tuple[Any, ...] = ("JOB.JOIN", queue) if timeout is None else ("JOB.JOIN", queue, "TIMEOUT", ms(timeout))
        return Cmd(args, parse)

    def ids(self, queue: str, state: RequestStatus | str | None = None) -> Cmd[list[str]]:
        tail: tuple[Any, ...] = () if state is None else (RequestStatus(state).value,)
        return Cmd(("JOB.LIST", queue, *tail), lambda r: [text(x) for x in as_list(r)])

    def dead(self, queue: str) -> Cmd[list[str]]:
        return Cmd(("JOB.DEAD", queue), lambda r: [text(x) for x in as_list(r)])

    def retry(self, job_id: str) -> Cmd[None]:
        return Cmd(("JOB.RETRY", job_id), lambda r: None)

    def outcome(self, job_id: str) -> Op[tuple[Any, RequestStatus]]:
        """A finished job's result or error, and its status."""
        try:
            result = yield self.result(job_id, 0)
            return result, RequestStatus.DONE
        except CancelledError as e:
            return e, RequestStatus.CANCELLED
        except JobFailedError as e:
            return e, RequestStatus.ERROR
        except JobDeadError as e:
            return e, RequestStatus.DEAD
        except NoJobError as e:
            return e, RequestStatus.ERROR


_TERMINAL_EVENTS = {"done", "cancelled"}
_TERMINAL_STATES = {"dead", "error", "cancelled", "done"}


class JobHandler(Handler):
    """Follows one job on ``__job__:<id>``. ``on_chunk(job_id, value)`` gets every chunk once, in order (a
    gap, or a reconnect, is filled with JOB.READ); ``on_done(job_id, result_or_error, status)`` is called
    once when the job ends (checked with JOB.STATUS on subscribing, so a job that ended before is reported
    too); ``on_cancel()`` when it is cancelled. ``finished()`` is called last (to unsubscribe)."""

    def __init__(
        self,
        core: JobsCore,
        job_id: str,
        *,
        on_done: Callable[[str, Any, RequestStatus], Any] | None = None,
        on_chunk: Callable[[str, Any], Any] | None = None,
        on_cancel: Callable[[], Any] | None = None,
        finished: Callable[[], Any] | None = None,
        from_offset: int = 0,
    ) -> None:
        self.core = core
        self.job_id = job_id
        self.on_done = on_done
        self.on_chunk = on_chunk
        self.on_cancel = on_cancel
        self.finished = finished
        self.next_offset = from_offset
        self.ended = False

    def on_ready(self, resumed: bool) -> Op[None] | None:
        return self._check()

    def on_lagged(self, count: int) -> Op[None] | None:
        return self._check()

    def _check(self) -> Op[None]:
        if self.ended:
            return
        info = yield self.core.status(self.job_id)
        if self.on_chunk is not None:
            yield from self._catch_up()
        if info is None or info.status.is_complete():
            if info is not None and info.status is RequestStatus.CANCELLED and self.on_cancel is not None:
                yield Call(self.on_cancel, (), report=True)
            yield from self._end()

    def on_message(self, channel: bytes, data: bytes) -> Op[None] | None:
        if self.ended:
            return None
        m = json.loads(data)
        event = m.get("event")
        if event == "chunk" and self.on_chunk is not None:
            return self._chunk(int(m["offset"]), m.get("data"))
        if event == "cancelled" and self.on_cancel is not None:
            return self._cancelled()
        if event in _TERMINAL_EVENTS or (event in ("failed", "lease-expired") and m.get("state") in _TERMINAL_STATES):
            return self._end()
        return None

    def _cancelled(self) -> Op[None]:
        yield Call(self.on_cancel or (lambda: None), (), report=True)
        yield from self._end()

    def _chunk(self, offset: int, data: Any) -> Op[None]:
        if offset > self.next_offset:
            yield from self._catch_up()
        if offset == self.next_offset and self.on_chunk is not None:
            self.next_offset += 1
            yield Call(self.on_chunk, (self.job_id, event_value(self.core.codec, data)), report=True)

    def _catch_up(self) -> Op[None]:
        cursor = StreamCursor(JOB_READ, self.job_id, self.next_offset, count=1000, block=None)
        while True:
            try:
                entries = yield from cursor.step()
            except HeraldError:
                return  # the job's chunks expired with it: nothing to catch up
            for offset, data in entries:
                if offset >= self.next_offset and self.on_chunk is not None:
                    self.next_offset = offset + 1
                    yield Call(self.on_chunk, (self.job_id, self.core.codec.decode(data)), report=True)
            if not entries or cursor.done:
                return

    def _end(self) -> Op[None]:
        if self.ended:
            return
        self.ended = True
        if self.on_chunk is not None:
            yield from self._catch_up()
        if self.on_done is not None:
            result, status = yield from self.core.outcome(self.job_id)
            yield Call(self.on_done, (self.job_id, result, status), report=True)
        if self.finished is not None:
            yield Call(self.finished, ())
