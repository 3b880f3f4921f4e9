# Dachi "Bulletin: Basic Message Passing". expect: posted result for task_001: completed
from typing import Any

from pydantic import BaseModel

from herald import Bulletin


class TaskRequest(BaseModel):
    task_id: str
    action: str
    params: dict


class TaskResult(BaseModel):
    task_id: str
    status: str
    result: Any


requests = Bulletin[TaskRequest]()
results = Bulletin[TaskResult]()

request = TaskRequest(task_id="task_001", action="process_data", params={"file": "data.csv", "method": "analyze"})
requests.publish(request)

pending_request = requests.retrieve_first(filters={"action": "process_data"})
if pending_request:
    result = TaskResult(task_id=pending_request.task_id, status="completed", result={"summary": "Data analyzed successfully"})
    results.publish(result)

posted = results.retrieve_first(filters={"task_id": "task_001"})
assert posted is not None
print(f"posted result for {posted.task_id}: {posted.status}")
