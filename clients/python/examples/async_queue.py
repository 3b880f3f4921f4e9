# async-primitives "asyncio.Queue": task distribution with backpressure. expect: processed t4
import asyncio

from herald.aio import Queue


class TaskDistributor:
    def __init__(self, max_pending: int = 100):
        self.queue = Queue("tasks", maxsize=max_pending)

    async def submit(self, task: dict):
        await self.queue.put(task)  # waits while the queue is full

    async def worker(self):
        while True:
            task = await self.queue.get()
            print("processed", task["id"])  # await self.process(task)
            await self.queue.task_done()


async def main(d=TaskDistributor(max_pending=2)):
    asyncio.create_task(d.worker())
    await asyncio.gather(*(d.submit({"id": f"t{i}"}) for i in range(5)))
    await d.queue.join(timeout=30)


asyncio.run(main())
