"""The asyncio flavour under the seeds' names: ``from herald.aio import Blackboard, Bulletin, Dispatcher``."""

from ._aclient import AsyncFeed as Feed
from ._aclient import AsyncHerald
from ._aclient import AsyncHerald as Herald
from ._aclient import AsyncWorkflow as Workflow
from ._aclient import connect, default_client
from .blackboard import AsyncBlackboard as Blackboard
from .blackboard import BlackboardEventType, Change, Changes, Entry, Snapshot

__all__ = [
    "AsyncHerald",
    "Herald",
    "connect",
    "default_client",
    "Feed",
    "Workflow",
    "Blackboard",
    "BlackboardEventType",
    "Entry",
    "Change",
    "Changes",
    "Snapshot",
]
