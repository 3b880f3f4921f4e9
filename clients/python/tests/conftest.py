"""Starts the broker built from this repository ($HERALD_BIN, default target/release/herald, else
target/debug/herald) on free ports for the test session, and gives each test clients over RESP2 and RESP3."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import herald
import herald.aio

ROOT = Path(__file__).resolve().parents[3]


def broker_binary() -> str:
    env = os.environ.get("HERALD_BIN")
    if env:
        return env
    for profile in ("release", "debug"):
        path = ROOT / "target" / profile / "herald"
        if path.exists():
            return str(path)
    raise RuntimeError("no broker binary: run 'cargo build --release --bin herald' or set HERALD_BIN")


class Broker:
    def __init__(self) -> None:
        # The broker reads HERALD_* variables as configuration: run it on its defaults.
        env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
        env["NO_COLOR"] = "1"
        self.proc = subprocess.Popen(
            [broker_binary(), "--port", "0", "--http-port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
        )
        self.log: list[str] = []
        ports: dict[str, int] = {}
        ready = threading.Event()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.log.append(line)
                m = re.search(r"listening for (RESP|WebSocket) on [^\s]*:(\d+)", line)
                if m:
                    ports[m.group(1)] = int(m.group(2))
                    if len(ports) == 2:
                        ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(30):
            self.proc.kill()
            raise RuntimeError("the broker did not report its ports:\n" + "".join(self.log))
        self.port = ports["RESP"]
        self.http_port = ports["WebSocket"]

    def url(self, protocol: int = 3) -> str:
        return f"redis://127.0.0.1:{self.port}/0?protocol={protocol}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    b = Broker()
    yield b
    b.stop()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request: pytest.FixtureRequest) -> int:
    return int(request.param)


class Errors(list[BaseException]):
    """What the client reported to on_error during the test."""


@pytest.fixture
def errors() -> Errors:
    return Errors()


@pytest.fixture
def client(broker: Broker, protocol: int, errors: Errors) -> Iterator[herald.Herald]:
    h = herald.Herald(broker.url(protocol), on_error=errors.append)
    yield h
    h.close()


@pytest.fixture
def aclient(broker: Broker, protocol: int, errors: Errors) -> Iterator[Callable[[], herald.aio.AsyncHerald]]:
    """A factory (an asyncio client must be created inside the test's event loop)."""
    made: list[herald.aio.AsyncHerald] = []

    def make() -> herald.aio.AsyncHerald:
        c = herald.aio.AsyncHerald(broker.url(protocol), on_error=errors.append)
        made.append(c)
        return c

    yield make


@pytest.fixture
def name() -> str:
    """A name no other test uses (queues, boards, scopes, keys)."""
    return "t" + uuid.uuid4().hex[:10]


def eventually(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Polls ``check`` until it returns something truthy (generous timeout; no timing assertions)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


async def aeventually(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def kill_listener(h: herald.Herald | herald.aio.AsyncHerald, port: int) -> int:
    """CLIENT KILLs the listener connection(s) of the broker: every connection with a pub-sub subscription."""
    import redis

    r = redis.Redis(port=port, protocol=2)
    killed = 0
    for line in r.execute_command("CLIENT", "LIST").decode().splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if int(fields.get("sub", 0)) + int(fields.get("psub", 0)) > 0:
            r.execute_command("CLIENT", "KILL", "ID", fields["id"])
            killed += 1
    r.close()
    return killed
