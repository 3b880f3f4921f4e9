# DBOS "Receiving Messages" + client send. expect: workflow got {'approved': True}: proceeding
import threading

import herald

client = herald.connect()


def my_workflow(wf: herald.Workflow):
    message = wf.recv(topic="notification", timeout_seconds=60)  # waits for the external notification
    if message and message.get("approved"):
        print(f"workflow got {message}: proceeding")


t = threading.Thread(target=my_workflow, args=[client.workflow("my-wf-2")])
t.start()
client.send("my-wf-2", {"approved": True}, topic="notification")
t.join()
