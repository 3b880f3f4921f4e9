"""Herald's Python client: the seeds' Blackboard, Bulletin, AsyncDispatcher, workflow communication and
distributed primitives over the network, on redis-py. Blocking classes here; asyncio ones in ``herald.aio``."""

from .blackboard import Blackboard, BlackboardEventType, Change, Changes, Entry, Snapshot
from .bulletin import Bulletin, BulletinEventType, Overflow, Posting
from .client import Feed, Herald, Subscription, Workflow, connect, default_client
from .codec import Codec, JsonCodec, RawCodec, TypedCodec
from .dispatcher import Backoff, Dispatcher, Job, JobInfo, RequestStatus, Worker
from .errors import *  # noqa: F403
from .errors import __all__ as _errors
from .primitives import (
    Event,
    Future,
    FutureError,
    Queue,
    QueueEmpty,
    Request,
    Semaphore,
    Signal,
    SignalHub,
    SignalReceiver,
    next_request,
    reply,
    request,
)

AsyncDispatcher = Dispatcher  # the seeds' name; the asyncio one is herald.aio.AsyncDispatcher

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
    "Bulletin",
    "BulletinEventType",
    "Overflow",
    "Posting",
    "Dispatcher",
    "AsyncDispatcher",
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
    "Codec",
    "JsonCodec",
    "RawCodec",
    "TypedCodec",
    *_errors,
]
