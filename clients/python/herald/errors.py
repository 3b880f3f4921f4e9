"""Typed exceptions, one per Herald error code.

The broker's error reply starts with its code (``CONFLICT the key is at revision 3``); each code has its own
class here, all subclasses of :class:`HeraldError`, whose ``code`` and ``message`` attributes carry the two
parts. Codes without a class of their own (``ERR``, and any new one) raise a plain :class:`HeraldError`.
"""

from __future__ import annotations

import builtins
import re
from typing import ClassVar

import redis.exceptions as rexc

__all__ = [
    "HeraldError",
    "ConflictError",
    "LeaseError",
    "CancelledError",
    "JobDeadError",
    "JobFailedError",
    "NoJobError",
    "NoItemError",
    "TimeoutError",
    "FullError",
    "ClosedError",
    "TrimmedError",
    "StaleError",
    "LostError",
    "NoPermError",
    "NoAuthError",
    "WrongPassError",
    "WrongTypeError",
    "ExecAbortError",
    "LaggedError",
    "ConnectionError",
    "error_class",
    "from_redis",
]


class HeraldError(Exception):
    """An error reply from the broker (or a client-side failure with one of the same codes)."""

    default_code: ClassVar[str] = "ERR"

    def __init__(self, message: str = "", code: str | None = None) -> None:
        self.code = code or self.default_code
        self.message = message
        super().__init__(f"{self.code} {message}".strip())


class ConflictError(HeraldError):
    """``CONFLICT``: a compare-and-set lost; ``revision`` is the key's current revision (0: absent)."""

    default_code = "CONFLICT"

    @property
    def revision(self) -> int | None:
        m = re.search(r"at revision (\d+)", self.message)
        return int(m.group(1)) if m else None


class LeaseError(HeraldError):
    """``LEASE``: the lease token is stale (it ran out, or the job / item moved on)."""

    default_code = "LEASE"


class CancelledError(HeraldError):
    """``CANCELLED``: the job was cancelled (reported to its worker and to whoever waits for its result)."""

    default_code = "CANCELLED"


class JobDeadError(HeraldError):
    """``JOBDEAD``: the job ran out of attempts (it is on the queue's dead-letter list)."""

    default_code = "JOBDEAD"


class JobFailedError(HeraldError):
    """``JOBFAILED``: the job failed without retry."""

    default_code = "JOBFAILED"


class NoJobError(HeraldError):
    """``NOJOB``: no such job (never submitted, or its result expired)."""

    default_code = "NOJOB"


class NoItemError(HeraldError):
    """``NOITEM``: no such bulletin item."""

    default_code = "NOITEM"


class TimeoutError(HeraldError, builtins.TimeoutError):
    """``TIMEOUT``: a wait ran out (from the broker, or from this client's own timeout)."""

    default_code = "TIMEOUT"


class FullError(HeraldError):
    """``FULL``: a bounded board, mailbox or job table refused the write."""

    default_code = "FULL"


class ClosedError(HeraldError):
    """``CLOSED``: the stream is closed."""

    default_code = "CLOSED"


class TrimmedError(HeraldError):
    """``TRIMMED``: the offset is no longer retained; ``oldest`` is the first one that is."""

    default_code = "TRIMMED"

    @property
    def oldest(self) -> int | None:
        m = re.search(r"oldest retained offset is (\d+)", self.message)
        return int(m.group(1)) if m else None


class StaleError(HeraldError):
    """``STALE``: the stream was deleted and re-created since the epoch the reader saw."""

    default_code = "STALE"


class LostError(HeraldError):
    """``LOST``: the blackboard journal no longer reaches back to the last seen change: re-read the scope."""

    default_code = "LOST"


class NoPermError(HeraldError):
    """``NOPERM``: the user may not run this command or touch this scope."""

    default_code = "NOPERM"


class NoAuthError(HeraldError):
    """``NOAUTH``: authentication required."""

    default_code = "NOAUTH"


class WrongPassError(HeraldError):
    """``WRONGPASS``: the credentials were refused."""

    default_code = "WRONGPASS"


class WrongTypeError(HeraldError):
    """``WRONGTYPE``: the key holds another kind of value."""

    default_code = "WRONGTYPE"


class ExecAbortError(HeraldError):
    """``EXECABORT``: a transaction was refused while queueing."""

    default_code = "EXECABORT"


class LaggedError(HeraldError):
    """A receiver fell behind and ``count`` signals were dropped for it (tokio's ``RecvError::Lagged``)."""

    default_code = "LAGGED"

    def __init__(self, count: int) -> None:
        self.count = count
        super().__init__(f"{count} signals were dropped for this receiver")


class ConnectionError(HeraldError, builtins.ConnectionError):
    """The broker could not be reached, or the connection dropped while a command was in flight."""

    default_code = "CONNECTION"


_CLASSES: dict[str, type[HeraldError]] = {
    cls.default_code: cls
    for cls in (
        ConflictError,
        LeaseError,
        CancelledError,
        JobDeadError,
        JobFailedError,
        NoJobError,
        NoItemError,
        TimeoutError,
        FullError,
        ClosedError,
        TrimmedError,
        StaleError,
        LostError,
        NoPermError,
        NoAuthError,
        WrongPassError,
        WrongTypeError,
        ExecAbortError,
    )
}

# redis-py strips these codes from the message and raises its own classes for them.
_REDIS_CLASSES: list[tuple[type[Exception], str]] = [
    (rexc.NoPermissionError, "NOPERM"),
    (rexc.ExecAbortError, "EXECABORT"),
    (rexc.AuthenticationError, "WRONGPASS"),
]
_CODE = re.compile(r"[A-Z][A-Z0-9_]+")


def error_class(code: str) -> type[HeraldError]:
    """The exception class for an error code (``HeraldError`` for codes without one of their own)."""
    return _CLASSES.get(code, HeraldError)


def _split(exc: rexc.RedisError) -> tuple[str, str]:
    text = str(exc)
    code = getattr(exc, "status_code", None)  # redis-py >= 7 keeps the code it stripped or saw
    if isinstance(code, str) and code:
        if text.startswith(code + " "):
            text = text[len(code) + 1 :]
        return code, text
    for cls, name in _REDIS_CLASSES:
        if isinstance(exc, cls):
            if "NOAUTH" in text or "Authentication required" in text:
                return "NOAUTH", text
            return name, text
    first, _, rest = text.partition(" ")
    if first in _CLASSES or (_CODE.fullmatch(first) and first not in ("ERR",) and first.isupper() and len(first) > 2):
        return first, rest
    return "ERR", text


def from_redis(exc: BaseException) -> BaseException:
    """Turns a redis-py exception into this module's: error replies by code, connection failures as
    :class:`ConnectionError`. Anything else is returned as it is."""
    if isinstance(exc, HeraldError):
        return exc
    if isinstance(exc, (rexc.ConnectionError, rexc.TimeoutError)) and not isinstance(exc, rexc.AuthenticationError):
        return ConnectionError(str(exc) or type(exc).__name__)
    if isinstance(exc, rexc.RedisError):
        code, message = _split(exc)
        return error_class(code)(message, code)
    return exc
