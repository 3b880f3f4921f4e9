#!/usr/bin/env bash
# The Redis engine end to end (docs/scale-out.md): two Herald processes sharing one redis-server.
# 1. Conformance: the Redis compatibility case files of Redis's own data types run through a Herald node
#    on the Redis engine and against a reference redis-server, reply for reply (tests/compat/compare.py;
#    the node forwards them to its backing redis-server).
# 2. Two nodes with redis-cli: a write on one read on the other, pipelines (redis-benchmark -P 16,
#    redis-cli --pipe) run once each and in order, a publication on one received by a
#    subscriber of the other (and a shard publication, SPUBLISH/SSUBSCRIBE), a BB.WAIT on one woken by a BB.SET on the other, a job submitted on one
#    and completed by a worker of the other, a lock taken on one and released with its token on the other.
set -euo pipefail
source "$(dirname "$0")/common.bash"

start_backing_redis

echo "-- compat cases through a node on the Redis engine"
# The same files as the embedded suite, less CONFIG SET lines (the node's own settings, not the backing
# Redis's), dropped for both servers so the rest still lines up.
compat="$(dirname "$0")/../compat"
cases=()
for f in strings keys lists hashes sets zsets xstreams bits lcs sort dump; do
  grep -v -E '^CONFIG SET ' "$compat/$f.txt" >"$WORK/$f.txt"
  cases+=("$WORK/$f.txt")
done
HERALD_ENGINE="$ENGINE" python3 "$compat/compare.py" "$HERALD_BIN" "${cases[@]}"

echo "-- two nodes"
start_herald --engine "$ENGINE"
A=$PORT
A_PID=$HERALD_PID
cp "$WORK/herald.log" "$WORK/a.log"
start_herald --engine "$ENGINE"
B=$PORT

redis-cli -p "$A" SET shared hello >/dev/null
expect "a write on node A is read on node B" "hello" "$(redis-cli -p "$B" GET shared)"
expect "and it lives in redis-server" "hello" "$(redis-cli -p "$BACKING_PORT" GET shared)"

# Pipelines (engine.max_in_flight): redis-benchmark -P 16 and redis-cli --pipe through node A, every
# request run once and in the order sent, read back on node B.
redis-benchmark -p "$A" -P 16 -c 4 -n 4000 -q INCR pipelined >/dev/null
expect "redis-benchmark -P 16 INCRs through node A, each run once" "4000" "$(redis-cli -p "$B" GET pipelined)"
for i in $(seq 0 1999); do printf 'RPUSH ordered %s\r\n' "$i"; done | redis-cli -p "$A" --pipe >"$WORK/pipe.txt"
grep -q "errors: 0, replies: 2000" "$WORK/pipe.txt" || fail "redis-cli --pipe through node A: $(cat "$WORK/pipe.txt")"
expect "redis-cli --pipe: the list in the order sent" "$(seq 0 1999 | tr '\n' ' ')" "$(redis-cli -p "$B" LRANGE ordered 0 -1 | tr '\n' ' ')"

redis-cli -p "$B" SUBSCRIBE news >"$WORK/sub.txt" 2>&1 &
SUB_PID=$!
wait_for_text "$WORK/sub.txt" "subscribe"
expect "PUBLISH on node A reaches node B's subscriber" "1" "$(redis-cli -p "$A" PUBLISH news extra)"
wait_for_text "$WORK/sub.txt" "extra"
echo "ok - the message arrived"

redis-cli -p "$B" SSUBSCRIBE orders >"$WORK/ssub.txt" 2>&1 &
SSUB_PID=$!
wait_for_text "$WORK/ssub.txt" "ssubscribe"
expect "SPUBLISH on node A reaches node B's shard subscriber" "1" "$(redis-cli -p "$A" SPUBLISH orders shipped)"
wait_for_text "$WORK/ssub.txt" "shipped"
echo "ok - the shard message arrived"

redis-cli -p "$B" BB.WAIT wf approval TIMEOUT 5000 >"$WORK/wait.txt" &
WAIT_PID=$!
sleep 0.2
expect "BB.SET on node A" "1" "$(redis-cli -p "$A" BB.SET wf approval yes)"
wait "$WAIT_PID"
expect "BB.WAIT on node B woke with the value" "yes" "$(sed -n 2p "$WORK/wait.txt")"

# A job submitted on node A, claimed and completed by a worker of node B, its result waited for on A.
redis-cli -p "$A" JOB.SUBMIT e2e '{"n":1}' ID e2e-1 WAIT 5000 >"$WORK/result.txt" &
RESULT_PID=$!
CLAIM=$(redis-cli -p "$B" JOB.CLAIM e2e BLOCK 5000)
TOKEN=$(echo "$CLAIM" | sed -n '/^token$/{n;p}')
expect "node B's worker claimed the job submitted on node A" "e2e-1" "$(echo "$CLAIM" | sed -n 2p)"
expect "a chunk at offset 0" "0" "$(redis-cli -p "$B" JOB.CHUNK e2e-1 "$TOKEN" part)"
expect "completed on node B" "OK" "$(redis-cli -p "$B" JOB.COMPLETE e2e-1 "$TOKEN" done)"
wait "$RESULT_PID"
expect "JOB.SUBMIT ... WAIT on node A got the result" "done" "$(cat "$WORK/result.txt")"
expect "the stale token is refused" \
  "LEASE the job is not held with this token (the lease expired or the job moved on)" "$(redis-cli -p "$A" JOB.COMPLETE e2e-1 "$TOKEN" again)"

SEM_TOKEN=$(redis-cli -p "$A" SEM.ACQUIRE lock 1 LEASE 60000)
expect "node B sees node A's lock held" "" "$(redis-cli -p "$B" SEM.ACQUIRE lock 1)"
expect "node B releases with node A's token" "OK" "$(redis-cli -p "$B" SEM.RELEASE lock "$SEM_TOKEN")"
expect "the released token is refused on node A" "LEASE" "$(redis-cli -p "$A" SEM.RELEASE lock "$SEM_TOKEN" | cut -d' ' -f1)"

expect "BB.MEMORY answers a key's bytes on this engine" "1" "$(redis-cli -p "$A" BB.MEMORY wf approval | grep -cE '^[0-9]+$')"

kill "$SUB_PID" "$SSUB_PID" "$A_PID" "$BACKING_PID" 2>/dev/null || true
wait "$SUB_PID" "$SSUB_PID" "$A_PID" "$BACKING_PID" 2>/dev/null || true
echo "scale-out end to end: ok"
