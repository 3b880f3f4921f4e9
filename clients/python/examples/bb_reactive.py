# Dachi "Reactive Pattern with Callbacks". expect: Cache expired: cache_user_data
import time

from herald import Blackboard, BlackboardEventType

bb = Blackboard()


def on_config_change(key, value, event_type):
    print(f"Configuration changed: {key} = {value}")


def on_cache_expire(key, value, event_type):
    print(f"Cache expired: {key} (it held {value})")


bb.register_callback("config", on_config_change, events={BlackboardEventType.ON_SET})
bb.register_callback("cache_*", on_cache_expire, events={BlackboardEventType.ON_EXPIRE})

bb.set("config", {"model": "gpt-3.5-turbo"})  # Triggers callback

bb.set_with_ttl("cache_user_data", {"id": 123}, ttl_seconds=1)
time.sleep(2)  # Callback fires when data expires
