# KayGraph "Fan-Out/Fan-In". expect: merged: 45
from herald import Dispatcher, Worker

d = Dispatcher()
workers = [Worker("split", lambda job: sum(job.payload)).start() for _ in range(3)]

chunks = [list(range(i, i + 5)) for i in range(0, 10, 5)]  # Splitter
ids = d.submit_many("split", chunks)
print("merged:", sum(d.wait_all(ids, timeout=30)))  # Merger

for w in workers:
    w.stop()
