# KayGraph "Pipeline": stage1 >> stage2 >> stage3 >> output. expect: output: [2, 4, 6] (sum 12)
from typing import Any

from herald import Dispatcher, Worker

stages = {
    "stage1": lambda job: [int(x) for x in job.payload.split(",")],
    "stage2": lambda job: [x * 2 for x in job.payload],
    "stage3": lambda job: {"values": job.payload, "sum": sum(job.payload)},
}
d = Dispatcher()
data: Any = "1,2,3"
for queue, handler in stages.items():  # each stage a queue with its worker; results flow on
    job_id = d.submit(queue, data)
    Worker(queue, handler).run(max_jobs=1)
    data = d.result(job_id, timeout=10)
print(f"output: {data['values']} (sum {data['sum']})")
