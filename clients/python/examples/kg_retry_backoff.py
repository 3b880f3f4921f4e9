# KayGraph "retry": max_attempts 3, exponential backoff. expect: result after 3 attempts: ok
from herald import Backoff, Dispatcher, Worker


def flaky(job):  # fails twice, then succeeds
    if job.attempt < 3:
        raise ConnectionError(f"attempt {job.attempt} failed")
    return "ok"


d = Dispatcher()
job_id = d.submit("calls", {"url": "https://example.invalid"}, attempts=3, backoff=Backoff("exponential", 0.05, jitter=True))
Worker("calls", flaky).run(max_jobs=3, idle_timeout=10)
info = d.info(job_id)
assert info is not None
print(f"result after {info.attempt} attempts: {d.result(job_id, timeout=10)}")
