# async-primitives "asyncio.Future": HITL approval with a timeout. expect: approval-1 {'approved': True} / approval-2 {'status': 'timeout', 'approved': False}
import asyncio

from herald import TimeoutError
from herald.aio import Future


class ApprovalBridge:
    async def request_approval(self, approval_id: str, timeout: float = 300.0) -> dict:
        """Request approval and wait for response (from any process)."""
        try:
            return await Future(approval_id).result(timeout)
        except TimeoutError:
            return {"status": "timeout", "approved": False}

    async def resolve_approval(self, approval_id: str, result: dict):
        """Resolve a pending approval (False if it was already resolved)."""
        await Future(approval_id).set_result(result)


async def main():
    bridge = ApprovalBridge()
    asyncio.get_running_loop().call_later(0.1, lambda: asyncio.ensure_future(bridge.resolve_approval("approval-1", {"approved": True})))
    first = await bridge.request_approval("approval-1", timeout=10)
    second = await bridge.request_approval("approval-2", timeout=0.2)
    print("approval-1", first, "/ approval-2", second)


asyncio.run(main())
