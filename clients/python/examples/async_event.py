# async-primitives "asyncio.Event": graceful shutdown. expect: worked, then shut down
import asyncio

from herald.aio import Event


class AgentService:
    def __init__(self):
        self.shutdown_event = Event("shutdown")  # shared by every process

    async def run(self):
        """Main service loop."""
        while not await self.shutdown_event.is_set():
            await asyncio.sleep(0.01)  # await self.process_next_task()
            await self.shutdown_event.wait(timeout=0.1)  # Check shutdown between tasks

    async def shutdown(self):
        """Signal all waiters to stop."""
        await self.shutdown_event.set()


async def main():
    service = AgentService()
    task = asyncio.create_task(service.run())
    await service.shutdown()
    await task
    print("worked, then shut down")


asyncio.run(main())
