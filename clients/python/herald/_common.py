"""What the sync and asyncio clients share besides the command core: settings, connection options and the
reconnect schedule."""

from __future__ import annotations

import logging
import os
import random
from typing import Any, Callable

from .codec import Codec, JsonCodec
from .errors import HeraldError

log = logging.getLogger("herald")

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def resolve_url(url: str | None) -> str:
    """``url``, else ``$HERALD_URL``, else the broker's default port on this machine."""
    return url or os.environ.get("HERALD_URL") or DEFAULT_URL


class Settings:
    """Options common to both clients."""

    def __init__(
        self,
        codec: Codec | None,
        on_error: Callable[[BaseException], Any] | None,
        subscribe_timeout: float,
        reconnect_delay: tuple[float, float],
        ping_interval: float,
    ) -> None:
        if subscribe_timeout <= 0:
            raise ValueError("subscribe_timeout must be positive")
        self.codec: Codec = codec if codec is not None else JsonCodec()
        self.on_error = on_error
        self.subscribe_timeout = subscribe_timeout
        self.reconnect_delay = reconnect_delay
        self.ping_interval = ping_interval

    def backoff(self, attempt: int) -> float:
        """The wait before reconnect attempt ``attempt`` (0-based): exponential, capped, with jitter."""
        first, cap = self.reconnect_delay
        delay = min(cap, first * (2**min(attempt, 20)))
        return float(delay * (1 - random.random() * 0.5))

    def report(self, error: BaseException) -> None:
        """An error nobody called for (a callback that raised, a reconnect): to ``on_error``, else logged."""
        if self.on_error is not None:
            try:
                self.on_error(error)
                return
            except Exception:  # pragma: no cover - a broken error handler
                log.exception("the on_error handler raised")
        if isinstance(error, HeraldError) and error.code == "CONNECTION":
            log.warning("herald listener: %s", error)
        else:
            log.error("herald callback or listener error", exc_info=error)


def listener_connection(pool: Any) -> Any:
    """A new connection with the pool's settings (address, credentials, database, TLS, protocol), not
    counted in the pool: the listener's own."""
    kwargs = dict(pool.connection_kwargs)
    return pool.connection_class(**kwargs)
