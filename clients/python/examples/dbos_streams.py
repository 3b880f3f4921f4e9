# DBOS "Streaming Updates" + client read_stream. expect: Done!
import threading

import herald

client = herald.connect()


def my_workflow(wf: herald.Workflow):
    wf.write_stream("logs", {"msg": "Starting..."})
    wf.write_stream("logs", {"msg": "Processing..."})
    wf.write_stream("logs", {"msg": "Done!"})
    wf.close_stream("logs")


threading.Thread(target=my_workflow, args=[client.workflow("my-wf-3")]).start()
for msg in client.read_stream("my-wf-3", "logs"):  # follows live, ends at the close
    print(msg["msg"])
