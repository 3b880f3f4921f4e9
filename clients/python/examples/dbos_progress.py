# DBOS "Multi-stage Process with Progress" and "Live Progress Updates". expect: item 3/3 (c) / stage load 100%
import asyncio

import herald.aio as herald

client = herald.connect()


async def data_pipeline(wf):
    stages = ["extract", "transform", "load"]
    for i, stage in enumerate(stages):
        await wf.set_event("stage", stage)
        await wf.set_event("progress", int((i + 1) / len(stages) * 100))


async def batch_processor(wf, items):
    for i, item in enumerate(items):
        await wf.write_stream("progress", {"item": i + 1, "total": len(items), "item_id": item})
    await wf.close_stream("progress")


async def main():
    wf = client.workflow("batch-1")
    await asyncio.gather(data_pipeline(wf), batch_processor(wf, ["a", "b", "c"]))
    async for p in client.read_stream("batch-1", "progress"):
        last = p
    stage, pct = await client.get_event("batch-1", "stage"), await client.get_event("batch-1", "progress")
    print(f"item {last['item']}/{last['total']} ({last['item_id']}) / stage {stage} {pct}%")


asyncio.run(main())
