#!/usr/bin/env bash
# Bulletin boards, mailboxes and Herald streams on the Redis engine end to end (docs/scale-out.md): Herald processes
# sharing one redis-server, driven with redis-cli.
# 1. A worker on node A holds a lease when node A is `kill -9`ed: the lease (Redis's) runs out, a worker
#    on node B retrieves the same item, and the dead holder's token is refused.
# 2. A mailbox request made on node A is answered by a replier on node B.
# 3. A Herald stream written on one node is resumed from an offset on another.
set -euo pipefail
source "$(dirname "$0")/common.bash"

start_backing_redis

start_herald --engine "$ENGINE"
A=$PORT
A_PID=$HERALD_PID
start_herald --engine "$ENGINE"
B=$PORT

echo "-- a lease taken over after its holder's node is killed"
ID=$(redis-cli -p "$A" BL.PUBLISH tasks '{"task": "t1"}')
redis-cli -p "$A" BL.RETRIEVE tasks LOCK 1000 >"$WORK/held.txt"
expect "node A's worker holds the item" "$ID" "$(sed -n 2p "$WORK/held.txt")"
STALE=$(grep -A1 '^token$' "$WORK/held.txt" | tail -1)
kill -9 "$A_PID"
wait "$A_PID" 2>/dev/null || true
expect "while the lease runs, node B finds nothing free" "" "$(redis-cli -p "$B" BL.RETRIEVE tasks LOCK 10000)"
redis-cli -p "$B" BL.RETRIEVE tasks LOCK 10000 BLOCK 5000 >"$WORK/taken.txt"
expect "node B's worker takes the item over when the lease ends" "$ID" "$(sed -n 2p "$WORK/taken.txt")"
expect "counted as a failed lease" "1" "$(grep -A1 '^failed_leases$' "$WORK/taken.txt" | tail -1)"
TOKEN=$(grep -A1 '^token$' "$WORK/taken.txt" | tail -1)
expect "the dead holder's token is refused" \
  "LEASE the item is not locked with this token (the lease ended or was never this one)" \
  "$(redis-cli -p "$B" BL.REMOVE tasks "$ID" "$STALE")"
expect "the new holder removes it" "1" "$(redis-cli -p "$B" BL.REMOVE tasks "$ID" "$TOKEN")"

echo "-- a request on one node answered on another"
start_herald --engine "$ENGINE"
A=$PORT
redis-cli -p "$A" MSG.REQUEST calc add 2+2 TIMEOUT 5000 >"$WORK/answer.txt" &
REQ_PID=$!
redis-cli -p "$B" MSG.RECV calc add TIMEOUT 5000 >"$WORK/request.txt"
expect "node B's replier receives the request" "2+2" "$(grep -A1 '^payload$' "$WORK/request.txt" | tail -1)"
REPLY_TO=$(grep -A1 '^reply_to$' "$WORK/request.txt" | tail -1)
expect "its reply goes to the requester" "1" "$(redis-cli -p "$B" MSG.REPLY "$REPLY_TO" 4)"
wait "$REQ_PID"
expect "the requester on node A gets the answer" "4" "$(cat "$WORK/answer.txt")"
expect "a second reply is refused as late" "0" "$(redis-cli -p "$B" MSG.REPLY "$REPLY_TO" 5)"

echo "-- a stream written on one node, resumed from an offset on another"
for i in 0 1 2; do redis-cli -p "$A" STREAM.WRITE progress "step $i" >/dev/null; done
redis-cli -p "$A" STREAM.CLOSE progress >/dev/null
redis-cli -p "$B" STREAM.READ progress FROM 1 >"$WORK/read.txt"
expect "node B reads from offset 1 to the end" "step 1,step 2" "$(grep '^step' "$WORK/read.txt" | paste -sd,)"
expect "and sees the stream closed" "1" "$(grep -A1 '^closed$' "$WORK/read.txt" | tail -1)"

kill "$HERALD_PID" "$BACKING_PID" 2>/dev/null || true
jobs -p | xargs -r kill 2>/dev/null || true
wait 2>/dev/null || true
echo "boards, mailboxes and streams across nodes end to end: ok"
