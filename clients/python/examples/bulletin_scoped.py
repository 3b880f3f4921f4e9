# Dachi "Scoped Communication". expect: agent_001 sees ['a1_task'], agent_002 sees ['a2_task']
from herald import Bulletin

agent_001_requests = Bulletin[dict]("TaskRequest", scope="agent_001")
agent_002_requests = Bulletin[dict]("TaskRequest", scope="agent_002")
global_announcements = Bulletin[dict]()  # No scope = global

agent_001_requests.publish({"task_id": "a1_task", "action": "analyze", "params": {}})
agent_002_requests.publish({"task_id": "a2_task", "action": "report", "params": {}})

a1_tasks = agent_001_requests.retrieve_all()  # Only a1_task
a2_tasks = agent_002_requests.retrieve_all()  # Only a2_task
print(f"agent_001 sees {[t['task_id'] for t in a1_tasks]}, agent_002 sees {[t['task_id'] for t in a2_tasks]}")

global_announcements.publish({"type": "system_maintenance", "message": "System will restart in 5 minutes"})
