#!/usr/bin/env bash
# The rest of the seeds (issue 18) end to end with redis-cli: queue control, bounded blocking put,
# semaphores with fencing, request/reply, schemas, BB.WATCH; then kill -9 and a restart from the data
# directory: paused queues, semaphore holders and tokens, mailbox bounds and schemas are all back, and
# a fencing token handed out after the restart is larger than any before it. BB.WATCH's abort needs two
# interleaved connections, so it is tested through the redis crate and the JavaScript client.
set -euo pipefail
source "$(dirname "$0")/common.bash"

DATA="$WORK/data"
start_herald --data-dir "$DATA" --appendfsync always

# A blocked command is proven blocked (INFO's blocked_clients) before it is woken.
wait_blocked() {
  for _ in $(seq 1 100); do
    if [ "$(cli INFO clients | tr -d '\r' | sed -n 's/^blocked_clients://p')" = "$1" ]; then return 0; fi
    sleep 0.05
  done
  fail "blocked_clients never reached $1"
}

# Queue control.
expect "pause" "OK" "$(cli JOB.QUEUE render PAUSE)"
cli JOB.SUBMIT render page-1 >/dev/null
expect "nothing to claim while paused" "" "$(cli JOB.CLAIM render)"
expect "join times out while a job is queued" "" "$(cli JOB.JOIN render TIMEOUT 10)"
expect "bad JOB.QUEUE" "ERR JOB.QUEUE takes CONCURRENCY n, PAUSE or RESUME" "$(cli JOB.QUEUE render STOP 2>&1)"

# Bounded blocking put: a publisher waits for room on a full board.
cli BL.CONFIG inbox MAXLEN 1 >/dev/null
cli BL.PUBLISH inbox '{"n": 1}' >/dev/null
expect "full board refuses" "FULL the board is at its MAXLEN" "$(cli BL.PUBLISH inbox '{"n": 2}' 2>&1)"
(cli BL.PUBLISH inbox '{"n": 2}' BLOCK 5000 >"$WORK/put.txt") &
wait_blocked 1
cli BL.RETRIEVE inbox LOCK 1000 >"$WORK/item.txt"
cli BL.REMOVE inbox "$(sed -n 2p "$WORK/item.txt")" "$(grep -A1 '^token$' "$WORK/item.txt" | tail -1)" >/dev/null
wait_for_text "$WORK/put.txt" "-"
echo "ok - BL.PUBLISH ... BLOCK let in when an item left"
cli MSG.CONFIG orders MAXLEN 1 >/dev/null
cli MSG.SEND orders "" first >/dev/null
expect "full mailbox refuses" "FULL" "$(cli MSG.SEND orders "" second 2>&1 | cut -d' ' -f1)"
(cli MSG.SEND orders "" second BLOCK 5000 >"$WORK/send.txt") &
wait_blocked 1
expect "receiver takes the first" "first" "$(cli MSG.RECV orders "")"
wait_for_text "$WORK/send.txt" "[0-9]"
echo "ok - MSG.SEND ... BLOCK let in when a message was received"

# Semaphores: a lock, its waiter, fencing.
t1=$(cli SEM.ACQUIRE deploy 1 LEASE 600000)
expect "held: nil" "" "$(cli SEM.ACQUIRE deploy 1)"
(cli SEM.ACQUIRE deploy 1 LEASE 600000 BLOCK 5000 >"$WORK/sem.txt") &
wait_blocked 1
expect "release" "OK" "$(cli SEM.RELEASE deploy "$t1")"
wait_for_text "$WORK/sem.txt" "[0-9]"
t2=$(cat "$WORK/sem.txt")
[ "$t2" -gt "$t1" ] || fail "fencing token $t2 after $t1"
echo "ok - the waiter got the lock with a larger token"
expect "old token refused" "LEASE" "$(cli SEM.EXTEND deploy "$t1" 1000 2>&1 | cut -d' ' -f1)"

# Request/reply.
(cli MSG.REQUEST calc add 2+2 TIMEOUT 5000 >"$WORK/reply.txt") &
cli MSG.RECV calc add TIMEOUT 5000 >"$WORK/req.txt"
reply_to=$(grep -A1 '^reply_to$' "$WORK/req.txt" | tail -1)
expect "reply delivered" "1" "$(cli MSG.REPLY "$reply_to" 4)"
wait_for_text "$WORK/reply.txt" "4"
expect "late reply dropped" "0" "$(cli MSG.REPLY "$reply_to" 5)"
expect "unanswered request" "" "$(cli MSG.REQUEST nobody "" x TIMEOUT 20)"

# Schemas.
cli SCHEMA.SET topic orders '{"type": "object", "required": ["id"]}' >/dev/null
expect "schema refusal" 'SCHEMA : "id" is a required property' "$(cli MSG.SEND anyone orders '{}' 2>&1)"
expect "bad schema" "ERR the schema is not JSON" "$(cli SCHEMA.SET queue q '{' 2>&1 | cut -d: -f1)"

# BB.WATCH (its abort by another client is tested through the redis crate and the JavaScript client).
expect "BB.WATCH" "OK" "$(cli BB.WATCH accounts a1)"
expect "BB.WATCH arity" "ERR wrong number of arguments for 'bb.watch' command" "$(cli BB.WATCH accounts 2>&1)"

# kill -9, then restart from the data directory.
kill -9 "$HERALD_PID"
wait "$HERALD_PID" 2>/dev/null || true
start_herald --data-dir "$DATA"
expect "still paused" "" "$(cli JOB.CLAIM render)"
expect "the paused job is kept" "1" "$(cli JOB.STATS render | grep -A1 '^queued$' | tail -1)"
expect "the lock is still held" "" "$(cli SEM.ACQUIRE deploy 1)"
cli SEM.RELEASE deploy "$t2" >/dev/null
t3=$(cli SEM.ACQUIRE deploy 1)
[ "$t3" -gt "$t2" ] || fail "after a restart the token went from $t2 to $t3"
echo "ok - fencing tokens grow across kill -9"
expect "mailbox bound kept" "FULL" "$(cli MSG.SEND orders "" third 2>&1 | cut -d' ' -f1)"
expect "schema kept" "SCHEMA" "$(cli MSG.SEND anyone orders '[]' 2>&1 | cut -d' ' -f1)"
expect "resume" "OK" "$(cli JOB.QUEUE render RESUME)"
expect "claim after resume" "page-1" "$(cli JOB.CLAIM render | sed -n 6p)"
stop_herald
echo "seeds: all passed"
