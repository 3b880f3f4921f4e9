"""Runs every example against a broker of its own (so examples that share names cannot meet) and checks the
output its header promises (``expect: ...``), and that it is no longer than the seed snippet it ports:
lines of code, not counting imports, blank lines and comments. The budget is the seed snippet's own count,
plus the definitions it takes from an earlier snippet of the same seed (its models, its ``dispatcher``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import Broker

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# example: (seed snippet(s), lines in the seed's snippet, lines it presupposes from an earlier snippet)
BUDGETS: dict[str, tuple[str, int, int]] = {
    "bb_basic.py": ("dachi: Basic Usage", 8, 0),
    "bb_ttl.py": ("dachi: TTL Pattern", 10, 0),
    "bb_reactive.py": ("dachi: Reactive Pattern with Callbacks", 10, 1),  # bb = Blackboard()
    "bb_multiscope.py": ("dachi: Multi-Scope Pattern", 8, 1),  # bb = Blackboard()
    "bulletin_basic.py": ("dachi: Basic Message Passing", 26, 0),
    "bulletin_work_queue.py": ("dachi: Work Queue Pattern", 27, 2),  # requests, results
    "bulletin_events.py": ("dachi: Event-Driven Communication", 9, 10),  # the two models, the two bulletins
    "bulletin_scoped.py": ("dachi: Scoped Communication", 8, 4),  # the TaskRequest model
    "dispatcher_basic.py": ("dachi: Basic Request Submission", 19, 0),
    "dispatcher_callback.py": ("dachi: Callback Pattern", 12, 4),  # dispatcher, openai_proc, message
    "dispatcher_streaming.py": ("dachi: Streaming Pattern", 11, 4),
    "dispatcher_batch.py": ("dachi: Batch Processing Pattern", 20, 3),
    "dispatcher_behavior_tree.py": ("dachi: Integration with Behavior Trees", 25, 0),
    "kg_producer_consumer.py": ("kaygraph: 1. Producer-Consumer", 8, 1),  # the shared store
    "kg_pubsub.py": ("kaygraph: 2. Publish-Subscribe + Event Bus", 13, 0),
    "kg_request_response.py": ("kaygraph: 3. Request-Response", 7, 1),
    "kg_pipeline.py": ("kaygraph: 4. Pipeline + theus: Solution: Pipeline Pattern", 1 + 19, 0),
    "kg_fan_out_in.py": ("kaygraph: 5. Fan-Out/Fan-In (diagram) + 1. Message Queue", 10, 0),
    "kg_bounded_queue.py": ("kaygraph: Configuration (message_queue overflow_policy)", 15, 0),
    "kg_retry_backoff.py": ("kaygraph: 1. Reliable Delivery + Configuration (retry)", 11, 0),
    "theus_signal_hub.py": ("theus: SignalHub Basic Usage + Async Usage + Multiple Receivers", 23, 0),
    "theus_backpressure.py": ("theus: SignalHub Basic Usage + Multiple Receivers (lag detection)", 12, 0),
    "theus_cas.py": ("theus: 7. Compare-and-Swap", 13, 1),  # engine
    "theus_outbox.py": ("theus: 8. Outbox Pattern", 14, 0),
    "async_event.py": ("async-primitives: Example: Graceful Shutdown", 18, 0),
    "async_future.py": ("async-primitives: Example: HITL Approval", 23, 0),
    "async_queue.py": ("async-primitives: Example: Task Distribution", 15, 0),
    "async_semaphore.py": ("async-primitives: Example: Parallel Health Checks", 12, 0),
    "dbos_events.py": ("dbos: Pattern 1 + Python Client Usage", 5 + 10, 0),
    "dbos_messages.py": ("dbos: Pattern 2 + Python Client Usage", 5 + 10, 0),
    "dbos_streams.py": ("dbos: Pattern 3 + Python Client Usage", 6 + 10, 0),
    "dbos_approval.py": ("dbos: Pattern: Approval Gate + recv_async", 8 + 6, 0),
    "dbos_progress.py": ("dbos: Multi-stage Process with Progress + Live Progress Updates", 7 + 11, 0),
    "token_stream.py": ("dbos: Pattern 3: Streaming Updates (LLM token streaming)", 6, 0),
}


def code_lines(path: Path) -> int:
    lines = path.read_text().splitlines()
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#") and not re.match(r"(from \S+ )?import ", line))


def test_every_example_has_a_budget() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(BUDGETS)


@pytest.mark.parametrize("example", sorted(BUDGETS))
def test_example_is_no_longer_than_the_seed(example: str) -> None:
    seed, lines, presupposed = BUDGETS[example]
    assert code_lines(EXAMPLES / example) <= lines + presupposed, f"{example} is longer than {seed}"


def run_example(example: str) -> tuple[str, int, str]:
    broker = Broker()
    try:
        env = dict(os.environ, HERALD_URL=broker.url(3), PYTHONUNBUFFERED="1")
        proc = subprocess.run([sys.executable, str(EXAMPLES / example)], env=env, capture_output=True, text=True, timeout=120)
        return example, proc.returncode, proc.stdout + proc.stderr
    finally:
        broker.stop()


def test_examples_run_against_a_live_broker() -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run_example, sorted(BUDGETS)))
    failures = []
    for example, code, output in results:
        expect = re.search(r"expect: (.*)$", (EXAMPLES / example).read_text().splitlines()[0])
        assert expect, f"{example}: the first line says what it prints (expect: ...)"
        if code != 0 or expect.group(1).strip() not in output:
            failures.append(f"--- {example} (exit {code}), expected {expect.group(1)!r}:\n{output}")
    assert not failures, "\n".join(failures)
