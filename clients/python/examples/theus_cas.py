# Theus "Compare-and-Swap (Optimistic Locking)", four threads at once. expect: counter = 40
from concurrent.futures import ThreadPoolExecutor

from herald import Blackboard, ConflictError

state = Blackboard(scope="engine")
state.set("counter", 0)


def increment(_):
    while True:
        current = state.get_entry("counter")  # Read current version and value
        try:
            state.compare_and_set("counter", current.value + 1, current.revision)  # Try to update
            break  # Success
        except ConflictError:
            continue  # Retry


list(ThreadPoolExecutor(4).map(increment, range(40)))
print("counter =", state.get("counter"))
