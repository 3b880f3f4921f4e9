# Dachi "AsyncDispatcher: Basic Request Submission". expect: AI Response: QUANTUM COMPUTING, SIMPLY
import time

from herald import Dispatcher

dispatcher = Dispatcher(max_concurrent_requests=5)


def openai_proc(message):  # stands in for OpenAIChat(model="gpt-4")
    return {"content": message["content"].upper()}


message = {"content": "quantum computing, simply"}
request_id = dispatcher.submit_proc(openai_proc, message, callback_id="explain_quantum")

while True:
    status = dispatcher.status(request_id)
    if status.is_complete():
        result = dispatcher.result(request_id)
        print(f"AI Response: {result['content']}")
        break
    time.sleep(0.1)
dispatcher.close()
