# Dachi "TTL Pattern". expect: Token still valid: abc123 / cache after expiry: None
import time

from herald import Blackboard

bb = Blackboard()
bb.set_with_ttl("temp_token", "abc123", ttl_seconds=300)  # Expires in 5 minutes
bb.set_with_ttl("cache_result", {"data": [1, 2, 3]}, ttl_seconds=1)

if bb.has("temp_token"):
    token = bb.get("temp_token")
    print(f"Token still valid: {token}", end=" / ")
else:
    print("Token has expired")

time.sleep(1.5)
print("cache after expiry:", bb.get("cache_result"))  # None (expired)
