# Dachi "Integration with Behavior Trees". expect: SUCCESS {'content': 'HELLO, AI!'}
import time
from enum import Enum

from herald import Dispatcher, RequestStatus


class TaskStatus(Enum):
    RUNNING, SUCCESS, FAILURE = range(3)


class AIRequestTask:
    def __init__(self, dispatcher: Dispatcher, processor, message):
        self.dispatcher, self.processor, self.message = dispatcher, processor, message
        self.request_id: str | None = None
        self.result = None

    def tick(self) -> TaskStatus:
        if self.request_id is None:
            self.request_id = self.dispatcher.submit_proc(self.processor, self.message)
            return TaskStatus.RUNNING
        status = self.dispatcher.status(self.request_id)
        if status == RequestStatus.DONE:
            self.result = self.dispatcher.result(self.request_id)
            return TaskStatus.SUCCESS
        elif status in (RequestStatus.ERROR, RequestStatus.DEAD, RequestStatus.CANCELLED):
            return TaskStatus.FAILURE
        return TaskStatus.RUNNING


dispatcher = Dispatcher()
ai_task = AIRequestTask(dispatcher, lambda m: {"content": m["content"].upper()}, {"content": "Hello, AI!"})
while (result := ai_task.tick()) == TaskStatus.RUNNING:  # ... continue ticking until SUCCESS or FAILURE
    time.sleep(0.05)
print(result.name, ai_task.result)
dispatcher.close()
