# Dachi "Event-Driven Communication". expect: New task request: task_002
import time

from pydantic import BaseModel

from herald import Bulletin, BulletinEventType


class TaskRequest(BaseModel):
    task_id: str
    action: str
    params: dict


class TaskResult(BaseModel):
    task_id: str
    status: str


requests, results = Bulletin[TaskRequest](), Bulletin[TaskResult]()


def on_new_request(item: TaskRequest, event_type: BulletinEventType):
    print(f"New task request: {item.task_id}")


def on_task_complete(item: TaskResult, event_type: BulletinEventType):
    if item.status == "completed":
        print(f"Task {item.task_id} completed successfully")


requests.register_callback(on_new_request, events={BulletinEventType.ON_PUBLISH})
results.register_callback(on_task_complete, events={BulletinEventType.ON_PUBLISH})

requests.publish(TaskRequest(task_id="task_002", action="backup", params={}))
results.publish(TaskResult(task_id="task_002", status="completed"))
time.sleep(0.5)  # callbacks run on the client's listener thread
