# async-primitives "asyncio.Semaphore": parallel health checks, at most 2 at once. expect: 5 agents checked
import asyncio

from herald.aio import Semaphore


class ParallelHealthChecker:
    def __init__(self, max_concurrent: int = 5):
        self.semaphore = Semaphore("health-checks", max_concurrent)  # across every process

    async def check_agent(self, agent_url: str) -> dict:
        async with self.semaphore:
            return {"url": agent_url, "ok": await asyncio.sleep(0.05, True)}  # self._do_health_check(...)

    async def check_all(self, agents: list) -> list:
        """Check all agents with limited concurrency."""
        return await asyncio.gather(*[self.check_agent(url) for url in agents])


results = asyncio.run(ParallelHealthChecker(max_concurrent=2).check_all([f"http://agent{i}" for i in range(5)]))
print(f"{len(results)} agents checked")
