"""Workflow communication (the DBOS seed) and streams, as sans-IO operations: events on the blackboard, messages
in mailboxes (MSG.*), streams (STREAM.*) read from an offset and resumed after a reconnect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ._proto import Cmd, Op, Sleep, as_bool, as_list, as_map, ms, opt_int, text
from .codec import Codec
from .errors import ConnectionError

STREAM_READ = "STREAM.READ"
JOB_READ = "JOB.READ"


def stream_name(workflow_id: str, key: str) -> str:
    """The Herald stream behind a workflow's stream ``key``."""
    return f"{workflow_id}:{key}"


def topic_arg(topic: str | None) -> str:
    """DBOS's "no topic" is the empty-string topic."""
    return "" if topic is None else topic


@dataclass(frozen=True)
class StreamBatch:
    entries: list[tuple[int, bytes]]
    next: int
    closed: bool
    epoch: int | None


def parse_batch(reply: Any) -> StreamBatch | None:
    if reply is None:
        return None
    m = as_map(reply)
    entries = [(int(e[0]), bytes(e[1]) if isinstance(e[1], (bytes, bytearray)) else text(e[1]).encode()) for e in as_list(m.get("entries"))]
    return StreamBatch(entries, int(m.get("next", 0)), as_bool(m.get("closed")), opt_int(m.get("epoch")))


class StreamCursor:
    """Reads a stream (STREAM.READ) or a job's chunks (JOB.READ) from an offset, batch by batch, remembering
    where it is so that a dropped connection resumes where it stopped: nothing missed, nothing repeated.
    The broker says when it cannot (``TrimmedError``, ``StaleError``, ``NoJobError``)."""

    def __init__(
        self,
        command: str,
        key: str,
        offset: int = 0,
        *,
        epoch: int | None = None,
        count: int = 100,
        block: float | None = 5.0,
        retries: int = 30,
        backoff: Callable[[int], float] = lambda n: min(2.0, 0.05 * 2**n),
    ) -> None:
        if offset < 0 or count <= 0:
            raise ValueError("offset must be >= 0 and count > 0")
        self.command = command
        self.key = key
        self.offset = offset
        self.epoch = epoch
        self.count = count
        self.block = block
        self.retries = retries
        self.backoff = backoff
        self.done = False

    def _args(self) -> tuple[Any, ...]:
        args: tuple[Any, ...] = (self.command, self.key, "FROM", self.offset, "COUNT", self.count)
        if self.block is not None:
            args += ("BLOCK", ms(self.block) or 1)
        if self.epoch is not None and self.command == STREAM_READ:
            args += ("EPOCH", self.epoch)
        return args

    def step(self) -> Op[list[tuple[int, bytes]]]:
        """One read: the entries it brought (maybe none, after a BLOCK that ran out); ``done`` once closed."""
        attempt = 0
        while True:
            try:
                batch = yield Cmd(self._args(), parse_batch)
                break
            except ConnectionError:
                if attempt >= self.retries:
                    raise
                yield Sleep(self.backoff(attempt))
                attempt += 1
        if batch is None:
            return []
        if batch.epoch is not None:
            self.epoch = batch.epoch
        entries = [e for e in batch.entries if e[0] >= self.offset]
        if entries:
            self.offset = entries[-1][0] + 1
        self.offset = max(self.offset, batch.next)
        self.done = batch.closed
        return entries


def decode_entries(codec: Codec, entries: list[tuple[int, bytes]]) -> list[Any]:
    return [codec.decode(data) for _, data in entries]


# ---------------------------------------------------------------------------------------------------------
# Events (blackboard), messages (MSG.*), streams (STREAM.*)


def set_event(codec: Codec, workflow_id: str, key: str, value: Any) -> Cmd[int]:
    return Cmd(("BB.SET", workflow_id, key, codec.encode(value)), int)


def get_event(codec: Codec, workflow_id: str, key: str, timeout: float | None) -> Cmd[Any]:
    def parse(reply: Any) -> Any:
        return None if reply is None else codec.decode(as_map(reply)["value"])

    if timeout == 0:
        return Cmd(("BB.GET", workflow_id, key), parse)
    return Cmd(("BB.WAIT", workflow_id, key, "TIMEOUT", ms(timeout)), parse)


def get_all_events(codec: Codec, workflow_id: str) -> Cmd[dict[str, Any]]:
    def parse(reply: Any) -> dict[str, Any]:
        return {text(e["key"]): codec.decode(e["value"]) for e in map(as_map, as_list(as_map(reply).get("entries")))}

    return Cmd(("BB.GETALL", workflow_id), parse)


def send(codec: Codec, destination: str, message: Any, topic: str | None, idempotency_key: str | None) -> Cmd[int]:
    args: tuple[Any, ...] = ("MSG.SEND", destination, topic_arg(topic), codec.encode(message))
    if idempotency_key is not None:
        args += ("IDEMPOTENCY", idempotency_key)
    return Cmd(args, int)


def recv_raw(destination: str, topic: str | None, timeout: float | None) -> Cmd[Any]:
    """MSG.RECV as the broker answers: nil, a plain message's payload, or a request's map (``payload``,
    ``reply_to``)."""
    args: tuple[Any, ...] = ("MSG.RECV", destination, topic_arg(topic))
    if timeout != 0:
        args += ("TIMEOUT", ms(timeout))
    return Cmd(args)


def recv(codec: Codec, destination: str, topic: str | None, timeout: float | None) -> Cmd[Any]:
    """The next message's value (a request's payload, when a request comes: DBOS's ``recv`` does not reply)."""

    def parse(r: Any) -> Any:
        if r is None:
            return None
        return codec.decode(as_map(r)["payload"] if isinstance(r, (dict, list, tuple)) else r)

    return Cmd(recv_raw(destination, topic, timeout).args, parse)


def write_stream(codec: Codec, name: str, value: Any) -> Cmd[int]:
    return Cmd(("STREAM.WRITE", name, codec.encode(value)), int)


def close_stream(name: str) -> Cmd[bool]:
    return Cmd(("STREAM.CLOSE", name), lambda r: int(r) == 1)
