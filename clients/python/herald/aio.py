"""The asyncio flavour under the seeds' names: ``from herald.aio import Blackboard, Bulletin, Dispatcher``."""

from ._aclient import AsyncFeed as Feed
from ._aclient import AsyncHerald
from ._aclient import AsyncHerald as Herald
from ._aclient import AsyncWorkflow as Workflow
from ._aclient import connect, default_client
from .blackboard import AsyncBlackboard as Blackboard
from .blackboard import BlackboardEventType, Change, Changes, Entry, Snapshot
from .bulletin import AsyncBulletin as Bulletin
from .bulletin import BulletinEventType, Overflow, Posting
from .dispatcher import AsyncDispatcher
from .dispatcher import AsyncDispatcher as Dispatcher
from .dispatcher import AsyncJob as Job
from .dispatcher import AsyncWorker as Worker
from .dispatcher import Backoff, JobInfo, RequestStatus
from .primitives import AsyncEvent as Event
from .primitives import AsyncFuture as Future
from .primitives import AsyncQueue as Queue
from .primitives import AsyncSemaphore as Semaphore
from .primitives import AsyncSignalHub as SignalHub
from .primitives import AsyncSignalReceiver as SignalReceiver
from .primitives import FutureError, QueueEmpty, Request, Signal
from .primitives import anext_request as next_request
from .primitives import areply as reply
from .primitives import arequest as request

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
    "Bulletin",
    "BulletinEventType",
    "Overflow",
    "Posting",
    "AsyncDispatcher",
    "Dispatcher",
    "Worker",
    "Job",
    "JobInfo",
    "RequestStatus",
    "Backoff",
    "Event",
    "Future",
    "FutureError",
    "Queue",
    "QueueEmpty",
    "Semaphore",
    "SignalHub",
    "SignalReceiver",
    "Signal",
    "Request",
    "request",
    "next_request",
    "reply",
]
