# DBOS "Approval Gate" (async workflow, recv_async). expect: order 7 fulfilled / order 8 cancelled
import asyncio

import herald.aio as herald

client = herald.connect()


async def approval_workflow(order_id):
    wf = client.workflow(f"order-{order_id}")
    approval = await wf.recv_async(topic="approval", timeout_seconds=1)  # wait for manager approval
    if approval and approval.get("approved"):
        return f"order {order_id} fulfilled"
    return f"order {order_id} cancelled"


async def main():
    await client.send("order-7", {"approved": True}, topic="approval")  # the manager approves 7 only
    print(" / ".join(await asyncio.gather(approval_workflow(7), approval_workflow(8))))


asyncio.run(main())
