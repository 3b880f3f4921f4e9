#!/usr/bin/env bash
# GET /metrics against the built binary, read by the Prometheus project's own Python parser
# (prometheus_client from PyPI, into target/metricsenv): every family parses, the figures follow
# redis-cli's commands, the latency histogram is well formed. broker/tests/metrics.rs checks the format
# strictly line by line; this proves a real consumer reads it.
set -euo pipefail
source "$(dirname "$0")/common.bash"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV="$ROOT/target/metricsenv"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -m pip install --quiet prometheus_client

start_herald
H="http://127.0.0.1:$(grep -o 'listening for WebSocket on [0-9.]*:[0-9]*' "$WORK/herald.log" | sed 's/.*://')"
for i in 1 2 3; do cli SET "k$i" v >/dev/null; done
cli JOB.SUBMIT render '{}' >/dev/null
cli HSET h f v >/dev/null
# Per-object gauges, one with a name the text format must escape.
cli BL.PUBLISH 'board "one"' '{"n":1}' >/dev/null
cli MSG.SEND worker-1 t hi >/dev/null
cli STREAM.WRITE wf:1 chunk >/dev/null
curl -sf "$H/metrics" >"$WORK/metrics.txt"
"$VENV/bin/python" - "$WORK/metrics.txt" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families

families = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
def value(name, **labels):
    for s in families[name].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise SystemExit(f"FAIL: no sample {name} {labels}")
assert families["herald_commands_processed"].type == "counter"
assert value("herald_keyspace_keys", db="0") == 4, value("herald_keyspace_keys", db="0")
assert value("herald_jobs") == 1
assert value("herald_connected_clients", transport="resp") >= 0
h = families["herald_command_duration_seconds"]
assert h.type == "histogram"
counts = {s.labels["family"]: s.value for s in h.samples if s.name.endswith("_count")}
assert counts.get("string", 0) >= 3 and counts.get("hash") == 1 and counts.get("jobs") == 1, counts
buckets = [s for s in h.samples if s.name.endswith("_bucket") and s.labels["family"] == "string"]
assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == counts["string"]
assert all(a.value <= b.value for a, b in zip(buckets, buckets[1:]))
assert value("herald_queue_jobs_queued", queue="render") == 1
assert value("herald_board_items", scope="", board='board "one"') == 1
assert value("herald_mailbox_messages", dest="worker-1") == 1
assert value("herald_stream_entries", stream="wf:1") == 1
assert value("herald_objects", kind="queue") == 1
print(f"ok - {len(families)} metric families parsed by prometheus_client")
PY
expect "still serving" PONG "$(cli PING)"
