#!/usr/bin/env bash
# The domains end to end with redis-cli: blackboard, bulletin, jobs, mailboxes, streams, lists, each
# through the built binary, with blocking commands woken by another redis-cli once the broker reports them
# blocked (wait_blocked: INFO blocked_clients and CLIENT LIST).
set -euo pipefail
source "$(dirname "$0")/common.bash"

start_herald

# Blackboard: scopes, revisions, compare-and-swap, a watch event with the value, BB.WAIT.
expect "BB.SET revision" "1" "$(cli BB.SET agent_001 current_task analyze_data)"
expect "BB.SET again" "2" "$(cli BB.SET agent_001 current_task summarize)"
expect "CAS conflict" "CONFLICT the key is at revision 2" "$(cli BB.SET agent_001 current_task x IFREV 1 2>&1)"
expect "global scope is db 0" "gpt-4" "$(cli BB.SET '' model gpt-4 >/dev/null; cli GET model)"
redis-cli -p "$PORT" PSUBSCRIBE '__bb:expire@agent_001__:*' >"$WORK/bb.txt" &
WATCHER=$!
wait_for_text "$WORK/bb.txt" "psubscribe"
cli BB.SET agent_001 temp token EX 1 >/dev/null
wait_for_text "$WORK/bb.txt" '"event":"expire"'
grep -q '"value":"token"' "$WORK/bb.txt" || fail "the expire event carries the value"
echo "ok - blackboard expire event with its value"
kill "$WATCHER"
(cli BB.WAIT wf result TIMEOUT 5000 >"$WORK/wait.txt") &
wait_blocked bb.wait
cli BB.SET wf result done >/dev/null
wait_for_text "$WORK/wait.txt" "done"
echo "ok - BB.WAIT woken by another client"

# Bulletin: publish, retrieve with a lease and a filter, remove with the token.
cli BL.PUBLISH requests '{"task_id": "t1", "action": "process_data", "params": {"file": "data.csv"}}' >/dev/null
cli BL.RETRIEVE requests WHERE params.file = data.csv LOCK 60000 >"$WORK/item.txt"
id=$(sed -n 2p "$WORK/item.txt")
token=$(grep -A1 '^token$' "$WORK/item.txt" | tail -1)
expect "locked item is not handed out again" "" "$(cli BL.RETRIEVE requests LOCK 60000)"
expect "remove with the token" "1" "$(cli BL.REMOVE requests "$id" "$token")"

# Jobs: a worker blocked in JOB.CLAIM is woken by a submit; the result comes back through JOB.RESULT.
(cli JOB.CLAIM render BLOCK 5000 >"$WORK/claim.txt") &
wait_blocked job.claim
job=$(cli JOB.SUBMIT render '{"page": 3}')
wait_for_text "$WORK/claim.txt" "token"
jtoken=$(grep -A1 '^token$' "$WORK/claim.txt" | tail -1)
expect "chunk offset" "0" "$(cli JOB.CHUNK "$job" "$jtoken" 'first part')"
expect "complete" "OK" "$(cli JOB.COMPLETE "$job" "$jtoken" rendered)"
expect "result" "rendered" "$(cli JOB.RESULT "$job" BLOCK 1000)"
expect "stale token refused" "LEASE" "$(cli JOB.COMPLETE "$job" "$jtoken" again 2>&1 | cut -d' ' -f1)"

# Mailboxes and streams.
(cli MSG.RECV order-7 approval TIMEOUT 5000 >"$WORK/msg.txt") &
wait_blocked msg.recv
cli MSG.SEND order-7 approval approved >/dev/null
wait_for_text "$WORK/msg.txt" "approved"
echo "ok - MSG.RECV woken by MSG.SEND"
cli STREAM.WRITE log one >/dev/null
cli STREAM.WRITE log two >/dev/null
cli STREAM.CLOSE log >/dev/null
cli STREAM.READ log FROM 1 >"$WORK/stream.txt"
grep -q "two" "$WORK/stream.txt" && ! grep -q "one" "$WORK/stream.txt" || fail "STREAM.READ FROM 1: $(cat "$WORK/stream.txt")"
echo "ok - STREAM.READ from an offset"

# Lists: BLPOP woken by RPUSH.
(cli BLPOP queue 5 >"$WORK/blpop.txt") &
wait_blocked blpop
cli RPUSH queue job-1 >/dev/null
wait_for_text "$WORK/blpop.txt" "job-1"
echo "ok - BLPOP woken by RPUSH"

stop_herald
