# Dachi "Work Queue Pattern", three workers. expect: 6 tasks done
import threading
import time

from herald import Bulletin

requests, results = Bulletin[dict]("requests"), Bulletin[dict]("results")
for i in range(6):
    requests.publish({"task_id": f"task_{i}", "status": "pending"})


def worker_loop(worker_id: str):
    while True:
        task = requests.retrieve_first(filters={"status": "pending"}, lock_duration_seconds=60)
        if task is None:
            return  # the seed sleeps and polls; here the queue is drained
        try:
            print(f"Worker {worker_id} processing {task['task_id']}")
            time.sleep(0.05)  # Simulate work
            results.publish({"task_id": task["task_id"], "status": "completed", "processed_by": worker_id})
            requests.remove(task)
        except Exception as e:
            requests.release(task)  # another worker can try
            print(f"Task {task['task_id']} failed: {e}")


threads = [threading.Thread(target=worker_loop, args=[f"worker_{i}"]) for i in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
done = results.retrieve_all()
print(f"{len(done)} tasks done, by {sorted({r['processed_by'] for r in done})}")
