# KayGraph "Request-Response". expect: response: PROCESS THIS
import threading
import uuid

import herald

herald.connect()


def server_node():  # answers one request
    req = herald.next_request("server", timeout=10)
    herald.reply(req, {"request_id": req.body["request_id"], "answer": req.body["query"].upper()})


threading.Thread(target=server_node).start()
request = {"request_id": str(uuid.uuid4()), "query": "process this"}
response = herald.request("server", request, timeout=10)  # waits for the reply (MSG.REQUEST)
print("response:", response["answer"])
