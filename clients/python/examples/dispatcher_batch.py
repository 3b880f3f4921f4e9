# Dachi "Batch Processing Pattern". expect: Completed 4 requests
from herald import Dispatcher

dispatcher = Dispatcher(max_concurrent_requests=2)


def openai_proc(msg):
    return {"content": f"answer to: {msg['content']}"}


messages = [
    {"content": "Summarize the benefits of renewable energy"},
    {"content": "Explain the water cycle"},
    {"content": "Describe photosynthesis process"},
    {"content": "What causes earthquakes?"},
]

request_ids = [dispatcher.submit_proc(openai_proc, msg, callback_id=f"batch_{i}") for i, msg in enumerate(messages)]

completed_results = [(req_id, result) for req_id, result, status in dispatcher.as_completed(request_ids, timeout=60)]

print(f"Completed {len(completed_results)} requests")
dispatcher.close()
