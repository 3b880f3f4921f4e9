# Dachi "Callback Pattern". expect: completed: {'content': 'HELLO'}
import threading

from herald import Dispatcher, RequestStatus

dispatcher = Dispatcher()
finished = threading.Event()


def openai_proc(message):
    return {"content": message["content"].upper()}


def on_completion(request_id: str, result, status: RequestStatus):
    if status == RequestStatus.DONE:
        print(f"Request {request_id} completed: {result}")
    elif status == RequestStatus.ERROR:
        print(f"Request {request_id} failed: {result}")
    finished.set()


request_id = dispatcher.submit_proc(openai_proc, {"content": "hello"}, callback=on_completion, callback_id="async_task")
finished.wait(30)  # Continue with other work...
dispatcher.close()
