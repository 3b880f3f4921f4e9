# Dachi "Blackboard: Basic Usage". expect: Configuration is available
from herald import Blackboard

bb = Blackboard()

bb.set("config", {"model": "gpt-4", "temperature": 0.7})
bb.set("user_session", "user123", scope="session_001")

config = bb.get("config")  # Returns dict
session = bb.get("user_session", scope="session_001")  # Returns "user123"
assert config["model"] == "gpt-4" and session == "user123"

if bb.has("config"):
    print("Configuration is available")
