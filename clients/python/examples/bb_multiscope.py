# Dachi "Multi-Scope Pattern". expect: analyze_data generate_report {'debug': True} / Agent 001 has 1 items stored
from herald import Blackboard

bb = Blackboard()
bb.set("current_task", "analyze_data", scope="agent_001")
bb.set("current_task", "generate_report", scope="agent_002")
bb.set("shared_config", {"debug": True})  # No scope = global

task_001 = bb.get("current_task", scope="agent_001")  # "analyze_data"
task_002 = bb.get("current_task", scope="agent_002")  # "generate_report"
config = bb.get("shared_config")  # Available to all agents

stats = bb.get_stats(scope="agent_001")
print(task_001, task_002, config, f"/ Agent 001 has {stats['count']} items stored")
