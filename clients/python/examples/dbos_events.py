# DBOS "Publishing Events" + client get_event / get_all_events. expect: progress 100, all: {'progress': 100, 'result': {'data': '...'}, 'status': 'done'}
import threading

import herald

client = herald.connect()


def my_workflow(wf: herald.Workflow):
    wf.set_event("status", "processing")
    wf.set_event("progress", 50)
    wf.set_event("result", {"data": "..."})
    wf.set_event("progress", 100)
    wf.set_event("status", "done")


threading.Thread(target=my_workflow, args=[client.workflow("my-wf-1")]).start()
client.get_event("my-wf-1", "status", timeout_seconds=5)  # blocks until set
while client.get_event("my-wf-1", "status", timeout_seconds=5) != "done":
    pass
print("progress", client.get_event("my-wf-1", "progress", timeout_seconds=5), end=", ")
print("all:", dict(sorted(client.get_all_events("my-wf-1").items())))
