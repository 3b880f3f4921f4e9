"""Herald's Python client: the seeds' Blackboard, Bulletin, AsyncDispatcher, workflow communication and
distributed primitives over the network, on redis-py. Blocking classes here; asyncio ones in ``herald.aio``."""

from .blackboard import Blackboard, BlackboardEventType, Change, Changes, Entry, Snapshot
from .client import Feed, Herald, Subscription, Workflow, connect, default_client
from .codec import Codec, JsonCodec, RawCodec, TypedCodec
from .errors import *  # noqa: F403
from .errors import __all__ as _errors

__all__ = [
    "Herald",
    "connect",
    "default_client",
    "Subscription",
    "Feed",
    "Workflow",
    "Blackboard",
    "BlackboardEventType",
    "Entry",
    "Change",
    "Changes",
    "Snapshot",
    "Codec",
    "JsonCodec",
    "RawCodec",
    "TypedCodec",
    *_errors,
]
