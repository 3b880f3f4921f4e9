# KayGraph bounded "message_queue" with overflow_policy. expect: drop_oldest kept [2, 3, 4]; reject_new refused
from herald import Bulletin, FullError

drop = Bulletin[dict]("mq_drop", maxlen=3, overflow="drop-oldest")
reject = Bulletin[dict]("mq_reject", maxlen=3, overflow="reject-new")
refused = False
for i in range(5):
    drop.publish({"n": i})
    try:
        reject.publish({"n": i})
    except FullError:
        refused = True
print("drop_oldest kept", [m["n"] for m in drop.retrieve_all()], end="; ")
print("reject_new refused" if refused else "reject_new took all")
